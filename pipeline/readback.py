"""Reading the coders' work back from their workbooks: codes, memos and own columns per unit.

Coders may sort, filter, hide columns and add columns of their own: entries are read by ``unit_id`` and by
column name, never by position.  The layout of a workbook (its sheets and the pipeline's own columns) is
defined here, for the export that writes it (``export.py``) and for the reading back.

openpyxl is imported only when a workbook has to be opened: a re-run that finds every workbook as the last run
read it opens none, and need not pay for importing it.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from .errors import Problem
from .files import member, sha256_file, sha256_text
from .study import CONSENSUS, misnamed_coder

UNIT_SHEETS = {"Turns": "turn", "Segments": "segment"}
REMOVED_SHEET = "Removed units"
_CODE_COL = re.compile(r"^code\s*(\d+)$", re.I)
_CODE_SPLIT = re.compile(r"[;,\s]+")
ENTRY_COLUMNS = ["coder", "transcript_id", "unit_type", "unit_id", "codes", "memo", "workbook", "sheet", "row",
                 "removed_on", "extra", "retired"]  # retired: codes the codebook retired, kept in the cells
SUGGESTED, EVIDENCE, NOTE = "suggested codes", "evidence", "note"
SESSION_HEADER = ["unit_id", "#", "time", "speaker", "role", "text", SUGGESTED, EVIDENCE]
SEGMENT_HEADER = ["unit_id", "stop", "video time", "status", "session excerpt", "recall", SUGGESTED, EVIDENCE, NOTE]
REMOVED_HEADER = ["unit_id", "unit_type", "removed on"]
CODERS_HEADER = ["coders' codes", "disputed"]  # the consensus coder's unit sheet: what the coders gave each unit
# Columns the pipeline writes, per sheet; any other column is the coder's own and is carried over as it is.
_OURS = {sheet: {h.lower() for h in header} | {"memo"} for sheet, header in
         (("Turns", SESSION_HEADER + CODERS_HEADER), ("Segments", SEGMENT_HEADER + CODERS_HEADER),
          (REMOVED_SHEET, REMOVED_HEADER))}


@dataclass
class ReadBack:
    entries: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    signatures: dict = field(default_factory=dict)  # workbook -> [mtime_ns, size] of the file as read
    warnings: list[str] = field(default_factory=list)


def workbook_path(study, coder: str, transcript_id: str) -> Path:
    return study.coded / coder / f"{transcript_id}.xlsx"


def _workbooks(study):
    if not study.coded.is_dir():
        return
    for coder_dir in sorted(p for p in study.coded.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for wb in sorted(coder_dir.glob("*.xlsx")):
            if not wb.name.startswith(("~$", ".")):
                yield coder_dir.name, wb


def lock_file(path: Path) -> Path | None:
    """The lock file Excel (``~$name.xlsx``, the first characters of a long name dropped) or LibreOffice
    (``.~lock.name.xlsx#``) keeps beside a workbook while it is open; None when there is none."""
    folder, name = path.parent, path.name
    candidates = [folder / f".~lock.{name}#"] + [folder / f"~${name[k:]}" for k in range(3)]
    return next((p for p in candidates if p.exists()), None)


WORKBOOK_STATE = "workbook_state.json"


def read_workbooks(study, code_ids) -> ReadBack:
    """Every coder's entries: codes, memos and own columns per unit, from the unit sheet and ``Removed units``.
    ``code_ids``: the codebook's IDs, or every ID a cell may hold -> the code it stands for
    (``Codebook.readable_ids``: a code renamed or merged is read as the code that replaced it).

    A workbook whose file is exactly as when the last run read it (the same bytes, with the same codebook) is
    not opened again: its entries come from ``coder_entries.parquet``.  Opening a few hundred workbooks costs
    seconds; a study re-run with nothing changed should not, nor one copied to another folder or machine (which
    gives every file a new modification time: then the bytes are compared by their hash)."""
    rows: list[dict] = []
    problems: list[Problem] = []
    code_ids = _as_map(code_ids)
    known, previous = _last_reads(study, code_ids)
    signatures: dict = {"codes": _codes_key(code_ids)}
    reused: list[str] = []
    coders = set(study.coders())
    unlisted: set[str] = set()
    opened: list[tuple[str, Path, str, list]] = []
    folders: dict[Path, dict[str, str]] = {}
    for coder, path in _workbooks(study):
        rel = study.relative(path)
        if study.settings.coders and coder not in coders:
            unlisted.add(coder)
            continue
        if wrong := misnamed_coder(coder):
            folder = study.relative(path.parent) + "/"
            if all(p.file != folder for p in problems):  # (once per folder; its workbooks are not read)
                problems.append(Problem(folder, f"the coder name {wrong[0]}",
                                        hint=f"{wrong[1]}: rename the folder (and the coder in study.toml)"))
            continue
        problems += _saved_as_other(study, coder, path, folders)
        st = path.stat()
        sig, old = [st.st_mtime_ns, st.st_size], known.get(rel) or [None, None, ""]
        if lock_file(path) is None and old[1] == st.st_size and (
                old[0] == st.st_mtime_ns or (len(old) > 2 and sha256_file(path) == old[2])):
            reused.append(rel)
            signatures[rel] = sig + (old[2:] or [sha256_file(path)])  # (a signature of an older version had none)
            continue
        opened.append((coder, path, rel, sig))
    said = _turns_said(study, {path.stem for _, path, _, _ in opened}) if opened else {}
    for coder, path, rel, sig in opened:
        found, trouble = read_workbook(path, rel, coder, code_ids, coders - {coder}, said)
        rows += found
        problems += trouble
        if not trouble:
            signatures[rel] = sig + [sha256_file(path)]
    entries = pd.DataFrame(rows, columns=ENTRY_COLUMNS)
    if reused:
        old = previous[previous["workbook"].isin(reused)]
        entries = pd.concat([old, entries], ignore_index=True) if len(entries) else old.reset_index(drop=True)
    problems = [p for p in problems if not isinstance(p, _Gone)] + _gone_codes(
        [p for p in problems if isinstance(p, _Gone)], study.settings.codebook)
    warnings = [f"{study.relative(study.coded / c)}/: not a coder of study.toml (coders = {sorted(coders)}), so its "
                "workbooks are not read; add it to coders to count them, or move it out of "
                f"{study.relative(study.coded)}/" for c in sorted(unlisted)] + _retired_kept(entries, study)
    return ReadBack(entries, problems + units_in_two_workbooks(entries), signatures, warnings)


def _turns_said(study, transcripts: set[str]) -> dict[str, tuple[str, str, int]]:
    """Turn ID -> (words, file, line) of these transcripts, as the last run read them: what a workbook's 'text'
    shows.  (Only theirs: a coder who saved one workbook should not pay for reading every turn of the study.)"""
    path = study.interim / "turns.parquet"
    if not path.exists():
        return {}
    turns = pd.read_parquet(path, columns=["turn_id", "text", "source_file", "source_line"],
                            filters=[("transcript_id", "in", sorted(transcripts))])
    return dict(zip(turns["turn_id"].tolist(), zip(turns["text"].tolist(), turns["source_file"].tolist(),
                                                   turns["source_line"].tolist(), strict=True), strict=True))


OTHER_FORMATS = (".ods", ".xls", ".xlsm", ".xlsb", ".csv", ".numbers")


def _saved_as_other(study, coder: str, path: Path, folders: dict) -> list[Problem]:
    """A coder's workbook saved in another format beside it (LibreOffice's ODF format, Excel's 'Save As'): the run
    reads .xlsx only, and the coder's work would be left out without a word.  (``folders``: each folder's file
    names, listed once.)"""
    if path.parent not in folders:
        folders[path.parent] = {p.name.lower(): p.name for p in path.parent.iterdir()}
    names = folders[path.parent]
    found = [names[n] for n in (f"{path.stem}{s}".lower() for s in OTHER_FORMATS) if n in names]
    return [Problem(study.relative(path.parent / name), f"is {coder}'s workbook {path.name} saved as "
                                                        f"{Path(name).suffix}, which the run does not read",
                    hint=f"open it, save it as Excel Workbook (.xlsx) over {path.name}, and delete it")
            for name in found]


def _as_map(code_ids) -> dict[str, str]:
    return dict(code_ids) if isinstance(code_ids, dict) else {c: c for c in code_ids}


@dataclass(frozen=True)
class _Gone(Problem):
    """A code in a coder's cell that is not in the codebook, though it was when the workbook was made (its sheet
    Codebook lists it): the codebook changed.  Told once per code, not once per cell."""

    code: str = ""
    guess: str = ""


def _gone_codes(gone: list[_Gone], codebook: str) -> list[Problem]:
    """One problem per code gone from the codebook, naming the first cell that holds it and how many do."""
    by_code: dict[str, list[_Gone]] = {}
    for g in gone:
        by_code.setdefault(g.code.lower(), []).append(g)
    problems = []
    for cells in by_code.values():
        first, books, code = cells[0], len({g.file for g in cells}), cells[0].code
        where = "a coder's cell holds it" if len(cells) == 1 else f"this cell and {len(cells) - 1} more hold it"
        where += f", in {books} workbooks" if books > 1 else ""
        became = f"became {first.guess} or was merged" if first.guess else "was renamed or merged"
        problems.append(Problem(first.file, f"unknown code {code!r}: it is no longer in {codebook}, but {where}",
                                first.where, f"if it {became} into another code, add 'replaces: [{code}]' to that "
                                             f"code; if it was dropped, add 'retired: [{code}]' at the codebook's "
                                             "top; otherwise put it back in the codebook"))
    return problems


def _retired_kept(entries: pd.DataFrame, study) -> list[str]:
    """A line per retired code that coders' cells hold: they keep it, and it is not counted."""
    held = entries.loc[entries["retired"] != "", ["retired", "workbook"]]
    if held.empty:
        return []
    cells = held.assign(code=held["retired"].str.split(";")).explode("code")
    return [f"{rows['code'].iloc[0]}: retired in {study.settings.codebook}, so it is not counted; {len(rows)} "
            f"cell{'s' * (len(rows) > 1)} in {rows['workbook'].nunique()} coders' workbook"
            f"{'s' * (rows['workbook'].nunique() > 1)} hold{'s' * (len(rows) == 1)} it, and keep it"
            for _, rows in cells.groupby(cells["code"].str.lower(), sort=True)]


def units_in_two_workbooks(entries: pd.DataFrame) -> list[Problem]:
    """One problem per pair of a coder's workbooks that code the same units: a copy of a workbook left in the
    coder's folder ("D01_S3_session (1).xlsx", a backup made by hand).  Which of the two holds the coder's
    decision cannot be told, and reading both would mix an old copy's codes into the new ones."""
    live = current_entries(entries)
    twice = live[live.duplicated(["coder", "unit_id"], keep=False)]
    first: dict[tuple[str, str], tuple[str, str, int]] = {}
    pairs: dict[tuple[str, str], list] = {}  # (copy, the other) -> [units, sheet, row, the other's row, unit]
    for coder, unit, *place in zip(twice["coder"], twice["unit_id"], twice["workbook"], twice["sheet"],
                                   twice["row"], strict=True):
        seen = first.setdefault((coder, unit), tuple(place))
        if seen[0] == place[0]:
            continue
        # the copy is named first: the longer name ("X (1).xlsx", "Copy of X.xlsx"), so that the line is the same
        # whichever workbook was read first
        (copy, sheet, row), (other, _, other_row) = sorted([seen, tuple(place)], key=lambda w: (-len(w[0]), w[0]))
        pairs.setdefault((copy, other), [0, sheet, row, other_row, unit])[0] += 1
    problems = []
    for (copy, other), (n, sheet, row, other_row, unit) in sorted(pairs.items()):
        more = f", and {n - 1} more of its units" if n > 1 else ""
        folder = Path(copy).parent.as_posix()
        problems.append(Problem(copy, f"unit {unit} is coded here and in {other} (row {other_row}){more}",
                                f"sheet {sheet}, row {row}",
                                f"a coder codes a unit in one workbook: keep the one with the latest work, named "
                                f"{Path(other).name}, and move the other out of {folder}/"))
    return problems


def _codes_key(code_ids: dict[str, str]) -> str:
    return sha256_text(*sorted(old if old == new else f"{old}>{new}" for old, new in code_ids.items()))


def _last_reads(study, code_ids) -> tuple[dict, pd.DataFrame | None]:
    state, table = study.interim / WORKBOOK_STATE, study.interim / "coder_entries.parquet"
    try:
        known = json.loads(state.read_text()) if state.exists() and table.exists() else {}
    except ValueError:
        known = {}
    if known.get("codes") != _codes_key(code_ids):
        return {}, None
    previous = pd.read_parquet(table)
    if list(previous.columns) != ENTRY_COLUMNS:
        return {}, None
    return known, previous


HOW_TO_SHEET = "How to code"
_ABOUT = re.compile(r"^Transcript (?P<transcript>.+), coder (?P<coder>.+?); codebook: ")


def about_line(transcript_id: str, coder: str, codebook) -> str:
    """The line of a workbook's 'How to code' sheet that says whose workbook it is, of which transcript."""
    version = f", version {codebook.version}" if codebook.version else ""
    line = f"Transcript {transcript_id}, coder {coder}; codebook: {codebook.title or '(untitled)'}{version}."
    if coder == CONSENSUS:
        line += (" Record here what the coders decided when they met: this workbook is the consensus, not one more "
                 "coder in the agreement between coders. On a unit you code here (with codes, or a memo for 'no "
                 "code'), the consensus is your codes; on a unit you leave blank, it is the codes two or more coders "
                 "gave it (or the one coder's, where one coded it). 'coders' codes' shows what each coder gave each "
                 "unit (as their workbooks stood at the last run), and 'disputed' the codes some of them gave it and "
                 "others did not: filter it to go through the disagreements.")
    return line


def _made_for(wb) -> str | None:
    """The coder a workbook was made for, from its 'How to code' sheet (None when the line is not there)."""
    if HOW_TO_SHEET not in wb.sheetnames:
        return None
    for (value,) in wb[HOW_TO_SHEET].iter_rows(max_row=4, max_col=1, values_only=True):
        if isinstance(value, str) and (m := _ABOUT.match(value)):
            return m["coder"]
    return None


def read_workbook(path: Path, rel: str, coder: str, code_ids, others=(), said=None) -> tuple[list[dict], list[Problem]]:
    """One workbook's entries and problems (``rel``: the name used in messages).  ``others``: the study's other
    coders; a workbook made for one of them, in this coder's folder, would have their codes counted as this
    coder's.  ``said``: the session turns' words (``_turns_said``), which a coder's edit of 'text' is told by."""
    problems: list[Problem] = []
    lock = lock_file(path)
    if lock is not None:
        return [], [Problem(rel, "is open in Excel or LibreOffice (its lock file is there)",
                            hint=f"save and close it, then run again; if it is not open, delete {lock.name}")]
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 (a damaged file raises many kinds: zip, XML, key, value ...)
        return [], [Problem(rel, f"is not a readable Excel workbook ({type(e).__name__})",
                            hint="save it again as an Excel Workbook (.xlsx), restore it from .backup/, or "
                                 "delete it to have it written anew")]
    by_id = {c.lower(): current for c, current in _as_map(code_ids).items()}
    rows: list[dict] = []
    try:
        names = {s.strip().lower(): s for s in wb.sheetnames}
        units = [(names[s.lower()], t) for s, t in UNIT_SHEETS.items() if s.lower() in names]
        if not units:
            problems.append(Problem(rel, "has no sheet named Turns or Segments",
                                    hint="rename the sheet back, or restore the workbook from .backup/"))
        made_with = functools.cache(lambda: _codebook_sheet_ids(wb, names))
        for sheet, unit_type in units:
            rows += _read_sheet(wb[sheet], coder, path.stem, unit_type, rel, by_id, problems, made_with, said or {})
        if REMOVED_SHEET.lower() in names:
            rows += _read_sheet(wb[names[REMOVED_SHEET.lower()]], coder, path.stem, None, rel, by_id, problems,
                                made_with, {})
        if rows and (made_for := _made_for(wb)) != coder and made_for in others:
            problems.append(Problem(
                rel, f"was made for {made_for}, so its codes would count as {coder}'s", f"sheet {HOW_TO_SHEET}",
                f"move it back to {Path(rel).parent.parent.as_posix()}/{made_for}/; to code on from {made_for}'s "
                f"codes as {coder}, write {coder} for {made_for} in that sheet"))
    except Exception as e:  # noqa: BLE001
        problems.append(Problem(rel, f"is not a readable Excel workbook ({type(e).__name__}: {e})",
                                hint="save it again as an Excel Workbook (.xlsx), or restore it from .backup/"))
    finally:
        wb.close()
    return rows, problems


def _codebook_sheet_ids(wb, names: dict[str, str]) -> set[str]:
    """The code IDs (lower case) in the workbook's sheet Codebook: those of the codebook it was made with."""
    if "codebook" not in names:
        return set()
    rows = wb[names["codebook"]].iter_rows(min_row=2, max_col=1, values_only=True)
    return {typed_text(row[0]).lower() for row in rows if row and row[0] is not None}


def evidence_of(code: str, words: str) -> str:
    """How the ``evidence`` column names a suggested code and the words that matched it."""
    return f"{code}: “{words}”"


def _typed_into_ours(ws, r: int, values: list, at: dict[str, int], by_id: dict, rel: str,
                     said: tuple | None) -> list[Problem]:
    """A coder's text in the pipeline's column 'suggested codes', 'note' or 'text' (``at``: their positions): it is
    not read, and a refreshed workbook would write the pipeline's own over it, so the coder is told where it
    belongs.  What the pipeline wrote there is told apart without a record of it: each suggested code is named in
    the row's evidence, a note is one of the alignment's; a turn's words are ``said`` (words, file, line: as the
    last run read them).  A suggestion deleted is no loss (ignoring it rejects it)."""
    from openpyxl.utils import get_column_letter

    from .align import NOTE_FORM
    from .xlsx import cell_value

    def cell(name: str) -> str:
        return f"sheet {ws.title}, cell {get_column_letter(at[name] + 1)}{r}"

    problems = []
    if SUGGESTED in at and EVIDENCE in at:
        typed, evidence = typed_text(values[at[SUGGESTED]]), typed_text(values[at[EVIDENCE]])
        added = [w for w in _CODE_SPLIT.split(typed) if w and evidence_of(w, "").removesuffix("”") not in evidence]
        if added and all(w.lower() in by_id for w in added):
            problems.append(Problem(rel, f"'{SUGGESTED}' holds {', '.join(added)}, which the rules did not suggest "
                                         "here: codes in that column are not read", cell(SUGGESTED),
                                    f"move {'it' if len(added) == 1 else 'them'} to a 'code' column"))
        elif added:
            problems.append(Problem(rel, f"'{SUGGESTED}' holds {typed!r}: that column is the rules' and is not read",
                                    cell(SUGGESTED), "move codes to a 'code' column and anything else to 'memo'"))
    if NOTE in at and (note := typed_text(values[at[NOTE]])) and not NOTE_FORM.fullmatch(note):
        problems.append(Problem(rel, f"'{NOTE}' holds {note!r}: that column is the alignment's and is not read",
                                cell(NOTE), "move it to 'memo'"))
    if "text" in at and said is not None and (
            " ".join(typed_text(values[at["text"]]).split()) != " ".join(str(cell_value(said[0])).split())):
        problems.append(Problem(rel, "the turn's words were changed here: 'text' is not read, and a refreshed "
                                     "workbook would write the transcript's words over it", cell("text"),
                                f"undo the change; to correct the transcript, correct data/raw/{said[1]}, "
                                f"line {said[2]}"))
    return problems


def typed_text(value) -> str:
    """A cell's value as the text a coder typed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def header_row(ws) -> tuple[int, list[str], list[str]] | None:
    """The header row: where ``unit_id`` is within the first rows (a coder may have put a title above it), else
    the first row that is not empty.  Returns (row, lower-case names, names as written)."""
    first = None
    for r, values in enumerate(ws.iter_rows(min_row=1, max_row=10, values_only=True), 1):
        written = [typed_text(v) for v in values]
        names = [n.lower() for n in written]
        if first is None and any(names):
            first = (r, names, written)
        if "unit_id" in names:
            return r, names, written
    return first


def _read_sheet(ws, coder, transcript_id, unit_type, rel, by_id, problems, made_with, said) -> list[dict]:
    """The entries of one sheet; ``unit_type`` None for the ``Removed units`` sheet (it has its own column).
    ``made_with()``: the code IDs (lower case) of the codebook the workbook was made with; ``said``: the session
    turns' words (a coder's correction of them in 'text' would not be read, and a refresh would write over it)."""
    from openpyxl.utils import get_column_letter

    found = header_row(ws)
    if found is None:
        return []
    head_row, names, written = found
    removed = unit_type is None
    if "unit_id" not in names:
        problems.append(Problem(rel, "the unit_id column is missing", f"sheet {ws.title}, row {head_row}",
                                "restore the column (undo, or copy it from the backup in .backup/)"))
        return []
    uid = names.index("unit_id")
    code_cols = sorted((int(m.group(1)), i) for i, n in enumerate(names) if (m := _CODE_COL.match(n)))
    memo = names.index("memo") if "memo" in names else None
    type_col = names.index("unit_type") if "unit_type" in names else None
    when_col = names.index("removed on") if "removed on" in names else None
    # The coder's own columns, by name; one without a name is called by its letter.
    ours = _OURS[REMOVED_SHEET if removed else next(s for s, t in UNIT_SHEETS.items() if t == unit_type)]
    # the pipeline's columns a coder's text is looked for in (a turn's words: when the last run's are known)
    checked = {n: names.index(n) for n in (SUGGESTED, EVIDENCE, NOTE, "text") if n in names and n in ours
               and (n != "text" or (said and unit_type == "turn"))}
    extra_cols = [(i, written[i] or f"column {get_column_letter(i + 1)}") for i, n in enumerate(names)
                  if n not in ours and not _CODE_COL.match(n)]
    out: dict[str, dict] = {}
    listed: list[dict] = []
    for r, values in enumerate(ws.iter_rows(min_row=head_row + 1, values_only=True), head_row + 1):
        values = list(values) + [None] * (len(names) - len(values))
        for i in range(len(names), len(values)):  # a value right of the header's last name
            if typed_text(values[i]) and all(i != j for j, _ in extra_cols):
                extra_cols.append((i, f"column {get_column_letter(i + 1)}"))
        codes: list[str] = []
        retired: list[str] = []
        for _, i in code_cols:
            typed = typed_text(values[i])
            unknown = []
            for code in _CODE_SPLIT.split(typed):
                if not code:
                    continue
                known = by_id.get(code.lower())
                if known == "":  # retired by the codebook: the coder's cell keeps it, nothing counts it
                    retired += [code] if code not in retired else []
                    continue
                if known is None and not removed:
                    unknown.append(code)
                    continue
                code = known or code
                if code not in codes:
                    codes.append(code)
            if unknown:
                # a code's name typed in full ("Minimal response") is one mistake, not one per word
                whole = _did_you_mean(typed, by_id)
                cell = f"sheet {ws.title}, cell {get_column_letter(i + 1)}{r}"
                for code in [typed] if whole else unknown:
                    guess = whole or _did_you_mean(code, by_id)
                    if code.lower() in made_with():
                        problems.append(_Gone(rel, "", cell, code=code, guess=guess))
                    else:
                        problems.append(Problem(rel, f"unknown code {code!r}", cell,
                                                (f"did you mean {guess}? " if guess else "")
                                                + "choose a code from the drop-down list (sheet Codebook)"))
        unit = typed_text(values[uid])
        if checked:
            problems += _typed_into_ours(ws, r, values, checked, by_id, rel, said.get(unit))
        note = "" if memo is None else typed_text(values[memo])
        extra = {name: typed_text(values[i]) for i, name in extra_cols if typed_text(values[i])}
        if not unit:
            if codes or note or extra:
                problems.append(Problem(rel, "this row has codes or a memo but no unit_id",
                                        f"sheet {ws.title}, cell {get_column_letter(uid + 1)}{r}",
                                        "put the unit_id back (undo, or copy it from the backup in .backup/)"))
            continue
        if not codes and not note and not extra and not retired:
            continue
        entry = {"coder": coder, "transcript_id": transcript_id,
                 "unit_type": unit_type or (typed_text(values[type_col]) if type_col is not None else ""),
                 "unit_id": unit, "codes": codes, "memo": note, "workbook": rel, "sheet": ws.title, "row": r,
                 "removed_on": typed_text(values[when_col]) if removed and when_col is not None else "", "extra": extra,
                 "retired": retired}
        if removed:  # a unit may have been removed twice: keep every row
            listed.append(entry)
        elif unit in out:  # a duplicated row: keep what both say
            _merge(out[unit], entry)
        else:
            out[unit] = entry
    result = []
    for e in list(out.values()) + listed:
        result.append({**e, "codes": ";".join(e["codes"]), "retired": ";".join(e["retired"]),
                       "extra": json.dumps(e["extra"], ensure_ascii=False) if e["extra"] else ""})
    return result


def _did_you_mean(typed: str, by_id: dict[str, str]) -> str:
    """The code ID a coder most likely meant: the one whose last part reads as ``typed`` ("Denial", "Minimal
    response", "self-criticism / hopelessness"), or an ID within a typo or two of it; "" when none."""
    def plain(text: str) -> str:
        return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")

    ends = [code for low, code in by_id.items() if plain(low.rsplit(".", 1)[-1]) == plain(typed)]
    if len(ends) == 1:
        return ends[0]
    close = difflib.get_close_matches(typed.strip().lower(), list(by_id), n=1, cutoff=0.85)
    return by_id[close[0]] if close else ""


def _merge(into: dict, other: dict) -> None:
    into["codes"] += [c for c in other["codes"] if c not in into["codes"]]
    into["retired"] += [c for c in other["retired"] if c not in into["retired"]]
    if other["memo"] and other["memo"] != into["memo"]:
        into["memo"] = f"{into['memo']}\n{other['memo']}" if into["memo"] else other["memo"]
    for k, v in other["extra"].items():
        if k in into["extra"] and into["extra"][k] != v:
            into["extra"][k] = f"{into['extra'][k]}\n{v}"
        else:
            into["extra"][k] = v


EDITED_SIMILAR = 0.6  # how alike (difflib's ratio) an edited turn's words must stay to be the same turn
EDITED_NEAR = 25  # how many turns an edited turn may have moved (turns inserted or deleted above it)


def edited_turns(before: pd.DataFrame | None, turns: pd.DataFrame) -> dict[str, str]:
    """Old turn ID -> new ID of the session turns edited in their transcript since ``before`` was read.

    A turn's ID follows its words (and speaker label), so correcting a typo, or the labels, makes it a new turn.
    ``before`` (the turns as the coders' workbooks show them) tells what a turn that is gone said; it is the
    new turn of its transcript with the same role that says the same (labels aside), else the nearest one that
    says most nearly the same (at least ``EDITED_SIMILAR`` alike, within ``EDITED_NEAR`` turns)."""
    if before is None or before.empty:
        return {}
    gone = before[(before["kind"] == "session") & ~member(before["turn_id"], set(turns["turn_id"]))]  # (coded)
    new = turns[~member(turns["turn_id"], set(before["turn_id"]))]
    return _edited(gone, new, "turn_id", "role", "seq", "text", EDITED_NEAR)


def edited_segments(before: pd.DataFrame | None, segments: pd.DataFrame) -> dict[str, str]:
    """Old segment ID -> new ID of the IPR segments whose stop's time was corrected since ``before`` (a segment's
    ID is its stop's time): the new segment of the interview that recalls the same, else the one of the same stop
    number that recalls most nearly the same (at least ``EDITED_SIMILAR`` alike)."""
    if before is None or before.empty:
        return {}
    gone = before[~member(before["segment_id"], set(segments["segment_id"]))]
    new = segments[~member(segments["segment_id"], set(before["segment_id"]))]
    return _edited(gone, new, "segment_id", None, "stop_no", "recall_text", 0)


def _edited(gone: pd.DataFrame, new: pd.DataFrame, unit: str, kind: str | None, place: str, text: str,
            reach: int) -> dict[str, str]:
    """Each gone unit's new unit in its transcript: of the same ``kind`` (a role), the one whose ``text`` is the
    same, else the one within ``reach`` places that is most alike; each new unit is one gone unit's."""
    def rows(df: pd.DataFrame) -> list[tuple]:
        kinds = df[kind] if kind else [""] * len(df)
        return list(zip(df[unit], kinds, df[place], [" ".join(str(t).split()) for t in df[text]], strict=True))

    edited: dict[str, str] = {}
    new = new[new["transcript_id"].isin(set(gone["transcript_id"]))]
    for tid, old in gone.groupby("transcript_id", sort=False):
        candidates = rows(new[new["transcript_id"] == tid])
        same: dict[tuple, list[str]] = {}
        for unit_id, unit_kind, _, words in candidates:
            same.setdefault((unit_kind, words), []).append(unit_id)
        taken: set[str] = set()
        for old_id, old_kind, old_place, words in rows(old):
            best = next((u for u in same.get((old_kind, words), ()) if u not in taken), None) if words else None
            score = EDITED_SIMILAR
            for unit_id, unit_kind, unit_place, their_words in candidates if best is None else ():
                if unit_id in taken or unit_kind != old_kind or abs(unit_place - old_place) > reach:
                    continue
                matcher = difflib.SequenceMatcher(None, words, their_words, autojunk=False)
                if matcher.quick_ratio() >= score and (ratio := matcher.ratio()) >= score:
                    best, score = unit_id, ratio
            if best is not None:
                taken.add(best)
                edited[old_id] = best
    return edited


def follow_edits(entries: pd.DataFrame, edited: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """The entries with the codes of each edited unit (``edited_turns``, ``edited_segments``) on the unit as it is
    now, instead of ``Removed units``; and a line per workbook that says which rows' codes followed their unit."""
    if not edited or entries.empty:
        return entries, []
    moving = (entries["sheet"] != REMOVED_SHEET) & member(entries["unit_id"], set(edited))
    if not moving.any():
        return entries, []
    said: dict[tuple[str, str], list[str]] = {}
    for book, sheet, row in zip(entries.loc[moving, "workbook"], entries.loc[moving, "sheet"],
                                entries.loc[moving, "row"], strict=True):
        said.setdefault((book, sheet), []).append(str(row))
    entries = entries.copy()
    entries.loc[moving, "unit_id"] = entries.loc[moving, "unit_id"].map(edited)
    lines = [f"{book}: the codes of {len(rows)} unit{'s' * (len(rows) > 1)} edited in the transcript stay with "
             f"{'them' if len(rows) > 1 else 'it'} (sheet {sheet}, row{'s' * (len(rows) > 1)} {', '.join(rows)})"
             for (book, sheet), rows in said.items()]
    return entries, lines


def shown_to_consensus(entries: pd.DataFrame, coders) -> pd.DataFrame:
    """What the consensus coder's workbooks show of the other coders' entries (none when the study has no
    consensus coder): a change in it calls for refreshing them."""
    shown = entries[entries["coder"] != CONSENSUS] if CONSENSUS in coders else entries[:0]
    return shown[["transcript_id", "coder", "unit_id", "codes", "memo", "sheet"]]


def current_entries(entries: pd.DataFrame, unit_ids=None) -> pd.DataFrame:
    """The entries as they stand once the workbooks are refreshed for the units ``unit_ids`` (None: as read).

    An entry on a unit sheet whose unit is gone is no longer current (it moves to ``Removed units``); an entry in
    ``Removed units`` whose unit is back is current again, unless the coder coded the unit anew.
    """
    if entries.empty:
        return entries
    on_sheet = entries["sheet"] != REMOVED_SHEET
    if unit_ids is None:
        return entries[on_sheet]
    live = member(entries["unit_id"], unit_ids)
    current = entries[on_sheet & live]
    back = entries[~on_sheet & live].drop_duplicates(["coder", "transcript_id", "unit_id"])
    seen = set(zip(current["coder"], current["transcript_id"], current["unit_id"], strict=True))
    back = back[[k not in seen for k in zip(back["coder"], back["transcript_id"], back["unit_id"], strict=True)]]
    return pd.concat([current, back], ignore_index=True) if len(back) else current


def coder_codes(entries: pd.DataFrame, unit_ids=None) -> pd.DataFrame:
    """The coders' codes as rows of the codes table (``coder`` = the coder's folder name), of the current units
    (``unit_ids``; None: every unit on a unit sheet)."""
    rows = []
    for e in current_entries(entries, unit_ids).itertuples(index=False):
        for code in filter(None, e.codes.split(";")):
            rows.append({"unit_type": e.unit_type, "unit_id": e.unit_id, "code_id": code, "coder": e.coder,
                         "rule_id": "", "evidence": "", "start_char": -1, "end_char": -1})
    return pd.DataFrame(rows, columns=["unit_type", "unit_id", "code_id", "coder", "rule_id", "evidence",
                                       "start_char", "end_char"])


def coded_entries(entries: pd.DataFrame, unit_ids=None) -> pd.DataFrame:
    """The entries that make a unit coded by a coder: current (see ``current_entries``), with at least one code
    or a memo."""
    entries = current_entries(entries, unit_ids)
    if entries.empty:
        return entries
    return entries[(entries["codes"] != "") | (entries["memo"] != "")]
