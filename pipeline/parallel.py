"""Work on both cores: forked processes, which inherit what the parent has loaded (spaCy, the tables) for free.

Forked workers die with their parent: a run killed with SIGKILL (which no clean-up can catch) leaves no worker
behind writing files or holding the terminal.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def can_fork() -> bool:
    return cores() > 1 and "fork" in mp.get_all_start_methods()


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this forked process when its parent (pid ``parent``) dies; elsewhere nothing happens."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def pool(workers: int):
    """A pool of forked workers that die with this process."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=die_with_parent,
                               initargs=(os.getpid(),))


def _run_forked(parent, job, args, conn) -> None:
    die_with_parent(parent)
    try:
        start = time.perf_counter()
        job(*args)
        conn.send((None, round(time.perf_counter() - start, 3)))
    except BaseException as e:  # noqa: BLE001 (everything goes back to the parent, which raises it)
        try:
            conn.send((e, 0.0))
        except Exception:  # noqa: BLE001 (an error that cannot be pickled arrives as its traceback)
            conn.send((RuntimeError(traceback.format_exc()), 0.0))


class beside:  # noqa: N801 (used as a statement: ``with beside(job, *args) as job:``)
    """Runs ``job(*args)`` in a forked process while the ``with`` block runs, and waits for it at the end of the
    block; ``.seconds`` is then the time the job took, and an error it raised is raised here.  Where no second
    core or no fork is there (or ``job`` is None), the job simply runs after the block."""

    def __init__(self, job, *args):
        self.job, self.args, self.seconds, self.process, self.conn = job, args, 0.0, None, None

    def __enter__(self):
        if self.job is not None and can_fork():
            ctx = mp.get_context("fork")
            self.conn, theirs = ctx.Pipe(duplex=False)
            self.process = ctx.Process(target=_run_forked, args=(os.getpid(), self.job, self.args, theirs))
            self.process.start()
            theirs.close()
        return self

    def __exit__(self, kind, error, trace):
        if self.process is None:
            if kind is None and self.job is not None:
                start = time.perf_counter()
                self.job(*self.args)
                self.seconds = round(time.perf_counter() - start, 3)
            return False
        try:
            failed, self.seconds = self.conn.recv()  # a block that failed still waits: no stray writer
        except EOFError:  # the process died without a word (killed)
            failed = RuntimeError(f"the process of {self.job.__name__} ended unexpectedly")
        finally:
            self.process.join()
        if kind is None and failed is not None:
            raise failed
        return False
