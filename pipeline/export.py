"""Stage 4, export: one workbook per transcript and coder (reading the coders' work back is ``readback.py``).

A coder's entries are the most expensive data of a study.  So every run first reads every workbook, and a
workbook is rewritten only when what it shows (its units, the suggestions, the codebook) changed; then the
coder's codes, memos and own columns are carried into the new one, codes of units that disappeared move to a
``Removed units`` sheet (with the date they were removed), and the file the coder saved is kept in ``.backup/``.
"""

from __future__ import annotations

import functools
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from .files import atomic_path, digests_by, sha256_file, sha256_text, write_text
from .readback import (
    CODERS_HEADER,
    HOW_TO_SHEET,
    REMOVED_HEADER,
    REMOVED_SHEET,
    SEGMENT_HEADER,
    SESSION_HEADER,
    UNIT_SHEETS,
    about_line,
    coded_entries,
    evidence_of,
    header_row,
    shown_to_consensus,
    typed_text,
    workbook_path,
)
from .study import CONSENSUS
from .timecode import format_time
from .xlsx import COMPRESS_LEVEL, WRAP, cell_style, row_height, save, stream_lines, stream_table, text_in_sheet

MIN_CODE_COLUMNS = 3
FORMAT_VERSION = "2"  # part of every workbook's digest: a new layout refreshes the workbooks (entries carried)
DIGEST_PROPERTY = "ipr_digest"
BLIND_NOTE = "(hidden: blind coding)"
CODER_FILL = PatternFill("solid", fgColor="FFF2CC")

HOW_TO_CODE = [
    "How to code",
    "",
    "Each row is one unit: a session turn (sheet Turns) or an IPR stop with its recall (sheet Segments).",
    "Read the unit with its context. 'suggested codes' are what the codebook's rules found automatically, with "
    "the words that matched in 'evidence': accept one by choosing it in a 'code' column, ignore it to reject it. "
    "Those columns, like the text, are the pipeline's: what you type there is not read (the run says so).",
    "Choose codes from the drop-down lists in 'code 1', 'code 2', 'code 3' (IDs of the sheet Codebook); one code "
    "per cell. Need more? Add a column named 'code 4' (and so on). Write anything else in 'memo'.",
    "You may sort, filter, hide columns and add columns of your own (all of this is kept). Do not change or "
    "delete 'unit_id': it ties your codes to the transcript.",
    "Save the workbook as .xlsx where it is, under its name, and close it (keep no second copy of it in your "
    "folder: the run would not know which one to read); the next run reads your codes back and never overwrites "
    "them. If a transcript changes, your codes stay with their unit; codes of units that no longer exist move to "
    "the sheet 'Removed units'. Before a workbook you saved is refreshed, your version is kept in the folder "
    ".backup.",
    "A unit counts as coded when you gave it at least one code or wrote a memo: only coded units enter the "
    "agreement between coders, so write a memo (for example 'none') on a unit you read and found nothing in.",
]


# --- writing ------------------------------------------------------------------------------------------------

def _suggestions(auto: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """unit_id -> (suggested code IDs, evidence) from the automatic codes (rows of coder ``auto``)."""
    ids: dict[str, dict] = {}
    evidence: dict[str, dict] = {}  # dicts as ordered sets: each once, in the order found
    for unit_id, code, words in zip(auto["unit_id"], auto["code_id"], auto["evidence"], strict=True):
        ids.setdefault(unit_id, {})[code] = None
        evidence.setdefault(unit_id, {})[evidence_of(code, words)] = None
    return {unit_id: (", ".join(ids[unit_id]), "; ".join(evidence[unit_id])) for unit_id in ids}


# The columns of the turns and segments tables that a unit sheet shows (the last two of a segment's may be absent)
SESSION_COLUMNS = ("turn_id", "seq", "start_s", "speaker", "role", "text")
SEGMENT_COLUMNS = ("segment_id", "stop_no", "video_s", "status", "context_text", "recall_text", "recall_dialogue",
                   "note")


def coders_view(theirs: pd.DataFrame, unit_ids: set[str], codebook) -> dict[str, tuple[str, str]]:
    """unit_id -> (what each coder gave the unit, the codes some of them gave it and others did not): what the
    consensus coder's workbook shows of the coders' work.  ``theirs``: the coders' entries of one transcript (the
    consensus coder's own are left out); ``unit_ids``: its units as they are now."""
    from .agreement import disagreements

    coded = coded_entries(theirs[theirs["coder"] != CONSENSUS], unit_ids)
    if coded.empty:
        return {}
    said: dict[str, list[str]] = {}
    for e in coded.sort_values("coder", kind="stable").itertuples(index=False):
        memo = f" (memo: {e.memo})" if e.memo else ""
        said.setdefault(e.unit_id, []).append(f"{e.coder}: {e.codes.replace(';', ', ') or 'no code'}{memo}")
    disputed: dict[str, list[str]] = {}
    for unit, code in disagreements(coded, codebook, dict.fromkeys(unit_ids))[["unit_id", "code_id"]].itertuples(
            index=False):
        disputed.setdefault(unit, []).append(code)
    return {unit: ("\n".join(lines), ", ".join(disputed.get(unit, ()))) for unit, lines in said.items()}


def unit_rows(kind: str, units: dict[str, list], suggestions: dict, blind: bool) -> tuple[list[str], list[list]]:
    """Header and rows of a transcript's unit sheet, before the coder's columns.  ``units``: the transcript's
    turns or segments, column name -> values."""
    def sugg(uid):
        return (BLIND_NOTE, "") if blind else suggestions.get(uid, ("", ""))

    if kind == "session":
        rows = [[turn_id, seq, format_time(start), speaker, role, text, *sugg(turn_id)]
                for turn_id, seq, start, speaker, role, text in zip(*(units[c] for c in SESSION_COLUMNS), strict=True)]
        return list(SESSION_HEADER), rows
    rows = []
    n = len(units["segment_id"])
    for segment_id, stop_no, video_s, status, context, recall, dialogue, note in zip(
            *(units[c] for c in SEGMENT_COLUMNS[:6]), units.get("recall_dialogue", [None] * n),
            units.get("note", [""] * n), strict=True):
        recall = dialogue if isinstance(dialogue, str) and dialogue.strip() else recall
        rows.append([segment_id, stop_no, format_time(video_s), status, context, recall, *sugg(segment_id),
                     note if isinstance(note, str) else ""])
    return list(SEGMENT_HEADER), rows


WIDTHS = {"unit_id": 14, "#": 5, "stop": 6, "time": 9, "video time": 9, "speaker": 12, "role": 11, "status": 12,
          "text": 70, "session excerpt": 60, "recall": 60, "suggested codes": 26, "evidence": 36, "note": 16,
          "memo": 40, "removed on": 12, "unit_type": 10, "coders' codes": 40, "disputed": 34}
WRAPPED = ("text", "session excerpt", "recall", "evidence", "memo", "suggested codes", "note", "coders' codes",
           "disputed")


@dataclass
class Entry:
    """A coder's entry on one unit, as carried into a workbook."""

    unit_id: str
    unit_type: str = ""
    codes: list[str] = field(default_factory=list)
    memo: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    removed_on: str = ""


@dataclass
class Layout:
    """How the coder left the unit sheet: hidden columns stay hidden, widths stay (by column name), and the rows
    stay in the coder's order (a sheet sorted by a column, say)."""

    hidden: set[str] = field(default_factory=set)
    widths: dict[str, float] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the header as the coder left it
    rows: list[str] = field(default_factory=list)  # the unit_ids, top to bottom


def write_workbook(path: Path, kind: str, header: list[str], rows: list[list], codebook,
                   entries: dict[str, Entry], removed: list[Entry], *, blind: bool = False,
                   layout: Layout | None = None, digest: str = "", about: str = "") -> None:
    """Write one coder's workbook atomically; ``entries`` (by unit_id) and ``removed`` are carried over.

    The workbook is written write-only (each sheet streamed row by row): an export writes hundreds of them."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Turns" if kind == "session" else "Segments")
    last, n_codes = _unit_sheet(ws, header, rows, codebook, entries, blind=blind, layout=layout or Layout())
    _codebook_sheet(wb.create_sheet("Codebook"), codebook)
    if last >= 2 and codebook.codes:
        _code_lists(ws, len(codebook.codes), len(header) + 1, n_codes, last)
    _how_to_sheet(wb.create_sheet(HOW_TO_SHEET), about, blind)
    if removed:
        _removed_sheet(wb.create_sheet(REMOVED_SHEET), removed)
    if digest:
        wb.custom_doc_props.append(StringProperty(name=DIGEST_PROPERTY, value=digest))
    save(wb, path)


def _unit_sheet(ws, header: list[str], rows: list[list], codebook, entries: dict[str, Entry], *, blind: bool,
                layout: Layout) -> tuple[int, int]:
    """The sheet of units with the coder's columns: their codes, memo and own columns.  Returns the last row
    and the number of code columns."""
    rows = in_coders_order(rows, layout.rows)
    n_codes = max([MIN_CODE_COLUMNS] + [len(e.codes) for e in entries.values()])
    extras = list(dict.fromkeys(k for e in entries.values() for k in e.extra))
    extras.sort(key=lambda k: layout.order.index(k) if k in layout.order else len(layout.order))
    code_cols = [f"code {i}" for i in range(1, n_codes + 1)]
    full_header = header + code_cols + ["memo"] + extras
    body = []
    for row in rows:
        e = entries.get(row[0]) or Entry(row[0])
        body.append(row + e.codes + [None] * (n_codes - len(e.codes)) + [e.memo or None]
                    + [e.extra.get(k) for k in extras])
    code_width = min(40, max([12] + [len(c.id) + 4 for c in codebook.codes]))  # the drop-down shows whole IDs
    widths = {**WIDTHS, **{c: code_width for c in code_cols},
              **({"suggested codes": 12, "evidence": 6} if blind else {})}
    col_widths = [widths.get(h, 12) for h in full_header]
    for c, name in enumerate(full_header, 1):
        kept = name == "unit_id" or name in code_cols or name == "memo"
        if (name in layout.hidden and not kept) or (blind and name == "evidence"):
            ws.column_dimensions[get_column_letter(c)].hidden = True
    _print_setup(ws)
    last = stream_table(ws, full_header, body, {**widths, **layout.widths}, wrap=WRAPPED,
                        heights=[row_height(row, col_widths) for row in body],
                        fills=dict.fromkeys(code_cols + ["memo"] + extras, CODER_FILL))
    return last, n_codes


def in_coders_order(rows: list[list], order: list[str]) -> list[list]:
    """The rows (unit_id first) in the coder's ``order`` of unit_ids; a unit new to the workbook goes right after
    the unit before it in ``rows`` (the transcript's order), or at the top when it is the first."""
    if not order:
        return rows
    at = {unit: i for i, unit in enumerate(order)}
    keys, anchor = [], -1
    for row in rows:
        anchor = at.get(row[0], anchor)
        keys.append((anchor, row[0] not in at))
    return [rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)]  # (a stable sort)


def _code_lists(ws, n_ids: int, first_code: int, n_codes: int, last: int) -> None:
    """The drop-down list of the Codebook sheet's IDs in the code columns."""
    # Written without "=", as Excel itself writes it.
    dv = DataValidation(type="list", formula1=f"Codebook!$A$2:$A${n_ids + 1}", allow_blank=True,
                        showErrorMessage=True, errorTitle="Not a code of the codebook",
                        error="Choose a code ID from the list (sheet Codebook).", showInputMessage=False)
    dv.add(f"{get_column_letter(first_code)}2:{get_column_letter(first_code + n_codes - 1)}{last}")
    ws.data_validations.append(dv)


CODEBOOK_WIDTHS = {"id": 38, "name": 28, "brief definition": 40, "full definition": 60, "when to use": 40,
                   "when not to use": 40, "examples": 40, "applies to": 22}
CODEBOOK_WRAPPED = ("name", "brief definition", "full definition", "when to use", "when not to use", "examples",
                    "applies to")


def _codebook_sheet(ws, codebook) -> None:
    """The codebook, the same in every workbook of a run: its rows are made once."""
    rows = tuple((c.id, c.name, c.brief, c.definition, c.when_to_use, c.when_not_to_use, "\n".join(c.examples),
                  _applies(c)) for c in codebook.codes)
    _print_setup(ws)
    stream_table(ws, list(CODEBOOK_WIDTHS), rows, CODEBOOK_WIDTHS, wrap=CODEBOOK_WRAPPED,
                 heights=_codebook_heights(rows), repeated=True)


@functools.lru_cache(maxsize=2)
def _codebook_heights(rows: tuple[tuple[str, ...], ...]) -> tuple[float, ...]:
    widths = list(CODEBOOK_WIDTHS.values())
    return tuple(row_height(row[:-1], widths, most=10) for row in rows)  # not "applies to"


def _how_to_sheet(ws, about: str, blind: bool) -> None:
    lines = list(HOW_TO_CODE)
    if about:
        lines.insert(1, about)
    if blind:
        lines.insert(2, "This is a blind coding round: the automatic suggestions are hidden. Code without them.")
    ws.column_dimensions["A"].width = 110
    stream_lines(ws, lines, [cell_style(ws, Font(bold=True, size=14), alignment=WRAP), cell_style(ws, alignment=WRAP)])


def _removed_sheet(ws, removed: list[Entry]) -> None:
    n = max(len(e.codes) for e in removed) or 1
    extras = list(dict.fromkeys(k for e in removed for k in e.extra))
    header = REMOVED_HEADER + [f"code {i}" for i in range(1, n + 1)] + ["memo"] + extras
    rows = [[e.unit_id, e.unit_type, e.removed_on] + e.codes + [None] * (n - len(e.codes)) + [e.memo or None]
            + [e.extra.get(k) for k in extras] for e in removed]
    stream_table(ws, header, rows, {**WIDTHS, "unit_id": 34}, wrap=("memo",))  # whole IDs: no row to read them by


def _applies(code) -> str:
    units = ", ".join(f"{u}s" for u in code.units)
    return f"{units} of {', '.join(code.roles)}" if code.roles else units


def _print_setup(ws) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"


def read_layout(path: Path) -> Layout:
    """How the coder left the unit sheet: hidden columns and widths by column name, the order of the rows (empty
    when unreadable)."""
    layout = Layout()
    try:
        wb = load_workbook(path)
    except Exception:  # noqa: BLE001 (it was read before; a layout is a nicety)
        return layout
    try:
        ws = next((wb[s] for s in wb.sheetnames if s in UNIT_SHEETS), None)
        if ws is None:
            return layout
        found = header_row(ws)
        if found is None:
            return layout
        head_row = found[0]
        for cell in ws[head_row]:
            name = typed_text(cell.value) or f"column {get_column_letter(cell.column)}"
            layout.order.append(name)
            letter = get_column_letter(cell.column)
            dim = ws.column_dimensions.get(letter)
            if dim is None:  # grouped definitions (min..max) are kept under their first column
                dim = next((d for d in ws.column_dimensions.values() if d.min and d.max
                            and d.min <= cell.column <= d.max), None)
            if dim is None:
                continue
            if dim.hidden:
                layout.hidden.add(name)
            if dim.customWidth and dim.width:
                layout.widths[name] = dim.width
        if "unit_id" in found[1]:
            column = found[1].index("unit_id") + 1
            layout.rows = [unit for (value,) in ws.iter_rows(min_row=head_row + 1, min_col=column, max_col=column,
                                                             values_only=True) if (unit := typed_text(value))]
    finally:
        wb.close()
    return layout


def stored_digest(path: Path) -> str:
    """The digest the pipeline stored in a workbook when it wrote it ("" when none)."""
    try:
        wb = load_workbook(path, read_only=True)
    except Exception:  # noqa: BLE001
        return ""
    try:
        return next((p.value for p in wb.custom_doc_props if p.name == DIGEST_PROPERTY), "") or ""
    finally:
        wb.close()


def backup(path: Path) -> Path:
    """Copy ``path`` into ``.backup/`` beside it, under a name that never overwrites an earlier backup."""
    folder = path.parent / ".backup"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = folder / f"{path.stem}.{stamp}.xlsx"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{path.stem}.{stamp}-{n}.xlsx"
    with atomic_path(target) as tmp:  # a run killed mid-copy leaves no half backup
        shutil.copy2(path, tmp)
    return target


def carry(mine: list[dict], unit_ids: set[str], today: str) -> tuple[dict[str, Entry], list[Entry]]:
    """A coder's entries for one transcript (rows of the entries table), split into those of current units and
    those of removed ones.

    An entry of a unit that is gone moves to ``Removed units`` with today's date; one already there keeps its
    date, and moves back when its unit returns (unless the coder coded the returned unit anew).
    """
    carried: dict[str, Entry] = {}
    removed: list[Entry] = []
    for e in sorted(mine, key=lambda e: e["sheet"] == REMOVED_SHEET):  # the unit sheets first
        extra = json.loads(e["extra"]) if isinstance(e["extra"], str) and e["extra"] else {}
        codes = [c for c in f"{e['codes']};{e['retired']}".split(";") if c]  # a retired code stays in its cell
        entry = Entry(e["unit_id"], e["unit_type"], codes, e["memo"], extra,
                      e["removed_on"] if e["sheet"] == REMOVED_SHEET else "")
        if e["unit_id"] in unit_ids and e["unit_id"] not in carried:
            entry.removed_on = ""
            carried[e["unit_id"]] = entry
        else:
            entry.removed_on = entry.removed_on or today
            removed.append(entry)
    return carried, removed


def _positions(table: pd.DataFrame, by) -> dict:
    """key -> the positions of its rows in ``table``, in table order (``by``: as for ``groupby``)."""
    return table.groupby(by, sort=False).indices if len(table) else {}


def export(study, kinds: dict[str, str], turns: pd.DataFrame, segments: pd.DataFrame, codes: pd.DataFrame,
           codebook, entries: pd.DataFrame, progress=None, edited: dict[str, str] | None = None) -> list[Path]:
    """Write or refresh every coder's workbooks; returns the paths written.  ``kinds``: transcript_id -> kind;
    ``edited``: old unit ID -> new ID of the units edited since the last run, which keep their place in a
    coder's order of rows."""
    state_path = study.interim / "export_state.json"
    try:
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
    except (OSError, ValueError):
        state = {}
    blind = bool(study.settings.blind)
    written = []
    jobs: list[_Job] = []
    today = datetime.now().strftime("%Y-%m-%d")
    sessions = turns[turns["kind"] == "session"]
    auto, auto_tids = _auto_by_transcript(codes, sessions, segments)
    # Each table split by transcript as row positions only: a transcript's rows are taken when its workbooks are
    # written, which after a small change is one transcript of hundreds.
    split = {"session": (sessions, "seq", _positions(sessions, "transcript_id")),
             "ipr": (segments, "stop_no", _positions(segments, "transcript_id")),
             "auto": (auto, None, _positions(auto, auto_tids))}
    used = {"session": SESSION_COLUMNS, "ipr": SEGMENT_COLUMNS, "auto": ("unit_id", "code_id", "evidence")}
    by_workbook = _positions(entries, ["coder", "transcript_id"])
    theirs = shown_to_consensus(entries, study.coders())
    their_digests = digests_by(theirs, theirs["transcript_id"])

    columns: dict[str, dict[str, list]] = {}

    def rows_of(part: str, key) -> dict[str, list]:
        """The rows of ``key`` in table ``part``, in order, as column name -> values: each table's columns are
        made plain lists once (taking rows one by one from pandas was most of preparing a cold export)."""
        table, order, positions = split[part]
        if part not in columns:
            columns[part] = {c: table[c].tolist() for c in (*used[part], *([order] if order else ())) if c in table}
        values = columns[part]
        at = positions[key].tolist() if key in positions else []
        if order:
            at.sort(key=values[order].__getitem__)  # (a stable sort)
        return {c: [v[i] for i in at] for c, v in values.items()}

    # A transcript's workbooks show its units and their suggestions: when neither changed (nor the codebook),
    # its workbooks are left alone without even making their rows.
    shown = digests_by(sessions, sessions["transcript_id"]) | digests_by(segments, segments["transcript_id"])
    suggested = digests_by(auto, auto_tids)
    for tid, kind in sorted(kinds.items()):
        part = "session" if kind == "session" else "ipr"
        if not len(split[part][2].get(tid, ())):  # no units
            continue
        inputs = sha256_text(FORMAT_VERSION, codebook.digest, str(blind), shown[tid], suggested.get(tid, ""))
        paths = {coder: workbook_path(study, coder, tid) for coder in study.coders()}
        # (the consensus coder's workbook also shows what the other coders gave each unit)
        inputs_of = {c: sha256_text(inputs, their_digests.get(tid, "")) if c == CONSENSUS else inputs for c in paths}
        todo = [c for c, path in paths.items()
                if not (path.exists() and state.get(study.relative(path), {}).get("inputs") == inputs_of[c])]
        if not todo:
            continue
        header, rows = unit_rows(kind, rows_of(part, tid), _suggestions(rows_of("auto", tid)), blind)
        unit_ids = {r[0] for r in rows}
        sheets = {"": (header, rows)}  # what a coder's unit sheet shows; the consensus coder's, with the view
        if CONSENSUS in todo:
            others = [i for c in paths if c != CONSENSUS for i in by_workbook.get((c, tid), ())]
            view = coders_view(entries.iloc[others], unit_ids, codebook) if others else {}
            sheets[CONSENSUS] = (header + CODERS_HEADER, [[*r, *view.get(r[0], ("", ""))] for r in rows])
        digests = {k: sha256_text(FORMAT_VERSION, json.dumps(v, default=str), codebook.digest, str(blind))
                   for k, v in sheets.items()}
        plain = None  # this transcript's job for a coder with nothing of theirs in the workbook (yet)
        for coder in todo:
            path = paths[coder]
            key = study.relative(path)
            sheet = CONSENSUS if coder == CONSENSUS else ""
            inputs, (header, rows), digest = inputs_of[coder], sheets[sheet], digests[sheet]
            if path.exists() and (state.get(key, {}).get("digest") or stored_digest(path)) == digest:
                state[key] = {**state.get(key, {}), "digest": digest, "inputs": inputs}
                continue  # what it shows is unchanged: leave the coder's file alone
            mine = entries.iloc[by_workbook[coder, tid]].to_dict("records") if (coder, tid) in by_workbook else []
            carried, removed = carry(mine, unit_ids, today)
            layout = Layout()
            if path.exists() and sha256_file(path) != state.get(key, {}).get("sha256"):
                # A coder opened and saved it: their layout is kept (opening a workbook costs more than writing
                # one), and their file is kept in .backup/.  One exactly as this pipeline wrote it holds nothing
                # of theirs to keep.
                layout = read_layout(path)
                layout.rows = [edited.get(u, u) for u in layout.rows] if edited else layout.rows
                backup(path)
            about = about_line(tid, coder, codebook)
            state[key] = {"digest": digest, "inputs": inputs}
            job = _Job(path, (kind, header, rows, codebook, carried, removed),
                       {"blind": blind, "layout": layout, "digest": digest, "about": about})
            if not carried and not removed and layout == Layout() and coder != CONSENSUS:
                if plain is not None:  # the same workbook but for the coder's name: a copy of that one
                    plain.copies.append((path, about))
                    continue
                plain = job
            jobs.append(job)
    for job, shas in zip(jobs, _write_all(jobs, study, progress), strict=True):
        for path, sha in zip(job.paths(), shas, strict=True):
            state[study.relative(path)]["sha256"] = sha
            written.append(path)
    write_text(state_path, json.dumps(state, indent=1, sort_keys=True))
    return written


def _auto_by_transcript(codes: pd.DataFrame, sessions: pd.DataFrame, segments: pd.DataFrame):
    """The automatic codes (what the suggestion columns show) and the transcript of each."""
    auto = codes.loc[codes["coder"] == "auto", ["unit_id", "code_id", "evidence"]]
    of = dict(zip(sessions["turn_id"], sessions["transcript_id"], strict=True))
    of.update(zip(segments["segment_id"], segments["transcript_id"], strict=True))
    return auto, auto["unit_id"].map(of).fillna("")


# Writing workbooks is most of the export's time, and each is independent: with many of them, both cores work.
PARALLEL_FROM = 8


@dataclass
class _Job:
    """A workbook to write (``write_workbook(path, *args, **kwargs)``), and its copies for coders with nothing of
    theirs in it: (path, the "How to code" line that names the coder)."""

    path: Path
    args: tuple
    kwargs: dict
    copies: list[tuple[Path, str]] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [self.path, *(path for path, _ in self.copies)]


def _write_job(job: _Job) -> list[str]:
    """Write a job's workbook and its copies; the sha256 of each."""
    write_workbook(job.path, *job.args, **job.kwargs)
    for other, about in job.copies:
        if not copy_for_coder(job.path, other, job.kwargs["about"], about):
            write_workbook(other, *job.args, **{**job.kwargs, "about": about})
    return [sha256_file(p) for p in job.paths()]


def copy_for_coder(source: Path, path: Path, about: str, other: str) -> bool:
    """Write ``source``, a workbook with nothing of a coder's in it, as another coder's: the same but for the
    line of its "How to code" sheet that names the coder.  Making a workbook costs four times as much as this.
    False (nothing written) when that line is not found exactly once."""
    old, new = text_in_sheet(about), text_in_sheet(other)
    with zipfile.ZipFile(source) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    if sum(data.count(old) for _, data in members) != 1:
        return False
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for info, data in members:  # each as it was: its name, date and compression
            archive.writestr(info, data.replace(old, new), compresslevel=COMPRESS_LEVEL)
    return True


def _write_all(jobs: list[_Job], study, progress=None) -> list[list[str]]:
    """Write every workbook; the sha256 of each, by job.  Workers are forked, so the jobs are not copied to
    them.  ``progress`` is told of each workbook once it is written."""
    from .parallel import each

    def done(job: _Job) -> None:
        for path in job.paths():
            progress(study.relative(path))

    if progress and jobs:
        progress.stage("writing workbooks", sum(len(job.paths()) for job in jobs))
    return each(_write_job, jobs, PARALLEL_FROM, progress and done)
