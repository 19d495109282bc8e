"""Subtitle transcripts: WebVTT (Zoom, Teams) through webvtt-py, SubRip through srt.

Each cue is one turn, with its start and end; consecutive cues of one speaker stay separate turns (the cue is
the unit the tool timed).  The speaker is Teams' voice span ``<v Name>`` (its ``</v>`` is often missing), or
Zoom's ``Name:`` at the start of the cue text; without either the speaker is empty.  A turn's
line is the line of its cue's timing (``00:00:03.000 --> …``) in the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed, Turn
from pipeline.ingest.text import plausible_label
from pipeline.timecode import parse_time

_VOICE = re.compile(r"<v(?:\.[\w.-]+)*\s+([^>]+)>")
_TAGS = re.compile(r"</?(?:v|c|i|b|u|lang|ruby|rt|font)(?:[.\s][^>]*)?>|<\d[\d:.]*>|\{\\[^}]*\}", re.IGNORECASE)
# "Name: text", and "[SPEAKER_00]: text" as WhisperX writes the speakers it told apart
_LABEL = re.compile(r"^(?:\[(?P<bracketed>[^\W\d_][^\]:\n]{0,39})\]|(?P<label>[^\W\d_][^:\n]{0,39}?))\s*:\s+"
                    r"(?P<text>.*)$", re.DOTALL)


def _timing_lines(text: str) -> list[tuple[int, float | None]]:
    """(line number, start seconds) of every cue timing line, to give each cue its place in the file."""
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        if "-->" in line:
            head = line.split("-->", 1)[0].split()
            found.append((number, parse_time(head[-1]) if head else None))
    return found


class _Lines:
    """Finds, cue by cue in order, the line of the timing line with the cue's start; and the cues left out."""

    def __init__(self, text: str):
        self.timings, self.next, self.skipped = _timing_lines(text), 0, []

    def of(self, start: float | None) -> int:
        for i in range(self.next, len(self.timings)):
            number, seconds = self.timings[i]
            if start is None or (seconds is not None and abs(seconds - start) < 0.002):
                self.skipped += [n for n, _ in self.timings[self.next:i]]
                self.next = i + 1
                return number
        return 0

    def unread(self) -> list[int]:
        """Lines of timing lines that no cue was read from (webvtt-py leaves a malformed cue out)."""
        return self.skipped + [n for n, _ in self.timings[self.next:]]


def _turn(raw: str, start: float | None, end: float | None, line: int) -> Turn | None:
    voice = _VOICE.search(raw)
    text = " ".join(_TAGS.sub("", raw).split())
    speaker = voice.group(1).strip() if voice else ""
    if not speaker and (m := _LABEL.match(text)) and plausible_label(m["label"] or m["bracketed"]):
        speaker, text = (m["label"] or m["bracketed"]).strip(), m["text"].strip()
    return Turn(speaker=speaker, text=text, start_s=start, end_s=end, line=line) if text else None


def read_vtt(path: Path, text: str) -> Parsed:
    import webvtt

    try:
        captions = list(webvtt.from_string(text))
    except Exception as exc:  # MalformedFileError, MalformedCaptionError
        raise problem(path, f"the file is not valid WebVTT ({exc})",
                      hint="it must begin with the line WEBVTT and hold cues like 00:00:03.000 --> 00:00:07.000; "
                           "export it again from Zoom or Teams") from None
    lines, parsed = _Lines(text), Parsed()
    for caption in captions:
        start, end = parse_time(caption.start), parse_time(caption.end)
        turn = _turn(caption.raw_text, start, end, lines.of(start))
        if turn:
            parsed.turns.append(turn)
    unread = lines.unread()
    if unread and not captions:
        raise problem(path, "no cue could be read (the cue timing is malformed)", where=f"line {unread[0]}",
                      hint="cue timings look like 00:00:03.000 --> 00:00:07.000; export the file again")
    if unread:
        parsed.warnings.append(f"{path}: {len(unread)} malformed cue(s) were left out (line "
                               f"{', '.join(map(str, unread[:5]))}{' …' if len(unread) > 5 else ''}); "
                               "check their timing lines.")
    return parsed


def read_srt(path: Path, text: str) -> Parsed:
    import srt

    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as exc:
        line = text.count("\n", 0, exc.expected_start) + 1
        raise problem(path, "the file is not valid SubRip", where=f"line {line}",
                      hint="each cue needs a number, a line like 00:00:03,000 --> 00:00:07,000, and its text; "
                           "export it again") from None
    lines, parsed = _Lines(text), Parsed()
    for sub in subtitles:
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        turn = _turn(sub.content, start, end, lines.of(start))
        if turn:
            parsed.turns.append(turn)
    return parsed
