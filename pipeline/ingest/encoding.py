"""Decode a text-based transcript, whatever tool wrote it.

Transcripts come from Word's "Save as text" (UTF-16 with a byte-order mark), Excel's CSV (cp1252), Macs and
web services (UTF-8, with or without a BOM), and old tools that end lines with CR.  Every text-based reader
decodes through :func:`read_text`, so that all forms agree on characters and line ends.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from pipeline.errors import problem
from pipeline.study import TRANSCRIPT_EXTENSIONS

_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SNIFF = 4096
_CONTROL = {chr(c) for c in range(32)} - set("\t\n\r\f\v")


def guess_encoding(data: bytes) -> str:
    """The codec of ``data``: a byte-order mark, else UTF-16 by its NUL bytes, else UTF-8, else cp1252."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec
    head = data[:_SNIFF]
    if len(head) >= 4 and head.count(0) >= len(head) // 4:
        # ASCII text in UTF-16 has a NUL in every other byte: after the letter (LE) or before it (BE).
        odd, even = head[1::2].count(0), head[0::2].count(0)
        if odd != even:
            return "utf-16-le" if odd > even else "utf-16-be"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def decode(data: bytes, path: Path | str) -> str:
    """``data`` as text with ``\\n`` line ends; an InputError for an empty or binary file."""
    codec = guess_encoding(data)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        if codec != "cp1252":
            raise problem(
                path, f"the file is not valid {codec.upper()} text (it may be damaged or not a text file)",
                hint="open it in a text editor and save it again as UTF-8",
            ) from None
        text = data.decode("latin-1")  # the five bytes cp1252 leaves undefined
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    if not text.strip():
        raise problem(path, "the file is empty", hint="export the transcript again, or remove the file")
    sample = text[:_SNIFF]
    if "\x00" in sample or sum(ch in _CONTROL for ch in sample) > len(sample) // 100 + 1:
        raise problem(
            path, "the file is not text (it holds binary data)",
            hint=f"export the transcript as one of {', '.join(TRANSCRIPT_EXTENSIONS)}",
        )
    return text


def read_text(path: Path) -> str:
    """The decoded text of the file at ``path`` (see :func:`decode`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise problem(path, f"the file cannot be read ({exc.strerror or exc})",
                      hint="check that it exists and that you may read it") from None
    return decode(data, path)
