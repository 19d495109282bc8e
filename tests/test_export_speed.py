"""The quick way of writing coders' workbooks (write-only sheets, rows as XML text) writes what the cell-by-cell
way writes: the same values, types, styles, widths, heights and sheet setup."""

import zipfile

import numpy as np
from openpyxl import Workbook, load_workbook

from pipeline.codebook import Code, Codebook
from pipeline.export import DIGEST_PROPERTY, Entry, Layout, write_workbook
from pipeline.readback import SESSION_HEADER
from pipeline.xlsx import CUT_NOTE, save, stream_table, write_table

HEADER = ["id", "n", "text", "note"]
TEXTS = ["=SUM(A1:A2)", "+1", "-x", "@you", "#N/A", " leading", "trailing ", "\ttab", "a\rb", "a\r\nb",
         "break\x0bhere\x00\x1f", "“quotes” <b>&amp;</b> > <", "😀 é", "x" * 40_000, "", "0042", "TRUE"]
ROWS = ([[f"u{i}", i, text, None] for i, text in enumerate(TEXTS)]
        + [["f", 2.5, None, True], ["np", np.int64(7), "n", np.float64(0.25)], ["nan", float("nan"), "x", "y"]])


def cells(path, sheet):
    """Every cell as a coder's spreadsheet shows it: value, type and style."""
    ws = load_workbook(path)[sheet]
    out = {}
    for row in ws.iter_rows():
        for c in row:
            out[c.coordinate] = (c.value, c.data_type, c.font.b, c.font.sz, c.fill.fgColor.rgb,
                                 c.alignment.wrap_text, c.alignment.vertical)
    widths = {k: (d.width, d.hidden) for k, d in ws.column_dimensions.items()}
    heights = {k: d.height for k, d in ws.row_dimensions.items() if d.height}
    return out, widths, heights, ws.freeze_panes, ws.auto_filter.ref, ws.dimensions


def test_stream_table_writes_what_write_table_writes(tmp_path):
    slow, quick = tmp_path / "slow.xlsx", tmp_path / "quick.xlsx"
    wb = Workbook()
    wb.active.title = "t"
    write_table(wb.active, HEADER, ROWS, {"text": 70}, wrap=("text",))
    for r in range(2, len(ROWS) + 2):
        wb.active.row_dimensions[r].height = 15.0 * r
    wb.save(slow)
    wb = Workbook(write_only=True)
    last = stream_table(wb.create_sheet("t"), HEADER, ROWS, {"text": 70}, wrap=("text",),
                        heights=[15.0 * r for r in range(2, len(ROWS) + 2)])
    save(wb, quick)
    assert last == len(ROWS) + 1
    assert cells(quick, "t") == cells(slow, "t")
    got = load_workbook(quick)["t"]
    assert got["C2"].value == "=SUM(A1:A2)" and got["C2"].data_type == "s"  # never a formula
    assert got["C15"].value.endswith(CUT_NOTE)
    assert got["C10"].value == "a\rb"  # a carriage return survives as written
    assert got["C7"].value == " leading"
    read = load_workbook(quick, read_only=True)["t"]  # the size is stated, as in an ordinary sheet
    assert (read.max_row, read.max_column) == (len(ROWS) + 1, len(HEADER))


def test_a_streamed_sheet_is_kept_in_memory_not_in_a_temporary_file(tmp_path):
    """Hundreds of workbooks a run: a temporary file per sheet cost more than the sheet's cells."""
    from openpyxl.worksheet._writer import ALL_TEMP_FILES

    before = list(ALL_TEMP_FILES)
    wb = Workbook(write_only=True)
    stream_table(wb.create_sheet("t"), HEADER, ROWS)
    assert ALL_TEMP_FILES == before
    save(wb, tmp_path / "t.xlsx")
    assert load_workbook(tmp_path / "t.xlsx")["t"]["A3"].value == "u1"
    assert [p.name for p in tmp_path.iterdir()] == ["t.xlsx"]


def book(brief="denies"):
    return Codebook(title="t", digest="same", codes=[
        Code("rupture.withdrawal.denial", "Denial", brief=brief, definition="d " * 300, examples=["I'm fine"]),
        Code("resolution.clarify", "Clarify")])


def session_rows(n=4):
    return [[f"D:{i}", i, "0:00:01", "T", "therapist", "text " * (i * 20), "resolution.clarify", "“x”"]
            for i in range(1, n + 1)]


def test_a_workbook_keeps_its_sheet_setup(tmp_path):
    path = tmp_path / "w.xlsx"
    write_workbook(path, "session", list(SESSION_HEADER), session_rows(), book(),
                   {"D:2": Entry("D:2", "turn", ["resolution.clarify"], "memo", {"mine": "kept"})},
                   [Entry("D:0", "turn", ["rupture.withdrawal.denial"], "", {}, "2024-03-01")],
                   layout=Layout(hidden={"speaker"}, widths={"text": 50}), digest="abc", about="About.")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Turns", "Codebook", "How to code", "Removed units"]
    assert [p.value for p in wb.custom_doc_props if p.name == DIGEST_PROPERTY] == ["abc"]
    for name in ("Turns", "Codebook"):
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape"
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_title_rows == "$1:$1"
        assert ws.freeze_panes == "A2"
    ws = wb["Turns"]
    assert ws.column_dimensions["D"].hidden and ws.column_dimensions["F"].width == 50
    assert ws["M1"].value == "mine" and ws["M3"].value == "kept"
    (dv,) = ws.data_validations.dataValidation
    assert dv.formula1 == "Codebook!$A$2:$A$3" and str(dv.sqref) == "I2:K5" and dv.showErrorMessage
    how = wb["How to code"]
    assert how["A1"].font.b and how["A1"].font.sz == 14 and how["A2"].value == "About."
    assert how.column_dimensions["A"].width == 110
    assert wb["Codebook"].row_dimensions[2].height > 15


def test_the_codebook_sheet_is_written_once_per_codebook(tmp_path):
    a, b, c = (tmp_path / f"{n}.xlsx" for n in "abc")
    for path, brief in ((a, "denies"), (b, "denies"), (c, "another brief")):
        write_workbook(path, "session", list(SESSION_HEADER), session_rows(), book(brief), {}, [])

    def sheet(path):
        with zipfile.ZipFile(path) as z:
            return z.read("xl/worksheets/sheet2.xml")

    assert sheet(a) == sheet(b)
    assert load_workbook(c)["Codebook"]["C2"].value == "another brief"  # a changed codebook is not the kept one


def test_a_workbook_copied_for_another_coder_is_the_one_made_for_them(tmp_path):
    """A transcript's coders with nothing of theirs yet get the same workbook but for their name: it is
    copied, not made again."""
    from pipeline.export import copy_for_coder

    mine, copied, made = (tmp_path / f"{n}.xlsx" for n in ("mine", "copied", "made"))
    about = "Transcript D:1, coder ana & “bo”; codebook: t <1>, version 😀."
    other = "Transcript D:1, coder zoë; codebook: t <1>, version 😀."
    for path, text in ((mine, about), (made, other)):
        write_workbook(path, "session", list(SESSION_HEADER), session_rows(), book(), {}, [], digest="abc",
                       about=text)
    assert copy_for_coder(mine, copied, about, other)
    for sheet in ("Turns", "Codebook", "How to code"):
        assert cells(copied, sheet) == cells(made, sheet)
    assert load_workbook(copied)["How to code"]["A2"].value == other
    assert [p.value for p in load_workbook(copied).custom_doc_props if p.name == DIGEST_PROPERTY] == ["abc"]
    with zipfile.ZipFile(copied) as a, zipfile.ZipFile(made) as b:
        assert a.namelist() == b.namelist()
        assert {i.filename: i.compress_type for i in a.infolist()} == {i.filename: i.compress_type
                                                                       for i in b.infolist()}
    # a line that is not there exactly once is not guessed at: the workbook is made instead
    assert not copy_for_coder(mine, tmp_path / "no.xlsx", "text", other)
    assert not (tmp_path / "no.xlsx").exists()

