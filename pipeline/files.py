"""Writing outputs so that a run killed at any moment leaves the previous outputs whole; and the few table helpers
that tell a re-run what changed (digests), which rows it is about (``member``) and split a table by key
(``grouped``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary file lives in the same folder so that the rename is atomic on every file system; on failure
    it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(path))  # a temporary file is private (0600); the output is not
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _mode_for(path: Path) -> int:
    """The permissions ``path`` has, or those a new file gets (the umask's): a refreshed workbook stays
    readable by the team that could read it before."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_parquet(df, path: Path) -> None:
    """Write a table; its text columns as text, whether pandas made them ``object`` (rows built in Python) or
    ``str`` (rows read from Parquet): the same table always gives the same bytes, and a re-run tells whether a
    stage's input changed by those bytes."""
    from pandas.api.types import infer_dtype

    texts = {c: "str" for c in df.columns if df[c].dtype == object and infer_dtype(df[c]) in ("string", "empty")}
    with atomic_path(path) as tmp:
        (df.astype(texts) if texts else df).to_parquet(tmp, index=False)


#: The characters XML 1.0 cannot hold (a control character pasted into a transcript or a memo): dropped from
#: the text of every XML file written (the report, a REFI-QDA project).
XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CODE_VERSION = ""


def code_version() -> str:
    """This pipeline: its version number and a digest of its source files.  Every stage's key includes it, so that
    what other code made (an update, with or without a new version number) is made again, never reused."""
    global _CODE_VERSION
    if not _CODE_VERSION:
        from . import __version__

        package = Path(__file__).parent
        _CODE_VERSION = sha256_text(__version__, *(f"{p.relative_to(package).as_posix()}:{sha256_file(p)}"
                                                   for p in sorted(package.rglob("*.py"))))
    return _CODE_VERSION


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def digests_by(frame, by) -> dict[str, str]:
    """A digest of the rows of each group of ``frame`` (grouped by ``by``: the transcript, say), from vectorised
    row hashes: what tells a re-run which transcripts changed, at a few milliseconds for a large study."""
    import pandas as pd

    if frame.empty:
        return {}
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {key: hashlib.sha256(rows[at].tobytes()).hexdigest()
            for key, at in frame.groupby(by, sort=False).indices.items()}


def grouped(table, by: list[str], order: str, fields) -> dict[tuple, dict[str, list]]:
    """key (the values of ``by``) -> its rows in ``order``, as column -> values: the table is sorted and split
    once, and taken as plain lists (taking a large table's rows from pandas one by one cost more than the work
    done with them, in aligning and in the repair sequences)."""
    if table.empty:
        return {}
    ordered = table.sort_values([*by, order], kind="stable")
    values = {c: ordered[c].tolist() for c in dict.fromkeys((*by, *fields))}
    keys = list(zip(*(values[c] for c in by), strict=True))
    groups: dict[tuple, dict[str, list]] = {}
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            groups[keys[start]] = {c: v[start:i] for c, v in values.items()}
            start = i
    return groups


def member(column, values):
    """``column.isin(values)`` (a boolean array) for a column of IDs.  pandas checks arrow-backed text against
    ``values`` by making each value an arrow scalar first, which for thousands of IDs cost more than the rest of a
    table (a second at 10,000 pages)."""
    import numpy as np
    import pandas as pd

    allowed = set(values.tolist() if isinstance(values, pd.Series | pd.Index) else values)
    return np.fromiter((v in allowed for v in column.tolist()), dtype=bool, count=len(column))


def digest_of(frame) -> str:
    """A digest of a table's rows ("" when it has none), from the same vectorised row hashes."""
    import pandas as pd

    if not len(frame):
        return ""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def remove_stale_temps(folders, older_than: float) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` that a killed run left behind (those last changed
    before ``older_than``, a time stamp: never the files of a run still writing); returns what was removed."""
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in folder.rglob(".*.tmp"):
            try:
                if p.is_file() and p.stat().st_mtime < older_than:
                    p.unlink()
                    removed.append(p)
            except OSError:
                pass  # gone already, or not ours to remove
    return removed
