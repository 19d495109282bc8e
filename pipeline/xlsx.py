"""Spreadsheet cells that are safe and readable, for every workbook the pipeline writes.

Safe: text is always text (a transcript line that begins with ``=`` must never become a formula), and no cell
exceeds Excel's limit.  Readable: bold frozen header, filters, wrapped text, widths that fit the content.

``write_table`` writes a table into an ordinary worksheet; ``stream_table`` writes the same table into a write-only
one (``Workbook(write_only=True)``), several times faster, for the many workbooks of an export; such a workbook
is saved with ``save``.
"""

from __future__ import annotations

import datetime
import functools
import io
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from copy import copy
from pathlib import Path

from openpyxl.cell import WriteOnlyCell
from openpyxl.compat import safe_string
from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.dimensions import SheetDimension
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import tostring

from .files import atomic_path

EXCEL_CELL_LIMIT = 32767  # characters as Excel counts them: UTF-16 code units
CUT_NOTE = " […cut: the full text is longer than a spreadsheet cell holds]"
# Control characters that XML 1.0 (and so .xlsx) cannot hold; Word's vertical tab (manual line break) and
# form feed become a line break, the rest a space.
_BREAKS = re.compile(r"[\x0b\x0c]")
_ILLEGAL = re.compile(r"[\x00-\x08\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")
HEADER_FONT = Font(bold=True)
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")
WRAP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")


def cell_value(value):
    """A value as it should stand in a cell: None for missing, text cut to Excel's limit with a visible note."""
    if type(value) is str:  # most cells: the checks below are for other values
        return _cell_text(value)
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    return _cell_text(value) if isinstance(value, str) else value


def _cell_text(text: str) -> str:
    text = _ILLEGAL.sub(" ", _BREAKS.sub("\n", text))
    if len(text) * 2 > EXCEL_CELL_LIMIT and _excel_len(text) > EXCEL_CELL_LIMIT:  # counting costs
        text = _cut(text, EXCEL_CELL_LIMIT - _excel_len(CUT_NOTE)) + CUT_NOTE
    return text


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
    for c, name in enumerate(header, 1):
        cell = set_cell(ws, start_row, c, name)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = HEADER_ALIGNMENT
    wrap_cols = _wrapped_columns(header, wrap)
    r = start_row
    for r, row in enumerate(rows, start_row + 1):
        for c, value in enumerate(row, 1):
            set_cell(ws, r, c, value, wrap=c in wrap_cols)
    _set_widths(ws, header, widths)
    ws.freeze_panes = ws.cell(row=start_row + 1, column=1)
    _set_filter(ws, header, start_row, r)
    return r


def stream_table(ws, header: Sequence[str], rows: Sequence[Sequence], widths: dict[str, float] | None = None,
                 wrap: Sequence[str] = (), heights: Sequence[float] | None = None,
                 fills: dict[str, PatternFill] | None = None, repeated: bool = False) -> int:
    """``write_table`` (at row 1) for a write-only worksheet: the same cells, styles, widths, frozen header and
    filter.  Returns the last row written.

    The sheet's top (its properties, frozen pane, columns) is written here, with the rows: set anything else of
    it (hidden columns, fit to page) before.  ``heights``: one per row; ``fills``: header name -> the header
    cell's fill, instead of the header's blue; ``repeated``: see ``write_rows``."""
    fills = fills or {}
    _set_widths(ws, header, widths)
    ws.freeze_panes = "A2"
    made: dict[tuple, str] = {}

    def style(font=None, fill=None, alignment=None) -> str:
        """Each style made once, in the order of the cells: the ids openpyxl gives them writing cell by cell."""
        key = (id(font), id(fill), id(alignment))  # the objects live through the call: quicker than their hash
        if key not in made:
            made[key] = cell_style(ws, font, fill, alignment)
        return made[key]

    heads = [style(HEADER_FONT, fills.get(name, HEADER_FILL), HEADER_ALIGNMENT) for name in header]
    wrap_cols = _wrapped_columns(header, wrap)
    width = max([len(header)] + [len(row) for row in rows])
    body = [style(alignment=WRAP if c in wrap_cols else TOP) for c in range(1, width + 1)]
    heights = heights if heights is not None else [None] * len(rows)
    table = [(header, heads, None)] + [(row, body, h) for row, h in zip(rows, heights, strict=True)]
    write_rows(ws, table, repeated)
    last = len(rows) + 1
    _set_filter(ws, header, 1, last)
    return last


def stream_lines(ws, lines: Sequence[str], styles: Sequence[str]) -> None:
    """Lines of text down column A of a write-only worksheet, line i in ``styles[i]`` (the last style for the
    rest)."""
    write_rows(ws, [([line], [styles[min(i, len(styles) - 1)]], None) for i, line in enumerate(lines)])


def cell_style(ws, font: Font | None = None, fill: PatternFill | None = None,
               alignment: Alignment | None = None) -> str:
    """The id of a cell style (a cell's ``s``) in ``ws``'s workbook, made once for all the cells that have it:
    openpyxl looks a font, fill or alignment up in the workbook's tables on every assignment to a cell."""
    cell = WriteOnlyCell(ws)
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if alignment is not None:
        cell.alignment = alignment
    return str(cell.style_id)


def write_rows(ws, rows: Sequence[tuple[Sequence, Sequence[str], float | None]], repeated: bool = False) -> None:
    """Every row of a write-only worksheet: (values, the style id of each value, height or None) from row 1.
    Values: text, numbers, booleans or None, made safe by ``cell_value`` (dates are not written here).

    openpyxl writes a cell as a handful of XML elements, one call at a time, which made writing cells most of the
    time an export spent on its hundreds of workbooks: the rows are written here as XML text instead, for
    openpyxl to put between the sheet's top and tail.  ``repeated``: the same rows come again and again (the
    Codebook sheet of every workbook), so their text is kept and made once."""
    if repeated:
        data, size = _kept_sheet_data(tuple((tuple(values), tuple(styles), h) for values, styles, h in rows))
    else:
        data, size = _sheet_data(rows)
    ws._writer = _SheetWriter(ws, data, size)
    ws._writer.write_top()


def _sheet_data(rows: Sequence[tuple[Sequence, Sequence[str], float | None]]) -> tuple[bytes, str]:
    """The rows as the XML of a sheet's ``sheetData``, and the sheet's size (``A1:M13``)."""
    columns = max([1] + [len(values) for values, _, _ in rows])
    letters = [get_column_letter(c) for c in range(1, columns + 1)]
    parts = ["<sheetData>"]
    for r, (values, styles, height) in enumerate(rows, 1):
        if len(styles) < len(values):
            raise ValueError(f"row {r}: {len(values)} values but {len(styles)} styles")
        parts.append(f'<row r="{r}" ht="{safe_string(height)}" customHeight="1">' if height else f'<row r="{r}">')
        for letter, value, style in zip(letters, values, styles, strict=False):
            parts.append(_cell_xml(f"{letter}{r}", cell_value(value), style))
        parts.append("</row>")
    parts.append("</sheetData>")
    data = "".join(parts).encode("ascii", "xmlcharrefreplace")  # as openpyxl writes: characters as references
    return data, f"A1:{letters[-1]}{max(len(rows), 1)}"


_kept_sheet_data = functools.lru_cache(maxsize=2)(_sheet_data)


def _cell_xml(ref: str, value, style: str) -> str:
    """A cell as openpyxl writes it (``lxml_write_cell``): text as an inline string, never a formula."""
    s = f' s="{style}"' if style != "0" else ""
    if value is None:
        return f'<c r="{ref}"{s} t="n"/>' if s else ""
    if isinstance(value, str):
        if not value:
            return f'<c r="{ref}"{s} t="inlineStr"/>'
        space = ' xml:space="preserve"' if value != value.strip() else ""
        return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{_escape(value)}</t></is></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}"{s} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"{s} t="n"><v>{safe_string(value)}</v></c>'
    raise TypeError(f"cell {ref}: {type(value).__name__} is not written here, only text and numbers")


def text_in_sheet(text: str) -> bytes:
    """A text cell's content as it stands in the sheet's XML, as ``write_rows`` writes it."""
    return _escape(cell_value(text)).encode("ascii", "xmlcharrefreplace")


def _escape(text: str) -> str:
    """Text as XML character data; a carriage return as a reference, as a parser would make it a line break."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


class _SheetWriter(WorksheetWriter):
    """openpyxl's writer of a write-only worksheet, given the sheet's rows as XML text (``write_rows``) and its
    size (a write-only sheet cannot count its cells).  The sheet is kept in memory, not in a temporary file
    (``save`` puts it into the workbook): an export writes hundreds of sheets, and creating and removing a
    temporary file for each cost more than writing its cells.

    It is set as the sheet's ``_writer``, which writes the sheet's top at once and the rows and the tail when the
    workbook is saved: the protocol of openpyxl 3.1's ``WorksheetWriter``, which tests/test_export_speed.py checks
    against ``write_table``."""

    def __init__(self, ws, sheet_data: bytes, size: str):
        self.sheet_data, self.size = sheet_data, size
        super().__init__(ws, out=io.BytesIO())

    def get_stream(self):
        """Receives the sheet's parts, as elements or as text, and writes them into the sheet's file."""
        out = self.out
        out.write(f'<worksheet xmlns="{SHEET_MAIN_NS}">'.encode())
        try:
            while True:
                part = yield
                if part is not None:
                    out.write(part if isinstance(part, bytes) else tostring(part))
        except GeneratorExit:
            out.write(b"</worksheet>")

    def write_dimensions(self):
        self.xf.send(SheetDimension(self.size).to_tree())

    def write_rows(self):
        self.xf.send(self.sheet_data)

    def cleanup(self):
        """Nothing to remove: the sheet was never a file."""


class _Writer(ExcelWriter):
    """openpyxl's writer of a workbook, which puts a sheet kept in memory (``_SheetWriter``) into the archive
    as it is; any other sheet it writes as openpyxl does."""

    def write_worksheet(self, ws):
        writer = getattr(ws, "_writer", None)
        if not isinstance(writer, _SheetWriter):
            return super().write_worksheet(ws)
        ws._drawing = SpreadsheetDrawing()
        ws._drawing.charts, ws._drawing.images = ws._charts, ws._images
        if not ws.closed:
            ws.close()
        ws._rels = writer._rels
        self._archive.writestr(ws.path[1:], writer.out.getvalue())
        self.manifest.append(ws)
        return None


# zlib's fastest level: compressing took a fifth of writing a coder's workbook at the default level (6), and
# level 1 makes the files about a fifth larger (a workbook of 24 KB becomes one of 29 KB).
COMPRESS_LEVEL = 1


def save(wb, path: Path) -> None:
    """Save a write-only workbook atomically (a temporary file beside ``path``, then a rename): what
    ``wb.save`` does, with the sheets written by ``write_rows`` taken from memory."""
    wb.properties.modified = datetime.datetime.now(tz=datetime.UTC).replace(tzinfo=None)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True,
                                                   compresslevel=COMPRESS_LEVEL) as archive:
        _Writer(wb, archive).write_data()


def _wrapped_columns(header: Sequence[str], wrap: Sequence[str]) -> set[int]:
    return {header.index(w) + 1 for w in wrap if w in header}


def _set_widths(ws, header: Sequence[str], widths: dict[str, float] | None) -> None:
    """Column widths by header name (characters); a column not named gets one that fits its name."""
    widths = widths or {}
    for c, name in enumerate(header, 1):
        ws.column_dimensions[get_column_letter(c)].width = widths.get(name, max(10, min(40, len(name) + 4)))


def _set_filter(ws, header: Sequence[str], header_row: int, last: int) -> None:
    if last > header_row:
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(len(header))}{last}"


def row_height(texts: Iterable[str | None], widths: Iterable[float], line_pt: float = 15.0,
               most: int = 12) -> float:
    """A row height that shows wrapped text without a wall of blank space (Excel does not fit it on its own)."""
    lines = 1
    for text, width in zip(texts, widths, strict=False):
        if not text:
            continue
        text = str(text)
        per_line = max(int(width * 1.1), 1)
        if len(text) <= per_line and "\n" not in text:  # one line (most cells: the quick answer)
            continue
        n = sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))
        lines = max(lines, n)
    return min(lines, most) * line_pt
