"""Transcripts written as lines: plain text, and the paragraphs of a Word file.

No library reads these, so this module does, with one grammar per layout people use:

- ``colon``: a label and a colon begin the turn, with the time before or after the label, bracketed or bare:
  ``[00:01:02] T: …``, ``00:01:02 Therapist: …``, ``T (01:02): …``, ``T: …``; Rev's ``Name (01:02):`` with
  the text on the same or the next line; WhisperX's ``[SPEAKER_00]: …``.
- ``name_time``: a heading line ``Speaker 1  0:03`` (Otter, Teams), the text on the following lines.
- ``time_name``: a heading line ``00:00:03 Speaker 1`` (Word's "Transcribe"), the text on the following lines.

The layout is sniffed once per file (the grammar that starts the most turns), and only its grammar starts turns
afterwards: in an Otter file a sentence such as ``So: here it is`` is text, not a speaker "So".  Other lines
continue the turn under way, joined with a space.  Stop markers are taken out first, wherever they stand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed, Stop, Turn
from pipeline.ingest.roles import KNOWN_LABEL, is_known_label
from pipeline.ingest.stops import is_play_marker, match_stop
from pipeline.timecode import TIME, parse_time

Lines = Iterable[tuple[int, str]]  # (1-based line or paragraph number, text)

_FIRST = r"[^\W\d_][\w.'’,\-]*"  # a label begins with a letter: "T", "Th.", "Dr.", "O'Neil", "Doe,"
_NEXT = rf"(?:{_FIRST}|\d+(?!\d|[:.,]\d)|\([^\W\d_][^()\d]{{0,20}}\))"  # "Speaker 1", "Jane (Guest)"
_LABEL = rf"(?P<label>{_FIRST}(?:[ \t]+{_NEXT}){{0,3}})"
_SPAN = rf"[\[(]?(?P<t1>{TIME})(?:\s*(?:-->|-|–|to)\s*(?P<t2>{TIME}))?[\])]?"

_GRAMMARS = {
    "colon": re.compile(
        rf"^(?:{_SPAN}\s*[-–—:]?\s*)?\[?{_LABEL}\]?(?:\s*(?:[\[(](?P<t3>{TIME})[\])]|(?P<t4>{TIME})))?"
        r"\s*:(?!\d)\s*(?P<text>.*)$"
    ),
    "name_time": re.compile(rf"^\[?{_LABEL}\]?\s+[\[(]?(?P<t1>{TIME})[\])]?\s*$"),  # "[Jane Doe] 10:05:32" too
    "time_name": re.compile(rf"^[\[(]?(?P<t1>{TIME})[\])]?\s+{_LABEL}\s*$"),
    # a known label alone over its words ("THERAPIST"), or before them after a dash or a full stop ("T - Hello",
    # "C.  Fine"): only the built-in labels, for other words would read as speakers
    "name_only": re.compile(rf"^(?P<label>{KNOWN_LABEL})\s*$"),
    "dash": re.compile(rf"^(?:{_SPAN}\s*)?(?P<label>{KNOWN_LABEL})\s*(?:[-–—]|\.(?=\s))\s*(?P<text>.+)$"),
}
_BARE_TIME = re.compile(rf"^[\[(]?(?P<t1>{TIME})[\])]?$")  # a time on its own line times the next turn
_LEADING_TIME = re.compile(rf"^[\[(](?P<t1>{TIME})[\])]\s*")  # "T: [00:01:02] Hello"
_FOOTER = re.compile(r"^(?:transcribed|transcription|transcript)\s+(?:by|with|powered by)\b", re.IGNORECASE)
_PARTICLES = {"de", "da", "van", "von", "der", "den", "del", "della", "di", "du", "la", "le", "bin", "al", "y"}
_SNIFF_LINES = 3000


def plausible_label(label: str) -> bool:
    """Whether ``label`` reads as a speaker rather than the words of a sentence ("And she said")."""
    if len(label) > 40:
        return False
    words = label.split()
    if len(words) == 1:
        return words[0][0].isupper() or is_known_label(label)
    return words[0][0].isupper() and all(
        w[0].isupper() or w[0].isdigit() or w[0] == "(" or w in _PARTICLES for w in words[1:]
    )


def _turn_start(line: str, grammar: re.Pattern) -> re.Match | None:
    m = grammar.match(line)
    return m if m and plausible_label(m["label"]) else None


def sniff_layout(lines: list[tuple[int, str]]) -> str | None:
    """The layout whose grammar starts the most turns in the first lines; None when none starts any."""
    counts = dict.fromkeys(_GRAMMARS, 0)
    for _, line in lines[:_SNIFF_LINES]:
        line = line.strip()
        if line:
            for name, grammar in _GRAMMARS.items():
                if _turn_start(line, grammar):
                    counts[name] += 1
    best = max(counts, key=counts.get)  # ties go to the first: colon
    return best if counts[best] else None


def _times(m: re.Match) -> tuple[float | None, float | None]:
    groups = m.groupdict()
    start = groups.get("t1") or groups.get("t3") or groups.get("t4")
    end = groups.get("t2")
    return (parse_time(start) if start else None), (parse_time(end) if end else None)


def parse_lines(lines: Lines, path: Path | str, stop_patterns: Sequence[str] = (),
                unit: str = "line") -> Parsed:
    """The turns and stop markers of a transcript given as numbered lines (see the module's docstring).

    ``unit`` names what a number counts ("line", "paragraph") in warnings.  No turns is not an error here:
    the caller decides (a Word file may hold its turns in a table instead).
    """
    lines = list(lines)
    parsed = Parsed()
    layout = sniff_layout(lines)
    if layout is None:
        return parsed
    grammar = _GRAMMARS[layout]
    turns, stops, parts = parsed.turns, parsed.stops, []
    pending: float | None = None
    skipped = 0
    for number, raw in lines:
        line = raw.strip()
        if not line:
            continue
        stop = match_stop(line, stop_patterns)
        if stop:
            stops.append(Stop(video_s=stop[0], line=number, after_turn=len(turns)))
            line = line[stop[1]:].strip()
            if not line:
                continue
        if is_play_marker(line):
            stops.append(Stop(video_s=float("nan"), line=number, after_turn=len(turns), plays=True))
            continue
        if _FOOTER.match(line):
            continue
        m = _turn_start(line, grammar)
        if m:
            start, end = _times(m)
            text = (m.groupdict().get("text") or "").strip()
            if start is None and pending is not None:
                start = pending
            if start is None and (lead := _LEADING_TIME.match(text)):
                start, text = parse_time(lead["t1"]), text[lead.end():]
            pending = None
            turns.append(Turn(speaker=m["label"].strip(), text="", start_s=start, end_s=end, line=number))
            parts.append([text] if text else [])
            continue
        if layout == "colon" and (bare := _BARE_TIME.match(line)):
            pending = parse_time(bare["t1"])
            continue
        if not turns:
            skipped += 1
            continue
        parts[-1].append(line)
    for turn, words in zip(turns, parts, strict=True):
        turn.text = " ".join(words)
    if skipped:
        parsed.warnings.append(f"{path}: {skipped} {unit}(s) before the first speaker label were skipped "
                               "(a title or header?).")
    _drop_empty(parsed, path, unit)
    return parsed


def _drop_empty(parsed: Parsed, path: Path | str, unit: str) -> None:
    """A speaker heading with no words under it is not a turn; stops keep their place among the rest."""
    kept, before = [], []
    for turn in parsed.turns:
        before.append(len(kept))
        if turn.text:
            kept.append(turn)
        else:
            parsed.warnings.append(f"{path}, {unit} {turn.line}: the turn of \"{turn.speaker}\" has no text "
                                   "and was skipped.")
    if len(kept) != len(parsed.turns):
        before.append(len(kept))
        for stop in parsed.stops:
            stop.after_turn = before[stop.after_turn]
        parsed.turns[:] = kept


def no_labels(path: Path | str, unit: str = "line") -> Exception:
    """The error for a file in which no layout finds a speaker label."""
    return problem(
        path, "no speaker labels found, so the turns cannot be told apart",
        hint=f"begin each turn's {unit} with a label and a colon (\"T: …\", \"[00:01:02] Client: …\"), "
             "or export the transcript from its tool as .vtt, .srt or .docx",
    )


def read_text_file(path: Path, text: str, stop_patterns: Sequence[str] = ()) -> Parsed:
    """A plain-text transcript (already decoded)."""
    parsed = parse_lines(enumerate(text.split("\n"), 1), path, stop_patterns)
    if not parsed.turns:
        raise no_labels(path)
    return parsed
