"""The stages as the command line runs them: each reads its inputs from the study, writes its outputs atomically.

``analyze`` checks every input (settings, codebook, coders' workbooks, transcripts) before it writes anything, so
a bad file never leaves a half-updated study behind.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from . import __version__
from .codebook import codes_frame
from .errors import InputError, Problem
from .files import (
    atomic_path,
    code_version,
    digest_of,
    digests_by,
    member,
    sha256_file,
    sha256_text,
    write_parquet,
    write_text,
)
from .study import Study


@dataclass
class RunLog:
    """What the audit trail needs: when, with what, from which inputs, and what was said along the way."""

    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    warnings: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for `make bench`

    def warn(self, items) -> None:
        for w in items:
            if w not in self.warnings:
                self.warnings.append(w)


MADE_BY = {"turns": "ingest", "stops": "ingest", "segments": "align", "alignment": "align", "codes": "code"}


def _table(study: Study, name: str) -> pd.DataFrame:
    path = study.interim / f"{name}.parquet"
    if not path.exists():
        raise InputError(Problem(f"data/interim/{name}.parquet", "is missing",
                                 hint=f"run `ipr {MADE_BY[name]}` (or `ipr analyze`) first"))
    return pd.read_parquet(path)


def load_codebook(study: Study, patterns: bool = True):
    """``patterns`` False: spaCy's check of the token patterns is left to the process that codes."""
    from .codebook import load_codebook as load

    path = study.codebook_path
    if not path.exists():
        raise InputError(Problem(study.settings.codebook, "the codebook file is missing",
                                 hint="set `codebook` in study.toml to a codebook in codebooks/"))
    try:
        return load(path, checked=_codes_state(study).get(CODEBOOK_KEY), patterns=patterns)
    except InputError as e:
        if not patterns:  # a broken codebook: every problem at once, those spaCy finds in its patterns too
            return load_codebook(study)
        raise _as_named_in(study, e) from None


def _as_named_in(study: Study, error: InputError) -> InputError:
    """The problems with their files named as the study names them (the codebook as study.toml does), not by
    their full paths."""
    return InputError([Problem(study.relative(p.file), p.message, p.where, p.hint) for p in error.problems])


# --- the stages ---------------------------------------------------------------------------------------------

def run_ingest(study: Study, log: RunLog, keep_going: bool = False, progress=None):
    from .deidentify import load_key
    from .ingest import ingest

    result = ingest(study, keep_going=keep_going, progress=progress)
    log.warn(result.warnings)
    clean = load_key(study) or str
    log.inputs = [{"file": clean(f"data/raw/{s.file}"), "transcript_id": s.transcript_id, "kind": s.kind,
                   "sha256": result.state[s.transcript_id]["sha256"]} for s in result.sources]
    write_parquet(result.turns, study.interim / "turns.parquet")
    write_parquet(result.stops, study.interim / "stops.parquet")
    write_parquet(pd.DataFrame(log.inputs, columns=["file", "transcript_id", "kind", "sha256"]),
                  study.interim / "sources.parquet")
    write_text(study.interim / "ingest_state.json", json.dumps(result.state))  # last: only for whole tables
    return result


def run_align(study: Study, log: RunLog):
    from .align import Aligned

    inputs = [study.interim / "turns.parquet", study.interim / "stops.parquet"]
    outputs = [study.interim / "segments.parquet", study.interim / "alignment.parquet"]
    if not all(p.exists() for p in inputs):
        _table(study, "turns")  # says what to run first
    key = sha256_text(code_version(), repr(study.settings.window_s), *(sha256_file(p) for p in inputs))
    before = _done_before(study, "align", key, outputs)
    if before is not None:  # the same turns and stops: the same segments
        result = Aligned(pd.read_parquet(outputs[0]), pd.read_parquet(outputs[1]), before.get("warnings", []))
    else:
        result, sessions = _align_changed(study, pd.read_parquet(inputs[0]), pd.read_parquet(inputs[1]), outputs)
        write_parquet(result.segments, outputs[0])
        write_parquet(result.summary, outputs[1])
        _done(study, "align", key, warnings=result.warnings, sessions=sessions)
    log.warn(result.warnings)
    return result


def _align_changed(study: Study, turns: pd.DataFrame, stops: pd.DataFrame, outputs):
    """Align again only the sessions whose turns or stops changed (a session and its interviews are aligned
    together, apart from every other session); the segments of the others are those of the last run.

    Returns the whole result, and per session its key and warnings, for the next run."""
    from .align import Aligned, align

    session_of = {tid: f"{case} {session}" for tid, case, session in turns[["transcript_id", "case", "session"]]
                  .drop_duplicates("transcript_id").itertuples(index=False)}
    turn_sessions, stop_sessions = turns["transcript_id"].map(session_of), stops["transcript_id"].map(session_of)
    stop_digests = digests_by(stops, stop_sessions)
    keys = {s: sha256_text(code_version(), repr(study.settings.window_s), d, stop_digests.get(s, ""))
            for s, d in digests_by(turns, turn_sessions).items()}
    old = _json(study.interim / "align_state.json").get("sessions", {}) if all(p.exists() for p in outputs) else {}
    same = {s for s, k in keys.items() if old.get(s, {}).get("key") == k}
    fresh = align(turns[~turn_sessions.isin(same)], stops[~stop_sessions.isin(same)], study.settings.window_s)
    sessions = {s: {"key": k, "warnings": old[s]["warnings"] if s in same else []} for s, k in keys.items()}
    for tid, said in fresh.warnings_of.items():
        sessions[session_of[tid]]["warnings"] += said
    warnings = [w for s in sorted(sessions) for w in sessions[s]["warnings"]]
    if not same:
        return Aligned(fresh.segments, fresh.summary, warnings), sessions
    kept = [tid for tid, s in session_of.items() if s in same]
    segments, summary = (
        pd.concat([old_rows[old_rows["transcript_id"].isin(kept)], new], ignore_index=True)
        .sort_values("transcript_id", kind="stable", ignore_index=True)  # as one run over all of them orders them
        for old_rows, new in ((pd.read_parquet(outputs[0]), fresh.segments),
                              (pd.read_parquet(outputs[1]), fresh.summary)))
    return Aligned(segments, summary, warnings), sessions


def _json(path: Path) -> dict:
    """A state file of an earlier run; {} when there is none or a killed run left it unreadable."""
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}


def _done_before(study: Study, step: str, key: str, outputs) -> dict | None:
    """What ``step`` kept when it last ran from inputs with this ``key``, if every output it made is still there
    (``outputs``, and those its state lists as ``made``): then its work need not be done again.  None when it
    must be."""
    state = _json(study.interim / f"{step}_state.json")
    made = [study.root / f for f in state.get("made", [])]
    return state if state.get("key") == key and all(Path(p).exists() for p in [*outputs, *made]) else None


def _done(study: Study, step: str, key: str, **kept) -> None:
    """Record that ``step`` ran from inputs with this ``key`` (written last, after its outputs); ``made``: the
    outputs known only once it ran (paths from the study folder), checked by :func:`_done_before`."""
    write_text(study.interim / f"{step}_state.json", json.dumps({"key": key, **kept}))


def read_coders(study: Study, codebook, log: RunLog | None = None):
    """The coders' entries, and the signatures of the workbooks they were read from (which the code stage saves
    for the next run's reads); every problem in every workbook at once."""
    from .readback import read_workbooks

    back = read_workbooks(study, codebook.readable_ids())
    if back.problems:
        raise InputError(back.problems)
    if log is not None:
        log.warn(back.warnings)
    return back


def run_code(study: Study, log: RunLog, codebook=None, workbooks=None, coder=None, progress=None, edited=None):
    """``workbooks``: what ``read_coders`` read; ``coder``: a :class:`parallel.warm` process that has spaCy loaded
    already (optional); ``edited``: old ID -> new ID of the units whose codes followed their edit."""
    from .history import record
    from .readback import coder_codes

    codebook = codebook or load_codebook(study)
    workbooks = read_coders(study, codebook, log) if workbooks is None else workbooks
    entries = workbooks.entries
    # The same units (turns and segments) and codebook as the last time: the same automatic codes; and with the
    # same coders' entries, the same codes.  At 10,000 pages, finding that out transcript by transcript took a
    # second.
    made = [study.interim / n for n in ("turns.parquet", "segments.parquet")]
    units = sha256_text(code_version(), codebook.digest, *(sha256_file(p) if p.exists() else "" for p in made))
    key = sha256_text(units, digest_of(entries))
    outputs = [study.interim / n for n in ("codes.parquet", "coder_entries.parquet", "code_state.json")]
    last = _json(study.interim / "codes_state.json") if all(p.exists() for p in outputs) else {}
    if last.get("key") == key:
        write_text(study.interim / "workbook_state.json", json.dumps(workbooks.signatures))  # (their times may not)
        return pd.read_parquet(outputs[0])
    turns = _table(study, "turns")
    segments = _table(study, "segments")
    if last.get("units") == units:  # only the coders' entries changed
        previous = pd.read_parquet(outputs[0])
        auto, state = previous[previous["coder"] == "auto"].reset_index(drop=True), _codes_state(study)
    else:
        auto, state = _auto_codes(study, codebook, turns, segments, coder, progress)
    record(study, entries, edited, log.started[:19].replace("T", " "), codebook.replaced())  # for the audit
    current = set(turns["turn_id"]) | set(segments["segment_id"])  # codes of a unit that is gone are not current
    codes = pd.concat([auto, coder_codes(entries, current)], ignore_index=True) if len(entries) else auto
    write_parquet(codes, study.interim / "codes.parquet")
    write_parquet(entries, study.interim / "coder_entries.parquet")
    write_text(study.interim / "workbook_state.json", json.dumps(workbooks.signatures))
    write_text(study.interim / "code_state.json", json.dumps(state))  # it vouches for codes.parquet
    _done(study, "codes", key, units=units)
    return codes


CODEBOOK_KEY = "(codebook)"  # in code_state.json: the digest of the codebook the last code stage applied


def _codes_state(study: Study) -> dict:
    """The last code stage's keys (transcript -> key of what was coded); {} when its codes are not there."""
    return _json(study.interim / "code_state.json") if (study.interim / "codes.parquet").exists() else {}


def _auto_codes(study: Study, codebook, turns: pd.DataFrame, segments: pd.DataFrame, coder=None, progress=None):
    """The automatic codes, coding again only the transcripts whose units (or the codebook) changed.

    A transcript's key covers everything its codes depend on: the codebook, this version, and each unit's ID,
    role and text (a structural rule looks at the turn before, so the key is per transcript, not per unit).
    Unchanged transcripts take their codes from the last run, and spaCy is not even loaded when none changed.
    """
    sessions = turns[turns["kind"] == "session"]
    unit_columns = (["turn_id", "role", "text"], ["segment_id", "participant", "recall_text", "status"])
    digests = (digests_by(sessions[unit_columns[0]], sessions["transcript_id"])
               | digests_by(segments[unit_columns[1]], segments["transcript_id"]))
    keys = {tid: sha256_text(codebook.digest, code_version(), repr(unit_columns), d) for tid, d in digests.items()}
    old = _codes_state(study)
    codes_path = study.interim / "codes.parquet"
    same = [tid for tid, key in keys.items() if old.get(tid) == key]
    todo = [tid for tid in keys if tid not in same]
    parts = []
    if same:
        kept = set(sessions.loc[sessions["transcript_id"].isin(same), "turn_id"]) | set(
            segments.loc[segments["transcript_id"].isin(same), "segment_id"])
        previous = pd.read_parquet(codes_path)
        parts.append(previous[(previous["coder"] == "auto") & member(previous["unit_id"], kept)])
    if todo or not parts:
        from .parallel import by_name

        # plain lists, so that the process that codes need not import pandas
        work = (codebook, sessions[sessions["transcript_id"].isin(todo)].to_dict("list"),
                segments[segments["transcript_id"].isin(todo)].to_dict("list"))
        if progress and todo:
            units = len(work[1]["turn_id"]) + len(work[2]["segment_id"])
            progress.stage(f"coding {units:,} units of {len(todo):,} transcript{'s' * (len(todo) != 1)}")
        if coder is None:
            rows = by_name("pipeline.coding", "code_rows")(*work)
        else:  # which also makes the spaCy check of the token patterns that ``run_all`` left to it
            try:
                rows = coder.run(by_name("pipeline.coding", "code_checked"), *work)
            except InputError as e:
                raise _as_named_in(study, e) from None
        parts.append(codes_frame(rows))
    return pd.concat(parts, ignore_index=True), keys | {CODEBOOK_KEY: codebook.digest}


def run_export(study: Study, log: RunLog, codebook=None, entries=None, progress=None, edited=None):
    """``edited``: old unit ID -> new ID of the units edited since the workbooks were written, whose codes follow
    them and which keep their place in a coder's sorted rows (None: found here, for ``entries`` read here)."""
    codebook = codebook or load_codebook(study)
    entries = read_coders(study, codebook, log).entries if entries is None else entries
    if edited is None:
        entries, edited = follow_edited_units(study, entries, log)
    # What every workbook shows comes from these (a coder's own entries never call for a rewrite): when none of
    # them changed and every workbook is there, there is nothing to do, not even a digest per transcript.
    inputs = [study.interim / n for n in ("turns.parquet", "segments.parquet", "code_state.json")]
    from .readback import shown_to_consensus

    key = sha256_text(code_version(), codebook.digest, repr(study.settings.blind), json.dumps(study.coders()),
                      *(sha256_file(p) if p.exists() else "" for p in inputs),
                      digest_of(shown_to_consensus(entries, study.coders())))
    workbooks = [study.root / w for w in _json(study.interim / "export_state.json")]
    if _done_before(study, "workbooks", key, workbooks) is not None:
        _remember_shown(study)
        return []
    from .export import export  # (openpyxl: only when a workbook may be written)

    turns = _table(study, "turns")
    segments = _table(study, "segments")
    codes = _table(study, "codes")
    kinds = dict(zip(turns["transcript_id"], turns["kind"], strict=True))
    written = export(study, kinds, turns, segments, codes, codebook, entries, progress=progress, edited=edited)
    _remember_uncoded(study, written, entries)
    _remember_shown(study)
    _done(study, "workbooks", key)
    return written


# The units as the coders' workbooks show them: copies of the tables the workbooks were last written from.  A unit
# edited in its transcript since, by any run (`ipr ingest` alone too), is told by its words in them.
SHOWN = {"turns": ["transcript_id", "kind", "turn_id", "role", "seq", "text"],
         "segments": ["segment_id", "transcript_id", "stop_no", "recall_text"]}


def _shown_pairs(study: Study) -> dict[str, tuple[Path, Path]]:
    """Per table: (the table now, its copy as the workbooks show it)."""
    return {name: (study.interim / f"{name}.parquet", study.interim / f"shown_{name}.parquet") for name in SHOWN}


def _remember_shown(study: Study) -> None:
    import filecmp
    import shutil

    for now, shown in _shown_pairs(study).values():
        if now.exists() and not (shown.exists() and filecmp.cmp(now, shown, shallow=False)):
            with atomic_path(shown) as tmp:
                shutil.copyfile(now, tmp)


def follow_edited_units(study: Study, entries: pd.DataFrame, log: RunLog, turns: pd.DataFrame | None = None,
                        segments: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The coders' entries with the codes of each unit edited in its transcript since the workbooks were written
    (a turn's typo fixed, its speaker relabelled; a stop's time corrected) on the unit as it is now, instead of
    ``Removed units`` (see ``readback.edited_turns``); and old ID -> new ID of those units.  ``turns`` and
    ``segments``: the tables as they are now, when the caller has them."""
    import filecmp

    pairs = _shown_pairs(study)
    if not all(now.exists() and shown.exists() for now, shown in pairs.values()) or all(
            filecmp.cmp(now, shown, shallow=False) for now, shown in pairs.values()):
        return entries, {}
    from .readback import edited_segments, edited_turns, follow_edits

    def read(name: str, which: int) -> pd.DataFrame:
        return pd.read_parquet(pairs[name][which], columns=SHOWN[name])

    edited = (edited_turns(read("turns", 1), read("turns", 0) if turns is None else turns)
              | edited_segments(read("segments", 1), read("segments", 0) if segments is None else segments))
    entries, moved = follow_edits(entries, edited)
    log.warn(moved)
    return entries, edited


def _remember_uncoded(study: Study, written: list[Path], entries: pd.DataFrame) -> None:
    """A workbook just written for a coder who has no entries in it reads back as nothing: remember its file
    signature, so the next run need not open it (opening a few hundred fresh workbooks costs seconds).
    ``entries``: those the workbooks were written with."""
    state_path, table = study.interim / "workbook_state.json", study.interim / "coder_entries.parquet"
    if not written or not state_path.exists() or not table.exists():
        return
    state, made = _json(state_path), _json(study.interim / "export_state.json")
    coded = set(pd.read_parquet(table, columns=["workbook"])["workbook"]) | set(entries["workbook"])
    for path in written:
        rel = study.relative(path)
        if rel not in coded:
            st = path.stat()
            state[rel] = [st.st_mtime_ns, st.st_size, made.get(rel, {}).get("sha256", "")]
    write_text(state_path, json.dumps(state))


def run_report(study: Study, log: RunLog, codebook=None):
    from .report import build_report

    codebook = codebook or load_codebook(study)
    tables = {name: _table(study, name) for name in ("turns", "segments", "alignment", "codes")}
    tables["coded"] = _coded(study, tables)
    previous = study.interim / "run.json"
    if not log.inputs and previous.exists():  # `ipr report` alone: the audit trail of the last full run
        old = json.loads(previous.read_text())
        log.inputs, log.started = old.get("inputs", []), old.get("started", log.started)
        log.warn(old.get("warnings", []))
    sources = study.interim / "sources.parquet"
    if not log.inputs and sources.exists():  # stages run one by one: the inputs of the last `ipr ingest`
        log.inputs = pd.read_parquet(sources).to_dict("records")
    return build_report(study, codebook, tables, audit(study, codebook, log))


def _coded(study: Study, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(coder, unit_id) of the units each coder coded (a code or a memo): who coded a unit decides whose codes
    are the report's consensus there."""
    from .readback import coded_entries

    path = study.interim / "coder_entries.parquet"
    if not path.exists():
        return pd.DataFrame({"coder": [], "unit_id": []})
    units = set(tables["turns"]["turn_id"]) | set(tables["segments"]["segment_id"])
    return coded_entries(pd.read_parquet(path), units)[["coder", "unit_id"]].drop_duplicates(ignore_index=True)


def audit(study: Study, codebook, log: RunLog) -> dict:
    from .history import summary as coding_history

    s = study.settings
    return {
        "software": f"ipr-pipeline {__version__}, Python {platform.python_version()}",
        "codebook": f"{codebook.title}, version {codebook.version} ({s.codebook}, sha256 {codebook.digest[:12]}…)",
        "replaced": codebook.replaced(),  # coders' codes read as the code that replaced them
        "retired": list(codebook.retired),  # coders' codes kept in their cells, not counted
        "history": coding_history(study),
        "settings": settings_of(study),
        "started": log.started,
        "inputs": log.inputs,
        "warnings": log.warnings,
    }


def settings_of(study: Study) -> dict:
    """The settings the report shows (and is made again when they change)."""
    s = study.settings
    return {"window_s": s.window_s, "repair_window_s": s.repair_window_s, "coders": study.coders(),
            "blind coding": s.blind, "extra stop patterns": len(s.stop_patterns), "speaker labels": len(s.speakers),
            "de-identification": "on" if s.deidentify_key else "off"}


def run_qdpx(study: Study, out: Path | None = None) -> tuple[Path, dict]:
    """The study as a REFI-QDA project, from the tables of the last run (what the report shows): the file, and
    how many sources, selections, codings and links it holds."""
    from .deidentify import load_key
    from .qdpx import project, write_qdpx
    from .readback import current_entries

    codebook = load_codebook(study)
    tables = {name: _table(study, name) for name in ("turns", "stops", "segments", "codes")}
    path = study.interim / "coder_entries.parquet"
    entries = pd.read_parquet(path) if path.exists() else pd.DataFrame({"coder": [], "unit_id": [], "memo": []})
    units = set(tables["turns"]["turn_id"]) | set(tables["segments"]["segment_id"])
    memos = current_entries(entries, units)[["coder", "unit_id", "memo"]] if len(entries) else entries
    qde, files = project(study.root.resolve().name, codebook, tables["turns"], tables["stops"], tables["segments"],
                         tables["codes"], memos, _coded(study, tables))
    out = out or study.reports / "study.qdpx"
    deid = load_key(study)
    if deid is not None and any(deid.leaks(text) for text in (qde.decode("utf-8"), *files.values())):
        raise InputError(Problem(study.relative(out), "would hold a real name of the de-identification key",
                                 hint="run `ipr analyze` first: it finds the memo or transcript that holds it"))
    write_qdpx(out, qde, files)
    return out, {"sources": len(files), "selections": qde.count(b"<PlainTextSelection "),
                 "codings": qde.count(b"<Coding "), "links": qde.count(b"<Link ")}


def run_qdpx_import(study: Study, path: Path, coder: str, user: str | None = None, log: RunLog | None = None):
    """A coder's work done in another program (a project ``ipr qdpx export`` wrote, coded there and exported as
    REFI-QDA) into that coder's workbooks, as if they had coded them: the next run reads it back like any coder's.
    Only into a coder without codes of their own yet, so that nothing a coder wrote is merged or overwritten."""
    from .export import backup
    from .qdpx import import_coding
    from .readback import ENTRY_COLUMNS, workbook_path
    from .study import CONSENSUS, misnamed_coder

    log = log or RunLog()
    wrong = misnamed_coder(coder)
    if wrong:
        raise InputError(Problem(f"--coder {coder}", wrong[0], hint=wrong[1]))
    if study.settings.coders and coder not in study.settings.coders:
        raise InputError(Problem("study.toml", f"{coder!r} is not one of the coders",
                                 hint=f"add {coder!r} to coders in study.toml, or import as one of them"))
    codebook = load_codebook(study)
    entries = read_coders(study, codebook, log).entries
    if (entries["coder"] == coder).any():
        raise InputError(Problem(f"data/coded/{coder}", f"{coder} has codes or memos in their workbooks already",
                                 hint="import into a coder who has not coded yet (--coder another name): their "
                                      "work and the imported work are never merged"))
    tables = {name: _table(study, name) for name in ("turns", "stops", "segments")}
    ours = ({"ipr suggestions", CONSENSUS} | set(study.coders())) - {coder}
    imported = import_coding(path, codebook, tables["turns"], tables["stops"], tables["segments"], ours, user)
    found = imported.entries
    new = found.assign(
        coder=coder, workbook=[study.relative(workbook_path(study, coder, t)) for t in found["transcript_id"]],
        sheet=["Turns" if t == "turn" else "Segments" for t in found["unit_type"]], row=0, removed_on="", extra="",
        retired="")[ENTRY_COLUMNS]
    for tid in sorted(set(new["transcript_id"])):  # (a workbook written for the coder, uncoded: backed up, rewritten)
        if workbook_path(study, coder, tid).exists():
            backup(workbook_path(study, coder, tid))
            workbook_path(study, coder, tid).unlink()
    (study.coded / coder).mkdir(parents=True, exist_ok=True)
    run_export(study, log, codebook, pd.concat([entries, new], ignore_index=True) if len(entries) else new)
    return imported, new


AGREEMENT_TABLES = ("agreement", "agreement_by_pair", "suggestions_vs_coders", "disagreements", "coding_progress")


def run_agreement(study: Study, log: RunLog, codebook=None, entries=None, tables: bool = True):
    """Intercoder agreement, the suggestions against each coder, the coders' disagreements and how far each has
    got, from the coders' workbooks: each in reports/ as CSV, in data/interim/ and in tables.xlsx."""
    from .agreement import (
        agreement,
        agreement_by_pair,
        coding_progress,
        disagreements,
        suggestions_vs_coders,
        unit_scope,
        update_tables_xlsx,
    )

    codebook = codebook or load_codebook(study)
    entries = read_coders(study, codebook, log).entries if entries is None else entries
    paths = {name: study.interim / f"{name}.parquet" for name in ("turns", "segments", "codes")}
    # Before anyone has coded, the tables are empty: the study's tables need not even be read.
    interim = {name: pd.read_parquet(p) if p.exists() and len(entries) else None for name, p in paths.items()}
    scope = unit_scope(interim["turns"], interim["segments"])
    texts, transcript_of = {}, {}  # of every unit (session turns and IPR segments)
    for name, unit, text in (("turns", "turn_id", "text"), ("segments", "segment_id", "recall_text")):
        if interim[name] is not None:
            units = interim[name] if name == "segments" else interim[name][interim[name]["kind"] == "session"]
            texts.update(zip(units[unit].tolist(), units[text].tolist(), strict=True))
            transcript_of.update(zip(units[unit].tolist(), units["transcript_id"].tolist(), strict=True))
    made = (agreement(entries, codebook, scope), agreement_by_pair(entries, codebook, scope),
            suggestions_vs_coders(entries, interim["codes"], codebook, scope),
            disagreements(entries, codebook, scope, texts), coding_progress(entries, transcript_of, study.coders()))
    if not paths["codes"].exists():
        log.warn(["data/interim/codes.parquet is missing, so the suggestions are not compared with the coders "
                  "(run `ipr analyze`)"])
    for name, df in zip(AGREEMENT_TABLES, made, strict=True):
        write_parquet(df, study.interim / f"{name}.parquet")
        write_text(study.reports / f"{name}.csv", df.to_csv(index=False, float_format="%.4f"))
    if tables:  # `analyze` leaves this to the report, which is remade whenever these tables change
        update_tables_xlsx(study)
    return made


def run_all(study: Study, keep_going: bool = False, progress=None, coder=None) -> RunLog:
    """Every stage.  ``coder``: a :class:`parallel.warm` process loading spaCy, to code what changed (optional:
    without it, coding is done here); it is ended after the code stage either way, freeing the second core."""
    from .parallel import beside

    log = RunLog()
    began = time.time()
    clock = time.perf_counter()

    def timed(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        log.timings[stage] = round(now - clock, 3)
        clock = now

    # spaCy's check of the codebook's token patterns is the coding process's (which loads spaCy anyway)
    codebook = load_codebook(study, patterns=coder is None)
    workbooks = read_coders(study, codebook, log)  # before anything is written: a coder's work is never at risk
    entries = workbooks.entries
    check_entries_for_names(study, entries)  # a real name in a memo fails the run before it is copied anywhere
    timed("read")
    ingested = run_ingest(study, log, keep_going=keep_going, progress=progress)
    timed("ingest")
    aligned = run_align(study, log)
    timed("align")
    entries, edited = follow_edited_units(study, entries, log, ingested.turns, aligned.segments)
    workbooks.entries = entries
    if coder is not None:
        coder.while_waiting(_ready_for_report)
    try:
        run_code(study, log, codebook, workbooks, coder, progress, edited)
    finally:
        if coder is not None:
            coder.close()
    timed("code")
    write_text(study.interim / "run.json", json.dumps(
        {"started": log.started, "inputs": log.inputs, "warnings": log.warnings}, indent=1))
    # The agreement and report, and the workbooks, are made from the same tables and never read each other: a
    # second process makes the first while this one writes the workbooks.
    key = _report_key(study, codebook, log)
    made = [study.reports / f for f in ("summary.docx", "tables.xlsx", "agreement.csv", "suggestions_vs_coders.csv")]
    with beside(_make_report if _done_before(study, "report", key, made) is None else None,
                study, log, codebook, entries, key) as report:
        run_export(study, log, codebook, entries, progress=progress, edited=edited)
        timed("export")
        if progress and report.job is not None:
            progress.stage("finishing the report")
    log.timings["report"] = report.seconds
    check_for_leaks(study)
    log.timings["elapsed"] = round(time.time() - began, 3)  # less than the sum: export and report overlap
    write_text(study.interim / "run.json", json.dumps(
        {"started": log.started, "inputs": log.inputs, "warnings": log.warnings, "timings": log.timings}, indent=1))
    from .files import remove_stale_temps

    remove_stale_temps((study.interim, study.coded, study.reports), began)  # what a killed run left behind
    return log


def _ready_for_report() -> None:
    """The modules of the stages after coding, imported while spaCy codes what changed (this process only
    waits then): the report's and the export's (with openpyxl, which writes the workbooks here and tables.xlsx
    beside the report).  The process that makes the report is forked from this one and finds them loaded."""
    from . import agreement, export, report  # noqa: F401


def _make_report(study: Study, log: RunLog, codebook, entries, key: str) -> None:
    """The agreement, then the report (whose tables.xlsx has the agreement's sheets), and its state."""
    run_agreement(study, log, codebook, entries, tables=False)
    from .report import report_figures

    run_report(study, log, codebook)
    _done(study, "report", key, made=[study.relative(p) for p in report_figures(study.reports / "figures")])


def check_entries_for_names(study: Study, entries) -> None:
    """Fail before writing anything when a coder's memo or own column holds a real name of the key."""
    from .deidentify import entry_leaks, load_key

    deid = load_key(study)
    if deid is not None and len(entries):
        leaks = entry_leaks(entries, deid)
        if leaks:
            raise InputError(leaks)


def _report_key(study: Study, codebook, log: RunLog) -> str:
    """Everything the report is made from.  When none of it changed, the report of the last run is the report
    of this one, and making it again (figures and all) would only cost the researcher time."""
    derived = {f"{name}.parquet" for name in AGREEMENT_TABLES}  # made with the report, from tables counted here
    derived |= {shown.name for _, shown in _shown_pairs(study).values()}  # (copies, for the workbooks)
    tables = sorted(p for p in study.interim.glob("*.parquet") if p.name not in derived)
    return sha256_text(code_version(), codebook.digest, json.dumps(settings_of(study)),
                       json.dumps(log.inputs), json.dumps(log.warnings),
                       *(f"{p.name}:{sha256_file(p)}" for p in tables))


def check_for_leaks(study: Study) -> None:
    """Fail the run, naming the file, when any output still holds a real name of the de-identification key."""
    from .deidentify import find_leaks, load_key

    deid = load_key(study)
    if deid is not None:
        leaks = find_leaks(study, deid)
        if leaks:
            raise InputError(leaks)
