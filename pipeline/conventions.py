"""Transcription conventions inside a turn's text.

Transcribers mark what is not words: ``[inaudible 00:12:31]``, ``[crosstalk]``, ``(laughs)``, pauses ``(.)`` and
``(2.0)``, an interruption ``--``, trailing off ``…``.  They stay in the turn's text as written (a quote must read
as transcribed); :func:`find_annotations` names them and gives their character spans, so that coding rules can
skip them as words and still ask for them ("a long pause before the client answers").
"""

from __future__ import annotations

import re

from pipeline.timecode import parse_time

_TAG = re.compile(
    r"\(\((?P<dpar>[^()\n]{1,80})\)\)"  # Jefferson's ((transcriber comment))
    r"|\[(?P<sq>[^\[\]\n]{1,80})\]"
    r"|\((?P<par>[^()\n]{1,80})\)"
    r"|(?P<dash>-{2,}|—(?=\s*$))"  # an interruption: "--", or a dash that ends the turn
    r"|(?P<dots>…|\.{3,})"
)

#: (name, what the inside of a bracket begins with or says).  The first that matches names the tag.
_KINDS = [
    ("inaudible", r"\b(?:inaud|unintelligible|indiscernible|incomprehensible)"),
    ("crosstalk", r"\b(?:cross-?\s?talk|overlap|talking over|simultaneous|both talking)"),
    ("laughs", r"\b(?:laugh|chuckl|giggl)"),
    ("sighs", r"\bsigh"),
    ("crying", r"\b(?:cry|cries|crying|cried|tear|sob)"),
    ("pause", r"\b(?:pause|silence|silent)\b|^\.+$|^\d+(?:\.\d+)?\s*(?:s|sec|secs|seconds?)?(?:\s+pause)?$"),
    ("unclear", r"\b(?:unclear|uncertain|unsure|\?+)|^\?+$"),
    ("coughs", r"\b(?:cough|clears? (?:his |her |their )?throat)"),
]
_KIND_RES = [(name, re.compile(rx, re.IGNORECASE)) for name, rx in _KINDS]


def _kind(inner: str) -> str | None:
    inner = inner.strip()
    for name, rx in _KIND_RES:
        if rx.search(inner):
            return name
    if parse_time(inner) is not None:
        return "timestamp"
    return None


def find_annotations(text: str) -> list[tuple[str, int, int]]:
    """The conventions in ``text`` as ``(name, start, end)`` character spans, in order.

    Names: inaudible, crosstalk, laughs, sighs, crying, pause, unclear, coughs, timestamp, interruption,
    trailing_off, and note (any other ``[bracketed]`` or ``((double-bracketed))`` comment).  A word in
    single parentheses that names no convention is left alone: people say things in parentheses too.
    """
    found = []
    for m in _TAG.finditer(text):
        if m["dash"]:
            name = "interruption"
        elif m["dots"]:
            name = "trailing_off"
        else:
            inner = m["sq"] or m["dpar"] or m["par"]
            name = _kind(inner)
            if name is None:
                if m["par"]:
                    continue
                name = "note"
        found.append((name, m.start(), m.end()))
    return found
