"""Rich Text Format (.rtf) transcripts, as transcription services and WordPad save them.

``striprtf`` turns the file into its text: a paragraph or line break a line, and each table row a line of cells
ended by ``|``.  The lines are then read as a Word document's paragraphs and tables.  The text is decoded with
the code page the file declares (``\\ansicpg1252``), as Word does.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed
from pipeline.ingest.word import read_document

_CODE_PAGE = re.compile(rb"\\ansicpg(\d+)")


def _encoding(head: bytes) -> str:
    found = _CODE_PAGE.search(head)
    if found:
        try:
            return codecs.lookup(f"cp{int(found.group(1))}").name
        except LookupError:
            pass
    return "cp1252"


def read_rtf(path: Path, stop_patterns: Sequence[str] = ()) -> Parsed:
    from striprtf.striprtf import rtf_to_text

    raw = path.read_bytes()
    if not raw.lstrip().startswith(b"{\\rtf"):
        raise problem(path, "the file is not in Rich Text Format (it does not begin with {\\rtf)",
                      hint="open it in Word or LibreOffice and save it as .docx")
    encoding = _encoding(raw[:4096])
    text = rtf_to_text(raw.decode(encoding, errors="replace"), encoding=encoding, errors="replace")
    paragraphs, tables, rows = [], [], []
    for line in text.split("\n"):
        if line.endswith("|"):  # a table row
            rows.append(line[:-1].split("|"))
            continue
        if rows:
            tables.append(rows)
            rows = []
        paragraphs.append(line)
    if rows:
        tables.append(rows)
    return read_document(path, paragraphs, tables, stop_patterns)
