"""Re-runs redo only what changed, and give exactly what a cold run gives."""

import json
import shutil
import subprocess
import sys

import pandas as pd
from click.testing import CliRunner

import pipeline.align
import pipeline.coding
import pipeline.export
import pipeline.ingest
import pipeline.parallel
import pipeline.readback
import pipeline.stages
from pipeline.cli import main


def analyze(root):
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    return {name: pd.read_parquet(root / "data" / "interim" / f"{name}.parquet")
            for name in ("turns", "stops", "segments", "codes")}


def coder_writes(path, sheet: str, row: int, column: str, value) -> str:
    """What a coder does: writes ``value`` in the column named ``column`` of ``row``, and saves.  The row's
    unit_id."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb[sheet]
    ws.cell(row=row, column=[c.value for c in ws[1]].index(column) + 1, value=value)
    wb.save(path)
    return ws.cell(row=row, column=1).value


def same(a: pd.DataFrame, b: pd.DataFrame, by: list[str]) -> None:
    pd.testing.assert_frame_equal(a.sort_values(by).reset_index(drop=True), b.sort_values(by).reset_index(drop=True))


def test_rerun_without_changes_reads_and_codes_nothing(demo_study, monkeypatch):
    first = analyze(demo_study)
    monkeypatch.setattr(pipeline.parallel, "can_fork", lambda: False)  # any coding would be done here, and seen
    calls = []
    real = pipeline.coding.apply_codebook
    monkeypatch.setattr(pipeline.coding, "apply_codebook", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(pipeline.ingest, "read_transcript", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(pipeline.align, "align", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(pipeline.export, "export", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(pipeline.stages, "_auto_codes", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    report = demo_study / "reports" / "summary.docx"
    made = report.stat().st_mtime_ns
    second = analyze(demo_study)
    assert calls == []
    assert report.stat().st_mtime_ns == made  # nothing it is made from changed
    for name, by in (("turns", ["turn_id"]), ("stops", ["transcript_id", "stop_no"]),
                     ("segments", ["segment_id"]), ("codes", ["unit_id", "code_id", "rule_id", "start_char"])):
        same(first[name], second[name], by)


def test_one_changed_transcript_gives_what_a_cold_run_gives(demo_study, tmp_path):
    analyze(demo_study)
    vtt = demo_study / "data" / "raw" / "D02_S5_session.vtt"
    vtt.write_text(vtt.read_text(encoding="utf-8") + "\n999\n00:20:00.000 --> 00:20:04.000\n"
                   "Client: I don't know. Whatever you think is best.\n", encoding="utf-8")
    warm = analyze(demo_study)
    cold_root = tmp_path / "cold"
    shutil.copytree(demo_study / "data" / "raw", cold_root / "data" / "raw")
    shutil.copytree(demo_study / "codebooks", cold_root / "codebooks")
    shutil.copy(demo_study / "study.toml", cold_root / "study.toml")
    cold = analyze(cold_root)
    assert "I don't know. Whatever you think is best." in set(warm["turns"]["text"])
    for name, by in (("turns", ["turn_id"]), ("stops", ["transcript_id", "stop_no"]),
                     ("segments", ["segment_id"]), ("codes", ["unit_id", "code_id", "rule_id", "start_char"])):
        same(warm[name], cold[name], by)


def test_unchanged_workbooks_are_not_opened_again_but_edited_ones_are(demo_study, monkeypatch):
    opened = []
    real = pipeline.readback.read_workbook
    monkeypatch.setattr(pipeline.readback, "read_workbook", lambda p, *a: opened.append(p.name) or real(p, *a))
    analyze(demo_study)
    analyze(demo_study)
    assert opened == []  # fresh workbooks with nothing coded are known to read back as nothing
    path = demo_study / "data" / "coded" / "coder_b" / "D01_S3_ipr-client.xlsx"
    coder_writes(path, "Segments", 2, "code 1", "recall.rupture.judged")
    codes = analyze(demo_study)["codes"]
    assert opened == ["D01_S3_ipr-client.xlsx"]
    mine = codes[codes["coder"] == "coder_b"]
    assert list(mine["code_id"]) == ["recall.rupture.judged"]
    analyze(demo_study)
    assert opened == ["D01_S3_ipr-client.xlsx"]  # read once; its entries are kept for the runs after


def test_after_a_coder_codes_the_automatic_codes_are_kept_not_made_again(demo_study, monkeypatch):
    first = analyze(demo_study)["codes"]
    path = demo_study / "data" / "coded" / "coder_a" / "D02_S5_ipr-client.xlsx"
    unit_id = coder_writes(path, "Segments", 3, "code 1", "recall.rupture.judged")
    monkeypatch.setattr(pipeline.stages, "_auto_codes", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    codes = analyze(demo_study)["codes"]
    same(codes[codes["coder"] == "auto"], first[first["coder"] == "auto"], ["unit_id", "code_id", "rule_id",
                                                                            "start_char"])
    mine = codes[codes["coder"] == "coder_a"]
    assert list(mine["code_id"]) == ["recall.rupture.judged"]
    assert mine["unit_id"].iloc[0] == unit_id


def test_a_copied_study_does_not_open_its_workbooks_again(demo_study, tmp_path, monkeypatch):
    """Copied to another folder or machine (or synced), every file has a new modification time: the
    workbooks' bytes, not their times, say whether they must be read again."""
    import os

    analyze(demo_study)
    coder_writes(demo_study / "data" / "coded" / "coder_a" / "D01_S3_session.xlsx", "Turns", 3, "memo",
                 "She pulls back here.")
    before = analyze(demo_study)["codes"]
    # signatures as an older version kept them, without the hash: the next run adds it
    state_path = demo_study / "data" / "interim" / "workbook_state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({k: v[:2] if isinstance(v, list) else v for k, v in state.items()}))
    analyze(demo_study)
    copy = tmp_path / "copy"
    shutil.copytree(demo_study, copy)
    books = sorted((copy / "data" / "coded").rglob("*.xlsx"))
    for book in books:
        os.utime(book, ns=(book.stat().st_atime_ns, book.stat().st_mtime_ns + 10**9))
    opened = []
    real = pipeline.readback.read_workbook
    monkeypatch.setattr(pipeline.readback, "read_workbook", lambda p, *a: opened.append(p.name) or real(p, *a))
    same(analyze(copy)["codes"], before, ["unit_id", "coder", "code_id", "rule_id"])
    assert len(books) > 4 and opened == []
    memos = pd.read_parquet(copy / "data" / "interim" / "coder_entries.parquet")["memo"]
    assert "She pulls back here." in set(memos)
    # the same size and a new time, but other bytes: read again
    data = bytearray(books[0].read_bytes())
    data[-30:-20] = b"x" * 10  # (not a valid workbook any more: reading it is what shows it was read)
    books[0].write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["analyze", "--study", str(copy)])
    assert opened == [books[0].name] and result.exit_code == 1


def test_a_new_codebook_rewrites_the_workbooks_without_opening_those_no_coder_touched(demo_study, monkeypatch):
    """Only a workbook a coder saved has a layout of theirs to keep (opening one costs more than writing it)."""
    from openpyxl import load_workbook

    analyze(demo_study)
    touched = demo_study / "data" / "coded" / "coder_b" / "D02_S5_session.xlsx"
    wb = load_workbook(touched)
    wb["Turns"].column_dimensions["E"].hidden = True
    wb.save(touched)
    opened = []
    real = pipeline.export.read_layout
    monkeypatch.setattr(pipeline.export, "read_layout", lambda p: opened.append(p.name) or real(p))
    book = demo_study / "codebooks" / "rupture_repair.yaml"
    book.write_text(book.read_text().replace('"not bother", ', '"not bother", "quite all right", ', 1))
    before = {p: p.stat().st_mtime_ns for p in (demo_study / "data" / "coded").glob("*/*.xlsx")}
    analyze(demo_study)
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())  # every workbook rewritten
    assert opened == ["D02_S5_session.xlsx"]
    assert load_workbook(touched)["Turns"].column_dimensions["E"].hidden


def test_a_deleted_workbook_is_written_again(demo_study):
    analyze(demo_study)
    path = demo_study / "data" / "coded" / "coder_a" / "D02_S5_session.xlsx"
    path.unlink()
    analyze(demo_study)
    assert path.exists()


def test_only_the_changed_transcripts_workbooks_are_even_made_into_rows(demo_study, monkeypatch):
    analyze(demo_study)
    made = []
    real = pipeline.export.unit_rows
    monkeypatch.setattr(pipeline.export, "unit_rows", lambda kind, units, *a: made.append(
        {u.split("@")[0] for u in units["segment_id" if kind != "session" else "turn_id"]}) or real(kind, units, *a))
    txt = demo_study / "data" / "raw" / "D02_S5_ipr-client.txt"
    txt.write_text(txt.read_text(encoding="utf-8") + "\nC: And I felt judged by her then, really.\n", encoding="utf-8")
    analyze(demo_study)
    assert made == [{"D02_S5_ipr-client"}]
    book = demo_study / "data" / "coded" / "coder_a" / "D02_S5_ipr-client.xlsx"
    from openpyxl import load_workbook

    rows = load_workbook(book, read_only=True)["Segments"].iter_rows(values_only=True)
    assert any("I felt judged by her then, really." in str(cell) for row in rows for cell in row)


def test_only_the_changed_sessions_stops_are_aligned_again_and_the_others_keep_their_warnings(demo_study,
                                                                                              monkeypatch):
    client = demo_study / "data" / "raw" / "D01_S3_ipr-client.txt"
    text = client.read_text(encoding="utf-8")
    client.write_text(text.replace("[Video paused at 00:03:07]", "[Video paused at 00:03:07]\n\n"
                                   "[Video paused at 00:03:07]", 1), encoding="utf-8")
    analyze(demo_study)
    run = json.loads((demo_study / "data" / "interim" / "run.json").read_text())
    same_time = [w for w in run["warnings"] if "same time as the stop before it" in w]
    assert len(same_time) == 1 and "D01_S3_ipr-client.txt" in same_time[0]
    aligned = []
    real = pipeline.align.align
    monkeypatch.setattr(pipeline.align, "align", lambda turns, stops, *a: aligned.append(
        sorted(set(stops["transcript_id"]))) or real(turns, stops, *a))
    txt = demo_study / "data" / "raw" / "D02_S5_ipr-client.txt"
    txt.write_text(txt.read_text(encoding="utf-8") + "\nC: And I felt judged by her then, really.\n", encoding="utf-8")
    segments = analyze(demo_study)["segments"]
    assert aligned == [["D02_S5_ipr-client", "D02_S5_ipr-therapist"]]
    run = json.loads((demo_study / "data" / "interim" / "run.json").read_text())
    assert same_time[0] in run["warnings"]  # said again, though its session was not aligned again
    assert set(segments["transcript_id"]) == {"D01_S3_ipr-client", "D01_S3_ipr-therapist", "D02_S5_ipr-client",
                                              "D02_S5_ipr-therapist"}
    assert list(segments["transcript_id"]) == sorted(segments["transcript_id"])


def test_after_a_change_a_run_with_nothing_changed_does_nothing_again(demo_study, monkeypatch):
    analyze(demo_study)
    vtt = demo_study / "data" / "raw" / "D02_S5_session.vtt"  # (a session's rows have no participant)
    vtt.write_text(vtt.read_text(encoding="utf-8") + "\n999\n00:20:00.000 --> 00:20:04.000\n"
                   "Client: I don't know. Whatever you think is best.\n", encoding="utf-8")
    analyze(demo_study)  # reused rows and rows read anew make its tables: they must be written as a cold run would
    monkeypatch.setattr(pipeline.align, "align", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(pipeline.export, "unit_rows", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    report = demo_study / "reports" / "summary.docx"
    made = report.stat().st_mtime_ns
    analyze(demo_study)
    assert report.stat().st_mtime_ns == made


def test_a_report_figure_deleted_by_hand_is_drawn_again(demo_study):
    """Every output of the report is checked, not only the document: the figures are files researchers use."""
    analyze(demo_study)
    figures = demo_study / "reports" / "figures"
    timeline = sorted(figures.glob("timeline_*.png"))[0]
    drawn = timeline.read_bytes()
    timeline.unlink()
    analyze(demo_study)
    assert timeline.read_bytes() == drawn
    shutil.rmtree(figures)
    analyze(demo_study)
    assert timeline.read_bytes() == drawn
    own = figures / "my_own_plot.png"  # a researcher's own figure is not the report's: gone, it remakes nothing
    own.write_bytes(drawn)
    timeline.unlink()  # the report made again, with the researcher's figure beside its own
    report = demo_study / "reports" / "summary.docx"
    analyze(demo_study)
    made = report.stat().st_mtime_ns
    own.unlink()
    analyze(demo_study)
    assert report.stat().st_mtime_ns == made


def test_what_other_code_made_is_made_again(demo_study, monkeypatch):
    """An update of the pipeline (a fix of how a transcript form is read, a change of how the report looks) with
    the same version number: the tables and the report of the last run are not what this code makes."""
    import pipeline.files

    def ingest_keys():
        state = json.loads((demo_study / "data" / "interim" / "ingest_state.json").read_text())
        return {tid: s["key"] for tid, s in state.items()}

    analyze(demo_study)
    outputs = [demo_study / "reports" / "summary.docx", demo_study / "data" / "interim" / "segments.parquet",
               demo_study / "data" / "interim" / "codes.parquet"]
    made, read = [p.stat().st_mtime_ns for p in outputs], ingest_keys()
    assert pipeline.files.code_version() == pipeline.files.code_version()  # the same code, the same digest
    analyze(demo_study)
    assert [p.stat().st_mtime_ns for p in outputs] == made and ingest_keys() == read
    monkeypatch.setattr(pipeline.files, "_CODE_VERSION", "other code")
    analyze(demo_study)
    assert all(p.stat().st_mtime_ns != m for p, m in zip(outputs, made, strict=True))
    assert all(ingest_keys()[tid] != key for tid, key in read.items())  # every transcript read again


NOTHING_CHANGED = """
import sys
from pipeline.stages import run_all
from pipeline.study import load_study

run_all(load_study(sys.argv[1]))
print(sorted(m for m in ("openpyxl", "docx", "matplotlib", "spacy") if m in sys.modules))
"""


def test_a_re_run_with_nothing_changed_imports_no_writer_of_workbooks_documents_or_figures(demo_study):
    """Importing openpyxl alone takes a tenth of a second, and the whole re-run about one second."""
    analyze(demo_study)
    out = subprocess.run([sys.executable, "-c", NOTHING_CHANGED, str(demo_study)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "[]\n"


SPACY_WITHOUT_COMMAND_LINE = """
import sys
import pipeline.coding
import spacy

print(sorted(m for m in ("typer", "weasel", "requests", "spacy.cli") if m in sys.modules))
print(spacy.blank("en")("I felt unheard.")[1].text)
print(spacy.info()["spacy_version"] == spacy.__version__)
import spacy.cli

print(callable(spacy.cli.download), "typer" in sys.modules)
"""


def test_spacy_is_imported_without_its_command_line_which_still_works_when_asked_for():
    """The process that codes a changed transcript waits for spaCy's import, a third of which is its command
    line; the pipeline never uses it, but other code in the process still may."""
    out = subprocess.run([sys.executable, "-c", SPACY_WITHOUT_COMMAND_LINE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "felt", "True", "True True"]


def test_a_spacy_that_needs_its_command_line_to_import_is_imported_whole():
    """Should a spaCy import more of its command line than the stand-in has, it is imported the usual way."""
    script = "import sys, types\nsys.modules['spacy.cli.info'] = types.ModuleType('spacy.cli.info')\n"
    out = subprocess.run([sys.executable, "-c", script + SPACY_WITHOUT_COMMAND_LINE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['requests', 'spacy.cli', 'typer', 'weasel']", "felt", "True", "True True"]
