"""Word (.docx) transcripts: turns written as paragraphs, or as the rows of a table (and, through
:func:`read_document`, any word processor's document read into paragraphs and tables).

Paragraphs go through the same line layouts as plain text (``T: …``, ``[00:01:02] C: …``, Teams' ``Name  0:03``
with the text after a line break or in the next paragraph); a line break inside a paragraph starts a new line
with the same paragraph number.  Tables go through the table reader.  When both hold turns, the one with more
wins (a title table above paragraph turns, or a title paragraph above a table), with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed
from pipeline.ingest.tables import read_word_tables
from pipeline.ingest.text import no_labels, parse_lines


def _open(path: Path):
    """The document's body, as python-docx reads it: its paragraphs and tables, with python-docx's rules for
    their text and merged cells.

    Only the main document part is parsed.  ``docx.Document`` parses every part of the package first, and the
    style sheets of a Word file are hundreds of kilobytes: that took three times as long as reading the turns.
    """
    from zipfile import ZipFile

    # python-docx, imported here so that a study without Word files does not load it
    from docx.blkcntnr import BlockItemContainer
    from docx.oxml.ns import qn
    from docx.oxml.parser import parse_xml

    try:
        with ZipFile(path) as package:
            document = parse_xml(package.read(_main_part(package)))
        if document.tag != qn("w:document") or document.body is None:
            raise ValueError("its main part is not a Word document")
        return BlockItemContainer(document.body, None)
    except Exception as exc:  # zip, XML and package errors of a damaged file
        raise problem(path, f"the file is not a readable Word document ({type(exc).__name__}: {exc})",
                      hint="open it in Word and save it again as .docx (a .doc must be saved as .docx)") from None


def _main_part(package) -> str:
    """The name of the package's main part, from its relationships (``word/document.xml`` as Word names it)."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml.parser import parse_xml

    for rel in parse_xml(package.read("_rels/.rels")):
        if rel.get("Type") == RELATIONSHIP_TYPE.OFFICE_DOCUMENT:
            return rel.get("Target", "").lstrip("/")
    raise ValueError("the package names no main document")


def _rows(table) -> list[list[str]]:
    """The cells' text of each row; a merged cell counts once."""
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text)
        rows.append(cells)
    return rows


def read_docx(path: Path, stop_patterns: Sequence[str] = ()) -> Parsed:
    document = _open(path)
    return read_document(path, [p.text for p in document.paragraphs], [_rows(t) for t in document.tables],
                         stop_patterns)


def read_document(path: Path, paragraphs: list[str], tables: list[list[list[str]]],
                  stop_patterns: Sequence[str] = ()) -> Parsed:
    """The turns of a word processor's document (Word's, or LibreOffice's): its paragraphs (a line break starts
    a new line of the same paragraph) or its tables, whichever holds more."""
    lines = [(number, part) for number, text in enumerate(paragraphs, 1) for part in text.split("\n")]
    from_paragraphs = parse_lines(lines, path, stop_patterns, unit="paragraph")
    from_tables = read_word_tables(path, tables) if tables else Parsed()
    if not from_paragraphs.turns and not from_tables.turns:
        raise no_labels(path, unit="paragraph")
    if len(from_tables.turns) > len(from_paragraphs.turns):
        chosen, other, where = from_tables, from_paragraphs, "paragraphs"
    else:
        chosen, other, where = from_paragraphs, from_tables, "tables"
    if other.turns:
        chosen.warnings.append(f"{path}: the turns were read from the document's "
                               f"{'tables' if where == 'paragraphs' else 'paragraphs'}; "
                               f"{len(other.turns)} turn(s) found in its {where} were ignored.")
    return chosen
