"""ELAN (.eaf) transcripts through pympi-ling: one tier per speaker, the tier's name the speaker's label.

Only top-level tiers are turns (a dependent tier holds translations or codes of its parent's annotations).
Times come from the time slots, in milliseconds; turns are sorted by start.  A turn's line is the line of its
annotation in the XML, so that a problem can be found in a text editor.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed, Turn

_ANNOTATION_ID = re.compile(rb"<ALIGNABLE_ANNOTATION\b[^>]*?\bANNOTATION_ID=\"([^\"]+)\"")


def _annotation_lines(data: bytes) -> dict[str, int]:
    lines, line, last = {}, 1, 0
    for m in _ANNOTATION_ID.finditer(data):
        line += data.count(b"\n", last, m.start())
        last = m.start()
        lines[m.group(1).decode("utf-8", "replace")] = line
    return lines


def read_eaf(path: Path) -> Parsed:
    from pympi.Elan import Eaf

    try:
        data = Path(path).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eaf = Eaf(str(path), suppress_version_warning=True)
    except Exception as exc:  # pympi raises a bare Exception, KeyError or ParseError for a damaged file
        raise problem(path, f"the file is not a readable ELAN file ({type(exc).__name__}: {exc})",
                      hint="open it in ELAN and save it again") from None
    lines = _annotation_lines(data)
    slots = eaf.timeslots
    parsed = Parsed()
    for tier, (aligned, _refs, attributes, _order) in eaf.tiers.items():
        if "PARENT_REF" in attributes:
            continue
        for annotation_id, (begin, end, value, _svg) in aligned.items():
            text = " ".join((value or "").split())
            if not text:
                continue
            start, stop = slots.get(begin), slots.get(end)
            parsed.turns.append(Turn(
                speaker=tier.strip(), text=text,
                start_s=None if start is None else start / 1000,
                end_s=None if stop is None else stop / 1000,
                line=lines.get(annotation_id, 0),
            ))
    parsed.turns.sort(key=lambda t: (t.start_s is None, t.start_s or 0.0, t.line))
    return parsed
