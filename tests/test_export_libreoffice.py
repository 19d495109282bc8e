"""A coder who saves the workbook in LibreOffice loses nothing (skipped where LibreOffice is not installed)."""

import shutil
import subprocess

import pytest
from openpyxl import load_workbook

from pipeline.codebook import Code, Codebook
from pipeline.export import Entry, write_workbook
from pipeline.readback import SESSION_HEADER, read_workbook

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")

CODES = ["rupture.withdrawal.denial", "resolution.clarify"]


def test_a_workbook_saved_again_by_libreoffice_keeps_every_cell_and_entry(tmp_path):
    book = Codebook(title="t", codes=[Code(CODES[0], "Denial", brief="denies"), Code(CODES[1], "Clarify")],
                    digest="x")
    rows = [["D:1", 1, "0:00:01", "T", "therapist", "=SUM(A1:A2) is not a formula", CODES[1], f"{CODES[1]}: “x”"],
            ["D:2", 2, "0:00:05", "C", "client", "-- I'm fine. (laughs)", CODES[0], f"{CODES[0]}: “fine”"],
            ["D:3", 3, "0:00:09", "T", "therapist", "@you " + "long text " * 300, "", ""]]
    src = tmp_path / "in" / "D01_S1_session.xlsx"
    write_workbook(src, "session", list(SESSION_HEADER), rows, book,
                   {"D:2": Entry("D:2", "turn", [CODES[0]], "+ a memo", {"mine": "kept"})},
                   [Entry("D:0", "turn", [CODES[1]], "", {}, "2024-03-01")], digest="d")
    out = tmp_path / "out"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                    "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=120)
    saved = out / src.name
    a, b = load_workbook(src), load_workbook(saved)
    assert b.sheetnames == a.sheetnames
    for name in a.sheetnames:
        va = [[v for v in r if v not in (None, "")] for r in a[name].iter_rows(values_only=True)]
        vb = [[v for v in r if v not in (None, "")] for r in b[name].iter_rows(values_only=True)]
        assert vb == va, name
    assert b["Turns"]["F2"].data_type == "s"
    (dv,) = b["Turns"].data_validations.dataValidation
    assert dv.formula1.lstrip("=") == "Codebook!$A$2:$A$3"
    said = {row[0]: (row[5], "D01_S1_session.txt", i) for i, row in enumerate(rows, 1)}  # LibreOffice kept the words
    entries, problems = read_workbook(saved, "x.xlsx", "alice", CODES, (), said)
    assert problems == []
    assert [(e["unit_id"], e["codes"], e["memo"], e["sheet"]) for e in entries] == [
        ("D:2", CODES[0], "+ a memo", "Turns"), ("D:0", CODES[1], "", "Removed units")]
    assert entries[1]["removed_on"] == "2024-03-01"


def test_the_consensus_coders_workbook_saved_by_libreoffice_reads_back_without_the_coders_view(tmp_path):
    """Its 'coders' codes' and 'disputed' are the pipeline's columns (several lines in a cell): not the coder's."""
    from pipeline.readback import CODERS_HEADER

    book = Codebook(title="t", codes=[Code(CODES[0], "Denial"), Code(CODES[1], "Clarify")], digest="x")
    rows = [["D:1", 1, "0:00:01", "C", "client", "I'm fine.", CODES[0], f"{CODES[0]}: “fine”",
             f"alice: {CODES[0]}\nbob: no code (memo: not sure)", CODES[0]]]
    src = tmp_path / "in" / "D01_S1_session.xlsx"
    write_workbook(src, "session", list(SESSION_HEADER) + CODERS_HEADER, rows, book,
                   {"D:1": Entry("D:1", "turn", [CODES[0]], "agreed")}, [], digest="d")
    out = tmp_path / "out"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to",
                    "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=120)
    saved = out / src.name
    ws = load_workbook(saved)["Turns"]
    assert ws["I2"].value == f"alice: {CODES[0]}\nbob: no code (memo: not sure)"
    entries, problems = read_workbook(saved, "x.xlsx", "consensus", CODES, (), {"D:1": ("I'm fine.", "f.txt", 1)})
    assert problems == []
    assert [(e["unit_id"], e["codes"], e["memo"], e["extra"]) for e in entries] == [("D:1", CODES[0], "agreed", "")]
