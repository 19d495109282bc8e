"""What a long run is doing, on a terminal: one line per stage, rewritten in place as its files are done, and
left as a summary when the stage ends.  In a pipe or a log nothing is written (``for_terminal`` gives None).

    reading transcripts: 93 of 93 (B031_S1_session.vtt)
    coding 14,824 units of 93 transcripts
    writing workbooks: 186 of 186 (data/coded/coder_b/B031_S1_session.xlsx)
    finishing the report
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO


class Progress:
    """``stage(label, total)`` begins a stage, calling the object with an item counts one done (``total`` 0: a
    stage without items), ``end()`` ends the last stage."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.label, self.total, self.done, self.item = "", 0, 0, ""

    def stage(self, label: str, total: int = 0) -> None:
        self.end()
        self.label, self.total, self.done, self.item = label, total, 0, ""
        self._show()

    def __call__(self, item: str) -> None:
        self.done, self.item = self.done + 1, str(item)
        self._show()

    def end(self) -> None:
        if self.label:
            self.item = ""
            self._show()
            self.stream.write("\n")
            self.stream.flush()
            self.label = ""

    def _show(self) -> None:
        line = self.label
        if self.total:
            line += f": {min(self.done, self.total):,} of {self.total:,}"
        if self.item:
            line += f" ({self.item})"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        if len(line) > width:  # one screen line, or rewriting it in place would leave the rest behind
            line = line[: max(width - 1, 0)] + "…"
        self.stream.write(f"\r\x1b[K{line}")
        self.stream.flush()


def for_terminal(stream: TextIO | None = None) -> Progress | None:
    """Progress on ``stream`` (standard error) when it is a terminal; None in a pipe or a log."""
    stream = stream or sys.stderr
    return Progress(stream) if stream.isatty() else None
