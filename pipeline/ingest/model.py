"""What a reader makes of one transcript file, before the study gives it IDs, roles and a table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Turn:
    """One speaker's turn as written in the file."""

    speaker: str  # the label as written: "T", "Therapist", "Dr. Ruiz", "Speaker 1"
    text: str  # the turn's text, transcription conventions left in as written
    start_s: float | None = None  # seconds on the file's own clock, where the form has it
    end_s: float | None = None
    line: int = 0  # 1-based line (paragraph, cue, row) in the source file where the turn begins


@dataclass
class Stop:
    """A stop marker in an IPR interview: where the replayed video was stopped, at which video time."""

    video_s: float
    line: int
    after_turn: int  # how many turns of the file come before the marker
    plays: bool = False  # a marker of the video playing again ("[Video resumed]"): it ends the stop's recall


@dataclass
class Parsed:
    turns: list[Turn] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
