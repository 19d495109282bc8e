"""Rupture → repair sequences within sessions, from the codes of session turns.

Plain functions from tables to tables.  A **rupture marker** is a client turn of a session with one or more
``rupture.*`` codes; a **resolution** is a therapist turn with one or more ``resolution.*`` codes.  A rupture is
**repaired** when a resolution follows it in the same session (a later turn) within ``window_s`` seconds (the
setting ``repair_window_s``); its repair is the first such resolution, and the time to repair runs from the start
of the rupture turn to the start of the resolution turn.  Several ruptures in a row may share one repair.

As the 3RS does, ruptures are also counted per 5-minute segment of each session, by type (withdrawal,
confrontation).  Turns without a time of their own take times interpolated from their neighbours (as alignment
does); in a session without any times, no window can be measured, and its ruptures have the status ``no_time``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .align import session_times
from .files import grouped, member
from .timecode import format_time

RUPTURE_TYPES = ("withdrawal", "confrontation")
SEGMENT_S = 300.0

MARKER_COLUMNS = ["case", "session", "transcript_id", "turn_id", "seq", "time_s", "codes", "type", "text"]
SEQUENCE_COLUMNS = ["case", "session", "transcript_id", "rupture_turn_id", "rupture_s", "rupture_type",
                    "rupture_codes", "rupture_text", "repair_turn_id", "repair_s", "repair_codes", "repair_text",
                    "time_to_repair_s", "status"]
SUMMARY_COLUMNS = ["case", "session", "ruptures", "withdrawal", "confrontation", "resolutions", "repaired",
                   "resolution_rate", "median_time_to_repair_s", "mean_time_to_repair_s"]
SEGMENT_COLUMNS = ["case", "session", "segment", "from_s", "to_s", "turns", "withdrawal", "confrontation",
                   "ruptures", "resolutions", "repaired"]
ALL = "(all)"


def timed_session_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """The session turns in order, with ``time_s``: the start time, interpolated where a turn has none."""
    session = turns[turns["kind"] == "session"].sort_values(["transcript_id", "seq"], kind="stable")
    session = session.assign(time_s=session["start_s"].astype("float64")).reset_index(drop=True)
    gaps = session.loc[session["time_s"].isna(), "transcript_id"].unique()
    for tid in gaps:  # only transcripts with a turn without a time need interpolating
        rows = session.index[session["transcript_id"] == tid]
        session.loc[rows, "time_s"] = session_times(session.loc[rows])
    return session


def _markers(codes: pd.DataFrame, turns: pd.DataFrame, prefix: str, role: str,
             timed: pd.DataFrame | None = None) -> pd.DataFrame:
    timed = timed_session_turns(turns) if timed is None else timed
    hits = codes[(codes["unit_type"] == "turn") & codes["code_id"].str.startswith(prefix)]
    hits = hits[member(hits["unit_id"], timed.loc[timed["role"] == role, "turn_id"])]
    if hits.empty:
        return pd.DataFrame(columns=MARKER_COLUMNS).astype({"seq": "int64", "time_s": "float64"})
    per_turn: dict[str, set[str]] = {}
    for unit, code in zip(hits["unit_id"].tolist(), hits["code_id"].tolist(), strict=True):
        per_turn.setdefault(unit, set()).add(code)
    t = timed[member(timed["turn_id"], per_turn)].copy()
    t["codes"] = [";".join(sorted(per_turn[u])) for u in t["turn_id"].tolist()]
    t["type"] = t["codes"].map(rupture_type) if prefix == "rupture." else "resolution"
    t = t.sort_values(["case", "session", "transcript_id", "seq"])
    return t[MARKER_COLUMNS].reset_index(drop=True).astype({"seq": "int64", "time_s": "float64"})


def rupture_type(codes: str) -> str:
    """``withdrawal``, ``confrontation`` or both (``withdrawal+confrontation``), from ``;``-joined code IDs."""
    kinds = {c.split(".")[1] for c in codes.split(";") if c.count(".") >= 1}
    found = [k for k in RUPTURE_TYPES if k in kinds]
    return "+".join(found) if found else "other"


def rupture_markers(codes: pd.DataFrame, turns: pd.DataFrame, timed: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per client session turn with a ``rupture.*`` code: its time, its codes, its type.  ``timed``: the
    :func:`timed_session_turns` of ``turns``, when the caller has them already."""
    return _markers(codes, turns, "rupture.", "client", timed)


def resolution_markers(codes: pd.DataFrame, turns: pd.DataFrame,
                       timed: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per therapist session turn with a ``resolution.*`` code."""
    return _markers(codes, turns, "resolution.", "therapist", timed)


def repair_sequences(ruptures: pd.DataFrame, resolutions: pd.DataFrame, window_s: float = 300.0) -> pd.DataFrame:
    """For each rupture, the first resolution that follows it in its session within ``window_s`` seconds."""
    rows = []
    # each session's resolutions in order: its seqs and times as arrays, and its rows
    groups = grouped(resolutions, ["transcript_id"], "seq", ("seq", "time_s", "turn_id", "codes", "text"))
    by_session = {tid: (np.array(g["seq"]), np.array(g["time_s"], dtype=float), g) for (tid,), g in groups.items()}
    rupture_columns = ("case", "session", "transcript_id", "turn_id", "time_s", "type", "codes", "text", "seq")
    for case, session, tid, turn_id, time_s, kind, codes, text, seq in zip(
            *(ruptures[c].tolist() for c in rupture_columns), strict=True):
        row = {"case": case, "session": session, "transcript_id": tid,
               "rupture_turn_id": turn_id, "rupture_s": time_s, "rupture_type": kind,
               "rupture_codes": codes, "rupture_text": text, "repair_turn_id": None, "repair_s": math.nan,
               "repair_codes": None, "repair_text": None, "time_to_repair_s": math.nan}
        if _missing(time_s):
            row["status"] = "no_time"
            rows.append(row)
            continue
        fix, fixes = None, None
        if tid in by_session:
            seqs, times, fixes = by_session[tid]
            start = int(np.searchsorted(seqs, seq, side="right"))  # the resolutions after the rupture turn
            within = np.flatnonzero(times[start:] - time_s <= window_s)
            fix = start + int(within[0]) if len(within) else None
        if fix is None:
            row["status"] = "unrepaired"
        else:
            repair_s = float(fixes["time_s"][fix])
            row.update({"repair_turn_id": fixes["turn_id"][fix], "repair_s": repair_s,
                        "repair_codes": fixes["codes"][fix], "repair_text": fixes["text"][fix],
                        "time_to_repair_s": max(0.0, repair_s - float(time_s)), "status": "repaired"})
        rows.append(row)
    out = pd.DataFrame(rows, columns=SEQUENCE_COLUMNS).astype(
        {"rupture_s": "float64", "repair_s": "float64", "time_to_repair_s": "float64"})
    for c in ("repair_turn_id", "repair_codes", "repair_text"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def resolution_summary(sequences: pd.DataFrame, resolutions: pd.DataFrame | None = None,
                       sessions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per session and over all sessions: ruptures by type, resolutions, repaired, the resolution rate (repaired
    of the ruptures whose time is known) and the median and mean time to repair.  ``sessions`` (columns ``case,
    session``) adds the sessions without any rupture or resolution, with zeros."""
    resolutions = resolutions if resolutions is not None else pd.DataFrame(columns=MARKER_COLUMNS)
    keys = sorted(_sessions(sequences) | _sessions(resolutions) | (_sessions(sessions) if sessions is not None
                                                                    else set()))
    # the columns as lists, each session's rows found once (filtering a frame per session cost more than the rest)
    per: dict[tuple, list[tuple]] = {}
    rows_all = list(zip(sequences["case"].tolist(), sequences["session"].tolist(), sequences["status"].tolist(),
                        sequences["rupture_type"].tolist(), sequences["time_to_repair_s"].tolist(), strict=True))
    for r in rows_all:
        per.setdefault(r[:2], []).append(r[2:])
    n_res = resolutions.groupby(["case", "session"], sort=False).size().to_dict() if len(resolutions) else {}
    rows = []
    for case, session in keys + [(ALL, "")]:
        if case == ALL:
            if len(keys) < 2:
                break
            rows.append(_summary_row(case, session, [r[2:] for r in rows_all], len(resolutions)))
        else:
            rows.append(_summary_row(case, session, per.get((case, session), []),
                                     int(n_res.get((case, session), 0))))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _sessions(df: pd.DataFrame) -> set[tuple]:
    """The (case, session) pairs of a table."""
    return set(zip(df["case"].tolist(), df["session"].tolist(), strict=True))


def _summary_row(case, session, s: list[tuple[str, str, float]], n_resolutions: int) -> dict:
    """The summary of one session's ruptures, ``s``: (status, rupture type, time to repair) each."""
    n_timed = sum(status != "no_time" for status, _, _ in s)
    ttr = np.array([t for status, _, t in s if status == "repaired"], dtype="float64")
    return {
        "case": case, "session": session, "ruptures": len(s),
        "withdrawal": sum("withdrawal" in kind for _, kind, _ in s),
        "confrontation": sum("confrontation" in kind for _, kind, _ in s),
        "resolutions": n_resolutions, "repaired": len(ttr),
        "resolution_rate": round(len(ttr) / n_timed, 3) if n_timed else math.nan,
        "median_time_to_repair_s": float(np.median(ttr)) if len(ttr) else math.nan,
        "mean_time_to_repair_s": round(float(np.mean(ttr)), 1) if len(ttr) else math.nan,
    }


def session_durations(turns: pd.DataFrame, timed: pd.DataFrame | None = None) -> pd.DataFrame:
    """``case, session, transcript_id, duration_s`` for every session transcript (NaN when it has no times)."""
    timed = timed_session_turns(turns) if timed is None else timed
    if timed.empty:
        return pd.DataFrame(columns=["case", "session", "transcript_id", "duration_s"])
    last = timed.assign(end=timed[["time_s", "end_s"]].astype("float64").max(axis=1))
    g = last.groupby("transcript_id", sort=True)
    out = g[["case", "session"]].first().assign(duration_s=g["end"].max()).reset_index()
    return out[["case", "session", "transcript_id", "duration_s"]]


def ruptures_per_segment(ruptures: pd.DataFrame, resolutions: pd.DataFrame, sequences: pd.DataFrame,
                         turns: pd.DataFrame, segment_s: float = SEGMENT_S,
                         timed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Ruptures (client turns with a rupture code) by type, resolutions and repaired ruptures per segment of
    ``segment_s`` seconds of every timed session, empty segments included, with the session turns in each (none:
    a stretch not transcribed, whose zeros say nothing).  ``timed``: the :func:`timed_session_turns` of
    ``turns``, when the caller has them already."""
    timed = timed_session_turns(turns) if timed is None else timed
    durations = session_durations(turns, timed)
    n_of = {d.transcript_id: max(1, math.ceil(d.duration_s / segment_s))
            for d in durations.itertuples(index=False) if not _missing(d.duration_s)}
    repaired = set(sequences.loc[sequences["status"] == "repaired", "rupture_turn_id"].tolist())

    def counts(markers: pd.DataFrame, columns: dict) -> dict:
        """Per (transcript, segment): the sums of ``columns`` (name: a per-marker array), counted once for all."""
        keep = member(markers["transcript_id"], n_of) & markers["time_s"].notna().to_numpy(dtype=bool)
        if not keep.any():
            return {}
        m = markers[keep]
        last = m["transcript_id"].map(n_of).to_numpy(dtype=float) - 1
        k = np.minimum((m["time_s"] // segment_s).to_numpy(), last).astype(int)
        frame = pd.DataFrame({"transcript_id": m["transcript_id"].to_numpy(object), "k": k,
                              **{c: v[keep] for c, v in columns.items()}})
        sums = frame.groupby(["transcript_id", "k"], sort=False).sum()
        return {key: tuple(int(x) for x in row) for key, row in zip(sums.index, sums.to_numpy(), strict=True)}

    types = ruptures["type"]
    rup = counts(ruptures, {
        "withdrawal": types.str.contains("withdrawal").fillna(False).to_numpy(dtype=int),
        "confrontation": types.str.contains("confrontation").fillna(False).to_numpy(dtype=int),
        "ruptures": np.ones(len(ruptures), dtype=int),
        "repaired": np.fromiter((t in repaired for t in ruptures["turn_id"].tolist()), dtype=int, count=len(ruptures))})
    res = counts(resolutions, {"resolutions": np.ones(len(resolutions), dtype=int)})
    said = counts(timed, {"turns": np.ones(len(timed), dtype=int)})
    rows = []
    for d in durations.itertuples(index=False):
        if d.transcript_id not in n_of:
            continue
        for k in range(n_of[d.transcript_id]):
            w, c, n, fixed = rup.get((d.transcript_id, k), (0, 0, 0, 0))
            rows.append({"case": d.case, "session": d.session, "segment": k + 1, "from_s": k * segment_s,
                         "to_s": min((k + 1) * segment_s, max(d.duration_s, k * segment_s)),
                         "turns": said.get((d.transcript_id, k), (0,))[0], "withdrawal": w, "confrontation": c,
                         "ruptures": n, "resolutions": res.get((d.transcript_id, k), (0,))[0], "repaired": fixed})
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def segment_label(from_s: float, to_s: float) -> str:
    return f"{format_time(from_s)}–{format_time(to_s)}"
