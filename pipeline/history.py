"""The coding history: each change the coders made to their codes and memos, as the runs found it, in
``data/coded/history.csv``.

A workbook holds only a coder's latest decision.  The history is the audit trail of the coding itself (who gave
or took back which code on which unit, and when they saved it), which qualitative rigour asks for, and the way
back to a code deleted by mistake.  It is a log: each run appends the changes since the last, and never rewrites
one.  What a run compares with is the log replayed, not a table of the last run, so deleting ``data/interim/``
neither loses a change nor records one twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .files import atomic_path

FILE = "history.csv"  # in data/coded/
COLUMNS = ["read", "saved", "coder", "transcript_id", "unit_type", "unit_id", "change", "code_id", "memo",
           "from_unit_id"]
GIVEN, TAKEN_BACK, MEMO, NO_MEMO, EDITED = ("code given", "code taken back", "memo written", "memo deleted",
                                            "unit edited")


def read_history(study) -> pd.DataFrame:
    path = study.coded / FILE
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def replay(history: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """(coder, unit_id) -> the unit's codes, memo, transcript and unit type as the history leaves them."""
    state: dict[tuple[str, str], dict] = {}
    for h in history.itertuples(index=False):
        key = (h.coder, h.unit_id)
        if h.change == EDITED:
            state[key] = state.pop((h.coder, h.from_unit_id), None) or _empty(h.transcript_id, h.unit_type)
            continue
        unit = state.setdefault(key, _empty(h.transcript_id, h.unit_type))
        if h.change == GIVEN:
            unit["codes"].append(h.code_id)
        elif h.change == TAKEN_BACK and h.code_id in unit["codes"]:
            unit["codes"].remove(h.code_id)
        elif h.change in (MEMO, NO_MEMO):
            unit["memo"] = h.memo if h.change == MEMO else ""
    return {k: v for k, v in state.items() if v["codes"] or v["memo"]}


def _empty(transcript_id: str, unit_type: str) -> dict:
    return {"codes": [], "memo": "", "transcript_id": transcript_id, "unit_type": unit_type}


def now_coded(entries: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """(coder, unit_id) -> codes, memo, transcript, unit type and workbook, from the coders' entries (a unit in
    ``Removed units`` too: it was not the coder who took its codes away; a code the codebook retired too: it is
    still in the coder's cell)."""
    state = {}
    for e in entries.itertuples(index=False):
        codes = [c for c in f"{e.codes or ''};{e.retired or ''}".split(";") if c]
        if codes or e.memo:
            state[(e.coder, e.unit_id)] = {"codes": codes, "memo": e.memo or "", "transcript_id": e.transcript_id,
                                           "unit_type": e.unit_type, "workbook": e.workbook}
    return state


def changes(before: dict, after: dict, edited: dict[str, str], read: str, saved) -> list[dict]:
    """The history's rows that take ``before`` to ``after``: units that followed their edit in the transcript
    first (``edited``: old ID -> new ID), then, unit by unit, the codes given and taken back and the memo.
    ``saved(coder, transcript_id, workbook)``: when the coder's workbook was saved."""
    rows = []

    def row(coder, unit_id, unit, change, code="", memo="", was=""):
        rows.append({"read": read, "saved": saved(coder, unit["transcript_id"], unit.get("workbook")),
                     "coder": coder, "transcript_id": unit["transcript_id"], "unit_type": unit["unit_type"],
                     "unit_id": unit_id, "change": change, "code_id": code, "memo": memo, "from_unit_id": was})

    before = dict(before)
    for coder, old in sorted(before):
        new = edited.get(old)
        if new and (coder, new) not in before and (coder, new) in after:
            before[(coder, new)] = before.pop((coder, old))
            row(coder, new, after[(coder, new)], EDITED, was=old)
    for key in sorted(set(before) | set(after)):
        coder, unit_id = key
        was, now = before.get(key), after.get(key)
        unit = now or was
        old_codes, new_codes = (was or {}).get("codes", []), (now or {}).get("codes", [])
        for code in new_codes:
            if code not in old_codes:
                row(coder, unit_id, unit, GIVEN, code=code)
        for code in old_codes:
            if code not in new_codes:
                row(coder, unit_id, unit, TAKEN_BACK, code=code)
        old_memo, new_memo = (was or {}).get("memo", ""), (now or {}).get("memo", "")
        if new_memo != old_memo:
            row(coder, unit_id, unit, MEMO if new_memo else NO_MEMO, memo=new_memo or old_memo)
    return rows


def record(study, entries: pd.DataFrame, edited: dict[str, str] | None = None, read: str | None = None,
           replaced: dict[str, str] | None = None) -> int:
    """Append to the history what changed in the coders' entries since it was last written; the number of
    changes.  A study without a history starts one with the entries as they stand.  ``replaced``: old ID -> new
    ID of the codes the codebook renamed or merged (the coders' cells are read as the new code: not a change of
    theirs, and the report's audit trail lists it)."""
    history = read_history(study)
    read = read or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    coders = set(study.coders())  # a folder no longer read (a coder dropped from study.toml) took nothing back
    before = {key: unit for key, unit in replay(history).items() if key[0] in coders}
    for unit in before.values():
        unit["codes"] = list(dict.fromkeys((replaced or {}).get(c, c) for c in unit["codes"]))
    rows = changes(before, now_coded(entries), edited or {}, read, _saved_times(study))
    if rows:
        path = study.coded / FILE
        with atomic_path(path) as tmp:
            pd.concat([history, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True).to_csv(tmp, index=False)
    return len(rows)


def _saved_times(study):
    """When a coder's workbook was last saved (UTC), each file looked up once."""
    from .readback import workbook_path

    seen: dict[Path, str] = {}

    def saved(coder: str, transcript_id: str, workbook: str | None) -> str:
        path = study.root / workbook if workbook else workbook_path(study, coder, transcript_id)
        if path not in seen:
            seen[path] = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S") \
                if path.exists() else ""
        return seen[path]

    return saved


def summary(study) -> str:
    """One line for the report's audit trail: how many changes, by how many coders, over which days."""
    history = read_history(study)
    if history.empty:
        return ""
    days = sorted(filter(None, history["saved"].str[:10]))
    span = f", saved {days[0]} to {days[-1]}" if days else ""
    coders = history["coder"].nunique()
    return (f"{len(history):,} change{'s' * (len(history) != 1)} by {coders} coder{'s' * (coders != 1)}{span} "
            f"(data/coded/{FILE})")
