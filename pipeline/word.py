"""Word tables that read well: widths measured to fit, headers that repeat on every page, rows that do not
split, long tables cut with a note, and the handful of python-docx gaps (element order, borders, shading)
filled in.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from copy import deepcopy
from pathlib import Path

import pandas as pd
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from .files import XML_UNSAFE, atomic_path

# Per table: columns that only the spreadsheet shows, and the longest text a docx cell shows.
DOCX_HIDDEN = {
    "Transcripts": ["transcript_id"],
    "Codes by code": ["family"],
    "Rupture sequences": ["rupture codes", "resolution codes", "rupture_turn_id", "repair_turn_id",
                          "rupture at (s)", "time to repair (s)"],
    "Ruptures per 5 minutes": ["from (s)"],
    "Inputs": ["transcript_id"],
    "Both sides": ["client recall", "client codes", "therapist recall", "therapist codes", "session excerpt",
                   "client segment", "therapist segment", "client codes by", "therapist codes by"],
}
DOCX_CUT = {"Rupture sequences": 140}
# Per table: leading columns whose repeated values the docx shows once per block, as tables in papers do.
DOCX_GROUPED = {"Codes by role": ["coded by"], "Codes by case and session": ["coded by", "case"],
                "Repair summary": ["coded by"], "Rupture sequences": ["coded by", "case", "session"],
                "Ruptures per 5 minutes": ["coded by", "case", "session"]}
DOCX_CELL_LIMIT = 600
DOCX_MAX_ROWS = 250
DOCX_MAX_MOMENTS = 40  # a longer table shows its first rows, and says where the rest is
# Tables whose docx shows the code's name and ID in one column ``code`` (name above ID), to save width.
DOCX_COMBINED = {"Agreement", "Suggestions vs coders"}
NUMERIC_TEXT = re.compile(r"^-?(\d+(\.\d+)?%?|\d+:\d\d:\d\d)$")


def cell_text(value, limit: int = DOCX_CELL_LIMIT) -> str:
    """A value as a docx cell shows it: empty for missing, long text cut with an ellipsis."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def docx_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The columns the docx shows: without the spreadsheet-only ones, with name and ID in one column where the
    table is in ``DOCX_COMBINED``."""
    df = df.drop(columns=[c for c in DOCX_HIDDEN.get(name, []) if c in df.columns])
    if name in DOCX_COMBINED and {"code_id", "name"} <= set(df.columns):
        code = [f"{n}\n{c}" if isinstance(n, str) and n else c for c, n in zip(df["code_id"], df["name"],
                                                                               strict=True)]
        at = list(df.columns).index("code_id")
        df = df.drop(columns=["code_id", "name"])
        df.insert(at, "code", code)
    return df


def docx_cells(df: pd.DataFrame, name: str) -> list[list[str]]:
    """The cells of a table as the docx shows them: spreadsheet-only columns dropped, long texts cut, repeats of
    the grouping columns blanked (a value shows when it or a grouping column before it changes)."""
    df = docx_frame(df, name)
    cut = DOCX_CUT.get(name, DOCX_CELL_LIMIT)
    groups = [list(df.columns).index(c) for c in DOCX_GROUPED.get(name, []) if c in df.columns]
    rows, prev = [], None
    for row in _rows(df):
        cells = [cell_text(v, cut) for v in row]
        shown = list(cells)
        if prev is not None:
            for i in groups:
                if cells[: i + 1] == prev[: i + 1]:
                    shown[i] = ""
                else:
                    break
        rows.append(shown)
        prev = cells
    return [list(map(str, df.columns))] + rows


def _rows(df: pd.DataFrame):
    """The rows of ``df`` as tuples of Python values, converted a column at a time (``itertuples`` converts
    every arrow-backed value on its own)."""
    if not len(df.columns):
        return iter([()] * len(df))
    return zip(*(df.iloc[:, i].tolist() for i in range(len(df.columns))), strict=True)



# --- the Word document --------------------------------------------------------------------------------------

HEADER_FILL = "DCE6F0"
BORDER = "A6A6A6"
TEXT_CM_PORTRAIT = 17.0
TEXT_CM_LANDSCAPE = 25.7


TBL_PR_ORDER = ["tblStyle", "tblpPr", "tblOverlap", "bidiVisual", "tblStyleRowBandSize", "tblStyleColBandSize",
                "tblW", "jc", "tblCellSpacing", "tblInd", "tblBorders", "shd", "tblLayout", "tblCellMar",
                "tblLook", "tblCaption", "tblDescription"]
TC_PR_ORDER = ["cnfStyle", "tcW", "gridSpan", "hMerge", "vMerge", "tcBorders", "shd", "noWrap", "tcMar",
               "textDirection", "tcFitText", "vAlign", "hideMark"]


def _put(parent, el, order: list[str]) -> None:
    """Insert ``el`` into ``parent`` where the schema wants it (Word refuses elements out of order), replacing
    an element of the same name."""
    name = el.tag.split("}")[1]
    old = parent.find(qn(f"w:{name}"))
    if old is not None:
        parent.replace(old, el)
        return
    later = set(order[order.index(name) + 1:])
    for i, child in enumerate(parent):
        if child.tag.split("}")[1] in later:
            parent.insert(i, el)
            return
    parent.append(el)


def shade(cell, fill: str) -> None:
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    _put(cell._tc.get_or_add_tcPr(), shd, TC_PR_ORDER)


def borders(table) -> None:
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "single")
        el.set(qn("w:sz"), "4")
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), BORDER)
        borders.append(el)
    _put(tbl_pr, borders, TBL_PR_ORDER)


def repeat_header(row) -> None:
    """The row is repeated at the top of every page the table runs onto (written as Word writes it, as
    ``rows_xml`` does)."""
    row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))


@functools.cache
def _font(face: str):
    """DejaVu Sans (matplotlib's own font, always there): as wide as any sans font Word or LibreOffice will use
    for Calibri, so a column measured with it is wide enough everywhere.  Found where matplotlib keeps its data
    (``matplotlib.get_data_path()``) without importing matplotlib, which a report with no figure to draw does
    not otherwise need."""
    from importlib.util import find_spec

    from PIL import ImageFont

    file = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}[face]
    data = Path(find_spec("matplotlib").origin).with_name("mpl-data")
    return ImageFont.truetype(str(data / "fonts" / "ttf" / file), 100)


@functools.lru_cache(maxsize=200_000)
def text_cm(text: str, font_pt: float, face: str = "regular") -> float:
    """The width of ``text`` on the page, in cm."""
    return _font(face).getlength(text) * font_pt / 100 * 2.54 / 72


def set_widths(table, widths_cm: list[float]) -> None:
    """Widths that both Word (cell widths) and LibreOffice (the table grid) follow."""
    grid = table._tbl.tblGrid
    for col, w in zip(grid.findall(qn("w:gridCol")), widths_cm, strict=True):
        col.set(qn("w:w"), str(int(Cm(w).twips)))
    for row in table.rows:
        for cell, w in zip(row.cells, widths_cm, strict=True):
            cell.width = Cm(w)
    tbl_w = OxmlElement("w:tblW")
    tbl_w.set(qn("w:type"), "dxa")
    tbl_w.set(qn("w:w"), str(int(Cm(sum(widths_cm)).twips)))
    _put(table._tbl.tblPr, tbl_w, TBL_PR_ORDER)
    table.autofit = False


_RUN_BREAKS = re.compile(r"([\t\r\n])")


def _add_text(r, text: str) -> None:
    """``run.text = text`` into a ``<w:r>`` element (see :func:`_text_xml`)."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    for element in parse_xml(f"<w:r {nsdecls('w')}>{_text_xml(text)}</w:r>"):
        r.append(element)


def _run_xml(text: str, bold: bool | None = None, italic: bool | None = None, size: float | None = None,
             color: str | None = None) -> str:
    """One ``<w:r>`` as python-docx writes it for ``run.bold``, ``run.italic``, ``run.font.size``,
    ``run.font.color.rgb`` and ``run.text`` (the properties in the schema's order; characters XML cannot hold are
    dropped); no run for no text."""
    if not text:
        return ""
    props = ""
    for on, tag in ((bold, "b"), (italic, "i")):
        if on is not None:
            props += f"<w:{tag}/>" if on else f'<w:{tag} w:val="0"/>'
    if color:
        props += f'<w:color w:val="{color.upper()}"/>'
    if size:
        props += f'<w:sz w:val="{round(size * 2)}"/>'
    return f"<w:r>{f'<w:rPr>{props}</w:rPr>' if props else ''}{_text_xml(text)}</w:r>"


def _text_xml(text: str) -> str:
    """A run's text as python-docx writes ``run.text`` (a tab as ``<w:tab/>``, a line break as ``<w:br/>``, the
    rest in ``<w:t>``, characters XML cannot hold dropped), made as XML text: python-docx walks the text one
    character at a time, which made long texts a large part of writing the report."""
    from xml.sax.saxutils import escape

    inner = []
    for part in _RUN_BREAKS.split(XML_UNSAFE.sub("", text)):
        if part == "\t":
            inner.append("<w:tab/>")
        elif part in ("\r", "\n"):
            inner.append("<w:br/>")
        elif part:
            space = ' xml:space="preserve"' if len(part.strip()) < len(part) else ""
            inner.append(f"<w:t{space}>{escape(part)}</w:t>")
    return "".join(inner)


def add_runs(p, runs: list[tuple[str, dict]]) -> None:
    """Append runs of ``(text, {bold, italic, size, color})`` to paragraph ``p``, made as XML text and parsed in
    one go: setting each property through python-docx searches the run's properties for where it goes, and the
    exemplars' runs alone took a tenth of a second that way."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    xml = "".join(_run_xml(text, **style) for text, style in runs)
    if xml:
        for r in parse_xml(f"<w:p {nsdecls('w')}>{xml}</w:p>"):
            p._p.append(r)


def rows_xml(table, cells: list[list[str]], widths_cm: list[float], styles: list[str], numeric: list[bool],
             header_style: str) -> None:
    """Append the header row (shaded, repeated on every page) and the body rows (never split across pages) to
    ``table``, as XML in one go: python-docx's cell by cell API takes minutes for a long table."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    tw = [int(Cm(w).twips) for w in widths_cm]
    parts = []
    for k, values in enumerate(cells):
        head = k == 0
        tr = ['<w:tr><w:trPr><w:cantSplit/>' + ('<w:tblHeader/>' if head else "") + "</w:trPr>"]
        for i, text in enumerate(values):
            shade = f'<w:shd w:val="clear" w:color="auto" w:fill="{HEADER_FILL}"/>' if head else ""
            jc = '<w:jc w:val="right"/>' if numeric[i] else ""
            style = header_style if head else styles[i]
            tr.append(f'<w:tc><w:tcPr><w:tcW w:w="{tw[i]}" w:type="dxa"/>{shade}</w:tcPr>'
                      f'<w:p><w:pPr><w:pStyle w:val="{style}"/>{jc}</w:pPr>{_run_xml(text)}</w:p></w:tc>')
        tr.append("</w:tr>")
        parts.append("".join(tr))
    body = parse_xml(f"<w:tbl {nsdecls('w')}>{''.join(parts)}</w:tbl>")
    for tr in list(body):
        table._tbl.append(tr)


def _is_number(series: pd.Series) -> bool:
    """Numbers, and texts that are numbers, percentages or times: right-aligned."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    texts = [str(v) for v in series.tolist() if isinstance(v, str) and v]
    return bool(texts) and all(NUMERIC_TEXT.match(t) for t in texts) and len(texts) == series.notna().sum()


class WordDoc:
    """The document being written, with numbered table and figure captions."""

    def __init__(self):
        self.doc = Document()
        self.n_table = 0
        self.n_figure = 0
        self.landscape = False
        self._style_ids: dict[str, str | None] = {}  # paragraph style name -> its ID (None: the default style)
        self._pictures: list[tuple] = []  # the figures to place when the document is saved
        self._tables: dict[tuple, object] = {}  # the tables that copy_table copies, by key and page width
        styles = self.doc.styles
        normal = styles["Normal"]
        normal.font.name = "Calibri"
        normal.font.size = Pt(10)
        normal.paragraph_format.space_after = Pt(4)
        for name, size in (("Heading 1", 15), ("Heading 2", 12), ("Heading 3", 10.5)):
            styles[name].font.size = Pt(size)
            styles[name].paragraph_format.keep_with_next = True
        cap = styles["Caption"]
        cap.font.size = Pt(9)
        cap.font.italic = False
        cap.font.bold = True
        cap.font.color.rgb = RGBColor(0x1F, 0x3A, 0x5F)
        cap.paragraph_format.keep_with_next = True
        cap.paragraph_format.space_before = Pt(6)
        section = self.doc.sections[0]
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Cm(2.0))
        section.top_margin = section.bottom_margin = Cm(2.0)
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        footer = section.footer.paragraphs[0]
        footer.text = "IPR study summary: generated by ipr-pipeline; every table is also in reports/tables.xlsx"
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for run in footer.runs:
            run.font.size = Pt(7)
            run.font.color.rgb = RGBColor(0x80, 0x80, 0x80)

    @property
    def width_cm(self) -> float:
        return TEXT_CM_LANDSCAPE if self.landscape else TEXT_CM_PORTRAIT

    def orientation(self, landscape: bool) -> None:
        if landscape == self.landscape:
            return
        from docx.enum.section import WD_SECTION

        section = self.doc.add_section(WD_SECTION.NEW_PAGE)
        section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
        long, short = Cm(29.7), Cm(21.0)
        section.page_width, section.page_height = (long, short) if landscape else (short, long)
        self.landscape = landscape

    def paragraph(self, text: str = "", style: str | None = None):
        """``doc.add_paragraph(text, style)``, with each style's ID looked up once: python-docx finds a style by
        its name with an XPath search of every style, for every paragraph."""
        p = self.doc.add_paragraph()
        add_runs(p, [(text, {})])
        if style is not None:
            if style not in self._style_ids:
                self._style_ids[style] = self.doc.part.get_style_id(style, WD_STYLE_TYPE.PARAGRAPH)
            p._p.style = self._style_ids[style]
        return p

    def heading(self, text: str, level: int = 1):
        return self.paragraph(text, "Title" if level == 0 else f"Heading {level}")

    def para(self, text: str = "", style: str | None = None, italic: bool = False, size: float | None = None,
             color: str | None = None, bold: bool = False):
        p = self.paragraph(style=style)
        add_runs(p, [(text, {"bold": bold, "italic": italic, "size": size, "color": color})])
        return p

    def bullet(self, text: str):
        return self.paragraph(text, "List Bullet")

    def caption(self, text: str, kind: str = "Table"):
        if kind == "Table":
            self.n_table += 1
            n = self.n_table
        else:
            self.n_figure += 1
            n = self.n_figure
        return self.paragraph(f"{kind} {n}. {text}", "Caption")

    def table(self, name: str, df: pd.DataFrame, caption: str, font_pt: float = 8.5,
              widths: dict[str, float] | None = None, cut: int | None = None, mono: tuple[str, ...] = ()):
        """A captioned table: ``Table N. caption``; the table's own name is kept in the caption for tests and
        for finding its sheet in tables.xlsx."""
        if df.empty:  # the text around it says why there is nothing
            return None
        total = len(df)
        df = df.iloc[:DOCX_MAX_ROWS]  # (a longer table: its first rows, and where the rest is)
        cells = docx_cells(df, name)
        df = docx_frame(df, name)
        cut = cut or DOCX_CUT.get(name, DOCX_CELL_LIMIT)
        numeric = [_is_number(df[c]) for c in df.columns]
        col_cm, font_pt = self._fit(df, widths or {}, cut, font_pt, mono, numeric)
        turned = False
        if col_cm is None:  # too wide for a portrait page even in a small font: a landscape page of its own
            self.orientation(True)
            turned = True
            col_cm, font_pt = self._fit(df, widths or {}, cut, font_pt, mono, numeric, last=True)
        self.caption(f"{caption} [sheet: {name}]")
        table = self.doc.add_table(rows=0, cols=len(df.columns))
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        borders(table)
        set_widths(table, col_cm)
        text_style = self._style("Table Text", font_pt)
        styles = [self._style("Table Mono", font_pt) if c in mono else text_style for c in df.columns]
        rows_xml(table, cells, col_cm, styles, numeric, self._style("Table Header", font_pt))
        if total > DOCX_MAX_ROWS:
            self.para(f"The first {DOCX_MAX_ROWS:,} of {total:,} rows; all of them are in the sheet '{name[:31]}' of "
                      "reports/tables.xlsx.", size=8.5, color="595959")
        self.doc.add_paragraph()
        if turned:
            self.orientation(False)
        return table

    def copy_table(self, key: tuple, make, texts: list[str]):
        """A table like the one ``make()`` builds with python-docx (empty cells, each with one run), with
        ``texts`` in its cells (row by row).  The table is built once per ``key`` and page width and then
        copied: building many small tables cell by cell with python-docx cost more than the rest of their
        section."""
        from docx.table import Table

        key = (*key, self.width_cm)
        if key not in self._tables:
            made = make()._tbl
            made.getparent().remove(made)
            self._tables[key] = made
        tbl = deepcopy(self._tables[key])
        for tc, text in zip(tbl.iter(qn("w:tc")), texts, strict=True):
            _add_text(tc.find(qn("w:p")).find(qn("w:r")), text)
        self.doc.element.body._insert_tbl(tbl)
        return Table(tbl, self.doc._body)

    def _style(self, kind: str, size: float) -> str:
        """The style ID of a paragraph style for table cells (made once per kind and size): a run-free way to
        give thousands of cells their font, which keeps a long report fast to write."""
        name = f"{kind} {size:g}"
        styles = self.doc.styles
        if name not in self._style_ids:
            st = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
            st.base_style = styles["Normal"]
            st.font.size = Pt(size)
            st.font.bold = kind == "Table Header"
            if kind == "Table Mono":
                st.font.name = "Courier New"
            st.paragraph_format.space_after = Pt(0)
            st.paragraph_format.space_before = Pt(0)
            self._style_ids[name] = st.style_id
        return self._style_ids[name]

    def fits_portrait(self, df: pd.DataFrame, name: str, font_pt: float = 8.5) -> bool:
        """Whether a table fits a portrait page (a section with it can then stay portrait)."""
        was, self.landscape = self.landscape, False
        try:
            frame = docx_frame(df.iloc[:DOCX_MAX_ROWS], name)  # the rows it shows
            numeric = [_is_number(frame[c]) for c in frame.columns]
            return self._fit(frame, {}, DOCX_CUT.get(name, DOCX_CELL_LIMIT), font_pt, (), numeric)[0] is not None
        finally:
            self.landscape = was

    def _fit(self, df, fixed, cut, font_pt, mono, numeric, last: bool = False):
        """Widths and font size: a smaller font before words break; None when the table does not fit this page
        (unless ``last``, or the page is landscape already: then the smallest font, with words broken)."""
        for pt in (font_pt, font_pt - 0.5, font_pt - 1.0, font_pt - 1.5):
            col_cm, fits = self._widths(df, fixed, cut, pt, mono, numeric)
            if fits:
                return col_cm, pt
        if last or self.landscape or len(df.columns) <= 2:
            return col_cm, pt
        return None, font_pt

    def _widths(self, df: pd.DataFrame, fixed: dict[str, float], cut: int, font_pt: float,
                mono: tuple[str, ...] = (), numeric: list[bool] | None = None) -> tuple[list[float], bool]:
        """Column widths in cm, and whether every column gets its longest word: no column narrower than its
        longest word where that fits (so IDs, times and headers do not break mid-word), the rest shared by how much
        text each column holds."""
        pad = 0.45  # the cell's margins, and a little air
        least, want = [], []
        numeric = numeric or [False] * len(df.columns)
        for c, is_number in zip(df.columns, numeric, strict=True):
            face = "mono" if c in mono else "regular"
            texts = [cell_text(v, cut) for v in df[c].tolist()]
            words = {w for t in texts for w in t.split()}
            longest_word = max([text_cm(w, font_pt, "bold") for w in str(c).split()]
                               + [text_cm(w[:45], font_pt, face) for w in words] + [0.0])
            lines = {line[:70] for t in texts for line in t.splitlines()}
            longest = max([text_cm(str(c), font_pt, "bold")] + [text_cm(x, font_pt, face) for x in lines])
            least.append(fixed.get(c, max(1.0, longest_word + pad)))
            # numbers need no more than their longest word: their headers may wrap
            want.append(least[-1] if is_number else fixed.get(c, max(least[-1], longest + pad)))
        room = self.width_cm
        if sum(want) <= room:
            return want, True
        if sum(least) >= room:
            return [w * room / sum(least) for w in least], False
        extra = room - sum(least)
        slack = [w - m for w, m in zip(want, least, strict=True)]
        return [m + extra * x / sum(slack) for m, x in zip(least, slack, strict=True)], True

    def figure(self, path: Path, caption: str, width_cm: float | None = None, max_height_cm: float = 21.0):
        """A centred figure with its caption.  The PNG is read when the document is saved, so that a figure can
        still be being drawn (in another process) while the rest of the document is written."""
        p = self.doc.add_paragraph()  # as Document.add_picture does, keeping the paragraph (doc.paragraphs
        p.add_run()  # lists every paragraph of the document)
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.keep_with_next = True
        self._pictures.append((p.runs[0], Path(path), width_cm or min(16.0, self.width_cm), max_height_cm))
        self.caption(caption, "Figure")

    def _place_pictures(self) -> None:
        """Put each figure's PNG into its paragraph, in document order, as ``run.add_picture`` does, but with the
        shape IDs and image parts counted here: for every picture, python-docx searches the whole document for
        the next free shape ID, and hashes every image already added to find a copy of it (a study with 300
        sessions spent seconds doing that)."""
        from docx.image.image import Image
        from docx.opc.constants import RELATIONSHIP_TYPE
        from docx.opc.packuri import PackURI
        from docx.oxml.shape import CT_Inline
        from docx.parts.image import ImagePart

        part = self.doc.part
        shape_id = part.next_id
        images = part.package.image_parts
        used = {image_part.partname.idx for image_part in images}
        rel_ids: dict[str, str] = {}  # by the image's SHA-1: the same picture twice is stored once
        number = 0
        for run, path, width, max_height_cm in self._pictures:
            image = Image.from_file(str(path))
            sha1 = image.sha1
            if sha1 not in rel_ids:
                number = next(n for n in range(number + 1, number + len(used) + 2) if n not in used)
                image_part = ImagePart.from_image(image, PackURI(f"/word/media/image{number}.{image.ext}"))
                images.append(image_part)
                rel_ids[sha1] = part.relate_to(image_part, RELATIONSHIP_TYPE.IMAGE)
            aspect = image.px_height / image.px_width
            if width * aspect > max_height_cm:  # a tall figure keeps to a page, with its caption
                width = max_height_cm / aspect
            cx, cy = image.scaled_dimensions(Cm(width), None)
            run._r.add_drawing(CT_Inline.new_pic_inline(shape_id, rel_ids[sha1], image.filename, cx, cy))
            shape_id += 1
        self._pictures = []

    def save(self, path: Path) -> None:
        self._place_pictures()
        with atomic_path(path) as tmp, _pictures_stored():
            self.doc.save(tmp)


@contextlib.contextmanager
def _pictures_stored():
    """python-docx deflates every part of the package, the pictures too: a PNG is compressed already, and
    compressing it again was half the time of saving a report with its figures (the file gets a tenth larger).
    While the ``with`` block runs, python-docx's package writer stores the pictures as they are."""
    from zipfile import ZIP_DEFLATED, ZIP_STORED, ZipFile

    from docx.opc import pkgwriter

    class Writer:  # the protocol of python-docx's PhysPkgWriter: write(uri, blob), close()
        def __init__(self, pkg_file):
            self.zip = ZipFile(pkg_file, "w", ZIP_DEFLATED)

        def write(self, uri, blob) -> None:
            stored = uri.membername.startswith("word/media/")
            self.zip.writestr(uri.membername, blob, ZIP_STORED if stored else ZIP_DEFLATED)

        def close(self) -> None:
            self.zip.close()

    real = pkgwriter.PhysPkgWriter
    pkgwriter.PhysPkgWriter = Writer
    try:
        yield
    finally:
        pkgwriter.PhysPkgWriter = real


def bold_evidence(p, text: str, evidence: str, size: float | None = None, italic: bool = False) -> None:
    """``text`` into paragraph ``p``, with the first occurrence of ``evidence`` in bold."""
    at = text.lower().find(evidence.lower()) if evidence else -1
    parts = [(text, False)] if at < 0 else [(text[:at], False), (text[at: at + len(evidence)], True),
                                           (text[at + len(evidence):], False)]
    add_runs(p, [(chunk, {"bold": bold, "italic": italic, "size": size}) for chunk, bold in parts])


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


