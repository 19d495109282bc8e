"""The tables of the report: every number the PI reads, computed from the stage tables.

Each function takes tables and returns a table; :func:`report_tables` computes them all, by the caption they
have in the document (also their sheet in ``tables.xlsx``).  Nothing here knows about Word.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from . import sequences as seq
from .files import member
from .study import CONSENSUS
from .timecode import format_time

WORDS_PER_PAGE = 350
AUTO = "auto"
EXEMPLARS_PER_CODE = 2
ROLE_ORDER = ["client turn", "therapist turn", "client recall", "therapist recall"]

FAMILY_NAMES = {"rupture.withdrawal": "Withdrawal ruptures", "rupture.confrontation": "Confrontation ruptures",
                "resolution": "Resolution strategies", "recall.rupture": "Recalled strain",
                "recall.repair": "Recalled repair", "recall.awareness": "Therapist awareness"}
FAMILY_SHORT = {"rupture.withdrawal": "withdrawal", "rupture.confrontation": "confrontation",
                "resolution": "resolution", "recall.rupture": "recalled strain", "recall.repair": "recalled repair",
                "recall.awareness": "awareness"}
NOT_NOTICED = re.compile(r"(^|[._-])(not|none|never|no|unaware|unnoticed|missed|absent)([._-]|$)", re.I)



# --- small helpers ------------------------------------------------------------------------------------------

def family(code_id: str) -> str:
    parts = code_id.split(".")
    return ".".join(parts[:2]) if parts[0] in ("rupture", "recall") and len(parts) > 1 else parts[0]


def code_names(codebook) -> dict[str, str]:
    return {c.id: c.name for c in codebook.codes}


def family_name(fam: str, codebook) -> str:
    code = codebook.get(fam) if hasattr(codebook, "get") else None
    return (code.name if code is not None and code.name else FAMILY_NAMES.get(fam, fam))


def named(ids: str | None, names: dict[str, str]) -> str:
    """``a;b`` as ``Name of a (a); Name of b (b)``: the code names beside their IDs."""
    if not isinstance(ids, str) or not ids:
        return ""
    return "; ".join(f"{names[c]} ({c})" if names.get(c) else c for c in ids.split(";") if c)


def names_only(ids: str | None, names: dict[str, str]) -> str:
    """``a;b`` as ``Name of a; Name of b`` (the ID where a code has no name)."""
    if not isinstance(ids, str) or not ids:
        return ""
    return "; ".join(names.get(c) or c for c in ids.split(";") if c)


def percent(x: float) -> str:
    return "" if x is None or x != x else f"{100 * x:.0f}%"


def _num(x, digits: int = 2) -> str:
    return "" if x is None or x != x else f"{x:.{digits}f}"


def word_count(text: pd.Series) -> pd.Series:
    """Words (runs of non-space) per text; none in a missing one."""
    counts = [len(t.split()) if isinstance(t, str) else 0 if pd.isna(t) else len(str(t).split())
              for t in text.tolist()]
    return pd.Series(counts, index=text.index, dtype="int64")


def _distinct(values) -> set:
    """The distinct values of a column (or any iterable): a column's own ``unique`` spares iterating thousands of
    arrow-backed values one by one."""
    return set(values.unique() if isinstance(values, pd.Series) else values)


# --- the tables ---------------------------------------------------------------------------------------------

def overview(turns: pd.DataFrame, words_per_turn: pd.Series | None = None) -> pd.DataFrame:
    """What was analysed.  ``words_per_turn``: the :func:`word_count` of the turns, when the caller has it."""
    words_per_turn = word_count(turns["text"]) if words_per_turn is None else words_per_turn
    words = int(words_per_turn.sum()) if len(turns) else 0
    return pd.DataFrame([
        ("cases", turns["case"].nunique()),
        ("sessions", turns.loc[turns["kind"] == "session", "transcript_id"].nunique()),
        ("IPR interviews", turns.loc[turns["kind"] == "ipr", "transcript_id"].nunique()),
        ("turns", len(turns)),
        ("words", words),
        (f"pages ({WORDS_PER_PAGE} words a page)", round(words / WORDS_PER_PAGE, 1)),
    ], columns=["what", "count"])


def transcripts_table(turns: pd.DataFrame, words_per_turn: pd.Series | None = None) -> pd.DataFrame:
    """One row per transcript: what it is, how long, how much text.  ``words_per_turn`` as for :func:`overview`."""
    cols = ["transcript_id", "case", "session", "kind", "participant", "turns", "words", "pages", "duration"]
    rows = []
    if not len(turns):
        return pd.DataFrame(rows, columns=cols)
    # per transcript, computed once for the whole table: words, turns, the last time, the first row
    words_per_turn = word_count(turns["text"]) if words_per_turn is None else words_per_turn
    per = turns.assign(_words=words_per_turn,
                       _last=turns[["start_s", "end_s"]].astype("float64").max(axis=1)).groupby(
        "transcript_id", sort=True)
    n_words, n_turns, last = per["_words"].sum().to_dict(), per.size(), per["_last"].max().to_dict()
    firsts = turns.drop_duplicates("transcript_id").set_index("transcript_id")[
        ["case", "session", "kind", "participant"]].to_dict("index")
    for tid, n in n_turns.items():
        words = int(n_words[tid])
        first = firsts[tid]
        rows.append({"transcript_id": tid, "case": first["case"], "session": first["session"],
                     "kind": "session" if first["kind"] == "session" else "IPR interview",
                     "participant": first["participant"] if first["kind"] == "ipr" else "",
                     "turns": int(n), "words": words, "pages": round(words / WORDS_PER_PAGE, 1),
                     "duration": format_time(last[tid]) if last[tid] == last[tid] else ""})
    return pd.DataFrame(rows, columns=cols)


def alignment_table(alignment: pd.DataFrame) -> pd.DataFrame:
    cols = ["case", "session", "participant", "stops", "aligned", "aligned %", "not aligned (why)", "notes"]
    rows = [{"case": r.case, "session": r.session, "participant": r.participant, "stops": int(r.stops),
             "aligned": int(r.aligned), "aligned %": percent(r.aligned / r.stops) if r.stops else "",
             "not aligned (why)": (r.not_aligned or "").replace("_", " "), "notes": r.notes or ""}
            for r in alignment.sort_values(["case", "session", "participant"]).itertuples(index=False)]
    if len(rows) > 1:
        stops, aligned = sum(r["stops"] for r in rows), sum(r["aligned"] for r in rows)
        rows.append({"case": "(all)", "session": "", "participant": "", "stops": stops, "aligned": aligned,
                     "aligned %": percent(aligned / stops) if stops else "", "not aligned (why)": "", "notes": ""})
    return pd.DataFrame(rows, columns=cols)


def human_coders(codes: pd.DataFrame) -> list[str]:
    return sorted(_distinct(codes["coder"]) - {AUTO, CONSENSUS})


# The rule_id of a consensus code the report made (not the consensus coder's): whose codes they are.
COMPUTED = "(two or more coders)"  # the codes two or more of the coders who coded a unit gave it
SINGLE = "(one coder)"  # the codes of the one coder who coded a unit
MADE = (COMPUTED, SINGLE)


def consensus(codes: pd.DataFrame, coded: pd.DataFrame | None = None) -> pd.DataFrame:
    """The coders' codes as one (coder ``consensus``): on a unit two or more coders coded, the codes two or more of
    them gave it; on a unit one coder coded (a study that double-codes a part for reliability), that coder's.
    ``coded``: (coder, unit_id) of every unit each coder coded, a memo alone too (the codes table does not hold
    those); without it, who coded a unit is told by the codes."""
    human = codes[~codes["coder"].isin([AUTO, CONSENSUS])]
    per = human.drop_duplicates(["unit_type", "unit_id", "code_id", "coder"])
    n = per.groupby(["unit_type", "unit_id", "code_id"], sort=False)["coder"].nunique().reset_index(name="n")
    coders_of = per.groupby("unit_id")["coder"].nunique()
    if coded is not None:
        listed = coded[~coded["coder"].isin([AUTO, CONSENSUS])].drop_duplicates(["unit_id", "coder"])
        coders_of = coders_of.combine(listed.groupby("unit_id").size(), max, fill_value=0)
    alone = n["unit_id"].map(coders_of).fillna(1).to_numpy() <= 1
    keep = (n["n"] >= 2).to_numpy() | alone
    return n.loc[keep, ["unit_type", "unit_id", "code_id"]].assign(
        coder=CONSENSUS, rule_id=np.where(alone[keep], SINGLE, COMPUTED), evidence="", start_char=-1,
        end_char=-1).reset_index(drop=True)


def sources(codes: pd.DataFrame) -> list[str]:
    """Whose codes the report counts: the automatic suggestions always, each coder, and the consensus where
    the consensus coder or two or more coders coded."""
    coders = human_coders(codes)
    return [AUTO] + coders + ([CONSENSUS] if len(coders) >= 2 or (codes["coder"] == CONSENSUS).any() else [])


def consensus_made_of(codes: pd.DataFrame) -> str:
    """Whose the consensus of ``with_consensus`` is, as the report says it."""
    rules = set(codes.loc[codes["coder"] == CONSENSUS, "rule_id"])
    if rules and not rules & set(MADE):
        return "the codes of the consensus coder, in data/coded/consensus/"
    parts = (["the consensus coder's codes where it coded the unit (data/coded/consensus/)"] if rules - set(MADE)
             else []) + ["the codes two or more coders gave it where two or more coded it"]
    if SINGLE in rules:
        parts.append("the coder's codes where one coder coded it")
    return "per unit, " + "; ".join(parts)


def with_consensus(codes: pd.DataFrame, coded: pd.DataFrame | None = None) -> pd.DataFrame:
    """The codes with the consensus: on a unit the consensus coder coded, its codes (a meeting decides the units
    the coders disagreed on); on any other, the coders' codes as :func:`consensus` makes them one.  ``coded``:
    (coder, unit_id) of every unit each coder coded, with a memo alone too."""
    agreed = codes[codes["coder"] == CONSENSUS]
    if len(human_coders(codes)) < 2 or agreed["rule_id"].isin(MADE).any():
        return codes
    decided = set(agreed["unit_id"])
    if coded is not None:
        decided |= set(coded.loc[coded["coder"] == CONSENSUS, "unit_id"])
    made = consensus(codes, coded)
    made = made[~made["unit_id"].isin(decided)]
    return pd.concat([codes, made], ignore_index=True) if len(made) else codes


def coded_units(codes: pd.DataFrame, turns: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, unit, code), with the unit's case, session and role (``client turn``,
    ``therapist recall`` ...)."""
    per = codes.drop_duplicates(["coder", "unit_type", "unit_id", "code_id"])
    t = turns.set_index("turn_id")[["case", "session", "role"]]
    s = segments.set_index("segment_id")[["case", "session", "participant"]]
    s = s.rename(columns={"participant": "role"})
    rows = []
    for unit_type, info, suffix in (("turn", t, "turn"), ("segment", s, "recall")):
        part = per[per["unit_type"] == unit_type].join(info, on="unit_id")
        part["role"] = part["role"].fillna("unknown").astype(str) + f" {suffix}"
        rows.append(part)
    out = pd.concat(rows, ignore_index=True) if rows else per
    out["case"] = out["case"].fillna("?")
    out["session"] = out["session"].fillna("?")
    out["family"] = out["code_id"].map(family)
    return out[["coder", "unit_type", "unit_id", "code_id", "family", "case", "session", "role"]]


def _ordered_codes(ids, codebook) -> list[str]:
    order = {c.id: i for i, c in enumerate(codebook.codes)}
    return sorted(_distinct(ids), key=lambda c: (order.get(c, len(order)), c))


def _ordered_families(fams, codebook) -> list[str]:
    order: dict[str, int] = {}
    for i, c in enumerate(codebook.codes):
        order.setdefault(family(c.id), i)
    return sorted(_distinct(fams), key=lambda f: (order.get(f, len(order)), f))


def _counts(units: pd.DataFrame, keys: list[str]) -> dict[tuple, int]:
    """Units per combination of ``keys``, counted in one pass (filtering the table once per cell of a summary
    took most of its time); a combination without units is not in it."""
    return units.groupby(keys, sort=False)["unit_id"].count().to_dict() if len(units) else {}


def codes_by_code(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    names = code_names(codebook)
    counts = _counts(units, ["code_id", "coder"])
    rows = []
    for code_id in _ordered_codes(units["code_id"], codebook):
        rows.append({"code_id": code_id, "name": names.get(code_id, ""), "family": family(code_id),
                     **{s: counts.get((code_id, s), 0) for s in srcs}})
    return pd.DataFrame(rows, columns=["code_id", "name", "family", *srcs])


def codes_by_family(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    counts = _counts(units, ["family", "coder"])
    rows = []
    for fam in _ordered_families(units["family"], codebook):
        rows.append({"family": fam, "name": family_name(fam, codebook),
                     **{s: counts.get((fam, s), 0) for s in srcs}})
    return pd.DataFrame(rows, columns=["family", "name", *srcs])


def codes_by_session(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    """Units per source, case and session (rows: as many as there are sessions), by family (columns)."""
    fams = _ordered_families(units["family"], codebook)
    cols = [FAMILY_SHORT.get(f, f) for f in fams]
    counts = _counts(units, ["coder", "case", "session", "family"])
    rows = []
    keys = sorted(set(zip(units["case"].tolist(), units["session"].tolist(), strict=True)))
    for src in srcs:
        for case, session in keys:
            n = [counts.get((src, case, session, f), 0) for f in fams]
            rows.append({"coded by": src, "case": case, "session": session, **dict(zip(cols, n, strict=True)),
                         "all": sum(n)})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", *cols, "all"])


def codes_by(units: pd.DataFrame, srcs: list[str], codebook, by: str = "role") -> pd.DataFrame:
    """Units per source and family, spread over the roles (``client turn``, ``therapist recall`` ...)."""
    roles = _distinct(units["role"])
    cols = [r for r in ROLE_ORDER if r in roles] + sorted(roles - set(ROLE_ORDER))
    counts = _counts(units, ["coder", "family", "role"])
    rows = []
    for src in srcs:
        for fam in _ordered_families(units["family"], codebook):
            n = [counts.get((src, fam, c), 0) for c in cols]
            rows.append({"coded by": src, "family": fam, **dict(zip(cols, n, strict=True)), "all": sum(n)})
    return pd.DataFrame(rows, columns=["coded by", "family", *cols, "all"])


def code_counts_long(units: pd.DataFrame, codebook) -> pd.DataFrame:
    names = code_names(codebook)
    g = units.groupby(["coder", "family", "code_id", "case", "session", "role"], as_index=False)["unit_id"].count()
    g = g.rename(columns={"coder": "coded by", "unit_id": "units"})
    g.insert(3, "name", g["code_id"].map(names).fillna(""))
    return g.reset_index(drop=True)


@dataclass
class Sequences:
    source: str
    ruptures: pd.DataFrame
    resolutions: pd.DataFrame
    sequences: pd.DataFrame
    summary: pd.DataFrame
    per_segment: pd.DataFrame


def sequence_sources(codes: pd.DataFrame) -> list[str]:
    """The automatic suggestions, and the coders' consensus when there is one."""
    return [AUTO] + ([CONSENSUS] if CONSENSUS in _distinct(codes["coder"]) else [])


def compute_sequences(codes: pd.DataFrame, turns: pd.DataFrame, source: str, window_s: float) -> Sequences:
    mine = codes[codes["coder"] == source]
    timed = seq.timed_session_turns(turns)  # once, for every step below
    durations = seq.session_durations(turns, timed)
    rup = seq.rupture_markers(mine, turns, timed)
    res = seq.resolution_markers(mine, turns, timed)
    s = seq.repair_sequences(rup, res, window_s)
    return Sequences(source, rup, res, s, seq.resolution_summary(s, res, durations),
                     seq.ruptures_per_segment(rup, res, s, turns, timed=timed))


def repair_summary_table(runs: list[Sequences]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for x in r.summary.itertuples(index=False):
            rows.append({"coded by": r.source, "case": x.case, "session": x.session, "ruptures": x.ruptures,
                         "withdrawal": x.withdrawal, "confrontation": x.confrontation,
                         "resolutions": x.resolutions, "repaired": x.repaired,
                         "resolution rate": percent(x.resolution_rate),
                         "median time to repair": format_time(x.median_time_to_repair_s),
                         "mean time to repair": format_time(x.mean_time_to_repair_s)})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", "ruptures", "withdrawal", "confrontation",
                                       "resolutions", "repaired", "resolution rate",
                                       "median time to repair", "mean time to repair"])


STATUS_TEXT = {"repaired": "repaired", "unrepaired": "no repair in window", "no_time": "no time"}


def sequences_table(runs: list[Sequences], names: dict[str, str]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for x in r.sequences.itertuples(index=False):
            rows.append({"coded by": r.source, "case": x.case, "session": x.session,
                         "rupture at": format_time(x.rupture_s), "type": x.rupture_type,
                         "rupture markers": names_only(x.rupture_codes, names), "client said": x.rupture_text,
                         "repair at": format_time(x.repair_s),
                         "resolution strategy": names_only(x.repair_codes, names),
                         "time to repair": format_time(x.time_to_repair_s), "outcome": STATUS_TEXT[x.status],
                         "rupture codes": x.rupture_codes, "resolution codes": x.repair_codes or "",
                         "rupture_turn_id": x.rupture_turn_id, "repair_turn_id": x.repair_turn_id,
                         "rupture at (s)": x.rupture_s, "time to repair (s)": x.time_to_repair_s})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", "rupture at", "type", "rupture markers",
                                       "client said", "repair at", "resolution strategy", "time to repair",
                                       "outcome", "rupture codes", "resolution codes", "rupture_turn_id",
                                       "repair_turn_id", "rupture at (s)",
                                       "time to repair (s)"])


def per_segment_table(runs: list[Sequences]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for x in r.per_segment.itertuples(index=False):
            rows.append({"coded by": r.source, "case": x.case, "session": x.session,
                         "5-minute segment": f"{x.segment}: {seq.segment_label(x.from_s, x.to_s)}",
                         "session turns": x.turns, "withdrawal": x.withdrawal, "confrontation": x.confrontation,
                         "ruptures": x.ruptures, "resolutions": x.resolutions, "repaired": x.repaired,
                         "from (s)": x.from_s})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", "5-minute segment", "session turns",
                                       "withdrawal", "confrontation", "ruptures", "resolutions", "repaired",
                                       "from (s)"])


def _unit_codes(codes: pd.DataFrame, unit_id: str, prefix: str = "") -> list[str]:
    return sorted({c for u, c in zip(codes["unit_id"], codes["code_id"], strict=True)
                   if u == unit_id and c.startswith(prefix)})


def noticed(codes: list[str], participant: str) -> bool:
    """Whether a recall says the participant noticed a rupture: a ``recall.rupture.*`` code, or (therapist) a
    ``recall.awareness.*`` code other than one for not noticing."""
    if any(c.startswith("recall.rupture.") for c in codes):
        return True
    return participant == "therapist" and any(
        c.startswith("recall.awareness.") and not NOT_NOTICED.search(c[len("recall.awareness."):]) for c in codes)


_NO_CODES = pd.DataFrame(columns=["unit_type", "unit_id", "code_id", "coder"])


def recall_codes(codes: pd.DataFrame, unit_id: str) -> tuple[list[str], str]:
    """A recall's ``recall.*`` codes and whose they are: the coders' consensus where ``codes`` has consensus rows
    for the recall (:func:`with_consensus`) or two or more coders coded it, otherwise the automatic suggestions.
    ``codes``: the codes table, or a dict of its segment rows by unit (faster for many recalls)."""
    if isinstance(codes, dict):
        mine = codes.get(unit_id, _NO_CODES)
    else:
        mine = codes[(codes["unit_type"] == "segment") & (codes["unit_id"] == unit_id)]
    human = mine[~mine["coder"].isin([AUTO, CONSENSUS])]
    src = CONSENSUS if human["coder"].nunique() >= 2 or (mine["coder"] == CONSENSUS).any() else AUTO
    return sorted({c for c in mine.loc[mine["coder"] == src, "code_id"] if c.startswith("recall.")}), src


def recall_codes_by_unit(codes: pd.DataFrame) -> dict[str, tuple[list[str], str]]:
    """:func:`recall_codes` for every coded recall at once: ``{unit_id: (recall codes, whose)}``.  A recall
    without any code is not in it; its answer is ``([], AUTO)``."""
    mine = codes[codes["unit_type"] == "segment"]
    if mine.empty:
        return {}
    unit = mine["unit_id"].to_numpy(object)
    coder = mine["coder"].to_numpy(object)
    code = mine["code_id"].to_numpy(object)
    humans: dict[str, set] = {}
    agreed: set[str] = set()
    for u, c in zip(unit, coder, strict=True):
        if c == CONSENSUS:
            agreed.add(u)
        elif c != AUTO:
            humans.setdefault(u, set()).add(c)
    whose = {u: CONSENSUS if len(humans.get(u, ())) >= 2 or u in agreed else AUTO for u in dict.fromkeys(unit)}
    found: dict[str, set] = {u: set() for u in whose}
    for u, c, k in zip(unit, coder, code, strict=True):
        if c == whose[u] and isinstance(k, str) and k.startswith("recall."):
            found[u].add(k)
    return {u: (sorted(found[u]), whose[u]) for u in whose}


def merge_excerpts(*texts: str | None) -> str:
    """The session lines of several excerpts, each once, in session order (lines start ``[h:mm:ss]``)."""
    seen: dict[str, None] = {}
    for text in texts:
        for line in (text or "").splitlines():
            seen.setdefault(line)
    def when(line: str) -> float:
        m = re.match(r"^\[(\d+):(\d\d):(\d\d)\]", line)
        return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else math.inf
    return "\n".join(sorted(seen, key=when))


def both_sides(segments: pd.DataFrame, codes: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """One row per pair of client and therapist recalls about the same stretch of session (``linked_segment_ids``):
    the moment, both recalls, their recall codes, and whether each noticed a rupture."""
    cols = ["case", "session", "moment", "client stop", "client recall", "client codes", "client noticed",
            "therapist stop", "therapist recall", "therapist codes", "therapist noticed", "therapist awareness",
            "both noticed", "session excerpt", "client segment", "therapist segment", "client codes by",
            "therapist codes by"]
    if "linked_segment_ids" not in segments.columns:
        return pd.DataFrame(columns=cols)
    # only the columns used: turning every column of every segment into Python values costs
    shown = segments[["segment_id", "case", "session", "participant", "video_s", "window_start_s", "window_end_s",
                      "recall_text", "context_text", "linked_segment_ids"]]
    seg = {r["segment_id"]: r for r in shown.to_dict("records")}
    by_unit = recall_codes_by_unit(codes)  # every recall's codes, found once
    rows = []
    for c in shown[(shown["participant"] == "client")].itertuples(index=False):
        for t_id in filter(None, str(c.linked_segment_ids or "").split(";")):
            if t_id not in seg:
                continue
            t = seg[t_id]
            c_codes, c_src = by_unit.get(c.segment_id, ([], AUTO))
            t_codes, t_src = by_unit.get(t_id, ([], AUTO))
            c_yes, t_yes = noticed(c_codes, "client"), noticed(t_codes, "therapist")
            start = max(c.window_start_s, t["window_start_s"])
            end = min(c.window_end_s, t["window_end_s"])
            rows.append({
                "case": c.case, "session": c.session, "moment": f"{format_time(start)}–{format_time(end)}",
                "client stop": format_time(c.video_s), "client recall": c.recall_text,
                "client codes": named(";".join(c_codes), names), "client noticed": "yes" if c_yes else "no",
                "therapist stop": format_time(t["video_s"]), "therapist recall": t["recall_text"],
                "therapist codes": named(";".join(t_codes), names), "therapist noticed": "yes" if t_yes else "no",
                "both noticed": "yes" if c_yes and t_yes else "no",
                "therapist awareness": names_only(";".join(x for x in t_codes
                                                           if x.startswith("recall.awareness.")), names),
                "session excerpt": merge_excerpts(c.context_text, t["context_text"]),
                "client segment": c.segment_id, "therapist segment": t_id,
                "client codes by": c_src, "therapist codes by": t_src})
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["case", "session", "moment"], kind="stable").reset_index(drop=True)


def exemplars(codes: pd.DataFrame, turns: pd.DataFrame, segments: pd.DataFrame, codebook,
              per_code: int = EXEMPLARS_PER_CODE) -> pd.DataFrame:
    """For each code, up to ``per_code`` units: the coders' consensus first, then a coder's, then the automatic
    suggestions; recalls of aligned segments and session turns that a recall is about first.  A segment shows its
    recall with the session excerpt; a session turn shows itself with the recall about it, where there is one."""
    cols = ["code_id", "name", "coded by", "case", "session", "participant", "unit", "video time", "session time",
            "evidence", "recall", "session excerpt", "unit_id"]
    names = code_names(codebook)
    aligned = segments[segments["status"] == "aligned"]
    about: dict[str, list] = {}
    for s in aligned[["participant", "video_s", "recall_text", "session_turn_ids"]].itertuples(index=False):
        for tid in filter(None, str(s.session_turn_ids).split(";")):
            about.setdefault(tid, []).append(s)
    per = codes.drop_duplicates(["coder", "unit_type", "unit_id", "code_id"])
    found = codes[codes["evidence"].fillna("") != ""].drop_duplicates(["unit_id", "code_id"])
    evidence = dict(zip(zip(found["unit_id"].tolist(), found["code_id"].tolist(), strict=True),
                        found["evidence"].tolist(), strict=True))
    # the ranking, for every coded unit at once: consensus, a coder, auto; about an aligned moment; in order
    seg_key = segments.set_index("segment_id")[["status", "case", "session", "session_s"]].assign(
        far=lambda x: x["status"] != "aligned", when=lambda x: x["session_s"].astype("float64").fillna(0.0))
    turn_key = turns.set_index("turn_id")[["case", "session", "start_s"]].assign(
        far=lambda x: ~member(x.index, about), when=lambda x: x["start_s"].astype("float64").fillna(0.0))
    ranked = []
    for unit_type, key in (("segment", seg_key), ("turn", turn_key)):
        part = per[(per["unit_type"] == unit_type) & member(per["unit_id"], key.index)]
        ranked.append(part.join(key[["far", "case", "session", "when"]], on="unit_id"))
    ranked = pd.concat(ranked, ignore_index=True) if ranked else per
    if ranked.empty:
        return pd.DataFrame(columns=cols)
    ranked["src"] = ranked["coder"].map(lambda c: 0 if c == CONSENSUS else 2 if c == AUTO else 1)
    ranked = ranked.sort_values(["src", "far", "case", "session", "when"], kind="stable")
    ranked = ranked.drop_duplicates(["code_id", "unit_id"]).groupby("code_id", sort=False).head(per_code)
    by_code: dict[str, list] = {}
    for r in ranked.itertuples(index=False):
        by_code.setdefault(r.code_id, []).append(r)
    # the rows of the units shown, looked up by ID (``.loc`` per unit cost more than the rest of the table)
    shown = set(ranked["unit_id"].tolist())
    seg = {r["segment_id"]: r for r in segments[member(segments["segment_id"], shown)].to_dict("records")}
    turn = {r["turn_id"]: r for r in turns[member(turns["turn_id"], shown)].to_dict("records")}
    rows = []
    for code_id in _ordered_codes(ranked["code_id"], codebook):
        cand = []
        for r in by_code[code_id]:
            recalls = sorted(about.get(r.unit_id, []), key=lambda s, u=r.unit_id: s.participant != turn[u][
                "role"]) if r.unit_type == "turn" else []
            cand.append((r, recalls[0] if recalls else None))
        for r, recall in cand:
            ev = evidence.get((r.unit_id, code_id), "")
            if r.unit_type == "segment":
                s = seg[r.unit_id]
                rows.append({"case": s["case"], "session": s["session"], "participant": s["participant"],
                             "unit": f"{s['participant']} recall", "video time": format_time(s["video_s"]),
                             "session time": format_time(s["session_s"]), "recall": s["recall_text"],
                             "session excerpt": s["context_text"] or ""})
            else:
                t = turn[r.unit_id]
                line = f"[{format_time(t['start_s'])}] {t['speaker'] or t['role']}: {t['text']}"
                rows.append({"case": t["case"], "session": t["session"],
                             "participant": recall.participant if recall is not None else "",
                             "unit": f"{t['role']} turn",
                             "video time": format_time(recall.video_s) if recall is not None else "",
                             "session time": format_time(t["start_s"]),
                             "recall": recall.recall_text if recall is not None else "",
                             "session excerpt": line})
            rows[-1].update({"code_id": code_id, "name": names.get(code_id, ""), "coded by": r.coder,
                             "evidence": ev, "unit_id": r.unit_id})
    return pd.DataFrame(rows, columns=cols)


POOLED = "(all codes)"


def interim_table(study, name: str) -> pd.DataFrame | None:
    path = study.interim / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def agreement_table(study) -> pd.DataFrame | None:
    """``data/interim/agreement.parquet`` as ``ipr agreement`` writes it; None when it has not run."""
    return interim_table(study, "agreement")


def versus_display(versus: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The automatic suggestions against each coder: precision and recall per code, over the coder's units."""
    cols = ["coder", "code_id", "name", "units", "suggested", "coded", "both", "precision", "recall"]
    rows = [{"coder": r.coder, "code_id": r.code_id, "name": names.get(r.code_id, ""), "units": r.units,
             "suggested": r.suggested, "coded": r.coded, "both": r.both, "precision": _num(r.precision),
             "recall": _num(r.recall)} for r in versus.itertuples(index=False)]
    return pd.DataFrame(rows, columns=cols)


def progress_display(progress: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How far each coder has got: per coder (all transcripts), and per coder and transcript."""
    from .agreement import progress_by_coder

    rows = [{"coder": r.coder, "transcripts begun": f"{r.begun} of {r.transcripts}",
             "units coded": f"{r.coded:,} of {r.units:,}", "% coded": percent(r.coded / r.units)}
            for r in progress_by_coder(progress).itertuples(index=False)]
    each = progress.drop(columns=["percent_coded"]).assign(
        **{"% coded": [percent(p / 100) for p in progress["percent_coded"]]})
    return pd.DataFrame(rows, columns=["coder", "transcripts begun", "units coded", "% coded"]), each


def disagreements_display(apart: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The coders' disagreements with each code's name, for the consensus meeting's sheet."""
    shown = apart.drop(columns=["unit_type"]).rename(columns={"given_by": "given by", "not_given_by": "not given by"})
    shown.insert(shown.columns.get_loc("code_id") + 1, "name", [names.get(c, "") for c in shown["code_id"]])
    return shown


def agreement_display(agreement: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    cols = ["code_id", "name", "units", "coders", "% agreement", "Cohen's κ", "Krippendorff's α",
            "positive agreement", "Gwet's AC1"]
    rows = []
    for r in agreement.itertuples(index=False):
        rows.append({"code_id": r.code_id, "name": names.get(r.code_id, ""), "units": r.units, "coders": r.coders,
                     "% agreement": percent(r.percent_agreement / 100),  # written as 0-100
                     "Cohen's κ": _num(r.cohen_kappa), "Krippendorff's α": _num(r.krippendorff_alpha),
                     "positive agreement": _num(r.positive_agreement),
                     "Gwet's AC1": _num(getattr(r, "gwet_ac1", np.nan))})  # (a table of an older version)
    return pd.DataFrame(rows, columns=cols)


def pairs_display(pairs: pd.DataFrame) -> pd.DataFrame:
    """The agreement of each pair of coders, every code pooled."""
    rows = [{"coders": f"{r.coder_1} and {r.coder_2}", "units": r.units,
             "% agreement": percent(r.percent_agreement / 100), "Cohen's κ": _num(r.cohen_kappa),
             "Krippendorff's α": _num(r.krippendorff_alpha), "positive agreement": _num(r.positive_agreement),
             "Gwet's AC1": _num(getattr(r, "gwet_ac1", np.nan))} for r in pairs.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["coders", "units", "% agreement", "Cohen's κ", "Krippendorff's α",
                                       "positive agreement", "Gwet's AC1"])


@dataclass
class ReportData:
    tables: dict[str, pd.DataFrame]
    sources: list[str]
    runs: list[Sequences]
    units: pd.DataFrame
    agreement: pd.DataFrame | None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class Counted:
    """The codes with the coders' consensus, their sources, and the coded units with their counts per code: what
    the code charts show, made before the other tables so that a chart that changed is drawn meanwhile."""

    codes: pd.DataFrame
    sources: list[str]
    units: pd.DataFrame
    by_code: pd.DataFrame


def consensus_codes(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The codes table with the consensus (``tables["coded"]``, optional: the units each coder coded)."""
    return with_consensus(tables["codes"], tables.get("coded"))


def count_codes(tables: dict[str, pd.DataFrame], codebook) -> Counted:
    codes = consensus_codes(tables)
    srcs = sources(codes)
    units = coded_units(codes, tables["turns"], tables["segments"])
    return Counted(codes, srcs, units, codes_by_code(units, srcs, codebook))


def sequence_runs(study, tables: dict[str, pd.DataFrame], codes: pd.DataFrame | None = None) -> list[Sequences]:
    """The rupture → repair sequences of each source (the automatic suggestions first, then the consensus).
    ``codes``: the codes with the consensus, when the caller has them already."""
    codes = consensus_codes(tables) if codes is None else codes
    window = float(getattr(study.settings, "repair_window_s", 300.0) or 300.0)
    return [compute_sequences(codes, tables["turns"], s, window) for s in sequence_sources(codes)]


def report_tables(study, codebook, tables: dict[str, pd.DataFrame], audit: dict, now: str | None = None,
                  runs: list[Sequences] | None = None, counted: Counted | None = None) -> ReportData:
    """Every table of the report, by its caption (also its sheet in ``tables.xlsx``).  ``runs`` (the
    :func:`sequence_runs` of these tables) and ``counted`` (their :func:`count_codes`): when the caller has them
    already."""
    turns, segments, alignment = (tables[k] for k in ("turns", "segments", "alignment"))
    counted = count_codes(tables, codebook) if counted is None else counted
    codes, srcs, units = counted.codes, counted.sources, counted.units
    names = code_names(codebook)
    runs = sequence_runs(study, tables, codes) if runs is None else runs
    agreement = agreement_table(study)
    now = now or datetime.now(UTC).isoformat(timespec="seconds")
    words = word_count(turns["text"])  # once for both tables: splitting every text is slow
    out = {
        "Overview": overview(turns, words),
        "Transcripts": transcripts_table(turns, words),
        "Alignment": alignment_table(alignment),
        "Codes by family": codes_by_family(units, srcs, codebook),
        "Codes by code": counted.by_code,
        "Codes by role": codes_by(units, srcs, codebook, "role"),
        "Codes by case and session": codes_by_session(units, srcs, codebook),
        "Code counts (long)": code_counts_long(units, codebook),
        "Repair summary": repair_summary_table(runs),
        "Rupture sequences": sequences_table(runs, names),
        "Ruptures per 5 minutes": per_segment_table(runs),
        "Both sides": both_sides(segments, codes, names),
        "Exemplars": exemplars(codes, turns, segments, codebook),
    }
    if agreement is not None:
        out["Agreement"] = agreement_display(agreement, names)
    pairs = interim_table(study, "agreement_by_pair")
    if pairs is not None:
        out["Agreement by pair"] = pairs_display(pairs)
    versus = interim_table(study, "suggestions_vs_coders")
    if versus is not None:  # (a sheet even when empty: tables.xlsx then need not be opened again to add it)
        out["Suggestions vs coders"] = pooled = versus_display(versus, names)
        if len(versus):
            out["Suggestions vs coders, all"] = pooled[pooled["code_id"] == POOLED].drop(
                columns=["code_id", "name"]).reset_index(drop=True)
    progress = interim_table(study, "coding_progress")
    if progress is not None and len(progress):
        out["Coding progress by coder"], out["Coding progress"] = progress_display(progress)
    apart = interim_table(study, "disagreements")
    if apart is not None:
        out["Disagreements"] = disagreements_display(apart, names)
    replaced = "; ".join(f"{old} → {new}" for old, new in audit.get("replaced", {}).items())
    out["Run"] = pd.DataFrame([("software", audit["software"]), ("codebook", audit["codebook"]),
                               *([("codes renamed or merged (read as the new code)", replaced)] if replaced else []),
                               *([("codes retired (not counted; kept in coders' cells)",
                                   ", ".join(audit["retired"]))] if audit.get("retired") else []),
                               *([("coding history", audit["history"])] if audit.get("history") else []),
                               ("pipeline run started (UTC)", audit["started"]), ("report written (UTC)", now),
                               ("study folder", str(study.root.name))], columns=["what", "value"])
    out["Settings"] = pd.DataFrame([(k, _setting(v)) for k, v in audit["settings"].items()],
                                   columns=["setting", "value"])
    out["Inputs"] = pd.DataFrame(audit["inputs"], columns=["file", "transcript_id", "kind", "sha256"])
    out["Warnings"] = pd.DataFrame({"warning": list(audit["warnings"])})
    return ReportData(out, srcs, runs, units, agreement, {"now": now, "consensus": consensus_made_of(codes)})


def _setting(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v)) or "(none)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)

