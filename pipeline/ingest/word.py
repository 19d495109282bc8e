"""Word (.docx) transcripts: turns written as paragraphs, or as the rows of a table.

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
    import docx  # python-docx; imported here so that a study without Word files does not load it

    try:
        return docx.Document(str(path))
    except Exception as exc:  # python-docx raises zip, XML and package errors for a damaged file
        raise problem(path, f"the file is not a readable Word document ({type(exc).__name__}: {exc})",
                      hint="open it in Word and save it again as .docx (a .doc must be saved as .docx)") from None


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
    lines = [(number, part) for number, paragraph in enumerate(document.paragraphs, 1)
             for part in paragraph.text.split("\n")]
    from_paragraphs = parse_lines(lines, path, stop_patterns, unit="paragraph")
    from_tables = read_word_tables(path, [_rows(t) for t in document.tables]) if document.tables else Parsed()
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
