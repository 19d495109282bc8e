"""The one timestamp grammar of the project.

Transcripts write times as ``h:mm:ss``, ``hh:mm:ss``, ``mm:ss`` or ``m:ss``, with or without a fraction
(``00:01:02.5``, ``00:01:02,500`` in SubRip), or as a video timecode with frames (``00:01:02:15``, from video
editing and some transcription services).  Every reader parses times with :data:`TIME` and
:func:`parse_time`, so that a time means the same thing in every form.
"""

from __future__ import annotations

import re

#: A time as transcribers write it.  Use inside larger patterns; it has no anchors and no groups of its own
#: apart from the non-capturing ones.
TIME = r"(?:\d{2}:\d{2}:\d{2}:\d{2}|(?:\d{1,2}:)?\d{1,3}:\d{2}(?:[.,]\d{1,3})?)"

_TIME_RE = re.compile(
    r"^\s*(?:(?P<h>\d{1,2}):)?(?P<m>\d{1,3}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,3})|(?<=\d\d:\d\d:\d\d):(?P<ff>\d{2}))?\s*$"
)


def parse_time(text: str) -> float | None:
    """Seconds for a time like ``1:02:03.5`` or ``04:12``; None when ``text`` is not a time.

    Minutes and seconds past 59 are refused in ``h:mm:ss`` (a typo, not a time); ``mm:ss`` may run past an hour
    (``75:10``), as some services write it.  A timecode's frames are dropped: the frame rate is not known, and
    they are less than a second.
    """
    m = _TIME_RE.match(text)
    if not m:
        return None
    hours = int(m["h"]) if m["h"] else 0
    minutes, seconds = int(m["m"]), int(m["s"])
    if seconds > 59 or (m["h"] and minutes > 59) or (m["ff"] and int(m["ff"]) > 59):
        return None
    frac = float("0." + m["f"]) if m["f"] else 0.0
    return hours * 3600 + minutes * 60 + seconds + frac


def format_time(seconds: float | None) -> str:
    """``h:mm:ss`` (no fraction) for reports and workbooks; empty for an unknown time."""
    if seconds is None or seconds != seconds:  # None or NaN
        return ""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
