"""Errors that a researcher can act on.

Every problem with the input is reported as one line that names the file and, where known, the line, row or
cell, says what is wrong and what to do.  Stages collect them and raise them together, so that one run reports
every bad file, not only the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where, what, and what to do about it."""

    file: str
    message: str
    where: str = ""  # "line 12", "row 3", "cell B7", "sheet Segments, cell C4" ...
    hint: str = ""

    def __str__(self) -> str:
        place = f"{self.file}, {self.where}" if self.where else self.file
        text = f"{place}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class InputError(Exception):
    """The input is wrong: the command exits with status 1 and prints one line per problem."""

    def __init__(self, problems: Problem | list[Problem]):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self):  # raised in a worker process, it arrives in the parent with its problems intact
        return InputError, (self.problems,)


def problem(file: str | Path, message: str, where: str = "", hint: str = "") -> InputError:
    """Shorthand for raising a single problem: ``raise problem(path, "empty file", hint="...")``."""
    return InputError(Problem(str(file), message, where, hint))


@dataclass
class Warnings:
    """Warnings of a run, kept for the report's audit trail; each said once."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.items:
            self.items.append(text)

    def extend(self, texts) -> None:
        for t in texts:
            self.add(t)
