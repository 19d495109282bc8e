"""Work on both cores: forked processes, which inherit what the parent has loaded (spaCy, the tables) for free.

Forked workers die with their parent: a run killed with SIGKILL (which no clean-up can catch) leaves no worker
behind writing files or holding the terminal.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import time
import traceback
from dataclasses import dataclass


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def can_fork() -> bool:
    return cores() > 1 and "fork" in mp.get_all_start_methods()


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this forked process when its parent (pid ``parent``) dies; elsewhere nothing happens.

    Ctrl-C is the parent's to handle (it says so in one line and ends its workers): a worker ignores it,
    rather than print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def pool(workers: int):
    """A pool of forked workers that die with this process.  When its ``with`` block fails (or is interrupted),
    the work not yet begun is dropped instead of done."""
    from concurrent.futures import ProcessPoolExecutor

    class Pool(ProcessPoolExecutor):
        def __exit__(self, kind, error, trace):
            self.shutdown(wait=kind is None, cancel_futures=kind is not None)
            return False

    return Pool(max_workers=workers, mp_context=mp.get_context("fork"), initializer=die_with_parent,
                initargs=(os.getpid(),))


_EACH: tuple = ()  # (fn, items) of the ``each`` running: forked workers inherit them


def _each_one(i: int):
    fn, items = _EACH
    return fn(items[i])


def each(fn, items: list, parallel_from: int = 8, done=None) -> list:
    """``[fn(item) for item in items]``: by forked workers on the cores there are when there are
    ``parallel_from`` items or more.  The workers inherit ``fn`` and the items (only their positions are sent),
    so neither need be picklable, and nothing is copied; the results come back pickled.  ``done(item)``, if
    given, is called as each result arrives, in order."""
    global _EACH
    results = []
    if len(items) < parallel_from or not can_fork():
        for item in items:
            results.append(fn(item))
            if done:
                done(item)
        return results
    _EACH = (fn, items)
    try:
        with pool(min(cores(), 4)) as workers:
            for item, result in zip(items, workers.map(_each_one, range(len(items)), chunksize=1), strict=True):
                results.append(result)
                if done:
                    done(item)
    finally:
        _EACH = ()
    return results


@dataclass(frozen=True)
class by_name:  # noqa: N801 (stands for a function)
    """A function named by its module: sent to a forked process, its module is imported there, not here (the
    coding module imports spaCy, which this process never needs)."""

    module: str
    name: str

    @property
    def __name__(self) -> str:  # noqa: PLW3201 (named as the function it stands for)
        return self.name

    def __call__(self, *args):
        return getattr(importlib.import_module(self.module), self.name)(*args)


def _answer(conn, fn, args) -> None:
    """Run ``fn(*args)`` and send the parent (error, result): everything goes back, to be raised there."""
    try:
        conn.send((None, fn(*args)))
    except BaseException as e:  # noqa: BLE001
        try:
            conn.send((e, None))
        except Exception:  # noqa: BLE001 (an error that cannot be pickled arrives as its traceback)
            conn.send((RuntimeError(traceback.format_exc()), None))


def _outcome(conn, name: str):
    """(error, result) as the forked process sent them."""
    try:
        return conn.recv()
    except EOFError:  # the process died without a word (killed)
        return RuntimeError(f"the process of {name} ended unexpectedly"), None


def _timed(job, *args) -> float:
    start = time.perf_counter()
    job(*args)
    return round(time.perf_counter() - start, 3)


def _fork(target, *args):
    """A forked process running ``target(parent pid, *args, connection)``; (process, our connection)."""
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=target, args=(os.getpid(), *args, theirs))
    process.start()
    theirs.close()
    return process, ours


def _run_forked(parent, job, args, conn) -> None:
    die_with_parent(parent)
    _answer(conn, _timed, (job, *args))


class beside:  # noqa: N801 (used as a statement: ``with beside(job, *args) as job:``)
    """Runs ``job(*args)`` in a forked process while the ``with`` block runs, and waits for it at the end of the
    block; ``.seconds`` is then the time the job took, and an error it raised is raised here.  Where no second
    core or no fork is there (or ``job`` is None), the job simply runs after the block."""

    def __init__(self, job, *args):
        self.job, self.args, self.seconds, self.process, self.conn = job, args, 0.0, None, None

    def __enter__(self):
        if self.job is not None and can_fork():
            self.process, self.conn = _fork(_run_forked, self.job, self.args)
        return self

    def __exit__(self, kind, error, trace):
        if self.process is None:
            if kind is None and self.job is not None:
                self.seconds = _timed(self.job, *self.args)
            return False
        if kind is not None:  # the block failed or was interrupted: the job's work is not wanted
            self.process.kill()
            self.process.join()
            return False
        failed, self.seconds = _outcome(self.conn, self.job.__name__)
        self.process.join()
        if failed is not None:
            raise failed
        return False


class warm:  # noqa: N801 (used as a statement: ``with warm(load) as worker:``)
    """A forked process that gets ready (``prepare(*args)``: loading spaCy, say) on the second core while this one
    does other work, and then runs one job there: ``worker.run(fn, *args)``.  Leaving the ``with`` block (or
    ``close()``) ends it, used or not.  Where no second core or no fork is there, ``run`` runs the job here."""

    def __init__(self, prepare, *args):
        self.prepare, self.args, self.process, self.conn = prepare, args, None, None
        self.meanwhile = None

    def __enter__(self):
        if can_fork():
            self.process, self.conn = _fork(_serve_one, self.prepare, self.args)
        return self

    def while_waiting(self, fn) -> None:
        """Have ``fn()`` done here while ``run``'s job runs there: work this process would do later anyway,
        done while it would otherwise only wait."""
        self.meanwhile = fn

    def run(self, fn, *args):
        if self.process is None:
            return fn(*args)
        self.conn.send((fn, args))
        if self.meanwhile is not None:
            self.meanwhile()
        failed, result = _outcome(self.conn, fn.__name__)
        self.close()
        if failed is not None:
            raise failed
        return result

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()  # done, or never needed: it may still be getting ready
            self.process.join()
            self.conn.close()
            self.process = None

    def __exit__(self, kind, error, trace):
        self.close()
        return False


def _serve_one(parent, prepare, args, conn) -> None:
    die_with_parent(parent)
    prepare(*args)
    fn, args = conn.recv()
    _answer(conn, fn, args)
