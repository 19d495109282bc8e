"""Stage 4, export: one workbook per transcript and coder, and reading the coders' work back.

A coder's entries are the most expensive data of a study.  So every run first reads every workbook, and a
workbook is rewritten only when what it shows (its units, the suggestions, the codebook) changed; then the
coder's codes and memos are carried into the new one, codes of units that disappeared move to a ``Removed units``
sheet, and the previous file is kept in ``.backup/``.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from .errors import Problem
from .files import atomic_path, sha256_file, sha256_text, write_text
from .timecode import format_time
from .xlsx import row_height, set_cell, write_table

UNIT_SHEETS = {"Turns": "turn", "Segments": "segment"}
REMOVED_SHEET = "Removed units"
MIN_CODE_COLUMNS = 3
_CODE_COL = re.compile(r"^code\s*(\d+)$", re.I)
ENTRY_COLUMNS = ["coder", "transcript_id", "unit_type", "unit_id", "codes", "memo", "workbook", "sheet", "row"]

HOW_TO_CODE = [
    "How to code",
    "",
    "Each row is one unit: a session turn (sheet Turns) or an IPR stop with its recall (sheet Segments).",
    "Read the unit with its context. 'suggested codes' are what the codebook's rules found automatically, with the "
    "words that matched in 'evidence': accept one by choosing it in a 'code' column, ignore it to reject it.",
    "Choose codes from the drop-down lists in 'code 1', 'code 2', 'code 3' (IDs of the sheet Codebook). "
    "Write anything else in 'memo'.",
    "You may sort, filter, hide columns and add columns of your own. Do not change or delete 'unit_id': it ties your "
    "codes to the transcript.",
    "Save the workbook as .xlsx where it is and close it; the next run reads your codes back and never overwrites "
    "them. If a transcript changes, your codes stay with their unit; codes of units that no longer exist move to "
    "the sheet 'Removed units'.",
    "A unit counts as coded when you gave it at least one code or wrote a memo.",
]


@dataclass
class ReadBack:
    entries: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)


def workbook_path(study, coder: str, transcript_id: str) -> Path:
    return study.coded / coder / f"{transcript_id}.xlsx"


def _workbooks(study):
    if not study.coded.is_dir():
        return
    for coder_dir in sorted(p for p in study.coded.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for wb in sorted(coder_dir.glob("*.xlsx")):
            if not wb.name.startswith(("~$", ".")):
                yield coder_dir.name, wb


def read_workbooks(study, code_ids: set[str]) -> ReadBack:
    """Every coder's entries: codes and memos per unit, from the unit sheet and the ``Removed units`` sheet."""
    rows: list[dict] = []
    problems: list[Problem] = []
    for coder, path in _workbooks(study):
        rel = path.relative_to(study.root).as_posix()
        if (path.parent / f"~${path.name}").exists():
            problems.append(Problem(rel, "is open in Excel or LibreOffice (its lock file is there)",
                                    hint="save and close it, then run again"))
            continue
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
            problems.append(Problem(rel, f"is not a readable Excel workbook ({type(e).__name__})",
                                    hint="restore it from data/coded/<coder>/.backup/, or delete it to have it "
                                         "written anew"))
            continue
        try:
            found = False
            for sheet in wb.sheetnames:
                unit_type = UNIT_SHEETS.get(sheet)
                if unit_type is None and sheet != REMOVED_SHEET:
                    continue
                found = found or unit_type is not None
                rows += _read_sheet(wb[sheet], coder, path.stem, unit_type, rel, code_ids, problems)
            if not found:
                problems.append(Problem(rel, "has no sheet named Turns or Segments",
                                        hint="rename the sheet back, or restore the workbook from .backup/"))
        finally:
            wb.close()
    return ReadBack(pd.DataFrame(rows, columns=ENTRY_COLUMNS), problems)


def _read_sheet(ws, coder, transcript_id, unit_type, rel, code_ids, problems) -> list[dict]:
    it = ws.iter_rows(values_only=True)
    header = next(it, None)
    if header is None:
        return []
    names = [str(h).strip().lower() if h is not None else "" for h in header]
    if "unit_id" not in names:
        problems.append(Problem(rel, "the unit_id column is missing", f"sheet {ws.title}, row 1",
                                "restore the column (undo, or copy it from the backup in .backup/)"))
        return []
    uid = names.index("unit_id")
    code_cols = [i for i, n in enumerate(names) if _CODE_COL.match(n)]
    memo = names.index("memo") if "memo" in names else None
    type_col = names.index("unit_type") if "unit_type" in names else None
    out = []
    for r, values in enumerate(it, 2):
        values = list(values) + [None] * (len(names) - len(values))
        codes = []
        for i in code_cols:
            v = values[i]
            if v is None or str(v).strip() == "":
                continue
            code = str(v).strip()
            if code not in code_ids:
                problems.append(Problem(rel, f"unknown code {code!r}",
                                        f"sheet {ws.title}, cell {get_column_letter(i + 1)}{r}",
                                        "choose a code from the drop-down list (sheet Codebook)"))
                continue
            if code not in codes:
                codes.append(code)
        note = "" if memo is None or values[memo] is None else str(values[memo]).strip()
        unit = values[uid]
        if unit is None or str(unit).strip() == "":
            if codes or note:
                problems.append(Problem(rel, "this row has codes or a memo but no unit_id",
                                        f"sheet {ws.title}, cell {get_column_letter(uid + 1)}{r}",
                                        "put the unit_id back (undo, or copy it from the backup in .backup/)"))
            continue
        if not codes and not note:
            continue
        utype = unit_type or (str(values[type_col]) if type_col is not None and values[type_col] else "")
        out.append({"coder": coder, "transcript_id": transcript_id, "unit_type": utype,
                    "unit_id": str(unit).strip(), "codes": ";".join(codes), "memo": note, "workbook": rel,
                    "sheet": ws.title, "row": r})
    return out


def coder_codes(entries: pd.DataFrame) -> pd.DataFrame:
    """The coders' codes as rows of the codes table (``coder`` = the coder's folder name)."""
    rows = []
    for e in entries.itertuples(index=False):
        if e.sheet == REMOVED_SHEET:
            continue
        for code in filter(None, e.codes.split(";")):
            rows.append({"unit_type": e.unit_type, "unit_id": e.unit_id, "code_id": code, "coder": e.coder,
                         "rule_id": "", "evidence": "", "start_char": -1, "end_char": -1})
    return pd.DataFrame(rows, columns=["unit_type", "unit_id", "code_id", "coder", "rule_id", "evidence",
                                       "start_char", "end_char"])


# --- writing ------------------------------------------------------------------------------------------------

def _suggestions(codes: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """unit_id -> (suggested code IDs, evidence) from the automatic codes."""
    auto = codes[codes["coder"] == "auto"]
    out: dict[str, tuple[str, str]] = {}
    for unit_id, g in auto.groupby("unit_id", sort=False):
        ids = list(dict.fromkeys(g["code_id"]))
        evidence = "; ".join(dict.fromkeys(f"{c}: “{e}”" for c, e in zip(g["code_id"], g["evidence"], strict=True)))
        out[unit_id] = (", ".join(ids), evidence)
    return out


def unit_rows(kind: str, units: pd.DataFrame, suggestions: dict, blind: bool) -> tuple[list[str], list[list]]:
    """Header and rows of a transcript's unit sheet, before the coder's columns."""
    def sugg(uid):
        return ("(hidden for blind coding)", "") if blind else suggestions.get(uid, ("", ""))

    if kind == "session":
        header = ["unit_id", "#", "time", "speaker", "role", "text", "suggested codes", "evidence"]
        rows = [[t.turn_id, t.seq, format_time(t.start_s), t.speaker, t.role, t.text, *sugg(t.turn_id)]
                for t in units.itertuples(index=False)]
    else:
        header = ["unit_id", "stop", "video time", "status", "session excerpt", "recall", "suggested codes",
                  "evidence"]
        rows = [[s.segment_id, s.stop_no, format_time(s.video_s), s.status, s.context_text,
                 s.recall_dialogue or s.recall_text, *sugg(s.segment_id)] for s in units.itertuples(index=False)]
    return header, rows


WIDTHS = {"unit_id": 14, "#": 5, "stop": 6, "time": 9, "video time": 9, "speaker": 12, "role": 11, "status": 12,
          "text": 70, "session excerpt": 60, "recall": 60, "suggested codes": 26, "evidence": 36, "memo": 40}


def write_workbook(path: Path, kind: str, header: list[str], rows: list[list], codebook,
                   entries: dict[str, tuple[list[str], str]], removed: list[list]) -> None:
    """Write one coder's workbook atomically; ``entries`` maps unit_id -> (codes, memo) to carry over."""
    n_codes = max([MIN_CODE_COLUMNS] + [len(c) for c, _ in entries.values()])
    full_header = header + [f"code {i}" for i in range(1, n_codes + 1)] + ["memo"]
    wb = Workbook()
    ws = wb.active
    ws.title = "Turns" if kind == "session" else "Segments"
    body = []
    for row in rows:
        codes, memo = entries.get(row[0], ([], ""))
        body.append(row + codes + [None] * (n_codes - len(codes)) + [memo or None])
    last = write_table(ws, full_header, body, WIDTHS, wrap=("text", "session excerpt", "recall", "evidence", "memo",
                                                             "suggested codes"))
    widths = [WIDTHS.get(h, 10) for h in full_header]
    for r, row in enumerate(body, 2):
        ws.row_dimensions[r].height = row_height(row, widths)
    ws.column_dimensions["A"].hidden = False
    code_sheet = wb.create_sheet("Codebook")
    ids = [c.id for c in codebook.codes]
    write_table(code_sheet, ["id", "name", "brief definition", "full definition", "when to use", "when not to use",
                             "examples"],
                [[c.id, c.name, c.brief, c.definition, c.when_to_use, c.when_not_to_use, "\n".join(c.examples)]
                 for c in codebook.codes],
                {"id": 38, "name": 28, "brief definition": 40, "full definition": 60, "when to use": 40,
                 "when not to use": 40, "examples": 40},
                wrap=("brief definition", "full definition", "when to use", "when not to use", "examples"))
    if last >= 2 and ids:
        dv = DataValidation(type="list", formula1=f"=Codebook!$A$2:$A${len(ids) + 1}", allow_blank=True,
                            showErrorMessage=True, errorTitle="Not a code of the codebook",
                            error="Choose a code ID from the list (sheet Codebook).")
        first_code = len(header) + 1
        dv.add(f"{get_column_letter(first_code)}2:{get_column_letter(first_code + n_codes - 1)}{last}")
        ws.add_data_validation(dv)
    how = wb.create_sheet("How to code")
    for r, line in enumerate(HOW_TO_CODE, 1):
        cell = set_cell(how, r, 1, line, wrap=True)
        if r == 1:
            cell.font = cell.font.copy(bold=True, size=14)
    how.column_dimensions["A"].width = 110
    if removed:
        rs = wb.create_sheet(REMOVED_SHEET)
        write_table(rs, ["unit_id", "unit_type", "codes", "memo", "removed on"] +
                    [f"code {i}" for i in range(1, n_codes + 1)],
                    removed, {"unit_id": 30, "memo": 40}, wrap=("memo",))
    with atomic_path(path) as tmp:
        wb.save(tmp)


def export(study, kinds: dict[str, str], turns: pd.DataFrame, segments: pd.DataFrame, codes: pd.DataFrame,
           codebook, entries: pd.DataFrame, progress=None) -> list[Path]:
    """Write or refresh every coder's workbooks; returns the paths written.  ``kinds``: transcript_id -> kind."""
    state_path = study.interim / "export_state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    suggestions = _suggestions(codes)
    written = []
    today = datetime.now().strftime("%Y-%m-%d")
    by_tid_turns = {tid: g.sort_values("seq") for tid, g in turns[turns["kind"] == "session"].groupby("transcript_id")}
    by_tid_segs = {tid: g.sort_values("stop_no") for tid, g in segments.groupby("transcript_id")}
    for tid, kind in sorted(kinds.items()):
        units = by_tid_turns.get(tid) if kind == "session" else by_tid_segs.get(tid)
        if units is None or units.empty:
            continue
        header, rows = unit_rows(kind, units, suggestions, study.settings.blind)
        digest = sha256_text(json.dumps([header, rows], default=str), codebook.digest, str(study.settings.blind))
        unit_ids = {r[0] for r in rows}
        for coder in study.coders():
            path = workbook_path(study, coder, tid)
            key = path.relative_to(study.root).as_posix()
            known = state.get(key, {})
            if path.exists() and known.get("digest") == digest:
                continue  # what it shows is unchanged: leave the coder's file alone
            mine = entries[(entries["coder"] == coder) & (entries["transcript_id"] == tid)] if len(entries) else entries
            carried: dict[str, tuple[list[str], str]] = {}
            removed: list[list] = []
            for e in mine.itertuples(index=False):
                codes_list = [c for c in e.codes.split(";") if c]
                if e.unit_id in unit_ids:
                    carried[e.unit_id] = (codes_list, e.memo)
                else:
                    when = today if e.sheet != REMOVED_SHEET else None
                    removed.append([e.unit_id, e.unit_type, e.codes, e.memo, when] + codes_list)
            if progress:
                progress(key)
            if path.exists():
                backup = path.parent / ".backup" / f"{path.stem}.{datetime.now():%Y%m%d-%H%M%S}.xlsx"
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, backup)
            write_workbook(path, kind, header, rows, codebook, carried, removed)
            state[key] = {"digest": digest, "sha256": sha256_file(path)}
            written.append(path)
    write_text(state_path, json.dumps(state, indent=1, sort_keys=True))
    return written
