"""Transcripts from a diarizer (WhisperX's ``[SPEAKER_00]: …``, run locally because clinical audio may not leave the
machine) or with generic labels (``Speaker 1``) name someone else in each file: the manifest's ``speakers`` column
maps a file's own labels, over study.toml's; a wrong cell is one line naming the row."""

import pandas as pd
from click.testing import CliRunner
from conftest import copy_demo

from pipeline.cli import main
from pipeline.ingest.readers import read_transcript

SRT = ("1\n00:00:04,000 --> 00:00:08,000\n[SPEAKER_00]: {a}\n\n"
       "2\n00:00:09,000 --> 00:00:12,500\n[SPEAKER_01]: {b}\n\n")


def test_whisperx_speakers_are_read_as_labels(tmp_path):
    for name, text in (("s.srt", SRT), ("s.vtt", "WEBVTT\n\n" + SRT.replace(",", ".")), ("s.txt", None)):
        path = tmp_path / name
        path.write_text(text.format(a="Hello, how are you?", b="Fine.") if text else
                        "[SPEAKER_00]: Hello, how are you?\n[SPEAKER_01]: Fine.\n")
        assert [(t.speaker, t.text) for t in read_transcript(path).turns] == [
            ("SPEAKER_00", "Hello, how are you?"), ("SPEAKER_01", "Fine.")], name


def _study(tmp_path, cells: dict[str, str]):
    root = copy_demo(tmp_path / "study")
    raw = root / "data" / "raw"
    # in D03's session the therapist spoke first; in D04's the client did
    (raw / "D03_S1_session.srt").write_text(SRT.format(a="How have things been?", b="Not great."))
    (raw / "D04_S1_session.srt").write_text(SRT.format(a="Sorry I'm late.", b="No problem, come in."))
    manifest = (raw / "manifest.csv").read_text(encoding="utf-8").replace("offset_s\n", "offset_s,speakers\n", 1)
    manifest += "".join(f"D0{n}_S1_session.srt,D0{n},S1,session,,,{cells[f'D0{n}']}\n" for n in (3, 4))
    (raw / "manifest.csv").write_text(manifest, encoding="utf-8")
    return root


def _roles(root) -> dict[str, list[str]]:
    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    return {tid: turns.loc[turns["transcript_id"] == tid, "role"].tolist()
            for tid in ("D03_S1_session", "D04_S1_session")}


def test_the_manifest_maps_each_files_own_labels(tmp_path):
    root = _study(tmp_path, {"D03": "SPEAKER_00=therapist; SPEAKER_01=client",
                             "D04": "speaker_00 = client;SPEAKER_01=therapist"})
    result = CliRunner().invoke(main, ["ingest", "--study", str(root)])
    assert result.exit_code == 0, result.output
    assert "SPEAKER_0" not in result.output  # no label left unknown
    assert _roles(root) == {"D03_S1_session": ["therapist", "client"], "D04_S1_session": ["client", "therapist"]}
    # the cell corrected: the file is read again, not taken from the last run
    manifest = root / "data" / "raw" / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("speaker_00 = client;SPEAKER_01=therapist",
                                                     "SPEAKER_00=therapist;SPEAKER_01=client"))
    assert CliRunner().invoke(main, ["ingest", "--study", str(root)]).exit_code == 0
    assert _roles(root)["D04_S1_session"] == ["therapist", "client"]


def test_an_unmapped_diarizer_label_says_where_to_map_it(tmp_path):
    root = _study(tmp_path, {"D03": "SPEAKER_00=therapist", "D04": ""})
    result = CliRunner().invoke(main, ["ingest", "--study", str(root)])
    assert result.exit_code == 0, result.output
    assert _roles(root) == {"D03_S1_session": ["therapist", "unknown"], "D04_S1_session": ["unknown", "unknown"]}
    assert ('data/raw/D04_S1_session.srt: the speaker label "SPEAKER_00" is not a known role' in result.output)
    assert 'to the file\'s row of data/raw/manifest.csv, column speakers: "SPEAKER_00=therapist"' in result.output


def test_a_wrong_speakers_cell_is_one_line_naming_the_row(tmp_path):
    root = _study(tmp_path, {"D03": "SPEAKER_00=therapist; SPEAKER_01", "D04": "SPEAKER_00=doctor"})
    result = CliRunner().invoke(main, ["ingest", "--study", str(root)])
    assert result.exit_code == 1
    errors = result.output.strip().splitlines()
    assert errors == [
        "error: data/raw/manifest.csv, row 8: speakers: 'SPEAKER_01' is not a label and a role (write them as "
        "\"SPEAKER_00=therapist; SPEAKER_01=client\" (roles: therapist, client, interviewer, participant, unknown))",
        "error: data/raw/manifest.csv, row 9: speakers: 'SPEAKER_00=doctor' is not a label and a role (write them as "
        "\"SPEAKER_00=therapist; SPEAKER_01=client\" (roles: therapist, client, interviewer, participant, unknown))"]
