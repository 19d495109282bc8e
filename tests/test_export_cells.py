"""Safe cells: text is never a formula, no cell passes Excel's limit, nothing that breaks the file."""

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from pipeline.xlsx import CUT_NOTE, EXCEL_CELL_LIMIT, cell_value, row_height, set_cell, write_table

RISKY = ["=SUM(A1:A3)", "+44 20 7946 0958", "-- (long pause) --", "@mention", "=HYPERLINK(\"http://x\",\"y\")",
         "#N/A", "=1+2", "- I don't know."]


def _sheet_xml(path) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/worksheets/sheet1.xml").decode("utf-8")


def test_text_that_looks_like_a_formula_is_written_as_text(tmp_path):
    wb = Workbook()
    write_table(wb.active, ["text"], [[t] for t in RISKY])
    path = tmp_path / "risky.xlsx"
    wb.save(path)
    xml = _sheet_xml(path)
    assert "<f>" not in xml and "<f " not in xml
    cells = re.findall(r'<c r="A(\d+)"[^>]*t="(\w+)"', xml)
    assert {t for r, t in cells if int(r) > 1} <= {"s", "inlineStr"}
    back = load_workbook(path)
    assert [c.value for c in back.active["A"][1:]] == RISKY
    assert all(c.data_type == "s" for c in back.active["A"][1:])


def test_a_cell_over_the_limit_is_cut_with_a_visible_note():
    long = "word " * 10_000
    value = cell_value(long)
    assert len(value) == EXCEL_CELL_LIMIT
    assert value.endswith(CUT_NOTE)
    assert cell_value("short") == "short"


def test_the_limit_counts_as_excel_does_astral_characters_twice():
    value = cell_value("😀" * 20_000)  # 40,000 UTF-16 code units
    assert len(value.encode("utf-16-le")) // 2 <= EXCEL_CELL_LIMIT
    assert value.endswith(CUT_NOTE)
    assert "\ud83d" not in value  # never half a character


def test_characters_xml_cannot_hold_are_replaced(tmp_path):
    wb = Workbook()
    set_cell(wb.active, 1, 1, "line one\x0bline two\x00\x1f end")
    path = tmp_path / "ctrl.xlsx"
    wb.save(path)
    assert load_workbook(path).active["A1"].value == "line one\nline two   end"


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, pd.NaT])
def test_missing_values_are_empty_cells(missing):
    assert cell_value(missing) is None


def test_numpy_scalars_become_numbers():
    assert cell_value(np.int64(3)) == 3 and type(cell_value(np.int64(3))) is int
    assert cell_value(np.float64(0.5)) == 0.5


def test_tables_get_a_frozen_header_filters_and_widths(tmp_path):
    wb = Workbook()
    last = write_table(wb.active, ["a", "text"], [[1, "x"], [2, "y"]], {"text": 70}, wrap=("text",))
    assert last == 3
    ws = wb.active
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:B3"
    assert ws.column_dimensions["B"].width == 70
    assert ws["B2"].alignment.wrap_text
    assert ws["A1"].font.bold


def test_row_height_follows_the_wrapped_text():
    assert row_height(["short"], [70]) == 15
    assert row_height(["x" * 300], [70]) > 15
    assert row_height(["x" * 100_000], [70]) == 12 * 15  # never a wall of a row
    assert row_height(["a\nb\nc"], [70]) == 45
