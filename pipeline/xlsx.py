"""Spreadsheet cells that are safe and readable, for every workbook the pipeline writes.

Safe: text is always text (a transcript line that begins with ``=`` must never become a formula), and no cell
exceeds Excel's limit.  Readable: bold frozen header, filters, wrapped text, widths that fit the content.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from copy import copy

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

EXCEL_CELL_LIMIT = 32767  # characters as Excel counts them: UTF-16 code units
CUT_NOTE = " […cut: the full text is longer than a spreadsheet cell holds]"
# Control characters that XML 1.0 (and so .xlsx) cannot hold; Word's vertical tab (manual line break) and
# form feed become a line break, the rest a space.
_BREAKS = re.compile(r"[\x0b\x0c]")
_ILLEGAL = re.compile(r"[\x00-\x08\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")
WRAP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")


def cell_value(value):
    """A value as it should stand in a cell: None for missing, text cut to Excel's limit with a visible note."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, str):
        value = _ILLEGAL.sub(" ", _BREAKS.sub("\n", value))
        if len(value) * 2 > EXCEL_CELL_LIMIT and _excel_len(value) > EXCEL_CELL_LIMIT:  # counting costs
            value = _cut(value, EXCEL_CELL_LIMIT - _excel_len(CUT_NOTE)) + CUT_NOTE
    return value


def _excel_len(text: str) -> int:
    """Length as Excel counts it (UTF-16 code units: an emoji counts twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` that Excel counts as at most ``limit`` characters."""
    n = 0
    for i, ch in enumerate(text):
        n += 2 if ord(ch) > 0xFFFF else 1
        if n > limit:
            return text[:i]
    return text


def set_cell(ws: Worksheet, row: int, col: int, value, wrap: bool = False):
    cell = ws.cell(row=row, column=col)
    value = cell_value(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text begins with
    _align(cell, wrap)
    return cell


def _align(cell, wrap: bool) -> None:
    """``cell.alignment = WRAP or TOP``, at a fraction of the cost.

    openpyxl looks a style up in the workbook's tables on every assignment, which made styling most of the time
    spent writing a large workbook; the style of the first cell is copied to the others instead."""
    styles = cell.parent.parent.__dict__.setdefault("_ipr_alignment", {})
    if wrap in styles:
        cell._style = copy(styles[wrap])
    else:
        cell.alignment = WRAP if wrap else TOP
        styles[wrap] = copy(cell._style)


def write_table(ws: Worksheet, header: Sequence[str], rows: Iterable[Sequence],
                widths: dict[str, float] | None = None, wrap: Sequence[str] = (), start_row: int = 1) -> int:
    """Write a header and rows; returns the last row written.  ``widths`` by header name (characters)."""
    widths = widths or {}
    for c, name in enumerate(header, 1):
        cell = set_cell(ws, start_row, c, name)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    wrap_cols = {header.index(w) + 1 for w in wrap if w in header}
    r = start_row
    for r, row in enumerate(rows, start_row + 1):
        for c, value in enumerate(row, 1):
            set_cell(ws, r, c, value, wrap=c in wrap_cols)
    for c, name in enumerate(header, 1):
        ws.column_dimensions[get_column_letter(c)].width = widths.get(name, max(10, min(40, len(name) + 4)))
    ws.freeze_panes = ws.cell(row=start_row + 1, column=1)
    if r > start_row:
        ws.auto_filter.ref = f"A{start_row}:{get_column_letter(len(header))}{r}"
    return r


def row_height(texts: Iterable[str | None], widths: Iterable[float], line_pt: float = 15.0,
               most: int = 12) -> float:
    """A row height that shows wrapped text without a wall of blank space (Excel does not fit it on its own)."""
    lines = 1
    for text, width in zip(texts, widths, strict=False):
        if not text:
            continue
        per_line = max(int(width * 1.1), 1)
        n = sum(max(1, math.ceil(len(part) / per_line)) for part in str(text).split("\n"))
        lines = max(lines, n)
    return min(lines, most) * line_pt
