"""``ipr doctor``: every area of a study checked with the pipeline's own checks, nothing run, nothing written."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import copy_demo
from test_bad_input import CASES, LINE_COUNTS, snapshot

from pipeline.cli import main

AREAS = ("settings", "transcripts", "codebook", "coders' workbooks", "de-identification")
# one or two bad inputs of every area (the whole list is run against `ipr analyze` in test_bad_input.py)
SOME_CASES = ["empty txt", "password-protected docx", "truncated docx", "a file named neither way",
              "two bad transcripts at once", "manifest: ipr row without participant", "manifest: duplicate row",
              "codebook: every kind of error", "codebook: missing", "study.toml: unknown key",
              "codebook: a token pattern spaCy refuses (checked where spaCy is loaded)",
              "study.toml: invalid TOML", "study.toml: key file without its columns", "workbook: unknown code",
              "workbook: unit_id column deleted", "workbook: open in Excel (lock file)", "workbooks of two coders"]


def doctor(root: Path):
    return CliRunner().invoke(main, ["doctor", "--study", str(root)])


def test_a_good_study_is_ok_in_every_area_and_nothing_is_written(study):
    before = snapshot(study)
    result = doctor(study)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for area in AREAS:
        assert any(line.startswith(f"ok: {area}: ") for line in lines), result.output
    assert "6 transcripts: 2 sessions, 4 IPR interviews, 17 stops (17 of 17 aligned)" in result.output
    assert "12 workbooks of 2 coders" in result.output
    assert lines[-1] == "all good: run `ipr analyze`"
    assert not [line for line in lines if line.startswith(("error", "warning"))]
    assert snapshot(study) == before


def test_a_study_never_analysed(tmp_path):
    root = copy_demo(tmp_path / "study")
    before = snapshot(root)
    result = doctor(root)
    assert result.exit_code == 0, result.output
    assert "ok: coders' workbooks: none yet" in result.output
    assert snapshot(root) == before  # not even data/interim/ is made


@pytest.mark.parametrize("name", SOME_CASES)
def test_doctor_names_what_analyze_would_refuse(study, name):
    breaking, expected = CASES[name]
    breaking(study)
    before = snapshot(study)
    result = doctor(study)
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and "internal error" not in out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == LINE_COUNTS.get(name, len(expected)), out
    for file, where, words in expected:
        place = f"{file}, {where}" if where else f"{file}:"
        assert any(place in line and words in line for line in errors), f"no line with {place!r} {words!r}:\n{out}"
    assert any(line.startswith("not ok: ") for line in out.splitlines())
    assert out.splitlines()[-1].endswith("to fix; then run `ipr doctor` again")
    assert snapshot(study) == before


def test_every_area_is_checked_even_when_several_are_wrong(study):
    CASES["study.toml: unknown key"][0](study)
    CASES["empty txt"][0](study)
    CASES["workbook: unknown code"][0](study)
    result = doctor(study)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "not ok: settings: 1 problem (the other checks use the default settings)" in lines
    assert any(line.startswith("not ok: transcripts: 1 problem") for line in lines)
    assert any(line.startswith("ok: codebook: ") for line in lines)
    assert any(line.startswith("not ok: coders' workbooks: 1 problem") for line in lines)
    assert lines[-1] == "3 problems to fix; then run `ipr doctor` again"


def test_warnings_are_shown_and_are_not_problems(study):
    (study / "data" / "raw" / "D03_S1_session.doc").write_bytes(b"\xd0\xcf\x11\xe0old word")
    path = study / "data" / "raw" / "D01_S3_ipr-client.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("[00:05:20] I:", "[00:01:00] I:"), encoding="utf-8")
    result = doctor(study)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert "warning: data/raw/D03_S1_session.doc: is not read (.doc is not a transcript form): open it in Word " \
           "and save it as .docx" in warnings
    assert any(w.startswith("warning: data/raw/D01_S3_ipr-client.txt, line 11: the time 0:01:00 is earlier")
               for w in warnings)


def test_a_transcript_read_in_a_run_is_not_read_again_and_a_changed_one_is(study, monkeypatch):
    import pipeline.ingest

    read = []
    real = pipeline.ingest.read_transcript
    monkeypatch.setattr(pipeline.ingest, "read_transcript", lambda path, *a, **k: read.append(path.name) or
                        real(path, *a, **k))
    result = doctor(study)
    assert result.exit_code == 0 and read == []
    assert "6 transcripts: 2 sessions, 4 IPR interviews, 17 stops (17 of 17 aligned)" in result.output
    path = study / "data" / "raw" / "D01_S3_ipr-client.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nC: And one more thing.\n", encoding="utf-8")
    assert doctor(study).exit_code == 0 and read == ["D01_S3_ipr-client.txt"]


def test_the_key_and_the_memos(study):
    with open(study / "study.toml", "a", encoding="utf-8") as f:
        f.write('\n[deidentify]\nkey = "private/pseudonyms.csv"\n')
    (study / "private").mkdir()
    (study / "private" / "pseudonyms.csv").write_text("name,pseudonym\nMaria Ruiz,Therapist-D02\n")
    result = doctor(study)
    assert result.exit_code == 0, result.output
    assert "ok: de-identification: on: 1 pseudonym from private/pseudonyms.csv" in result.output
    rel = "data/coded/coder_a/D02_S5_session.xlsx"
    book = openpyxl.load_workbook(study / rel)
    sheet = book["Turns"]
    sheet.cell(3, [c.value for c in sheet[1]].index("memo") + 1).value = "ask Maria"
    book.save(study / rel)
    result = doctor(study)
    assert result.exit_code == 1
    assert f"error: {rel}, sheet Turns, row 3: the 'memo' cell holds a real name of the de-identification key" \
        in result.output


def test_a_key_inside_data_raw_is_a_problem(study):
    with open(study / "study.toml", "a", encoding="utf-8") as f:
        f.write('\n[deidentify]\nkey = "data/raw/private/pseudonyms.csv"\n')
    (study / "data" / "raw" / "private").mkdir()
    (study / "data" / "raw" / "private" / "pseudonyms.csv").write_text("name,pseudonym\nMaria Ruiz,T-2\n")
    result = doctor(study)
    assert result.exit_code == 1
    assert "error: data/raw/private/pseudonyms.csv: the key file is inside a folder the pipeline reads" \
        in result.output


def test_no_study_folder(tmp_path):
    result = doctor(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "no such study folder" in result.output
