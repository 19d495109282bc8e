"""Transcripts kept as tables: CSV and Excel files, and tables in Word files.

Each row is a turn.  The columns are found by their headers (``time``/``start``, ``end``, ``speaker``/``name``/
``who``, ``text``/``utterance``/``transcript``, in any order and case); a table without a header row is read by
what its columns hold (times, short repeated labels, the longest text).  Rows with no text are skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import problem
from pipeline.ingest.model import Parsed, Turn
from pipeline.timecode import parse_time

Row = tuple[int, list[object]]  # (1-based row number, cells)

#: Header names by column kind, the better ones first (a "speaker" column beats a "role" column).
_HEADERS = {
    "start": ["start", "start time", "starttime", "start s", "start sec", "start seconds", "start ms", "begin",
              "begin time", "time", "timestamp", "time stamp", "timecode", "tc in", "in", "from", "onset",
              "timespan", "time span", "time range", "span"],  # (a span, "0:01.5 - 0:12.3": NVivo's, gives both)
    "end": ["end", "end time", "endtime", "end s", "end sec", "end seconds", "end ms", "stop", "stop time",
            "finish", "tc out", "out", "to", "offset"],
    "speaker": ["speaker", "speaker name", "speaker label", "name", "label", "who", "spk", "talker", "voice",
                "person", "participant", "role", "tier"],
    "text": ["text", "utterance", "transcript", "transcription", "content", "words", "speech", "turn", "dialogue",
             "dialog", "caption", "sentence", "verbatim", "statement", "line", "what was said"],
}
_RANK = {name: (kind, rank) for kind, names in _HEADERS.items() for rank, name in enumerate(names)}
_NOT_LETTERS = re.compile(r"[^a-z]+")
_MS = re.compile(r"\b(?:ms|msec|millisec\w*)\b")
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)?$")
_LETTER = re.compile(r"[^\W\d_]")
_COUNTER = {"number", "no", "nr", "num", "id", "index", "count", "seq"}


def _header_kind(cell: object) -> tuple[str, int, float] | None:
    """(kind, rank, seconds per unit) of a header cell, or None when it names no kind we use."""
    if cell is None:
        return None
    name = " ".join(_NOT_LETTERS.sub(" ", str(cell).lower()).split())
    if not name or _COUNTER.intersection(name.split()):  # "Turn number", "Line no": a count, not the text
        return None
    found = _RANK.get(name) or _RANK.get(name.split()[0])
    if not found:
        return None
    return found[0], found[1], 0.001 if _MS.search(name) else 1.0


def to_seconds(value: object, scale: float = 1.0) -> float | None:
    """Seconds from a table cell: a time string, an Excel time, a duration, or a number of seconds.

    Raises ValueError for a cell that holds something else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):  # Excel shows times past 24 h as dates from 1899-12-30
        value = value - dt.datetime(1899, 12, 30) if value.year < 1901 else value.time()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * scale
    text = str(value).strip()
    if not text:
        return None
    seconds = parse_time(text)
    if seconds is not None:
        return seconds
    if _NUMBER.match(text):
        return float(text.replace(",", ".")) * scale
    raise ValueError(text)


_SPAN = re.compile(r"^\s*(\S+?)\s*(?:-->|->|[-–—]|\bto\b)\s*(\S+)\s*$")


def time_span(value: object) -> tuple[float, float] | None:
    """(start, end) of a cell that holds a span of time ("0:00.0 - 0:12.3", "00:01:02 --> 00:01:10"), or None."""
    m = _SPAN.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    start, end = parse_time(m[1]), parse_time(m[2])
    return None if start is None or end is None else (start, end)


def _is_time(value: object) -> bool:
    if isinstance(value, dt.time | dt.timedelta):
        return True
    return isinstance(value, str) and (parse_time(value) is not None or time_span(value) is not None)


def _cell_text(value: object) -> str:
    return "" if value is None else " ".join(str(value).split())


def _columns_by_header(header: list[object]) -> dict[str, tuple[int, float]]:
    best: dict[str, tuple[int, int, float]] = {}
    for col, cell in enumerate(header):
        found = _header_kind(cell)
        if found:
            kind, rank, scale = found
            if kind not in best or rank < best[kind][0]:
                best[kind] = (rank, col, scale)
    return {kind: (col, scale) for kind, (_, col, scale) in best.items()}


def _columns_by_content(rows: list[Row]) -> dict[str, tuple[int, float]]:
    """Columns of a table without a header: times, a short label that repeats, the longest words."""
    width = max(len(cells) for _, cells in rows)
    columns: dict[str, tuple[int, float]] = {}
    others = []  # (column, mean length, share of distinct values) of the columns that hold words
    for col in range(width):
        values = [cells[col] for _, cells in rows if col < len(cells) and _cell_text(cells[col])]
        if not values:
            continue
        texts = [_cell_text(v) for v in values]
        if sum(map(_is_time, values)) >= 0.8 * len(values):
            if "end" not in columns:
                columns["end" if "start" in columns else "start"] = (col, 1.0)
        elif sum(bool(_LETTER.search(t)) for t in texts) >= 0.8 * len(texts):
            others.append((col, sum(map(len, texts)) / len(texts), len(set(texts)) / len(texts)))
    if others:
        text = max(others, key=lambda c: c[1])
        columns["text"] = (text[0], 1.0)
        labels = [c for c in others if c is not text and c[1] <= 40]
        if labels:
            columns["speaker"] = (min(labels, key=lambda c: (c[2], c[1]))[0], 1.0)
    return columns


HEADER_WITHIN = 3  # the rows a table's header is looked for in: a title row or two may be above it


def table_turns(rows: list[Row], path: Path | str, unit: str = "row") -> Parsed | None:
    """The turns of a table's rows; None when no column holds the text (the caller says what is wrong)."""
    rows = [(n, list(cells)) for n, cells in rows if any(_cell_text(c) for c in cells)]
    if not rows:
        return None
    above: list[Row] = []  # title rows above the header ("Session 3, client A", merged across the table)
    for at, (_, cells) in enumerate(rows[:HEADER_WITHIN]):
        columns = _columns_by_header(cells)
        if "text" in columns and len(columns) >= 2:
            above, rows = rows[:at], rows[at + 1:]
            if "start" not in columns and rows:  # a column of times under a header we do not know ("When")
                used = {col for col, _ in columns.values()}
                columns |= {kind: found for kind, found in _columns_by_content(rows).items()
                            if kind in ("start", "end") and found[0] not in used}
            break
    else:
        columns = _columns_by_content(rows)
        if len(rows) > 1 and "start" not in columns and not any(map(_is_time, rows[0][1])):
            # a header of names we do not know ("When, Who, Said") above a column of times: told by the times
            below = _columns_by_content(rows[1:])
            if "start" in below and "text" in below:
                columns, rows = below, rows[1:]
    if "text" not in columns or not rows:
        return None
    parsed = Parsed()
    if above:
        parsed.warnings.append(f"{path}, {unit} {', '.join(str(n) for n, _ in above)}: above the header row, so "
                               "not read as turns (a title); check that no turn is missing.")

    def cell(cells: list[object], kind: str) -> object:
        col = columns.get(kind)
        return cells[col[0]] if col and col[0] < len(cells) else None

    for number, cells in rows:
        text = _cell_text(cell(cells, "text"))
        if not text:
            continue
        times = []
        span = time_span(cell(cells, "start"))
        for kind in ("start", "end"):
            try:
                if span is not None and (kind == "start" or "end" not in columns):
                    times.append(span[kind == "end"])
                    continue
                times.append(to_seconds(cell(cells, kind), columns[kind][1] if kind in columns else 1.0))
            except ValueError as exc:
                parsed.warnings.append(f"{path}, {unit} {number}: the {kind} time \"{exc}\" is not a time "
                                       "(write it as 00:01:02 or in seconds); the turn has no "
                                       f"{kind} time.")
                times.append(None)
        speaker = _cell_text(cell(cells, "speaker"))
        parsed.turns.append(Turn(speaker=speaker, text=text, start_s=times[0], end_s=times[1], line=number))
    return parsed


def no_columns(path: Path | str, where: str = "") -> Exception:
    return problem(path, "no column of turn text found", where=where,
                   hint="give the table a header row such as time, speaker, text")


def read_csv(path: Path, text: str) -> Parsed:
    """A CSV (or TSV) transcript table, already decoded; the delimiter is the one its first line uses most."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    delimiter = max(",;\t|", key=first.count)
    if not first.count(delimiter):
        delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[Row] = []
    line = 1
    try:
        for cells in reader:
            rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise problem(path, f"the CSV cannot be read ({exc})", where=f"line {reader.line_num}",
                      hint="check the quotes on that line, or save the table again from Excel") from None
    parsed = table_turns(rows, path, unit="line")
    if parsed is None:
        raise no_columns(path)
    return parsed


def read_xlsx(path: Path) -> Parsed:
    """An Excel transcript table: the sheet with the most turns (not a cover sheet of study details)."""
    import openpyxl  # imported here: a study without workbooks does not pay for it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zip, XML and key errors for a damaged file
        raise problem(path, f"the file is not a readable Excel workbook ({type(exc).__name__}: {exc})",
                      hint="open it in Excel and save it again as .xlsx, or export the table as .csv") from None
    try:
        found = []
        for sheet in book.worksheets:
            rows = [(n, list(cells)) for n, cells in enumerate(sheet.iter_rows(values_only=True), 1)]
            name = f"{path}, sheet {sheet.title}" if len(book.worksheets) > 1 else str(path)
            parsed = table_turns(rows, name)
            if parsed is not None and parsed.turns:
                found.append(parsed)
    finally:
        book.close()
    if not found:
        raise no_columns(path)
    return max(found, key=lambda p: len(p.turns))


def read_word_tables(path: Path, tables: Sequence[list[list[str]]]) -> Parsed:
    """The turns of the tables of a Word file, in order; each table's rows counted from 1."""
    parsed = Parsed()
    for number, table in enumerate(tables, 1):
        name = f"{path}, table {number}" if len(tables) > 1 else str(path)
        found = table_turns(list(enumerate(table, 1)), name)
        if found is not None:
            parsed.turns += found.turns
            parsed.warnings += found.warnings
    return parsed
