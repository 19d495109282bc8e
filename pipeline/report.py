"""Stage 5, report: what the PI reads.  ``reports/summary.docx``, every table in ``reports/tables.xlsx``, the
figures in ``reports/figures/``.

Every number in the document comes from a table that is also written to ``tables.xlsx`` (one sheet per table,
named as the table's caption), so the report can be checked against the data and the tables pasted into a paper.
:func:`report_tables` computes them all; :func:`build_report` writes them.  The document shows each table as it
is, except for a few columns kept for the spreadsheet only (listed in ``DOCX_HIDDEN``) and long texts, which it
cuts (:func:`cell_text`).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from openpyxl import Workbook

from . import sequences as seq
from .files import atomic_path
from .timecode import format_time
from .xlsx import write_table

WORDS_PER_PAGE = 350
AUTO = "auto"
CONSENSUS = "consensus"
EXEMPLARS_PER_CODE = 2
ROLE_ORDER = ["client turn", "therapist turn", "client recall", "therapist recall"]

# Per table: columns that only the spreadsheet shows, and the longest text a docx cell shows.
DOCX_HIDDEN = {
    "Transcripts": ["transcript_id"],
    "Codes by code": ["family"],
    "Rupture sequences": ["rupture codes", "resolution codes", "rupture_turn_id", "repair_turn_id",
                          "rupture at (s)", "time to repair (s)"],
    "Ruptures per 5 minutes": ["from (s)"],
    "Inputs": ["transcript_id"],
    "Both sides": ["client recall", "client codes", "therapist recall", "therapist codes", "session excerpt",
                   "client segment", "therapist segment", "client codes by", "therapist codes by"],
}
DOCX_CUT = {"Rupture sequences": 140}
# Per table: leading columns whose repeated values the docx shows once per block, as tables in papers do.
DOCX_GROUPED = {"Codes by role": ["coded by"], "Codes by case and session": ["coded by", "case"],
                "Repair summary": ["coded by"], "Rupture sequences": ["coded by", "case", "session"],
                "Ruptures per 5 minutes": ["coded by", "case", "session"]}
DOCX_CELL_LIMIT = 600
DOCX_MAX_ROWS = 250
DOCX_MAX_MOMENTS = 40  # a longer table shows its first rows, and says where the rest is
# Tables whose docx shows the code's name and ID in one column ``code`` (name above ID), to save width.
DOCX_COMBINED = {"Agreement", "Suggestions vs coders"}
NUMERIC_TEXT = re.compile(r"^-?(\d+(\.\d+)?%?|\d+:\d\d:\d\d)$")
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


def cell_text(value, limit: int = DOCX_CELL_LIMIT) -> str:
    """A value as a docx cell shows it: empty for missing, long text cut with an ellipsis."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def docx_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The columns the docx shows: without the spreadsheet-only ones, with name and ID in one column where the
    table is in ``DOCX_COMBINED``."""
    df = df.drop(columns=[c for c in DOCX_HIDDEN.get(name, []) if c in df.columns])
    if name in DOCX_COMBINED and {"code_id", "name"} <= set(df.columns):
        code = [f"{n}\n{c}" if isinstance(n, str) and n else c for c, n in zip(df["code_id"], df["name"],
                                                                               strict=True)]
        at = list(df.columns).index("code_id")
        df = df.drop(columns=["code_id", "name"])
        df.insert(at, "code", code)
    return df


def docx_cells(df: pd.DataFrame, name: str) -> list[list[str]]:
    """The cells of a table as the docx shows them: spreadsheet-only columns dropped, long texts cut, repeats of
    the grouping columns blanked (a value shows when it or a grouping column before it changes)."""
    df = docx_frame(df, name)
    cut = DOCX_CUT.get(name, DOCX_CELL_LIMIT)
    groups = [list(df.columns).index(c) for c in DOCX_GROUPED.get(name, []) if c in df.columns]
    rows, prev = [], None
    for row in df.itertuples(index=False):
        cells = [cell_text(v, cut) for v in row]
        shown = list(cells)
        if prev is not None:
            for i in groups:
                if cells[: i + 1] == prev[: i + 1]:
                    shown[i] = ""
                else:
                    break
        rows.append(shown)
        prev = cells
    return [list(map(str, df.columns))] + rows


def percent(x: float) -> str:
    return "" if x is None or x != x else f"{100 * x:.0f}%"


def _num(x, digits: int = 2) -> str:
    return "" if x is None or x != x else f"{x:.{digits}f}"


def word_count(text: pd.Series) -> pd.Series:
    return text.fillna("").astype(str).str.split().str.len().fillna(0).astype(int)


# --- the tables ---------------------------------------------------------------------------------------------

def overview(turns: pd.DataFrame) -> pd.DataFrame:
    words = int(word_count(turns["text"]).sum()) if len(turns) else 0
    return pd.DataFrame([
        ("cases", turns["case"].nunique()),
        ("sessions", turns.loc[turns["kind"] == "session", "transcript_id"].nunique()),
        ("IPR interviews", turns.loc[turns["kind"] == "ipr", "transcript_id"].nunique()),
        ("turns", len(turns)),
        ("words", words),
        (f"pages ({WORDS_PER_PAGE} words a page)", round(words / WORDS_PER_PAGE, 1)),
    ], columns=["what", "count"])


def transcripts_table(turns: pd.DataFrame) -> pd.DataFrame:
    """One row per transcript: what it is, how long, how much text."""
    cols = ["transcript_id", "case", "session", "kind", "participant", "turns", "words", "pages", "duration"]
    rows = []
    for tid, g in turns.groupby("transcript_id", sort=True):
        words = int(word_count(g["text"]).sum())
        times = pd.concat([g["start_s"], g["end_s"]]).astype("float64")
        first = g.iloc[0]
        rows.append({"transcript_id": tid, "case": first["case"], "session": first["session"],
                     "kind": "session" if first["kind"] == "session" else "IPR interview",
                     "participant": first["participant"] if first["kind"] == "ipr" else "",
                     "turns": len(g), "words": words, "pages": round(words / WORDS_PER_PAGE, 1),
                     "duration": format_time(times.max()) if times.notna().any() else ""})
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
    return sorted(set(codes["coder"]) - {AUTO, CONSENSUS})


def consensus(codes: pd.DataFrame, min_coders: int = 2) -> pd.DataFrame:
    """The codes that two or more coders gave the same unit (coder ``consensus``)."""
    human = codes[~codes["coder"].isin([AUTO, CONSENSUS])]
    per = human.drop_duplicates(["unit_type", "unit_id", "code_id", "coder"])
    n = per.groupby(["unit_type", "unit_id", "code_id"], sort=False)["coder"].nunique()
    agreed = n[n >= min_coders].reset_index()[["unit_type", "unit_id", "code_id"]]
    return agreed.assign(coder=CONSENSUS, rule_id="", evidence="", start_char=-1, end_char=-1)


def sources(codes: pd.DataFrame) -> list[str]:
    """Whose codes the report counts: the automatic suggestions always, each coder, and the consensus where
    two or more coders coded."""
    coders = human_coders(codes)
    return [AUTO] + coders + ([CONSENSUS] if len(coders) >= 2 else [])


def with_consensus(codes: pd.DataFrame) -> pd.DataFrame:
    coders = human_coders(codes)
    if len(coders) < 2:
        return codes
    return pd.concat([codes, consensus(codes)], ignore_index=True)


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
    return sorted(set(ids), key=lambda c: (order.get(c, len(order)), c))


def _ordered_families(fams, codebook) -> list[str]:
    order: dict[str, int] = {}
    for i, c in enumerate(codebook.codes):
        order.setdefault(family(c.id), i)
    return sorted(set(fams), key=lambda f: (order.get(f, len(order)), f))


def codes_by_code(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    names = code_names(codebook)
    rows = []
    for code_id in _ordered_codes(units["code_id"], codebook):
        here = units[units["code_id"] == code_id]
        counts = here.groupby("coder")["unit_id"].count()
        rows.append({"code_id": code_id, "name": names.get(code_id, ""), "family": family(code_id),
                     **{s: int(counts.get(s, 0)) for s in srcs}})
    return pd.DataFrame(rows, columns=["code_id", "name", "family", *srcs])


def codes_by_family(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    rows = []
    for fam in _ordered_families(units["family"], codebook):
        here = units[units["family"] == fam]
        counts = here.groupby("coder")["unit_id"].count()
        rows.append({"family": fam, "name": family_name(fam, codebook),
                     **{s: int(counts.get(s, 0)) for s in srcs}})
    return pd.DataFrame(rows, columns=["family", "name", *srcs])


def codes_by_session(units: pd.DataFrame, srcs: list[str], codebook) -> pd.DataFrame:
    """Units per source, case and session (rows: as many as there are sessions), by family (columns)."""
    fams = _ordered_families(units["family"], codebook)
    cols = [FAMILY_SHORT.get(f, f) for f in fams]
    rows = []
    keys = sorted(set(zip(units["case"], units["session"], strict=True)))
    for src in srcs:
        mine = units[units["coder"] == src]
        for case, session in keys:
            here = mine[(mine["case"] == case) & (mine["session"] == session)]
            counts = here.groupby("family")["unit_id"].count()
            rows.append({"coded by": src, "case": case, "session": session,
                         **{c: int(counts.get(f, 0)) for f, c in zip(fams, cols, strict=True)},
                         "all": int(counts.sum())})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", *cols, "all"])


def codes_by(units: pd.DataFrame, srcs: list[str], codebook, by: str = "role") -> pd.DataFrame:
    """Units per source and family, spread over the roles (``client turn``, ``therapist recall`` ...)."""
    units = units.assign(where=units["role"])
    cols = [r for r in ROLE_ORDER if r in set(units["where"])] + sorted(set(units["where"]) - set(ROLE_ORDER))
    rows = []
    for src in srcs:
        mine = units[units["coder"] == src]
        for fam in _ordered_families(units["family"], codebook):
            counts = mine[mine["family"] == fam].groupby("where")["unit_id"].count()
            rows.append({"coded by": src, "family": fam, **{c: int(counts.get(c, 0)) for c in cols},
                         "all": int(counts.sum())})
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
    return [AUTO] + ([CONSENSUS] if CONSENSUS in set(codes["coder"]) else [])


def compute_sequences(codes: pd.DataFrame, turns: pd.DataFrame, source: str, window_s: float) -> Sequences:
    mine = codes[codes["coder"] == source]
    rup = seq.rupture_markers(mine, turns)
    res = seq.resolution_markers(mine, turns)
    s = seq.repair_sequences(rup, res, window_s)
    return Sequences(source, rup, res, s, seq.resolution_summary(s, res, seq.session_durations(turns)),
                     seq.ruptures_per_segment(rup, res, s, turns))


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
                         "withdrawal": x.withdrawal, "confrontation": x.confrontation, "ruptures": x.ruptures,
                         "resolutions": x.resolutions, "repaired": x.repaired, "from (s)": x.from_s})
    return pd.DataFrame(rows, columns=["coded by", "case", "session", "5-minute segment", "withdrawal",
                                       "confrontation", "ruptures", "resolutions", "repaired",
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
    """A recall's ``recall.*`` codes and whose they are: the coders' consensus where two or more coders coded the
    recall, otherwise the automatic suggestions.  ``codes``: the codes table, or a dict of its segment rows by
    unit (faster for many recalls)."""
    if isinstance(codes, dict):
        mine = codes.get(unit_id, _NO_CODES)
    else:
        mine = codes[(codes["unit_type"] == "segment") & (codes["unit_id"] == unit_id)]
    human = mine[~mine["coder"].isin([AUTO, CONSENSUS])]
    src = CONSENSUS if human["coder"].nunique() >= 2 else AUTO
    return sorted({c for c in mine.loc[mine["coder"] == src, "code_id"] if c.startswith("recall.")}), src


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
    seg = segments.set_index("segment_id")
    by_unit = {u: g for u, g in codes[codes["unit_type"] == "segment"].groupby("unit_id", sort=False)}
    rows = []
    for c in segments[(segments["participant"] == "client")].itertuples(index=False):
        for t_id in filter(None, str(c.linked_segment_ids or "").split(";")):
            if t_id not in seg.index:
                continue
            t = seg.loc[t_id]
            (c_codes, c_src), (t_codes, t_src) = recall_codes(by_unit, c.segment_id), recall_codes(by_unit, t_id)
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
    seg = segments.set_index("segment_id")
    turn = turns.set_index("turn_id")
    aligned = segments[segments["status"] == "aligned"]
    about: dict[str, list] = {}
    for s in aligned.itertuples(index=False):
        for tid in filter(None, str(s.session_turn_ids).split(";")):
            about.setdefault(tid, []).append(s)
    per = codes.drop_duplicates(["coder", "unit_type", "unit_id", "code_id"])
    evidence = codes[codes["evidence"].fillna("") != ""].drop_duplicates(["unit_id", "code_id"]).set_index(
        ["unit_id", "code_id"])["evidence"]
    # the ranking, for every coded unit at once: consensus, a coder, auto; about an aligned moment; in order
    seg_key = segments.set_index("segment_id").assign(
        far=lambda x: x["status"] != "aligned", when=lambda x: x["session_s"].astype("float64").fillna(0.0))
    turn_key = turns.set_index("turn_id").assign(
        far=lambda x: ~x.index.isin(list(about)), when=lambda x: x["start_s"].astype("float64").fillna(0.0))
    ranked = []
    for unit_type, key in (("segment", seg_key), ("turn", turn_key)):
        part = per[(per["unit_type"] == unit_type) & per["unit_id"].isin(key.index)]
        ranked.append(part.join(key[["far", "case", "session", "when"]], on="unit_id"))
    ranked = pd.concat(ranked, ignore_index=True) if ranked else per
    if ranked.empty:
        return pd.DataFrame(columns=cols)
    ranked["src"] = ranked["coder"].map(lambda c: 0 if c == CONSENSUS else 2 if c == AUTO else 1)
    ranked = ranked.sort_values(["src", "far", "case", "session", "when"], kind="stable")
    ranked = ranked.drop_duplicates(["code_id", "unit_id"]).groupby("code_id", sort=False).head(per_code)
    by_code = {c: g for c, g in ranked.groupby("code_id", sort=False)}
    seg = segments.set_index("segment_id")
    turn = turns.set_index("turn_id")
    rows = []
    for code_id in _ordered_codes(ranked["code_id"], codebook):
        cand = []
        for r in by_code[code_id].itertuples(index=False):
            recalls = sorted(about.get(r.unit_id, []), key=lambda s, u=r.unit_id: s.participant != turn.loc[
                u, "role"]) if r.unit_type == "turn" else []
            cand.append((r, recalls[0] if recalls else None))
        for r, recall in cand:
            ev = evidence.get((r.unit_id, code_id), "")
            if r.unit_type == "segment":
                s = seg.loc[r.unit_id]
                rows.append({"case": s["case"], "session": s["session"], "participant": s["participant"],
                             "unit": f"{s['participant']} recall", "video time": format_time(s["video_s"]),
                             "session time": format_time(s["session_s"]), "recall": s["recall_text"],
                             "session excerpt": s["context_text"] or ""})
            else:
                t = turn.loc[r.unit_id]
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


def agreement_display(agreement: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    cols = ["code_id", "name", "units", "coders", "% agreement", "Cohen's κ", "Krippendorff's α",
            "positive agreement"]
    rows = []
    for r in agreement.itertuples(index=False):
        rows.append({"code_id": r.code_id, "name": names.get(r.code_id, ""), "units": r.units, "coders": r.coders,
                     "% agreement": percent(r.percent_agreement / 100),  # written as 0-100
                     "Cohen's κ": _num(r.cohen_kappa), "Krippendorff's α": _num(r.krippendorff_alpha),
                     "positive agreement": _num(r.positive_agreement)})
    return pd.DataFrame(rows, columns=cols)


@dataclass
class ReportData:
    tables: dict[str, pd.DataFrame]
    sources: list[str]
    runs: list[Sequences]
    units: pd.DataFrame
    agreement: pd.DataFrame | None
    notes: dict[str, str] = field(default_factory=dict)


def report_tables(study, codebook, tables: dict[str, pd.DataFrame], audit: dict,
                  now: str | None = None) -> ReportData:
    """Every table of the report, by its caption (also its sheet in ``tables.xlsx``)."""
    turns, segments, alignment, codes = (tables[k] for k in ("turns", "segments", "alignment", "codes"))
    codes = with_consensus(codes)
    names = code_names(codebook)
    srcs = sources(codes)
    units = coded_units(codes, turns, segments)
    window = float(getattr(study.settings, "repair_window_s", 300.0) or 300.0)
    runs = [compute_sequences(codes, turns, s, window) for s in sequence_sources(codes)]
    primary = AUTO  # the timelines: the automatic suggestions cover every session; coders may code a part
    agreement = agreement_table(study)
    now = now or datetime.now(UTC).isoformat(timespec="seconds")
    out = {
        "Overview": overview(turns),
        "Transcripts": transcripts_table(turns),
        "Alignment": alignment_table(alignment),
        "Codes by family": codes_by_family(units, srcs, codebook),
        "Codes by code": codes_by_code(units, srcs, codebook),
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
    versus = interim_table(study, "suggestions_vs_coders")
    if versus is not None and len(versus):
        out["Suggestions vs coders"] = versus_display(versus, names)
        pooled = out["Suggestions vs coders"]
        out["Suggestions vs coders, all"] = pooled[pooled["code_id"] == POOLED].drop(
            columns=["code_id", "name"]).reset_index(drop=True)
    out["Run"] = pd.DataFrame([("software", audit["software"]), ("codebook", audit["codebook"]),
                               ("pipeline run started (UTC)", audit["started"]), ("report written (UTC)", now),
                               ("study folder", str(study.root.name))], columns=["what", "value"])
    out["Settings"] = pd.DataFrame([(k, _setting(v)) for k, v in audit["settings"].items()],
                                   columns=["setting", "value"])
    out["Inputs"] = pd.DataFrame(audit["inputs"], columns=["file", "transcript_id", "kind", "sha256"])
    out["Warnings"] = pd.DataFrame({"warning": list(audit["warnings"])})
    return ReportData(out, srcs, runs, units, agreement, {"primary": primary, "now": now})


def _setting(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v)) or "(none)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


# --- the Word document --------------------------------------------------------------------------------------

HEADER_FILL = "DCE6F0"
BORDER = "A6A6A6"
TEXT_CM_PORTRAIT = 17.0
TEXT_CM_LANDSCAPE = 25.7


TBL_PR_ORDER = ["tblStyle", "tblpPr", "tblOverlap", "bidiVisual", "tblStyleRowBandSize", "tblStyleColBandSize",
                "tblW", "jc", "tblCellSpacing", "tblInd", "tblBorders", "shd", "tblLayout", "tblCellMar",
                "tblLook", "tblCaption", "tblDescription"]
TC_PR_ORDER = ["cnfStyle", "tcW", "gridSpan", "hMerge", "vMerge", "tcBorders", "shd", "noWrap", "tcMar",
               "textDirection", "tcFitText", "vAlign", "hideMark"]


def _put(parent, el, order: list[str]) -> None:
    """Insert ``el`` into ``parent`` where the schema wants it (Word refuses elements out of order), replacing
    an element of the same name."""
    name = el.tag.split("}")[1]
    old = parent.find(qn(f"w:{name}"))
    if old is not None:
        parent.replace(old, el)
        return
    later = set(order[order.index(name) + 1:])
    for i, child in enumerate(parent):
        if child.tag.split("}")[1] in later:
            parent.insert(i, el)
            return
    parent.append(el)


def _shade(cell, fill: str) -> None:
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    _put(cell._tc.get_or_add_tcPr(), shd, TC_PR_ORDER)


def _borders(table) -> None:
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "single")
        el.set(qn("w:sz"), "4")
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), BORDER)
        borders.append(el)
    _put(tbl_pr, borders, TBL_PR_ORDER)


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def _no_split(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:cantSplit")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


@functools.cache
def _font(face: str):
    """DejaVu Sans (matplotlib's own font, always there): as wide as any sans font Word or LibreOffice will use
    for Calibri, so a column measured with it is wide enough everywhere."""
    import os

    import matplotlib
    from PIL import ImageFont

    file = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}[face]
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", file), 100)


@functools.lru_cache(maxsize=200_000)
def text_cm(text: str, font_pt: float, face: str = "regular") -> float:
    """The width of ``text`` on the page, in cm."""
    return _font(face).getlength(text) * font_pt / 100 * 2.54 / 72


def _set_widths(table, widths_cm: list[float]) -> None:
    """Widths that both Word (cell widths) and LibreOffice (the table grid) follow."""
    grid = table._tbl.tblGrid
    for col, w in zip(grid.findall(qn("w:gridCol")), widths_cm, strict=True):
        col.set(qn("w:w"), str(int(Cm(w).twips)))
    for row in table.rows:
        for cell, w in zip(row.cells, widths_cm, strict=True):
            cell.width = Cm(w)
    tbl_w = OxmlElement("w:tblW")
    tbl_w.set(qn("w:type"), "dxa")
    tbl_w.set(qn("w:w"), str(int(Cm(sum(widths_cm)).twips)))
    _put(table._tbl.tblPr, tbl_w, TBL_PR_ORDER)
    table.autofit = False


_BAD_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _runs_xml(text: str) -> str:
    """A cell's text as WordprocessingML runs: line breaks as <w:br/>, characters XML cannot hold dropped."""
    from xml.sax.saxutils import escape

    lines = _BAD_XML.sub("", text).split("\n")
    inner = "<w:br/>".join(f'<w:t xml:space="preserve">{escape(line)}</w:t>' for line in lines)
    return f"<w:r>{inner}</w:r>" if text else ""


def rows_xml(table, cells: list[list[str]], widths_cm: list[float], styles: list[str], numeric: list[bool],
             header_style: str) -> None:
    """Append the header row (shaded, repeated on every page) and the body rows (never split across pages) to
    ``table``, as XML in one go: python-docx's cell by cell API takes minutes for a long table."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    tw = [int(Cm(w).twips) for w in widths_cm]
    parts = []
    for k, values in enumerate(cells):
        head = k == 0
        tr = ['<w:tr><w:trPr><w:cantSplit/>' + ('<w:tblHeader/>' if head else "") + "</w:trPr>"]
        for i, text in enumerate(values):
            shade = f'<w:shd w:val="clear" w:color="auto" w:fill="{HEADER_FILL}"/>' if head else ""
            jc = '<w:jc w:val="right"/>' if numeric[i] else ""
            style = header_style if head else styles[i]
            tr.append(f'<w:tc><w:tcPr><w:tcW w:w="{tw[i]}" w:type="dxa"/>{shade}</w:tcPr>'
                      f'<w:p><w:pPr><w:pStyle w:val="{style}"/>{jc}</w:pPr>{_runs_xml(text)}</w:p></w:tc>')
        tr.append("</w:tr>")
        parts.append("".join(tr))
    body = parse_xml(f"<w:tbl {nsdecls('w')}>{''.join(parts)}</w:tbl>")
    for tr in list(body):
        table._tbl.append(tr)


def _is_number(series: pd.Series) -> bool:
    """Numbers, and texts that are numbers, percentages or times: right-aligned."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    texts = [str(v) for v in series if isinstance(v, str) and v]
    return bool(texts) and all(NUMERIC_TEXT.match(t) for t in texts) and len(texts) == series.notna().sum()


class _Doc:
    """The document being written, with numbered table and figure captions."""

    def __init__(self):
        self.doc = Document()
        self.n_table = 0
        self.n_figure = 0
        self.landscape = False
        styles = self.doc.styles
        normal = styles["Normal"]
        normal.font.name = "Calibri"
        normal.font.size = Pt(10)
        normal.paragraph_format.space_after = Pt(4)
        for name, size in (("Heading 1", 15), ("Heading 2", 12), ("Heading 3", 10.5)):
            styles[name].font.size = Pt(size)
            styles[name].paragraph_format.keep_with_next = True
        cap = styles["Caption"]
        cap.font.size = Pt(9)
        cap.font.italic = False
        cap.font.bold = True
        cap.font.color.rgb = RGBColor(0x1F, 0x3A, 0x5F)
        cap.paragraph_format.keep_with_next = True
        cap.paragraph_format.space_before = Pt(6)
        section = self.doc.sections[0]
        for side in ("left_margin", "right_margin"):
            setattr(section, side, Cm(2.0))
        section.top_margin = section.bottom_margin = Cm(2.0)
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        footer = section.footer.paragraphs[0]
        footer.text = "IPR study summary: generated by ipr-pipeline; every table is also in reports/tables.xlsx"
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for run in footer.runs:
            run.font.size = Pt(7)
            run.font.color.rgb = RGBColor(0x80, 0x80, 0x80)

    @property
    def width_cm(self) -> float:
        return TEXT_CM_LANDSCAPE if self.landscape else TEXT_CM_PORTRAIT

    def orientation(self, landscape: bool) -> None:
        if landscape == self.landscape:
            return
        from docx.enum.section import WD_SECTION

        section = self.doc.add_section(WD_SECTION.NEW_PAGE)
        section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
        long, short = Cm(29.7), Cm(21.0)
        section.page_width, section.page_height = (long, short) if landscape else (short, long)
        self.landscape = landscape

    def heading(self, text: str, level: int = 1):
        return self.doc.add_heading(text, level)

    def para(self, text: str = "", style: str | None = None, italic: bool = False, size: float | None = None,
             color: str | None = None, bold: bool = False):
        p = self.doc.add_paragraph(style=style)
        if text:
            run = p.add_run(text)
            run.italic, run.bold = italic, bold
            if size:
                run.font.size = Pt(size)
            if color:
                run.font.color.rgb = RGBColor.from_string(color)
        return p

    def bullet(self, text: str):
        return self.doc.add_paragraph(text, style="List Bullet")

    def caption(self, text: str, kind: str = "Table"):
        if kind == "Table":
            self.n_table += 1
            n = self.n_table
        else:
            self.n_figure += 1
            n = self.n_figure
        return self.doc.add_paragraph(f"{kind} {n}. {text}", style="Caption")

    def table(self, name: str, df: pd.DataFrame, caption: str, font_pt: float = 8.5,
              widths: dict[str, float] | None = None, cut: int | None = None, mono: tuple[str, ...] = ()):
        """A captioned table: ``Table N. caption``; the table's own name is kept in the caption for tests and
        for finding its sheet in tables.xlsx."""
        if df.empty:  # the text around it says why there is nothing
            return None
        cells = docx_cells(df, name)
        total = len(df)
        if total > DOCX_MAX_ROWS:
            cells, df = cells[: DOCX_MAX_ROWS + 1], df.iloc[:DOCX_MAX_ROWS]
        df = docx_frame(df, name)
        cut = cut or DOCX_CUT.get(name, DOCX_CELL_LIMIT)
        numeric = [_is_number(df[c]) for c in df.columns]
        col_cm, font_pt = self._fit(df, widths or {}, cut, font_pt, mono, numeric)
        turned = False
        if col_cm is None:  # too wide for a portrait page even in a small font: a landscape page of its own
            self.orientation(True)
            turned = True
            col_cm, font_pt = self._fit(df, widths or {}, cut, font_pt, mono, numeric, last=True)
        self.caption(f"{caption} [sheet: {name}]")
        table = self.doc.add_table(rows=0, cols=len(df.columns))
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        _borders(table)
        _set_widths(table, col_cm)
        text_style = self._style("Table Text", font_pt)
        styles = [self._style("Table Mono", font_pt) if c in mono else text_style for c in df.columns]
        rows_xml(table, cells, col_cm, styles, numeric, self._style("Table Header", font_pt))
        if total > DOCX_MAX_ROWS:
            self.para(f"The first {DOCX_MAX_ROWS:,} of {total:,} rows; all of them are in the sheet '{name[:31]}' of "
                      "reports/tables.xlsx.", size=8.5, color="595959")
        self.doc.add_paragraph()
        if turned:
            self.orientation(False)
        return table

    def _style(self, kind: str, size: float) -> str:
        """The style ID of a paragraph style for table cells (made once per kind and size): a run-free way to
        give thousands of cells their font, which keeps a long report fast to write."""
        name = f"{kind} {size:g}"
        styles = self.doc.styles
        if name not in [s.name for s in styles]:
            from docx.enum.style import WD_STYLE_TYPE

            st = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
            st.base_style = styles["Normal"]
            st.font.size = Pt(size)
            st.font.bold = kind == "Table Header"
            if kind == "Table Mono":
                st.font.name = "Courier New"
            st.paragraph_format.space_after = Pt(0)
            st.paragraph_format.space_before = Pt(0)
        return styles[name].style_id

    def fits_portrait(self, df: pd.DataFrame, name: str, font_pt: float = 8.5) -> bool:
        """Whether a table fits a portrait page (a section with it can then stay portrait)."""
        was, self.landscape = self.landscape, False
        try:
            frame = docx_frame(df, name)
            numeric = [_is_number(frame[c]) for c in frame.columns]
            return self._fit(frame, {}, DOCX_CUT.get(name, DOCX_CELL_LIMIT), font_pt, (), numeric)[0] is not None
        finally:
            self.landscape = was

    def _fit(self, df, fixed, cut, font_pt, mono, numeric, last: bool = False):
        """Widths and font size: a smaller font before words break; None when the table does not fit this page
        (unless ``last``, or the page is landscape already: then the smallest font, with words broken)."""
        for pt in (font_pt, font_pt - 0.5, font_pt - 1.0, font_pt - 1.5):
            col_cm, fits = self._widths(df, fixed, cut, pt, mono, numeric)
            if fits:
                return col_cm, pt
        if last or self.landscape or len(df.columns) <= 2:
            return col_cm, pt
        return None, font_pt

    def _widths(self, df: pd.DataFrame, fixed: dict[str, float], cut: int, font_pt: float,
                mono: tuple[str, ...] = (), numeric: list[bool] | None = None) -> tuple[list[float], bool]:
        """Column widths in cm, and whether every column gets its longest word: no column narrower than its
        longest word where that fits (so IDs, times and headers do not break mid-word), the rest shared by how much
        text each column holds."""
        pad = 0.45  # the cell's margins, and a little air
        least, want = [], []
        numeric = numeric or [False] * len(df.columns)
        for c, is_number in zip(df.columns, numeric, strict=True):
            face = "mono" if c in mono else "regular"
            texts = [cell_text(v, cut) for v in df[c]]
            words = {w for t in texts for w in t.split()}
            longest_word = max([text_cm(w, font_pt, "bold") for w in str(c).split()]
                               + [text_cm(w[:45], font_pt, face) for w in words] + [0.0])
            lines = {line[:70] for t in texts for line in t.splitlines()}
            longest = max([text_cm(str(c), font_pt, "bold")] + [text_cm(x, font_pt, face) for x in lines])
            least.append(fixed.get(c, max(1.0, longest_word + pad)))
            # numbers need no more than their longest word: their headers may wrap
            want.append(least[-1] if is_number else fixed.get(c, max(least[-1], longest + pad)))
        room = self.width_cm
        if sum(want) <= room:
            return want, True
        if sum(least) >= room:
            return [w * room / sum(least) for w in least], False
        extra = room - sum(least)
        slack = [w - m for w, m in zip(want, least, strict=True)]
        return [m + extra * x / sum(slack) for m, x in zip(least, slack, strict=True)], True

    def figure(self, path: Path, caption: str, width_cm: float | None = None, max_height_cm: float = 21.0):
        from PIL import Image

        width = width_cm or min(16.0, self.width_cm)
        with Image.open(path) as im:
            aspect = im.height / im.width
        if width * aspect > max_height_cm:  # a tall figure keeps to a page, with its caption
            width = max_height_cm / aspect
        self.doc.add_picture(str(path), width=Cm(width))
        self.doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        self.doc.paragraphs[-1].paragraph_format.keep_with_next = True
        self.caption(caption, "Figure")

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.doc.save(tmp)


def _bold_evidence(p, text: str, evidence: str, size: float | None = None, italic: bool = False) -> None:
    """``text`` into paragraph ``p``, with the first occurrence of ``evidence`` in bold."""
    at = text.lower().find(evidence.lower()) if evidence else -1
    parts = [(text, False)] if at < 0 else [(text[:at], False), (text[at: at + len(evidence)], True),
                                           (text[at + len(evidence):], False)]
    for chunk, bold in parts:
        if chunk:
            run = p.add_run(chunk)
            run.bold, run.italic = bold, italic
            if size:
                run.font.size = Pt(size)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


# --- the sections -------------------------------------------------------------------------------------------

def build_report(study, codebook, tables: dict[str, pd.DataFrame], audit: dict, now: str | None = None) -> Path:
    """Write summary.docx, tables.xlsx and the figures; ``now`` (UTC, ISO) only for tests."""
    data = report_tables(study, codebook, tables, audit, now)
    out = data.tables
    d = _Doc()
    figures_dir = study.reports / "figures"
    written: list[Path] = []

    turns, segments = tables["turns"], tables["segments"]
    names = code_names(codebook)
    coders = [s for s in data.sources if s not in (AUTO, CONSENSUS)]
    now = data.notes["now"]

    d.doc.add_heading("IPR study: summary report", 0)
    d.para(f"Study folder: {study.root.name}. Report written {now} (UTC); pipeline run started "
           f"{audit['started']}. {audit['software']}.", size=9, color="595959")
    d.para("Every table of this report is also a sheet of reports/tables.xlsx (named in each caption), and every "
           "figure a PNG file in reports/figures/.", size=9, color="595959")

    _at_a_glance(d, data, segments)
    _section_overview(d, out, turns)
    _section_alignment(d, out, segments)
    _section_codes(d, data, codebook, coders, figures_dir, written)
    _section_sequences(d, data, study, turns, segments, figures_dir, written)
    _section_both_sides(d, out, data)
    _section_exemplars(d, out, names)
    _section_agreement(d, out, coders)
    _section_methods(d, out, study, audit, coders, now)

    study.reports.mkdir(parents=True, exist_ok=True)
    path = study.reports / "summary.docx"
    d.save(path)
    _remove_stale_figures(figures_dir, written)
    wb = Workbook()
    wb.remove(wb.active)
    for name, df in out.items():
        long_text = [c for c in df.columns if df[c].dtype == object and df[c].astype(str).str.len().max() > 60]
        widths = {c: 50 for c in long_text}
        write_table(wb.create_sheet(name[:31]), list(df.columns), df.itertuples(index=False), widths,
                    wrap=long_text)
    with atomic_path(study.reports / "tables.xlsx") as tmp:
        wb.save(tmp)
    return path


def _remove_stale_figures(figures_dir: Path, written: list[Path]) -> None:
    keep = {p.resolve() for p in written}
    if figures_dir.is_dir():
        for p in figures_dir.glob("*.png"):
            if (p.name.startswith(("timeline_", "code_frequencies")) and p.resolve() not in keep):
                p.unlink()


def _at_a_glance(d: _Doc, data: ReportData, segments: pd.DataFrame) -> None:
    out = data.tables
    d.heading("At a glance", 1)
    ov = dict(zip(out["Overview"]["what"], out["Overview"]["count"], strict=True))
    d.bullet(f"{_plural(int(ov['cases']), 'case')}, {_plural(int(ov['sessions']), 'session')} and "
             f"{_plural(int(ov['IPR interviews']), 'IPR interview')}: {int(ov['words']):,} words in "
             f"{int(ov['turns']):,} turns (about {ov[f'pages ({WORDS_PER_PAGE} words a page)']:g} pages).")
    n_seg = len(segments)
    n_ok = int((segments["status"] == "aligned").sum()) if n_seg else 0
    if n_seg:
        d.bullet(f"{n_ok} of {_plural(n_seg, 'IPR stop')} ({percent(n_ok / n_seg)}) were aligned with the session "
                 "moment they recall.")
    else:
        d.bullet("No IPR stop was found, so no recall could be aligned with the session.")
    auto_units = data.units[data.units["coder"] == AUTO]
    d.bullet(f"The codebook's rules suggested {_plural(len(auto_units), 'code')} on "
             f"{_plural(auto_units['unit_id'].nunique(), 'unit')}." if len(auto_units)
             else "The codebook's rules suggested no code.")
    coders = [s for s in data.sources if s not in (AUTO, CONSENSUS)]
    d.bullet(f"Human coding: {', '.join(coders)}" + (" (with a consensus where two or more agree)."
                                                     if CONSENSUS in data.sources else ".")
             if coders else "No coder has coded yet; every code in this report is an automatic suggestion.")
    for r in data.runs:
        s = r.summary
        if s.empty or not len(r.sequences):
            if r.source == AUTO:
                d.bullet("No rupture marker was found in the sessions (automatic suggestions).")
            continue
        total = s.iloc[-1] if len(s) > 1 else s.iloc[0]
        whose = "automatic suggestions" if r.source == AUTO else "coders' consensus"
        d.bullet(f"{_plural(int(total['ruptures']), 'rupture marker')} ({whose}); "
                 f"{int(total['repaired'])} followed by a resolution strategy within the window "
                 f"({percent(total['resolution_rate'])})"
                 + (f", after a median of {format_time(total['median_time_to_repair_s'])}."
                    if total["repaired"] else "."))
    both = out["Both sides"]
    if len(both):
        n_both = int((both["both noticed"] == "yes").sum())
        d.bullet(f"{_plural(len(both), 'moment')} recalled by both client and therapist; in {n_both} both "
                 "described a rupture.")


def _section_overview(d: _Doc, out, turns) -> None:
    d.heading("Overview", 1)
    if turns.empty:
        d.para("No transcript was read: data/raw/ has no transcripts yet.")
    d.table("Overview", out["Overview"], "What was analysed", widths={"what": 6.0, "count": 3.0})
    if len(out["Transcripts"]):
        d.table("Transcripts", out["Transcripts"], "The transcripts (duration: the last time stamp)")


def _section_alignment(d: _Doc, out, segments) -> None:
    d.heading("Alignment quality", 1)
    al = out["Alignment"]
    if al.empty:
        d.para("No IPR interviews were found, so nothing was aligned.")
        return
    n_seg, n_ok = len(segments), int((segments["status"] == "aligned").sum())
    d.para(f"Each stop of an IPR interview is linked to the session turns on screen just before it. {n_ok} of "
           f"{_plural(n_seg, 'stop')} were aligned. A stop that is not aligned keeps its recall, but has no "
           "session excerpt: no session transcript for it, a time outside the session, no turns in its window, "
           "or no times in the session transcript.")
    if n_seg and n_ok == 0:
        d.para("Nothing was aligned: the recalls are reported without their session context. Check that every "
               "interview has its session transcript, with times, and the manifest's offset_s.", bold=True)
    d.table("Alignment", al, "Alignment quality per IPR interview")


def _section_codes(d: _Doc, data: ReportData, codebook, coders, figures_dir: Path, written: list[Path]) -> None:
    out = data.tables
    d.heading("Code frequencies", 1)
    if data.units.empty:
        d.para("No codes were applied: neither the codebook's rules nor any coder coded a unit. The tables below "
               "are empty.")
        return
    srcs = data.sources
    who = "the automatic suggestions (auto)"
    if coders:
        who += ", each coder (" + ", ".join(coders) + ")"
    if CONSENSUS in srcs:
        who += ", and the consensus (the codes that two or more coders gave the same unit)"
    else:
        who += "; no coding by two coders yet, so no consensus"
    d.para(f"Units (session turns and IPR recalls) with each code, counted for {who}. A unit counts once per "
           "code, however many times the code's rules matched in it.")
    d.table("Codes by family", out["Codes by family"], "Coded units by code family")
    by_code = out["Codes by code"]
    d.table("Codes by code", by_code, "Coded units by code")
    unused = [c.id for c in codebook.codes if c.id not in set(by_code["code_id"]) and c.rules]
    if unused:
        d.para(f"Codes of the codebook with rules that no unit received: {', '.join(unused)}.", size=8.5,
               color="595959")
    from .figures import code_frequency_figure

    groups = {"rupture": "rupture markers (session turns)", "resolution": "resolution strategies (session turns)",
              "recall": "recall themes (IPR recalls)"}
    top = by_code["code_id"].str.split(".").str[0]
    for key in list(dict.fromkeys(top)):  # one figure per top level, so each stays readable on a page
        part = by_code[top == key]
        fig = figures_dir / f"code_frequencies_{_safe_name(key)}.png"
        labels = [f"{n}\n{c}" if n else c for c, n in zip(part["code_id"], part["name"], strict=True)]
        code_frequency_figure(part.assign(label=labels), srcs, fig, families=list(part["family"]))
        written.append(fig)
        whose = ", by source" if len(srcs) > 1 else " (automatic suggestions)"
        d.figure(fig, f"Coded units per code: {groups.get(key, key)}{whose}")
    d.table("Codes by role", out["Codes by role"],
            "Coded units by family and role (turns: session turns by speaker; recalls: IPR segments by "
            "participant)")
    d.table("Codes by case and session", out["Codes by case and session"],
            "Coded units by case, session and family")
    d.para("Counts for every code by role, case and session are in the sheet 'Code counts (long)' of "
           "reports/tables.xlsx.", size=8.5, color="595959")


def _section_sequences(d: _Doc, data: ReportData, study, turns, segments, figures_dir, written) -> None:
    out = data.tables
    window = float(getattr(study.settings, "repair_window_s", 300.0) or 300.0)
    wide = len(out["Rupture sequences"]) > 0 or not d.fits_portrait(out["Repair summary"], "Repair summary")
    d.orientation(wide)  # the sequences need the width of a landscape page
    d.heading("Rupture → repair sequences", 1)
    d.para(f"A rupture marker is a client turn with a rupture code (rupture.withdrawal.* or "
           f"rupture.confrontation.*); it counts as repaired when a therapist turn with a resolution strategy "
           f"(resolution.*) follows it in the same session within {format_time(window)} (repair_window_s = "
           f"{window:g} s). The time to repair runs from the start of the rupture turn to the start of the first "
           "such resolution; consecutive ruptures may share a repair. Counted "
           + ("for the automatic suggestions and for the coders' consensus." if len(data.runs) > 1
              else "for the automatic suggestions (no coders' consensus yet)."))
    if (turns["kind"] == "session").sum() == 0:
        d.para("There are no session transcripts, so there are no sequences to report.")
        d.orientation(False)
        return
    if out["Rupture sequences"].empty:
        d.para("No rupture marker was found in any session, so there are no sequences.")
    d.table("Repair summary", out["Repair summary"],
            "Ruptures, repairs and the resolution rate per session (rate: repaired of the ruptures with a time)")
    if len(out["Rupture sequences"]):
        d.table("Rupture sequences", out["Rupture sequences"],
                "Each rupture marker and the first resolution strategy that follows it within the window (code "
                "IDs in tables.xlsx)", font_pt=7.5,
                widths={"coded by": 1.6, "case": 1.1, "session": 1.5, "rupture at": 1.7, "type": 2.3,
                        "rupture markers": 4.2, "repair at": 1.5, "resolution strategy": 4.2,
                        "time to repair": 1.5, "outcome": 2.0})
    d.heading("Ruptures per 5-minute segment", 2)
    d.para("As the 3RS does, each session is divided into 5-minute segments; the table counts, per segment, the "
           "client turns with a withdrawal or confrontation marker (a turn with both counts in both columns), the "
           "turns with a resolution strategy, and the ruptures that were repaired.")
    d.table("Ruptures per 5 minutes", out["Ruptures per 5 minutes"], "Rupture markers per 5-minute segment")
    from .figures import timeline_figure

    primary = next((r for r in data.runs if r.source == data.notes["primary"]), data.runs[0])
    aligned = segments[segments["status"] == "aligned"]
    d.orientation(False)
    d.heading("Timelines", 2)
    for dur in seq.session_durations(turns).itertuples(index=False):
        if dur.duration_s != dur.duration_s:
            d.para(f"Case {dur.case}, session {dur.session}: no times in the transcript, so no timeline.")
            continue
        pick = primary.ruptures["transcript_id"] == dur.transcript_id
        fig = figures_dir / f"timeline_{_safe_name(dur.case)}_{_safe_name(dur.session)}.png"
        timeline_figure(f"Case {dur.case}, session {dur.session}", dur.duration_s, primary.ruptures[pick],
                        primary.resolutions[primary.resolutions["transcript_id"] == dur.transcript_id],
                        primary.sequences[primary.sequences["transcript_id"] == dur.transcript_id],
                        aligned[(aligned["case"] == dur.case) & (aligned["session"] == dur.session)], fig)
        written.append(fig)
        d.figure(fig, f"Case {dur.case}, session {dur.session}: rupture markers, resolution strategies (lines: "
                      "rupture to its repair) and the IPR stops, from the automatic suggestions")


def _section_both_sides(d: _Doc, out, data: ReportData) -> None:
    both = out["Both sides"]
    d.heading("Both sides of a moment", 1)
    if both.empty:
        d.para("No stretch of session was recalled by both the client and the therapist (no client and therapist "
               "stops with overlapping session windows), so there are no moments to compare.")
        return
    d.para("Where the client and the therapist stopped the video at the same stretch of session, their recalls "
           "side by side. A participant 'noticed' a rupture when the recall has a recall.rupture.* code, or (for "
           "the therapist) a recall.awareness.* code other than not noticing it. The codes are the coders' "
           "consensus where two or more coders coded the recall, otherwise the automatic suggestions.")
    d.table("Both sides", both, "Moments recalled by both participants, and whether each noticed a rupture")
    for i, r in enumerate(both.to_dict("records"), 1):
        if i > DOCX_MAX_MOMENTS:
            d.para(f"The first {DOCX_MAX_MOMENTS} of {len(both)} moments are shown side by side; every moment, with "
                   "both recalls, is in the sheet 'Both sides' of reports/tables.xlsx.", size=8.5, color="595959")
            break
        d.heading(f"Moment {i}: case {r['case']}, session {r['session']}, {r['moment']}", 3)
        if r["session excerpt"]:
            p = d.para()
            _bold_evidence(p, cell_text(r["session excerpt"], 900), "", size=8, italic=True)
        pair_table(d, r)
        d.para()


def pair_rows(r: dict) -> list[tuple[str, str]]:
    """The two-column table of one moment: client beside therapist."""
    return [(f"Client (video {r['client stop']})", f"Therapist (video {r['therapist stop']})"),
            (cell_text(r["client recall"], 1500), cell_text(r["therapist recall"], 1500)),
            (f"Codes ({r['client codes by']}): {r['client codes'] or 'none'}",
             f"Codes ({r['therapist codes by']}): {r['therapist codes'] or 'none'}"),
            (f"Noticed a rupture: {r['client noticed']}", f"Noticed a rupture: {r['therapist noticed']}")]


def pair_table(d: _Doc, r: dict):
    rows = pair_rows(r)
    t = d.doc.add_table(rows=len(rows), cols=2)
    t.autofit = False
    _borders(t)
    _set_widths(t, [d.width_cm / 2] * 2)
    for k, (row, values) in enumerate(zip(t.rows, rows, strict=True)):
        for cell, text in zip(row.cells, values, strict=True):
            cell.text = text
            for p in cell.paragraphs:
                p.paragraph_format.space_after = Pt(0)
                for run in p.runs:
                    run.font.size = Pt(8.5)
                    run.bold = k == 0
            if k == 0:
                _shade(cell, HEADER_FILL)
    _repeat_header(t.rows[0])
    return t


def _section_exemplars(d: _Doc, out, names) -> None:
    ex = out["Exemplars"]
    d.heading("Exemplars", 1)
    if ex.empty:
        d.para("No unit was coded, so there are no exemplars yet.")
        return
    d.para(f"For each code, up to {EXEMPLARS_PER_CODE} coded units: the coders' consensus first, then a coder's "
           "codes, then the automatic suggestions. A recall is shown with the session excerpt that was on screen "
           "before the stop; a session turn with what the participant recalled about it. The words that matched "
           "the code's rule are in bold.")
    for code_id, g in ex.groupby("code_id", sort=False):
        d.heading(f"{names.get(code_id) or code_id} ({code_id})", 3)
        for r in g.to_dict("records"):
            d.para(exemplar_line(r), size=8, color="595959", bold=True)
            if r["unit"].endswith("recall"):
                p = d.para()
                _bold_evidence(p, cell_text(r["recall"], 1200), r["evidence"], size=9.5)
                if r["session excerpt"]:
                    p = d.para()
                    _bold_evidence(p, cell_text(r["session excerpt"], 900), "", size=8, italic=True)
                    p.paragraph_format.left_indent = Cm(0.8)
            else:
                p = d.para()
                _bold_evidence(p, cell_text(r["session excerpt"], 900), r["evidence"], size=9.5)
                if r["recall"]:
                    p = d.para()
                    run = p.add_run(f"What the {r['participant']} recalled (video {r['video time']}): ")
                    run.font.size, run.italic = Pt(8), True
                    _bold_evidence(p, cell_text(r["recall"], 900), "", size=8, italic=True)
                    p.paragraph_format.left_indent = Cm(0.8)


def exemplar_line(r: dict) -> str:
    """The line above an exemplar: where it is and who coded it."""
    where = f"Case {r['case']}, session {r['session']}, {r['unit']}"
    if r["video time"]:
        where += f", video {r['video time']}"
    if r["session time"]:
        where += f", session {r['session time']}"
    where += f"; coded by {r['coded by']}"
    if r["evidence"]:
        where += f"; matched “{r['evidence']}”"
    return where


def _section_agreement(d: _Doc, out, coders) -> None:
    wide = bool(coders) and "Agreement" in out and not d.fits_portrait(out["Agreement"], "Agreement")
    d.orientation(wide)
    d.heading("Agreement between coders", 1)
    if not coders:
        d.para("No coder has coded yet, so there is no agreement to report. Coders code in data/coded/<coder>/; "
               "`ipr agreement` then computes their agreement.")
    elif "Agreement" in out:
        ag = out["Agreement"]
        if ag.empty:
            d.para("The agreement table is empty: no unit was coded by two or more coders.")
        else:
            d.para("Per code, over the units that two or more coders coded (from `ipr agreement`; also "
                   "reports/agreement.csv). Cohen's kappa where exactly two coders coded the units; the "
                   "'(all codes)' row pools the codes.")
            d.table("Agreement", ag, "Intercoder agreement per code")
    else:
        d.para("Coders have coded, but agreement has not been computed yet (data/interim/agreement.parquet is "
               "missing): run `ipr agreement`, then `ipr report`.")
    if coders and "Suggestions vs coders, all" in out:
        d.heading("How far to trust the suggestions", 2)
        d.para("The automatic suggestions against each coder, over the units the coder coded, taking the coder as "
               "right: precision (of the suggestions, how many the coder also gave) and recall (of the coder's "
               "codes, how many were suggested). Per code in the sheet 'Suggestions vs coders' of "
               "reports/tables.xlsx.")
        d.table("Suggestions vs coders, all", out["Suggestions vs coders, all"],
                "The suggestions against each coder, all codes pooled")
    d.orientation(False)


def _section_methods(d: _Doc, out, study, audit, coders, now) -> None:
    d.heading("Methods and audit trail", 1)
    s = audit["settings"]
    d.para("Transcripts in data/raw/ were read into turns (speaker, role, times, text). Every stop of an IPR "
           "interview was linked to the session turns on screen before it, through the video time plus the "
           f"manifest's offset, looking back to the previous stop and at most {float(s.get('window_s', 60)):g} s. The "
           "codebook's rules (phrases on lemmas, token patterns, regular expressions and structural rules, with "
           "negation and speaker-role scope) suggested codes for session turns and IPR recalls; these automatic "
           "suggestions are for coders to review, not ratings. Coders' codes are read from their workbooks in "
           "data/coded/. Pages are counted at 350 words a page.")
    d.heading("Software, codebook and run", 2)
    d.table("Run", out["Run"], "Software, codebook and run", widths={"what": 4.5})
    d.table("Settings", out["Settings"], "Settings (study.toml, with defaults)", widths={"setting": 5.0})
    d.heading("Input files", 2)
    if out["Inputs"].empty:
        d.para("The input files of the run are not recorded (run `ipr analyze` to record them with their "
               "SHA-256).")
    else:
        d.table("Inputs", out["Inputs"], "Every input file with its SHA-256", font_pt=7, mono=("sha256",))
    d.heading("Warnings of the run", 2)
    if out["Warnings"].empty:
        d.para("None.")
    for w in out["Warnings"]["warning"]:
        p = d.bullet(w)
        for run_ in p.runs:
            run_.font.size = Pt(8.5)
