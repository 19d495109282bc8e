"""De-identification: participants' real names, e-mail addresses and phone numbers never reach an output.

The study's key file (``[deidentify] key``: columns ``name,pseudonym``) is applied where text enters the pipeline
(ingest), so every later table, workbook, report and figure is built from pseudonymised text.  After the run,
:func:`find_leaks` scans every output for the real names, so a name that slipped through another way (a coder's
memo, a file name) fails the run instead of leaving the machine in a report.  The key's content is never written
anywhere.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from .errors import InputError, Problem

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Seven or more digits with the usual separators; never a time (colons) or a pause like (2.0).
PHONE = re.compile(r"(?<![\w:.])\+?\(?\d[\d\s().-]{5,}\d(?![\w:])")
MIN_PART = 2  # a name part shorter than this ("J.") is not searched on its own


@dataclass
class Deidentifier:
    names: list[tuple[str, str]]  # (real name, pseudonym), full names and their parts

    def __post_init__(self):
        terms = sorted({n for n, _ in self.names}, key=len, reverse=True)
        self._lookup = {_key(n): p for n, p in self.names}
        # "O'Neil" in the key is also "O’Neil" (a typographic apostrophe) in a Word transcript, and the reverse
        alternatives = [re.sub(r"['’]", "['’]", re.escape(t)) for t in terms]
        self._rx = re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.I) if terms else None

    def __call__(self, text):
        if not isinstance(text, str) or not text:
            return text
        if self._rx is not None:
            text = self._rx.sub(lambda m: self._lookup[_key(m.group(1))], text)
        text = EMAIL.sub("[email]", text)
        return PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group(0)) >= 7 else m.group(0), text)

    def leaks(self, text: str) -> list[str]:
        if self._rx is None or not text:
            return []
        return sorted({m.group(1) for m in self._rx.finditer(text)})


def _key(name: str) -> str:
    return name.lower().replace("’", "'")


def load_key(study) -> Deidentifier | None:
    """The key file of ``study.toml``, or None when de-identification is off."""
    rel = study.settings.deidentify_key
    if not rel:
        return None
    path = (study.root / rel).resolve()
    if not path.is_file():
        raise InputError(Problem(rel, "the de-identification key file is missing",
                                 hint="create it with the columns name,pseudonym, or remove [deidentify] from "
                                      "study.toml"))
    from .ingest.encoding import decode

    # As Excel saves it: UTF-8 (with or without BOM), UTF-16 or cp1252 ("Tomás" must stay "Tomás", or it leaks),
    # with commas, or semicolons or tabs in some locales.
    text = decode(path.read_bytes(), rel)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "name" not in header or "pseudonym" not in header:
        raise InputError(Problem(rel, "the header must have the columns name and pseudonym", "row 1"))
    ni, pi = header.index("name"), header.index("pseudonym")
    pairs: list[tuple[str, str]] = []
    pseudonyms: list[tuple[int, str]] = []
    problems = []
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        name = row[ni].strip() if len(row) > ni else ""
        pseudonym = row[pi].strip() if len(row) > pi else ""
        if not name or not pseudonym:
            problems.append(Problem(rel, "a row needs both a name and a pseudonym", f"row {n}"))
            continue
        pairs.append((name, pseudonym))
        pseudonyms.append((n, pseudonym))
        words = re.split(r"[\s,]+", name)
        for part in words + [p for w in words if "-" in w for p in w.split("-")]:  # "Anne-Marie": also "Anne"
            part = part.strip(".")
            if len(part) >= MIN_PART and part.lower() != name.lower():
                pairs.append((part, pseudonym))
    if problems:
        raise InputError(problems)
    # A part shared by two people ("Anna Novak", "Anna Berg") keeps the first pseudonym; full names come first.
    seen: set[str] = set()
    unique = []
    for name, pseudonym in sorted(pairs, key=lambda p: -len(p[0])):
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append((name, pseudonym))
    deid = Deidentifier(unique)
    for n, pseudonym in pseudonyms:  # else every run would fail its leak check on the pseudonym itself
        if deid.leaks(pseudonym):
            problems.append(Problem(rel, f"the pseudonym {pseudonym!r} holds a real name (or a part of one) of the "
                                         "key", f"row {n}", "choose a pseudonym that shares no word with any name"))
    if problems:
        raise InputError(problems)
    return deid


def _texts(path: Path):
    """The text of an output file, as a person or a program opening it would see it."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".docx", ".qdpx"):
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if member.endswith((".xml", ".qde", ".txt")):
                    xml = z.read(member).decode("utf-8", errors="replace")
                    yield unescape(re.sub(r"<[^>]+>", " ", xml))
    elif suffix == ".parquet":
        import pandas as pd

        df = pd.read_parquet(path)
        for col in df.columns:
            if df[col].dtype == object or str(df[col].dtype).startswith("str"):
                yield "\n".join(map(str, df[col].dropna()))
    elif suffix in (".csv", ".json", ".txt", ".md"):
        yield path.read_text(encoding="utf-8", errors="replace")


def find_leaks(study, deid: Deidentifier) -> list[Problem]:
    """Every output that still holds a real name of the key: the file and the names (never the context)."""
    problems = []
    for folder in (study.interim, study.coded, study.reports):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            found = sorted({n for text in _texts(path) for n in deid.leaks(text)})
            if found:
                hint = ("remove them from the transcript, memo or file name they came from, and run again"
                        if ".backup" not in path.parts else
                        "a backup made before de-identification was on: its codes and memos are in the current "
                        "workbook; check, then delete this backup")
                problems.append(Problem(study.relative(path),
                                        f"holds {len(found)} real name(s) of the de-identification key", hint=hint))
    return problems


def entry_leaks(entries, deid: Deidentifier) -> list[Problem]:
    """The coders' entries (memos, own columns) that hold a real name of the key: each by workbook, sheet and
    row, so that the coder can replace it before anything is written (the names themselves are not repeated)."""
    import json

    problems = []
    for e in entries.itertuples(index=False):
        texts = {"memo": e.memo or ""}
        if isinstance(e.extra, str) and e.extra:
            texts.update(json.loads(e.extra))
        columns = [col for col, text in texts.items() if deid.leaks(str(text))]
        if columns:
            cells = ", ".join(repr(c) for c in columns)
            problems.append(Problem(e.workbook, f"the {cells} cell holds a real name of the de-identification key",
                                    f"sheet {e.sheet}, row {e.row}",
                                    "write the pseudonym instead, save the workbook and run again"))
    return problems
