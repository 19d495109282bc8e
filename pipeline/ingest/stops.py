"""IPR stop markers: the lines that record where the replayed session video was stopped.

Interviewers write them in many ways (``[Video paused at 00:04:12]``, ``[STOP 3 | 00:23:41]``,
``*** Recording stopped at 04:12 ***``, ``STOP 2 - 00:12:03`` ...).  One generous pattern reads them all: an
optional opening bracket, a few words that include a stop word (paused, stopped, halted, tape, video ...), the
time, the matching close.  Without a bracket the line must begin with the stop word and end with the time, so
that a sentence like "we stopped at 4:12 last week" stays a sentence.  A transcription convention
(``[inaudible 00:12:31]``, a pause ``(2.0)``) is never a stop: it has no stop word or no time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from pipeline.errors import problem
from pipeline.timecode import TIME, parse_time

_MARKER = re.compile(
    r"^\s*(?P<open>\[|\(|\{|<<|<|\*+|-{2,}|={2,}|#+)?\s*"
    r"(?P<words>[^\W\d_][^\[\](){}<>*\n]{0,40}?)\s*[:|@,–—-]*\s*"
    rf"(?P<inner>[(\[])?(?P<time>{TIME})(?(inner)[)\]])"  # the time may be in brackets: "Stop 1 (04:12)"
)
#: After the time: a few words at most (" - client"), then the bracket that matches the opening one.
_TAIL = r"\s*[^\[\](){}<>*\n]{0,30}?\s*"
_CLOSE = {opener: re.compile(_TAIL + close + r"\s*") for opener, close in
          {"[": r"\]", "(": r"\)", "{": r"\}", "<<": ">>", "<": ">", "*": r"\*+", "-": "-{2,}", "=": "={2,}",
           "#": "#+"}.items()}
_STOP_WORD = re.compile(
    r"\b(?:video|tape|recording|playback|replay|stop|stopped|stops|pause|paused|halt|halted|freeze|frozen)\b",
    re.IGNORECASE,
)
_STARTS_WITH_STOP_WORD = re.compile(r"^(?:" + _STOP_WORD.pattern + r")", re.IGNORECASE)
# The video playing again: "[Video resumed at 00:03:07]", "(tape plays)", "[Playing from 2:50]".  Not a stop,
# though it names the video and a time; the turns after it, up to the next stop, are the session replayed.
_STOP_VERB = re.compile(r"\b(?:stop|stopped|stops|pause|paused|halt|halted|freeze|frozen)\b", re.IGNORECASE)
_PLAY_WORD = re.compile(r"\b(?:play|plays|playing|played|resume|resumes|resumed|resuming|restart|restarts|"
                        r"restarted|start|starts|started|continue|continues|continued|rolling|rolls|runs|running)\b",
                        re.IGNORECASE)
_VIDEO = re.compile(r"\b(?:video|tape|recording|playback|replay|clip|film)\b", re.IGNORECASE)
_PLAY_LINE = re.compile(r"^\s*(?P<open>\[|\(|\{|<<|<|\*+|-{2,}|={2,}|#+)?\s*(?P<words>[^\[\](){}<>*\n]{1,60}?)\s*"
                        r"(?P<close>\]|\)|\}|>>|>|\*+|-{2,}|={2,}|#+)?\s*$")


def is_play_marker(line: str) -> bool:
    """Whether ``line`` records the video playing again (after a stop): a bracketed note, or a line that begins
    with the video, naming it and a play word and no stop word."""
    m = _PLAY_LINE.match(line) if len(line) < 80 and _VIDEO.search(line) else None  # (most lines: no video)
    if not m or bool(m["open"]) != bool(m["close"]):
        return False
    words = m["words"]
    return bool(_VIDEO.search(words) and _PLAY_WORD.search(words) and not _STOP_VERB.search(words)
                and (m["open"] or _VIDEO.match(words)))
_HAS_TIME = re.compile(r"\d:\d")  # a cheap first look: most lines of a transcript have no time at all


@lru_cache(maxsize=64)
def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    """The study's extra stop patterns, compiled once; a bad one is an error that names study.toml."""
    compiled = []
    for p in patterns:
        try:
            rx = re.compile(p, re.IGNORECASE)
        except re.error as exc:
            raise problem("study.toml", f"the stop pattern {p!r} is not a valid regular expression ({exc})",
                          where="[align] stop_patterns",
                          hint="fix the pattern; a Python regular expression with a group named time") from None
        if "time" not in rx.groupindex:
            raise problem("study.toml", f"the stop pattern {p!r} has no group named time",
                          where="[align] stop_patterns",
                          hint=r"mark the time with (?P<time>...), e.g. '^\[CUE (?P<time>[0-9:.]+)\]$'")
        compiled.append(rx)
    return tuple(compiled)


def match_stop(line: str, extra_patterns: Sequence[str] = ()) -> tuple[float, int] | None:
    """``(video seconds, end of the marker in line)`` if ``line`` begins with a stop marker, else None.

    The end lets a reader keep the rest of the line (``[Paused 00:04:12] I: What was happening?``) as a turn.
    """
    for rx in compile_patterns(tuple(extra_patterns)):
        m = rx.search(line)
        if m and (seconds := parse_time(m["time"] or "")) is not None:
            return seconds, m.end()
    m = _MARKER.match(line) if _HAS_TIME.search(line, 0, 120) else None
    if not m or not _STOP_WORD.search(m["words"]):
        return None
    if _PLAY_WORD.search(m["words"]) and not _STOP_VERB.search(m["words"]):
        return None  # "[Video resumed at 00:03:07]": the video playing, not stopped
    end = m.end()
    if m["open"]:
        close = _CLOSE[m["open"] if m["open"] in _CLOSE else m["open"][0]].match(line, end)
        if close:
            end = close.end()
        elif line[end:].strip():  # an unclosed bracket is only a marker at the end of the line
            return None
    elif line[end:].strip() or not _STARTS_WITH_STOP_WORD.match(m["words"]):
        return None
    seconds = parse_time(m["time"])
    return None if seconds is None else (seconds, end)


def find_stop(line: str, extra_patterns: Sequence[str] = ()) -> float | None:
    """The video time (seconds) if ``line`` is, or begins with, an IPR stop marker; else None."""
    found = match_stop(line, extra_patterns)
    return None if found is None else found[0]
