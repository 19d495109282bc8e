"""Both cores: forked coding gives what one process gives; forked workers write whole workbooks; a job run
beside the run (the report) is waited for, its errors arrive whole, and it dies with its parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

import pipeline.coding
import pipeline.export
import pipeline.ingest
import pipeline.parallel
from pipeline.cli import main
from pipeline.codebook import load_codebook
from pipeline.errors import InputError, Problem
from pipeline.parallel import beside, warm


def test_forked_coding_equals_one_process(demo_study, monkeypatch):
    assert CliRunner().invoke(main, ["ingest", "--study", str(demo_study)]).exit_code == 0
    assert CliRunner().invoke(main, ["align", "--study", str(demo_study)]).exit_code == 0
    interim = demo_study / "data" / "interim"
    turns, segments = pd.read_parquet(interim / "turns.parquet"), pd.read_parquet(interim / "segments.parquet")
    book = load_codebook(demo_study / "codebooks" / "rupture_repair.yaml")
    one = pipeline.coding.apply_codebook(book, turns, segments)
    monkeypatch.setattr(pipeline.coding, "PARALLEL_FROM", 1)
    two = pipeline.coding.apply_codebook(book, turns, segments)
    assert len(one) > 50
    pd.testing.assert_frame_equal(one, two)


def test_workbooks_written_by_forked_workers_hold_every_unit(demo_study, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.export, "PARALLEL_FROM", 1)
    assert CliRunner().invoke(main, ["analyze", "--study", str(demo_study)]).exit_code == 0
    wb = load_workbook(demo_study / "data" / "coded" / "coder_b" / "D02_S5_session.xlsx")
    rows = list(wb["Turns"].iter_rows(values_only=True))
    turns = pd.read_parquet(demo_study / "data" / "interim" / "turns.parquet")
    assert [r[0] for r in rows[1:]] == list(turns[turns["transcript_id"] == "D02_S5_session"]["turn_id"])


def test_transcripts_read_by_forked_workers_give_what_one_process_reads(demo_study, monkeypatch):
    from pipeline.ingest import ingest
    from pipeline.study import load_study

    study = load_study(demo_study)
    monkeypatch.setattr(pipeline.parallel, "can_fork", lambda: False)
    one = ingest(study)
    monkeypatch.undo()
    monkeypatch.setattr(pipeline.ingest, "PARALLEL_FROM", 1)
    two = ingest(study)
    assert len(one.turns) > 100
    pd.testing.assert_frame_equal(one.turns, two.turns)
    pd.testing.assert_frame_equal(one.stops, two.stops)
    assert (one.warnings, one.state) == (two.warnings, two.state)
    # a bad file among them: its problem, named as when one process reads, and the others still read
    (demo_study / "data" / "raw" / "D01_S3_ipr-client.txt").write_bytes(b"")
    kept = ingest(study, keep_going=True)
    assert any(w.startswith("skipped: data/raw/D01_S3_ipr-client.txt") for w in kept.warnings)
    assert len(kept.sources) == len(one.sources) - 1


# --- a job beside the run (the report while the workbooks are written) -------------------------------------

def _write(path, text):
    path.write_text(text)


def _fail(file):
    raise InputError([Problem(file, "is not a codebook", "line 3", "fix it"), Problem(file, "second problem")])


def test_a_job_beside_the_block_runs_while_it_runs_and_is_waited_for(tmp_path):
    out = tmp_path / "report.txt"
    with beside(_write, out, "made in another process") as job:
        assert job.process is not None  # on this machine (two cores, Linux): really forked
        assert os.getpid() != job.process.pid
    assert out.read_text() == "made in another process"
    assert not job.process.is_alive()


def test_an_input_error_of_the_job_arrives_whole():
    with pytest.raises(InputError) as raised, beside(_fail, "codebooks/x.yaml"):
        pass
    assert [str(p) for p in raised.value.problems] == [
        "codebooks/x.yaml, line 3: is not a codebook (fix it)", "codebooks/x.yaml: second problem"]


def test_without_a_second_core_the_job_runs_after_the_block(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.parallel, "cores", lambda: 1)
    out = tmp_path / "report.txt"
    with beside(_write, out, "here") as job:
        assert job.process is None and not out.exists()
    assert out.read_text() == "here"


KILLED_PARENT = """
import sys, time
from pipeline.parallel import beside, warm
with beside(time.sleep, 60) as job:
    print(job.process.pid, flush=True)
    time.sleep(60)
"""


def _running(pid: int) -> bool:
    """Alive, and not a zombie waiting for a busy init to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "(zombie)" not in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_killed_run_leaves_no_worker_behind():
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PARENT], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    assert _running(child)  # alive while its parent is
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for _ in range(200):
        if not _running(child):
            return
        time.sleep(0.02)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the forked worker outlived its killed parent")


# --- a worker that gets ready while the run reads the transcripts (spaCy loaded on the other core) ----------

READY = {"loaded": False}


def _get_ready():
    READY["loaded"] = True


def _where(x):
    return os.getpid(), READY["loaded"], x * 2


def test_a_warm_worker_gets_ready_in_its_own_process_and_runs_the_job_there():
    with warm(_get_ready) as worker:
        pid, ready, doubled = worker.run(_where, 21)
        assert worker.process is None  # one job, then it is gone
    assert (ready, doubled) == (True, 42)
    assert pid != os.getpid() and not READY["loaded"]  # prepared there, not here


def _slow_pid(x):
    time.sleep(0.2)
    return os.getpid(), x


def test_while_the_warm_worker_runs_the_job_this_process_does_its_own_work():
    done = []
    with warm(_get_ready) as worker:
        worker.while_waiting(lambda: done.append((os.getpid(), worker.process.is_alive())))
        pid, x = worker.run(_slow_pid, 7)
    assert x == 7 and pid != os.getpid()
    assert done == [(os.getpid(), True)]  # here, once, while the job ran there


def test_an_unused_warm_worker_is_ended():
    with warm(_get_ready) as worker:
        process = worker.process
    assert process is not None and not process.is_alive()


def test_an_error_of_the_warm_workers_job_arrives_whole():
    with pytest.raises(InputError) as raised, warm(_get_ready) as worker:
        worker.run(_fail, "codebooks/y.yaml")
    assert len(raised.value.problems) == 2 and raised.value.problems[0].where == "line 3"


def test_the_codebook_is_compiled_once_per_process_and_again_when_it_changes(tmp_path):
    import shutil

    from pipeline.coding import compiled_codebook

    path = tmp_path / "book.yaml"
    shutil.copy(Path(__file__).parent.parent / "codebooks" / "rupture_repair.yaml", path)
    first = compiled_codebook(load_codebook(path))
    assert compiled_codebook(load_codebook(path)) is first  # what the warm process compiled is what codes
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert compiled_codebook(load_codebook(path)) is not first


CODING_WITHOUT_PANDAS = """
import sys
from pipeline.codebook import load_codebook
from pipeline.parallel import by_name

by_name("pipeline.coding", "get_ready")(sys.argv[1])
turns = {"transcript_id": ["T1", "T1"], "kind": ["session", "session"], "seq": [1, 2], "turn_id": ["a", "b"],
         "role": ["therapist", "client"], "text": ["How was the week?", "You're not listening to me."]}
rows = by_name("pipeline.coding", "code_rows")(load_codebook(sys.argv[1]), turns, {})
print("pandas" in sys.modules, sorted({r[1] for r in rows}))
"""


def test_the_coding_process_codes_plain_columns_without_importing_pandas():
    """It loads spaCy on the second core while the run imports pandas; importing pandas too would cost it
    half a second more before it can code what changed."""
    book = Path(__file__).parent.parent / "codebooks" / "rupture_repair.yaml"
    out = subprocess.run([sys.executable, "-c", CODING_WITHOUT_PANDAS, str(book)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(" ", 1) == ["False", "['b']\n"]
