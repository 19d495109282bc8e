"""A run killed at any moment leaves the previous outputs whole, and the next run works.

Every output is written to a temporary file beside it and renamed over it in one step, so a killed run leaves
either the old file or the new one, never half of one.  The test kills ``ipr analyze`` (SIGKILL: no clean-up
runs) at several moments of a run that rewrites everything, checks after each kill that every output opens,
then lets a run finish: it succeeds, removes the temporary files the killed runs left, and the coder's entries
are still there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import docx
import openpyxl
import pandas as pd
import pytest

from pipeline.files import atomic_path, remove_stale_temps, write_text

KILL_AT_WRITE = (1, 5, 12, 20)  # kill as the run begins its 1st, 3rd ... output: tables, workbooks, report
CODER_BOOK = "data/coded/coder_a/D01_S3_session.xlsx"
CODE = "rupture.withdrawal.denial"
MEMO = "She brushes it off here: denial, not agreement."


def outputs(root: Path) -> list[Path]:
    return [p for d in ("data/interim", "data/coded", "reports") for p in sorted((root / d).rglob("*"))
            if p.is_file()]


def check_whole(root: Path) -> None:
    """Every output opens as what it is (backups and temporary files aside)."""
    for path in outputs(root):
        if ".backup" in path.parts or path.name.endswith(".tmp"):
            continue
        what = path.suffix
        try:
            if what == ".parquet":
                pd.read_parquet(path)
            elif what == ".xlsx":
                openpyxl.load_workbook(path, read_only=True).close()
            elif what == ".docx":
                docx.Document(str(path))
            elif what == ".json":
                text = path.read_text(encoding="utf-8")
                assert text.strip(), "empty"
                if text.lstrip()[:1] in "{[":  # (a state file may hold a bare digest)
                    json.loads(text)
            elif what == ".csv":
                pd.read_csv(path)
            elif what == ".png":
                data = path.read_bytes()
                assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{path.relative_to(root)} is broken after a killed run: {type(e).__name__}: {e}")


def code_a_unit(root: Path) -> str:
    """A coder's code and memo on the third turn; returns its unit_id."""
    book = openpyxl.load_workbook(root / CODER_BOOK)
    sheet = book["Turns"]
    header = [c.value for c in sheet[1]]
    sheet.cell(4, header.index("code 1") + 1).value = CODE
    sheet.cell(4, header.index("memo") + 1).value = MEMO
    unit = sheet.cell(4, 1).value
    book.save(root / CODER_BOOK)
    return unit


def change_transcripts(root: Path, n: int) -> None:
    """Edit two transcripts, so that the next run reads, codes, exports and reports anew."""
    raw = root / "data" / "raw"
    for name in ("D01_S3_ipr-client.txt", "D02_S5_ipr-client.txt"):
        with open(raw / name, "a", encoding="utf-8") as f:
            f.write(f"\nC: One more thing I remember ({n}): I felt judged and unheard then.\n")
    document = docx.Document(str(raw / "D01_S3_session.docx"))
    document.add_paragraph(f"C: And another thing ({n}), I was annoyed about the worksheet.")
    document.save(str(raw / "D01_S3_session.docx"))


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job ignores Ctrl-C; a terminal's does not


def start(root: Path) -> subprocess.Popen:
    """``ipr analyze`` in a process group of its own, as a terminal runs it (Ctrl-C reaches the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "pipeline", "analyze", "--study", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root, preexec_fn=_default_sigint,
                            start_new_session=True)


def kill_at_write(root: Path, k: int) -> bool:
    """Run ``ipr analyze`` and SIGKILL it once it has begun its k-th output file (seen by the temporary files
    that appear beside the outputs); False when it finished first."""
    folders = [root / "data" / "interim", root / "data" / "coded", root / "reports"]
    proc = start(root)
    seen: set[str] = set()
    while proc.poll() is None:
        seen |= {p.name for d in folders if d.is_dir() for p in d.rglob(".*.tmp")}
        if len(seen) >= k:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            return True
        time.sleep(0.003)
    proc.communicate(timeout=60)
    return False


def test_a_killed_run_leaves_every_output_whole(analysed, tmp_path):
    root = tmp_path / "study"
    shutil.copytree(analysed, root)
    unit = code_a_unit(root)
    before = {p.relative_to(root) for p in outputs(root) if ".backup" not in p.parts}
    killed = 0
    for n, k in enumerate(KILL_AT_WRITE, 1):
        change_transcripts(root, n)
        killed += kill_at_write(root, k)
        check_whole(root)
        now = {p.relative_to(root) for p in outputs(root) if ".backup" not in p.parts and p.suffix != ".tmp"}
        assert before <= now, f"a killed run removed outputs: {sorted(map(str, before - now))}"
    assert killed >= len(KILL_AT_WRITE) - 1, "most runs were killed part-way"
    # the next run works, and leaves no temporary file behind
    result = start(root)
    out, err = result.communicate(timeout=300)
    assert result.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    check_whole(root)
    assert not [p for p in outputs(root) if p.name.endswith(".tmp")]
    # the coder's entry is still there, in the workbook and in the tables
    sheet = openpyxl.load_workbook(root / CODER_BOOK, read_only=True)["Turns"]
    rows = [r for r in sheet.iter_rows(values_only=True) if r and r[0] == unit]
    assert rows and CODE in rows[0] and MEMO in rows[0]
    entries = pd.read_parquet(root / "data" / "interim" / "coder_entries.parquet")
    assert MEMO in set(entries["memo"])


def test_an_interrupted_run_says_so(analysed, tmp_path):
    """Ctrl-C (to the whole process group, workers too): one line, no traceback, status 130, outputs whole."""
    root = tmp_path / "study"
    shutil.copytree(analysed, root)
    change_transcripts(root, 1)
    proc = start(root)
    while proc.poll() is None and not list((root / "data" / "interim").glob(".*.tmp")):
        time.sleep(0.003)  # until it writes its first table
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt")
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert "interrupted" in err.decode()
    check_whole(root)


def test_the_command_ends_with_its_words_and_status(analysed, tmp_path):
    """`ipr` ends without tearing Python down (quicker): what it printed still arrives whole, with its status."""
    root = tmp_path / "study"
    shutil.copytree(analysed, root)
    done = subprocess.run([sys.executable, "-m", "pipeline", "analyze", "--study", str(root)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done: ") and done.stdout.endswith("report in reports/summary.docx\n")
    settings = (root / "study.toml").read_text()
    (root / "study.toml").write_text("window_s = -1\n")
    bad = subprocess.run([sys.executable, "-m", "pipeline", "analyze", "--study", str(root)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "pipeline", "nonsense"], capture_output=True, text=True)
    assert usage.returncode == 2 and "No such command" in usage.stderr
    (root / "study.toml").write_text(settings)
    gone = subprocess.Popen([sys.executable, "-m", "pipeline", "analyze", "--study", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gone.stdout.close()  # as `ipr analyze | head -0` does: the summary has nowhere to go
    err = gone.communicate(timeout=300)[1].decode()
    assert gone.returncode == 1 and err.strip() == "", err


# --- the atomic writes themselves ----------------------------------------------------------------------------

def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the ne")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_a_rewritten_output_keeps_its_permissions(tmp_path):
    path = tmp_path / "book.xlsx"
    write_text(path, "first")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not the 0600 of a temporary file
    path.chmod(0o640)
    write_text(path, "second")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    old = tmp_path / "coded" / "a" / ".book.xlsx.x1.tmp"
    old.parent.mkdir(parents=True)
    old.write_text("left by a killed run")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / "coded" / ".book.xlsx.x2.tmp"
    fresh.write_text("another run is writing this")
    mine = tmp_path / "coded" / "notes.tmp"  # not a temporary file of the pipeline
    mine.write_text("x")
    os.utime(mine, (0, 0))
    removed = remove_stale_temps([tmp_path / "coded", tmp_path / "missing"], time.time() - 60)
    assert removed == [old]
    assert fresh.exists() and mine.exists()
