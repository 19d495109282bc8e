"""Stage 1, ingest: every transcript in ``data/raw/`` becomes rows of the turns and stops tables.

The readers (``readers.py``) know the file forms; this module knows the study: which file is which, the speakers'
roles, stable IDs, and that one bad file must not hide the others.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..conventions import find_annotations
from ..deidentify import Deidentifier, load_key
from ..errors import InputError, Problem
from ..files import code_version, sha256_file, sha256_text
from ..study import Source, Study, discover_sources
from ..timecode import TIME, format_time, parse_time
from .model import Parsed
from .readers import read_transcript
from .roles import assign_role, normalise_label, unknown_label_warning

TURN_COLUMNS = ["transcript_id", "case", "session", "kind", "participant", "turn_id", "seq", "speaker", "role",
                "start_s", "end_s", "text", "source_file", "source_line", "annotations"]
# after_seq: the turns before the stop; recall_end_seq: the last turn of its recall when a marker of the video
# playing again ends it (-1: the recall runs to the next stop)
STOP_COLUMNS = ["transcript_id", "stop_no", "video_s", "session_s", "source_line", "after_seq", "recall_end_seq"]


@dataclass
class Ingested:
    turns: pd.DataFrame
    stops: pd.DataFrame
    sources: list[Source]
    warnings: list[str]
    state: dict = field(default_factory=dict)  # what `ingest_state.json` keeps for the next run


def turn_ids(transcript_id: str, speakers: list[str], texts: list[str]) -> list[str]:
    """IDs that follow a turn's content, not its position, so a coder's codes stay with their turn when
    the transcript is edited above it.  A repeated turn ("Mm.") is told apart by its occurrence number."""
    seen: Counter[str] = Counter()
    ids = []
    for speaker, text in zip(speakers, texts, strict=True):
        digest = hashlib.sha1(f"{speaker.strip().lower()}\0{' '.join(text.split())}".encode()).hexdigest()[:8]
        seen[digest] += 1
        n = seen[digest]
        ids.append(f"{transcript_id}:{digest}" + (f".{n}" if n > 1 else ""))
    return ids


def _same(text):
    return text


def rows_for(source: Source, parsed: Parsed, speakers: dict[str, str],
             deid: Deidentifier | None = None) -> tuple[list[dict], list[dict], list[str]]:
    """The table rows of one parsed file, with roles and IDs; names pseudonymised when the study has a key."""
    clean = deid or _same
    tid = source.transcript_id
    name = f"data/raw/{source.file}"  # warnings name the file as the researcher sees it, not its full path
    warnings = [clean(w.replace(str(source.path), name)) for w in parsed.warnings]
    warnings += [clean(w) for w in backward_times(parsed, name)]
    speakers = {**{normalise_label(k): v for k, v in speakers.items()},
                **{normalise_label(k): v for k, v in source.speakers}}  # the file's own labels win
    labels = [clean(t.speaker) for t in parsed.turns]
    texts = [clean(t.text) for t in parsed.turns]
    ids = turn_ids(tid, labels, texts)
    starts = [t.start_s for t in parsed.turns]
    if source.kind == "session":
        starts, timed = times_within(starts, texts)
        if timed:
            warnings.append(f"{name}: {timed} turn(s) without a time of their own took the time written in their "
                            "words ([00:02:00], [inaudible 00:02:10]); the stops' windows around them are approximate")
    turns = []
    for seq, (t, label, text, turn_id, start) in enumerate(zip(parsed.turns, labels, texts, ids, starts,
                                                                strict=True), 1):
        role = assign_role(t.speaker, source.kind, source.participant, speakers)  # the study maps real labels
        if role == "unknown":
            warnings.append(clean(unknown_label_warning(t.speaker, f"data/raw/{source.file}")))
        turns.append({
            "transcript_id": tid, "case": source.case, "session": source.session, "kind": source.kind,
            "participant": source.participant, "turn_id": turn_id, "seq": seq, "speaker": label,
            "role": role, "start_s": start, "end_s": t.end_s, "text": text,
            "source_file": clean(source.file), "source_line": t.line,
            "annotations": ";".join(sorted({name for name, _, _ in find_annotations(text)})),
        })
    warnings += _replayed(turns, source, name)
    stops = []
    real = [s for s in parsed.stops if not s.plays]
    if source.kind == "ipr":
        for s in parsed.stops:
            if not s.plays:
                stops.append({"transcript_id": tid, "stop_no": len(stops) + 1, "video_s": s.video_s,
                              "session_s": s.video_s + source.offset_s, "source_line": s.line,
                              "after_seq": s.after_turn, "recall_end_seq": -1})
            elif stops and stops[-1]["recall_end_seq"] < 0:  # the video plays again: the recall has ended
                stops[-1]["recall_end_seq"] = s.after_turn
        _end_recalls_at_replay(stops, turns, source.participant)
    elif real:
        warnings.append(f"data/raw/{source.file}: {len(real)} stop marker(s) in a session transcript "
                        "were ignored (stops belong in IPR interviews; check the manifest's kind)")
    return turns, stops, warnings


_TIME_IN_WORDS = re.compile(rf"[\[(](?:[^\[\]()\d]*\s)?({TIME})\s*[\])]")  # [00:02:00], [inaudible 00:02:10]


def times_within(starts: list[float | None], texts: list[str]) -> tuple[list[float | None], int]:
    """Each turn's start, a turn without one taking the first time written in its words: services that stamp
    the time every minute or two write it inside the turn under way, and a session without those times could
    not be aligned at all (the turns between are timed by interpolation, as any untimed turn).  The number of
    turns so timed.  Only where the session then has two times or more: one time alone (an ``[inaudible 07:06]``
    in an untimed transcript) would give every turn that time."""
    out, timed = [], 0
    for start, text in zip(starts, texts, strict=True):
        if start is None or start != start:
            m = _TIME_IN_WORDS.search(text)
            found = parse_time(m.group(1)) if m else None
            if found is not None:
                start, timed = found, timed + 1
        out.append(start)
    if sum(s is not None and s == s for s in out) < 2:
        return starts, 0
    return out, timed


def _end_recalls_at_replay(stops: list[dict], turns: list[dict], participant: str | None) -> None:
    """End a recall where the session is replayed again: at the first turn of the other one's role (T in the
    client's interview) after the participant has spoken.  What follows up to the next stop is the stretch the
    video plays, the participant's own words in it too, not the recall.  (The other one's turn before the
    participant has spoken, the line on screen written after the stop, does not end it.)"""
    other = {"client": "therapist", "therapist": "client"}.get(participant or "")
    if other is None or not stops:
        return
    for stop, until in zip(stops, [s["after_seq"] for s in stops[1:]] + [len(turns)], strict=True):
        spoke = False
        for t in turns[stop["after_seq"]:until]:  # (turn k has seq k + 1)
            spoke = spoke or t["role"] == participant
            if spoke and t["role"] == other:
                end = t["seq"] - 1
                stop["recall_end_seq"] = end if stop["recall_end_seq"] < 0 else min(end, stop["recall_end_seq"])
                break


def _replayed(turns: list[dict], source: Source, name: str) -> list[str]:
    """One line for an IPR interview with turns of the other one's role (the therapist's in the client's
    interview): the session replayed on the video, transcribed where it plays, which is not the recall."""
    other = {"client": "therapist", "therapist": "client"}.get(source.participant or "")
    if source.kind != "ipr" or other is None:
        return []
    labels = list(dict.fromkeys(t["speaker"] for t in turns if t["role"] == other))
    if not labels:
        return []
    n = sum(t["role"] == other for t in turns)
    return [f"{name}: {n} turn{'s' * (n > 1)} labelled as the {other} ({', '.join(labels[:5])}) are read as the "
            f"session replayed on the video, not as the {source.participant}'s recall; if a label is the "
            f"{source.participant}'s, map it in the [speakers] table of study.toml"]


def backward_times(parsed: Parsed, name: str) -> list[str]:
    """A warning for each turn timed earlier than the turn before it (a typo, or a clock that restarted).

    Not an error: the turns keep their order in the file and the run goes on, but the researcher is told
    where to look, because alignment through that stretch may be off."""
    unit = {".docx": "paragraph", ".xlsx": "row"}.get(Path(name).suffix.lower(), "line")
    out, last = [], None
    for t in parsed.turns:
        if t.start_s is None:
            continue
        if last is not None and t.start_s < last.start_s:
            out.append(f"{name}, {unit} {t.line}: the time {format_time(t.start_s)} is earlier than the turn "
                       f"before it ({format_time(last.start_s)}, {unit} {last.line}); the turns are kept in the "
                       "file's order (check the time)")
        last = t
    return out


_CFB = bytes.fromhex("d0cf11e0a1b11ae1")  # the OLE container of encrypted Office files and of old .doc/.xls


def package_problem(path: Path) -> Problem | None:
    """For a .docx or .xlsx that is no Office package: a clearer line than the reader's (encrypted, an old
    format under a new name, cut short); None when the file is a zip package (the reader takes it from there)."""
    suffix = path.suffix.lower()
    if suffix not in (".docx", ".xlsx"):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            data = head + f.read(1 << 20) if head == _CFB else head
    except OSError:
        return None  # the reader says it cannot be read
    app, a_app = ("Word", "a Word") if suffix == ".docx" else ("Excel", "an Excel")
    if head == _CFB:
        if "EncryptedPackage".encode("utf-16-le") in data:
            return Problem(str(path), "the file is password-protected (encrypted), so it cannot be read",
                           hint=f"open it in {app}, remove the password (File > Info > Protect > Encrypt with "
                                f"Password, clear it) and save it as {suffix}")
        return Problem(str(path), f"the file is an old-format {app} file ({'.doc' if app == 'Word' else '.xls'}) "
                                  f"with a {suffix} name", hint=f"open it in {app} and save it as {suffix}")
    if not head:
        return Problem(str(path), "the file is empty", hint="export the transcript again, or remove the file")
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            return Problem(str(path), f"the file is damaged or incomplete (cut short: not a whole {app} file)",
                           hint=f"copy it again from where it came from, or open it in {app} and save it again")
        return Problem(str(path), f"the file is not {a_app} file, whatever its name says",
                       hint=f"open it in the program that made it and save it as {suffix}, or rename it to "
                            "its real extension")
    return None


def read_source(source: Source, stop_patterns=()) -> Parsed:
    """The parsed transcript of ``source``; InputError naming the file when it cannot be read."""
    bad = package_problem(source.path)
    if bad is not None:
        raise InputError(bad)
    return read_transcript(source.path, stop_patterns)


def _settings_key(study: Study) -> str:
    """What, beside a file's bytes, decides its rows: the reading settings, the key file, this version."""
    key = study.settings.deidentify_key
    key_path = study.root / key if key else None
    return sha256_text(code_version(), json.dumps(study.settings.speakers, sort_keys=True),
                       json.dumps(study.settings.stop_patterns),
                       sha256_file(key_path) if key_path and key_path.is_file() else "")


def ingest(study: Study, keep_going: bool = False, progress=None) -> Ingested:
    """Read every transcript.  Every bad file is reported; with ``keep_going`` they are skipped with a warning.
    ``progress``: a :class:`pipeline.progress.Progress`, told of each file read.

    A file whose bytes (and the settings that read it) are as in the last run is not read again: its rows are
    taken from the last run's tables, so adding one transcript to a large study costs one transcript."""
    sources = discover_sources(study)
    deid = load_key(study)
    cache = _Cache.load(study, _settings_key(study))
    turn_rows: list[dict] = []
    stop_rows: list[dict] = []
    warnings: list[str] = [] if sources else [
        "data/raw/ holds no transcripts yet: put the session and IPR interview transcripts there (see the README's "
        "'Which file is which')"]
    problems: list[Problem] = []
    good: list[Source] = []
    reused: list[str] = []
    keys = [cache.key(source) for source in sources]
    fresh = [i for i, (s, (key, _)) in enumerate(zip(sources, keys, strict=True))
             if not cache.has(s.transcript_id, key)]
    read = dict(zip(fresh, _read_all(study, [sources[i] for i in fresh], deid, progress), strict=True))
    for i, (source, (key, file_sha)) in enumerate(zip(sources, keys, strict=True)):
        if i not in read:
            reused.append(source.transcript_id)
            warnings += cache.state[source.transcript_id]["warnings"]
            good.append(source)
            continue
        t, s, w, trouble = read[i]
        if trouble:
            problems.extend(trouble)
            continue
        turn_rows += t
        stop_rows += s
        warnings += w
        cache.state[source.transcript_id] = {"key": key, "sha256": file_sha, "warnings": list(dict.fromkeys(w))}
        good.append(source)
    if problems:
        if not keep_going:
            raise InputError(problems)
        warnings += [f"skipped: {p}" for p in problems]
    turns = pd.DataFrame(turn_rows, columns=TURN_COLUMNS)
    turns = turns.astype({"start_s": "float64", "end_s": "float64", "seq": "int64", "source_line": "int64"})
    stops = pd.DataFrame(stop_rows, columns=STOP_COLUMNS).astype(
        {"stop_no": "int64", "video_s": "float64", "session_s": "float64", "source_line": "int64",
         "after_seq": "int64", "recall_end_seq": "int64"})
    if reused:
        order = {s.transcript_id: i for i, s in enumerate(good)}
        turns = _in_order(_concat(cache.rows("turns", reused), turns), order, "seq")
        stops = _in_order(_concat(cache.rows("stops", reused), stops), order, "stop_no")
    cache.state = {s.transcript_id: cache.state[s.transcript_id] for s in good}
    return Ingested(turns, stops, good, list(dict.fromkeys(warnings)), cache.state)


def _read(study: Study, source: Source, deid) -> tuple[list[dict], list[dict], list[str], list[Problem]]:
    """One transcript's turn rows, stop rows and warnings; or the problems that keep it from being read."""
    try:
        parsed = read_source(source, study.settings.stop_patterns)
    except InputError as e:
        return [], [], [], _relative(e.problems, study)
    if not parsed.turns:
        return [], [], [], [Problem(f"data/raw/{source.file}", "no turns found",
                                    hint="check that the file holds a transcript with speaker labels")]
    return (*rows_for(source, parsed, study.settings.speakers, deid), [])


# Reading a Word file takes a while, and each file is read on its own: with many of them, both cores read.
PARALLEL_FROM = 8


def _read_all(study: Study, sources: list[Source], deid, progress=None) -> list[tuple]:
    """``_read`` of each source, in order; ``progress`` is told of each file once it is read.  Workers are
    forked, so the study and the key are not copied to them."""
    from ..parallel import each

    if progress and sources:
        progress.stage("reading transcripts", len(sources))
    return each(lambda source: _read(study, source, deid), sources, PARALLEL_FROM,
                progress and (lambda source: progress(source.file)))


def _concat(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Reused and new rows; an empty part is left out so that it cannot change the columns' types."""
    parts = [df for df in (old, new) if len(df)] or [new]
    return pd.concat(parts, ignore_index=True)


def _in_order(df: pd.DataFrame, order: dict[str, int], within: str) -> pd.DataFrame:
    """Rows in the order of the sources, then of the file, whether read now or reused."""
    rank = df["transcript_id"].map(order)
    return df.assign(_rank=rank).sort_values(["_rank", within], kind="stable").drop(columns="_rank").reset_index(
        drop=True)


@dataclass
class _Cache:
    """The last run's ingest: per transcript, the key of what was read (file bytes, settings) and its warnings."""

    study: Study
    settings_key: str
    state: dict

    STATE = "ingest_state.json"

    @classmethod
    def load(cls, study: Study, settings_key: str) -> _Cache:
        path = study.interim / cls.STATE
        tables = [study.interim / f"{n}.parquet" for n in ("turns", "stops")]
        try:
            state = json.loads(path.read_text()) if path.exists() and all(t.exists() for t in tables) else {}
        except ValueError:
            state = {}
        return cls(study, settings_key, state)

    def key(self, source: Source) -> tuple[str, str]:
        """The key of what reading ``source`` depends on, and the file's own SHA-256 (for the audit trail)."""
        meta = json.dumps([source.file, source.case, source.session, source.kind, source.participant,
                           source.offset_s, source.speakers])
        file_sha = sha256_file(source.path)
        return sha256_text(self.settings_key, meta, file_sha), file_sha

    def has(self, transcript_id: str, key: str) -> bool:
        entry = self.state.get(transcript_id, {})
        return entry.get("key") == key and "sha256" in entry

    def rows(self, table: str, transcript_ids: list[str]) -> pd.DataFrame:
        df = pd.read_parquet(self.study.interim / f"{table}.parquet")
        return df[df["transcript_id"].isin(transcript_ids)]


def _relative(problems: list[Problem], study: Study) -> list[Problem]:
    """Name files relative to the study, as the researcher sees them."""
    out = []
    for p in problems:
        file = p.file
        try:
            file = str(Path(file).resolve().relative_to(study.root))
        except ValueError:
            pass
        out.append(Problem(file, p.message, p.where, p.hint))
    return out
