"""study.toml and the manifest: defaults, and every mistake reported with its line or row."""

import pytest

from pipeline.errors import InputError
from pipeline.study import Settings, discover_sources, load_study, parse_settings


def test_defaults():
    s = parse_settings("")
    assert s == Settings()
    assert s.window_s == 60.0


def test_settings_are_read():
    s = parse_settings('codebook = "cb.yaml"\ncoders = ["ann", "bo"]\n[speakers]\n"Dr. Ruiz" = "therapist"\n'
                       '[align]\nwindow_s = 45\nstop_patterns = [\'^CUE (?P<time>[0-9:]+)$\']\n')
    assert s.codebook == "cb.yaml" and s.coders == ["ann", "bo"]
    assert s.speakers == {"dr. ruiz": "therapist"}
    assert s.window_s == 45.0 and s.stop_patterns == ["^CUE (?P<time>[0-9:]+)$"]


def test_every_problem_is_reported_with_its_line():
    text = 'codebok = "x"\n[align]\nwindow_s = "sixty"\nstop_patterns = ["(no time group)"]\n[speakers]\nX = "boss"\n'
    with pytest.raises(InputError) as e:
        parse_settings(text)
    lines = [str(p) for p in e.value.problems]
    assert len(lines) == 4
    assert lines[0].startswith("study.toml, line 1: unknown key 'codebok'")
    assert "line 3" in lines[1] and "window_s" in lines[1]
    assert "line 4" in lines[2] and "time" in lines[2]
    assert "line 6" in lines[3] and "boss" in lines[3]


def test_invalid_toml_names_the_line():
    with pytest.raises(InputError) as e:
        parse_settings('codebook = "x"\n[align\n')
    assert str(e.value).startswith("study.toml, line 2: not valid TOML")


def make_study(tmp_path, files, manifest=None):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for name in files:
        (raw / name).write_text("T: hello\n")
    (raw / "README.md").write_text("not a transcript")
    if manifest is not None:
        (raw / "manifest.csv").write_text(manifest)
    return load_study(tmp_path)


def test_file_names_tell_which_file_is_which(tmp_path):
    study = make_study(tmp_path, ["D01_S2_session.txt", "D01_S2_ipr-client.txt"])
    sources = {s.transcript_id: s for s in discover_sources(study)}
    assert set(sources) == {"D01_S2_session", "D01_S2_ipr-client"}
    assert sources["D01_S2_ipr-client"].participant == "client"
    assert sources["D01_S2_ipr-client"].kind == "ipr"


def test_unnamed_file_gets_a_clear_error(tmp_path):
    study = make_study(tmp_path, ["interview3.txt"])
    with pytest.raises(InputError) as e:
        discover_sources(study)
    assert "data/raw/interview3.txt" in str(e.value) and "manifest.csv" in str(e.value)


def test_manifest_rows(tmp_path):
    manifest = ("file,case,session,kind,participant,offset_s\n"
                "a.txt,D1,S1,session,,\nb.txt,D1,S1,ipr,therapist,-2.5\n")
    study = make_study(tmp_path, ["a.txt", "b.txt"], manifest)
    sources = {s.file: s for s in discover_sources(study)}
    assert sources["b.txt"].offset_s == -2.5
    assert sources["b.txt"].transcript_id == "D1_S1_ipr-therapist"


def test_manifest_problems_name_their_rows(tmp_path):
    manifest = ("file,case,session,kind,participant,offset_s\n"
                "a.txt,D1,S1,session,,\n"
                "missing.txt,D1,S1,session,,\n"
                "b.txt,D1,S1,interview,,\n"
                "c.txt,D1,S1,ipr,,\n"
                "a.txt,D1,S1,session,,\n"
                "d.txt,D1,S1,ipr,client,soon\n")
    study = make_study(tmp_path, ["a.txt", "b.txt", "c.txt", "d.txt"], manifest)
    with pytest.raises(InputError) as e:
        discover_sources(study)
    text = [str(p) for p in e.value.problems]
    assert any("row 3" in t and "missing.txt" in t for t in text)
    assert any("row 4" in t and "interview" in t for t in text)
    assert any("row 5" in t and "participant" in t for t in text)
    assert any("row 6" in t and "twice" in t for t in text)
    assert any("row 7" in t and "offset_s" in t for t in text)


def test_an_empty_study_runs_and_says_where_the_transcripts_go(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    root = tmp_path / "new"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    assert "data/raw/ holds no transcripts yet" in result.output
    assert (root / "reports" / "summary.docx").exists()
