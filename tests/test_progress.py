"""Progress of the long stages on a terminal: one line per stage, rewritten in place as files are done, and ended
before anything else is said; nothing at all in a pipe."""

from __future__ import annotations

import io
import sys

from click.testing import CliRunner

import pipeline.progress
from pipeline.cli import main
from pipeline.progress import Progress, for_terminal
from pipeline.stages import run_all
from pipeline.study import load_study


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows: each line as its last rewrite (after its last carriage return)."""
    return [line.split("\r")[-1].replace("\x1b[K", "") for line in text.split("\n")]


def test_a_stage_is_one_line_rewritten_in_place_and_left_as_its_summary():
    out = Terminal()
    progress = for_terminal(out)
    progress.stage("reading transcripts", 2)
    progress("a.docx")
    assert screen(out.getvalue()) == ["reading transcripts: 1 of 2 (a.docx)"]
    progress("b.txt")
    progress.stage("coding 40 units of 2 transcripts")
    progress.end()
    assert screen(out.getvalue()) == ["reading transcripts: 2 of 2", "coding 40 units of 2 transcripts", ""]


def test_nothing_in_a_pipe():
    assert for_terminal(io.StringIO()) is None


class Recorder:
    """A progress that remembers each stage and, of each item, whether its file was there when it was told."""

    def __init__(self, root):
        self.root, self.stages = root, []

    def stage(self, label, total=0):
        self.stages.append((label, total, []))

    def __call__(self, item):
        self.stages[-1][2].append((item, (self.root / item).exists() if item.startswith("data/coded/") else None))

    def end(self):
        pass


def test_the_run_tells_of_each_file_read_and_of_each_workbook_once_it_is_written(demo_study):
    study = load_study(demo_study)
    progress = Recorder(demo_study)
    run_all(study, progress=progress)
    labels = [label for label, _, _ in progress.stages]
    assert labels[0] == "reading transcripts" and labels[1].startswith("coding ")
    assert labels[2:] == ["writing workbooks", "finishing the report"]
    (_, n_read, read), _, (_, n_written, written), _ = progress.stages
    raw = sorted(p.name for p in (demo_study / "data" / "raw").iterdir() if p.suffix not in (".csv", ".md"))
    assert n_read == len(read) == len(raw) and sorted(item for item, _ in read) == raw
    books = sorted((demo_study / "data" / "coded").rglob("*.xlsx"))
    assert n_written == len(written) == len([b for b in books if ".backup" not in b.parts])
    assert all(there for _, there in written)  # told once written, not when queued

    again = Recorder(demo_study)
    run_all(study, progress=again)
    assert again.stages == []  # nothing to do, nothing said


def test_an_error_is_said_on_a_line_of_its_own(demo_study, monkeypatch):
    monkeypatch.setattr(pipeline.progress, "for_terminal", lambda stream=None: Progress(stream or sys.stderr))
    (demo_study / "data" / "raw" / "D01_S3_ipr-client.txt").write_text("We talked.\nThen we stopped.\n")
    result = CliRunner().invoke(main, ["analyze", "--study", str(demo_study)])
    assert result.exit_code == 1
    lines = screen(result.output)
    assert lines[0].startswith("reading transcripts: ")
    assert any(line.startswith("error: data/raw/D01_S3_ipr-client.txt") for line in lines), lines
