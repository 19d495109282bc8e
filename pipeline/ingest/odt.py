"""LibreOffice and OpenOffice Writer (.odt) transcripts: read into paragraphs and tables, then as a Word document.

An .odt file is a zip whose ``content.xml`` holds the text; its paragraphs (in lists and sections too) and its
tables are read in the document's order, with ODF's rules for the text: ``<text:s text:c="3"/>`` is three
spaces, a tab is a tab, a line break starts a new line, footnotes and annotations are not the paragraph's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed
from pipeline.ingest.word import read_document

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_PARAGRAPHS = {f"{{{TEXT}}}p", f"{{{TEXT}}}h"}
_NOT_WORDS = {f"{{{TEXT}}}{tag}" for tag in ("note", "tracked-changes", "bookmark-ref")} | {
    f"{{{OFFICE}}}annotation"}
_CONTAINERS = {f"{{{TEXT}}}{tag}" for tag in ("list", "list-item", "list-header", "section")}
_ROW_GROUPS = {f"{{{TABLE}}}{tag}" for tag in ("table-header-rows", "table-rows", "table-row-group")}


def paragraph_text(element) -> str:
    """The words of a paragraph as a reader sees them."""
    parts = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == f"{{{TEXT}}}s":
            parts.append(" " * int(child.get(f"{{{TEXT}}}c", "1")))
        elif tag == f"{{{TEXT}}}tab":
            parts.append("\t")
        elif tag == f"{{{TEXT}}}line-break":
            parts.append("\n")
        elif tag not in _NOT_WORDS:
            parts.append(paragraph_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _rows(table) -> list[list[str]]:
    """The cells' text of each row; a cell covered by a merged one is not a cell of its own."""
    rows = []

    def walk(parent) -> None:
        for child in parent:
            if child.tag == f"{{{TABLE}}}table-row":
                cells = []
                for cell in child.iterchildren(f"{{{TABLE}}}table-cell"):
                    text = "\n".join(paragraph_text(p) for p in cell.iter(*_PARAGRAPHS))
                    cells += [text] * (int(cell.get(f"{{{TABLE}}}number-columns-repeated", "1")) if text else 1)
                rows.append(cells)
            elif child.tag in _ROW_GROUPS:
                walk(child)

    walk(table)
    return rows


def _body(path: Path):
    from zipfile import ZipFile

    from lxml import etree

    try:
        with ZipFile(path) as package:
            root = etree.fromstring(package.read("content.xml"), etree.XMLParser(resolve_entities=False))
        body = root.find(f"{{{OFFICE}}}body/{{{OFFICE}}}text")
        if body is None:
            raise ValueError("it holds no text document")
        return body
    except Exception as exc:  # zip and XML errors of a damaged or encrypted file
        raise problem(path, f"the file is not a readable OpenDocument text ({type(exc).__name__}: {exc})",
                      hint="open it in LibreOffice and save it again as .odt, or as .docx") from None


def read_odt(path: Path, stop_patterns: Sequence[str] = ()) -> Parsed:
    paragraphs, tables = [], []

    def walk(parent) -> None:
        for child in parent:
            if child.tag in _PARAGRAPHS:
                paragraphs.append(paragraph_text(child))
            elif child.tag == f"{{{TABLE}}}table":
                tables.append(_rows(child))
            elif child.tag in _CONTAINERS:
                walk(child)

    walk(_body(path))
    return read_document(path, paragraphs, tables, stop_patterns)
