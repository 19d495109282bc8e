"""Intercoder agreement from the coders' workbooks, and how far the automatic suggestions match each coder.

Which units count: a unit counts as *coded by a coder* when the coder's workbook gives it at least one code or
a memo (a blank row may just not have been read yet).  Agreement is computed over the units that two or more
coders coded.  For each code, each such coder's decision on each such unit is binary: the code is there or not.
A code is judged on the units it applies to (its unit type and speaker roles in the codebook), plus any unit a
coder gave it anyway.

The figures, per code and pooled over every unit × code decision (``(all codes)``):

- ``units``: the units the figure is computed on; ``coders``: the coders who coded any of them;
- ``percent_agreement``: the percentage of coder pairs that made the same decision, averaged over the units
  (with two coders: the percentage of units on which they agree);
- ``cohen_kappa``: Cohen's kappa, where exactly two coders coded the units;
- ``krippendorff_alpha``: Krippendorff's alpha, nominal, any number of coders, missing data allowed
  (the ``krippendorff`` package);
- ``positive_agreement``: specific agreement on the code being present (Fleiss 1975; Uebersax 1982):
  ``sum k(k-1) / sum k(n-1)`` over units with ``n`` coders of whom ``k`` gave the code; with two coders
  ``2a / (2a + b + c)``.  It does not count the (many) units both left without the code.
- ``gwet_ac1``: Gwet's AC1 (Gwet 2008), any number of coders: ``(p_a - p_e) / (1 - p_e)`` with ``p_a`` the
  percent agreement as a share and ``p_e = 2 pi (1 - pi)``, ``pi`` the mean over units of ``k / n``.  Kappa and
  alpha fall with a code's prevalence even where the coders agree on nearly every unit (the "kappa paradox" of
  rare codes, as rupture markers are); AC1 does not.

Kappa and alpha are left empty where they are undefined (every decision the same).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .readback import coded_entries
from .study import CONSENSUS

AGREEMENT_COLUMNS = ["code_id", "units", "coders", "percent_agreement", "cohen_kappa", "krippendorff_alpha",
                     "positive_agreement", "gwet_ac1"]
SUGGESTION_COLUMNS = ["coder", "code_id", "units", "suggested", "coded", "both", "precision", "recall"]
PAIR_COLUMNS = ["coder_1", "coder_2", "units", "percent_agreement", "cohen_kappa", "krippendorff_alpha",
                "positive_agreement", "gwet_ac1"]
PROGRESS_COLUMNS = ["coder", "transcript_id", "units", "coded", "percent_coded"]
DISAGREEMENT_COLUMNS = ["transcript_id", "unit_type", "unit_id", "code_id", "given_by", "not_given_by", "consensus",
                        "text"]
POOLED = "(all codes)"


def binary_agreement(matrix) -> dict:
    """The agreement figures of a coders × items matrix of 1 (present), 0 (absent) and NaN (not coded).

    Items coded by fewer than two coders are left out.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError("a coders × items matrix is needed")
    n = (~np.isnan(m)).sum(axis=0)
    m = m[:, n >= 2]
    n = n[n >= 2]
    coders = m[~np.isnan(m).all(axis=1)] if m.size else m[:0]
    out = {"units": int(m.shape[1]), "coders": int(coders.shape[0]), "percent_agreement": np.nan,
           "cohen_kappa": np.nan, "krippendorff_alpha": np.nan, "positive_agreement": np.nan, "gwet_ac1": np.nan}
    if m.shape[1] == 0:
        return out
    k = np.nansum(m, axis=0)
    pairs = n * (n - 1) / 2
    agreeing = k * (k - 1) / 2 + (n - k) * (n - k - 1) / 2
    observed = float(np.mean(agreeing / pairs))
    out["percent_agreement"] = 100 * observed
    # Gwet's AC1: chance agreement 2 pi (1 - pi), pi the mean share of a unit's coders who gave the code; a code
    # rare in the data (as ruptures are) does not drag it down as it drags kappa and alpha
    share = float(np.mean(k / n))
    chance = 2 * share * (1 - share)
    out["gwet_ac1"] = (observed - chance) / (1 - chance)
    denominator = float(np.sum(k * (n - 1)))
    if denominator:
        out["positive_agreement"] = float(np.sum(k * (k - 1)) / denominator)
    out["cohen_kappa"] = cohen_kappa(coders) if coders.shape[0] == 2 else np.nan
    out["krippendorff_alpha"] = krippendorff_alpha(coders)
    return out


def cohen_kappa(two) -> float:
    """Cohen's kappa of two coders' binary decisions (items both coded); NaN where undefined (every decision
    the same).  The textbook formula, (observed - chance) / (1 - chance), written out rather than taken from
    scikit-learn: importing that took 1.4 s of every run after a coder's change.  The tests check it against
    scikit-learn's ``cohen_kappa_score``."""
    a, b = np.asarray(two, dtype=float)
    both = ~np.isnan(a) & ~np.isnan(b)
    if not both.any():
        return np.nan
    a, b = a[both], b[both]
    observed = float(np.mean(a == b))
    chance = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return (observed - chance) / (1 - chance) if chance < 1 else np.nan


def krippendorff_alpha(matrix, domain=(0, 1)) -> float:
    """Krippendorff's alpha (nominal) of a coders × items matrix with NaN for missing; NaN where undefined."""
    import krippendorff

    m = np.asarray(matrix, dtype=float)
    if m.shape[0] < 2 or m.shape[1] == 0:
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = krippendorff.alpha(reliability_data=m, level_of_measurement="nominal",
                                       value_domain=list(domain))
        except (ValueError, ZeroDivisionError):
            return np.nan
    return float(value) if np.isfinite(value) else np.nan


# --- from the coders' entries -------------------------------------------------------------------------------

def _decisions(entries: pd.DataFrame, scope: dict | None) -> tuple[dict[str, dict[str, set[str]]], dict[str, str]]:
    """unit_id -> coder -> codes, over the units each coder coded; and unit_id -> unit_type.  With a ``scope``
    (the units of the study), only its units: a unit that is gone is not coded any more."""
    units: dict[str, dict[str, set[str]]] = {}
    types: dict[str, str] = {}
    for e in coded_entries(entries, set(scope) if scope else None).itertuples(index=False):
        codes = {c for c in e.codes.split(";") if c}
        units.setdefault(e.unit_id, {}).setdefault(e.coder, set()).update(codes)
        types.setdefault(e.unit_id, e.unit_type)
    return units, types


def _code_order(codebook, used) -> list[str]:
    order = {cid: i for i, cid in enumerate(codebook.ids())} if codebook is not None else {}
    return sorted(used, key=lambda c: (order.get(c, len(order)), c))


def _in_scope(codebook, scope: dict | None, types: dict[str, str]):
    """Whether a code applies to a unit, by the codebook's units and roles (roles only where known)."""
    def check(code_id: str, unit_id: str) -> bool:
        code = codebook.get(code_id) if codebook is not None else None
        if code is None:
            return True
        unit_type, role = (scope or {}).get(unit_id, (types.get(unit_id), None))
        if unit_type and unit_type not in code.units:
            return False
        return not (role and code.roles and role not in code.roles)
    return check


def unit_scope(turns: pd.DataFrame | None, segments: pd.DataFrame | None) -> dict[str, tuple[str, str | None]]:
    """unit_id -> (unit_type, role): a turn's speaker role, a segment's IPR participant."""
    scope: dict[str, tuple[str, str | None]] = {}
    if turns is not None and len(turns):
        scope.update((t, ("turn", r)) for t, r in zip(turns["turn_id"].tolist(), turns["role"].tolist(), strict=True))
    if segments is not None and len(segments):
        scope.update((s, ("segment", p if isinstance(p, str) else None))
                     for s, p in zip(segments["segment_id"].tolist(), segments["participant"].tolist(), strict=True))
    return scope


def agreement(entries: pd.DataFrame, codebook=None, scope: dict | None = None) -> pd.DataFrame:
    """One row per code any coder used on a unit that two or more coders coded, and the pooled row.  The
    consensus coder records what the coders agreed on, so is not one of the coders who agree."""
    units, types = _decisions(entries[entries["coder"] != CONSENSUS], scope)
    joint = {u: by for u, by in units.items() if len(by) >= 2}
    if not joint:
        return pd.DataFrame(columns=AGREEMENT_COLUMNS)
    coders = sorted({c for by in joint.values() for c in by})
    row_of = {c: i for i, c in enumerate(coders)}
    used = {code for by in joint.values() for codes in by.values() for code in codes}
    applies = _in_scope(codebook, scope, types)
    rows, blocks = [], []
    for code in _code_order(codebook, used):
        ids = [u for u, by in joint.items() if applies(code, u) or any(code in s for s in by.values())]
        m = np.full((len(coders), len(ids)), np.nan)
        for j, u in enumerate(ids):
            for coder, codes in joint[u].items():
                m[row_of[coder], j] = float(code in codes)
        blocks.append(m)
        rows.append({"code_id": code, **binary_agreement(m)})
    pooled = binary_agreement(np.hstack(blocks)) if blocks else binary_agreement(np.full((len(coders), 0), 0.0))
    pooled["units"] = len(joint)
    pooled["coders"] = len(coders)
    rows.append({"code_id": POOLED, **pooled})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def agreement_by_pair(entries: pd.DataFrame, codebook=None, scope: dict | None = None) -> pd.DataFrame:
    """The pooled agreement (every code) of each pair of coders, over the units both coded: with three coders or
    more, which of them codes apart from the others (in a training round, say)."""
    from itertools import combinations

    units, _ = _decisions(entries[entries["coder"] != CONSENSUS], scope)
    coders = sorted({c for by in units.values() for c in by})
    rows = []
    for pair in combinations(coders, 2):
        table = agreement(entries[entries["coder"].isin(pair)], codebook, scope)
        pooled = table[table["code_id"] == POOLED]
        if len(pooled):
            rows.append({"coder_1": pair[0], "coder_2": pair[1],
                         **pooled.iloc[0][AGREEMENT_COLUMNS[1:]].drop("coders").to_dict()})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def suggestions_vs_coders(entries: pd.DataFrame, codes: pd.DataFrame, codebook=None,
                          scope: dict | None = None) -> pd.DataFrame:
    """For each coder and code, over the units the coder coded: how many units the suggestions and the coder
    gave the code, how many both, precision (of the suggestions, taking the coder as right) and recall."""
    units, types = _decisions(entries, scope)
    auto: dict[str, set[str]] = {}
    if codes is not None and len(codes):
        a = codes[codes["coder"] == "auto"]
        for u, c in zip(a["unit_id"].tolist(), a["code_id"].tolist(), strict=True):
            auto.setdefault(u, set()).add(c)
    applies = _in_scope(codebook, scope, types)
    rows = []
    for coder in sorted({c for by in units.values() for c in by}):
        mine = {u: by[coder] for u, by in units.items() if coder in by}
        used = {c for s in mine.values() for c in s} | {c for u in mine for c in auto.get(u, ())}
        totals = {"units": len(mine), "suggested": 0, "coded": 0, "both": 0}
        for code in _code_order(codebook, used):
            ids = [u for u in mine if applies(code, u) or code in mine[u] or code in auto.get(u, ())]
            s = sum(code in auto.get(u, ()) for u in ids)
            c = sum(code in mine[u] for u in ids)
            b = sum(code in auto.get(u, ()) and code in mine[u] for u in ids)
            rows.append(_precision_recall(coder, code, len(ids), s, c, b))
            totals["suggested"] += s
            totals["coded"] += c
            totals["both"] += b
        rows.append(_precision_recall(coder, POOLED, **totals))
    return pd.DataFrame(rows, columns=SUGGESTION_COLUMNS)


def coding_progress(entries: pd.DataFrame, transcript_of: dict[str, str], coders: list[str]) -> pd.DataFrame:
    """How far each coder has got: per transcript, its units (session turns and IPR segments) and how many of them
    the coder coded (a code or a memo, as the agreement counts them).  ``transcript_of``: unit ID -> transcript
    of every unit of the study; ``coders``: the study's coders, those who have not begun too."""
    totals = pd.Series(transcript_of).value_counts()
    coded = coded_entries(entries, set(transcript_of)).drop_duplicates(["coder", "unit_id"])
    done = coded.groupby([coded["coder"], coded["unit_id"].map(transcript_of)]).size().to_dict()
    rows = [{"coder": coder, "transcript_id": tid, "units": int(totals[tid]), "coded": done.get((coder, tid), 0),
             "percent_coded": 100 * done.get((coder, tid), 0) / totals[tid]}
            for coder in coders for tid in sorted(totals.index)]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)


def progress_by_coder(progress: pd.DataFrame) -> pd.DataFrame:
    """Per coder, over every transcript: how many transcripts there are and how many the coder has begun, how many
    units and how many the coder coded."""
    by = progress.assign(begun=progress["coded"] > 0).groupby("coder", sort=False)
    return by.agg(transcripts=("transcript_id", "size"), begun=("begun", "sum"), units=("units", "sum"),
                  coded=("coded", "sum")).reset_index()


def disagreements(entries: pd.DataFrame, codebook=None, scope: dict | None = None,
                  texts: dict[str, str] | None = None) -> pd.DataFrame:
    """Each decision the coders of a unit made differently: a code that some of the coders who coded the unit gave
    it and the others did not.  The list a consensus meeting works through, in the study's order (``scope``'s;
    the codes in the codebook's), with the unit's words (``texts``: unit ID -> text).  ``consensus``: what the
    consensus coder decided ('given' or 'not given'), empty while it has not coded the unit."""
    units, types = _decisions(entries[entries["coder"] != CONSENSUS], scope)
    decided, _ = _decisions(entries[entries["coder"] == CONSENSUS], scope)
    transcript = dict(zip(entries["unit_id"].tolist(), entries["transcript_id"].tolist(), strict=True))
    place = {u: i for i, u in enumerate(scope or ())}
    joint = sorted((u for u, by in units.items() if len(by) >= 2),
                   key=lambda u: (transcript[u], place.get(u, len(place)), u))
    rows = []
    for unit in joint:
        by = units[unit]
        agreed = decided.get(unit, {}).get(CONSENSUS)
        for code in _code_order(codebook, set().union(*by.values())):
            given = sorted(c for c, codes in by.items() if code in codes)
            if len(given) < len(by):
                rows.append({"transcript_id": transcript[unit], "unit_type": types[unit], "unit_id": unit,
                             "code_id": code, "given_by": ", ".join(given),
                             "not_given_by": ", ".join(sorted(set(by) - set(given))),
                             "consensus": "" if agreed is None else "given" if code in agreed else "not given",
                             "text": (texts or {}).get(unit, "")})
    return pd.DataFrame(rows, columns=DISAGREEMENT_COLUMNS)


def _precision_recall(coder, code, units, suggested, coded, both) -> dict:
    return {"coder": coder, "code_id": code, "units": units, "suggested": suggested, "coded": coded, "both": both,
            "precision": both / suggested if suggested else np.nan, "recall": both / coded if coded else np.nan}


def summary_lines(table: pd.DataFrame) -> list[str]:
    """The agreement table as printed by ``ipr agreement``."""
    if table.empty:
        return ["no unit was coded by two or more coders yet (a unit counts as coded with a code or a memo)"]
    shown = table.copy()
    for col in ("percent_agreement",):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    for col in ("cohen_kappa", "krippendorff_alpha", "positive_agreement", "gwet_ac1"):
        shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return shown.to_string(index=False).splitlines()


SHEETS = {"Agreement": "agreement", "Agreement by pair": "agreement_by_pair",
          "Suggestions vs coders": "suggestions_vs_coders",
          "Disagreements": "disagreements", "Coding progress": "coding_progress"}


def update_tables_xlsx(study) -> None:
    """Put the agreement tables (from data/interim/) into reports/tables.xlsx as the sheets of ``SHEETS``, keeping
    every other sheet (`ipr agreement`: `ipr analyze` remakes the report)."""
    from openpyxl import Workbook, load_workbook

    from .files import atomic_path
    from .xlsx import write_table

    path = study.reports / "tables.xlsx"
    tables = {sheet: study.interim / f"{name}.parquet" for sheet, name in SHEETS.items()}
    tables = {sheet: p for sheet, p in tables.items() if p.exists()}
    if not tables:
        return
    wb = None
    if path.exists():
        try:
            wb = load_workbook(path)
        except Exception:  # noqa: BLE001 (a generated file: written anew when damaged)
            wb = None
    if wb is None:
        wb = Workbook()
        wb.remove(wb.active)
    for sheet, p in tables.items():
        if sheet in wb.sheetnames:
            index = wb.sheetnames.index(sheet)
            wb.remove(wb[sheet])
            ws = wb.create_sheet(sheet, index)
        else:
            ws = wb.create_sheet(sheet)
        df = pd.read_parquet(p)
        write_table(ws, list(df.columns), df.itertuples(index=False), {"code_id": 38, "coder": 14})
    study.reports.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        wb.save(tmp)
