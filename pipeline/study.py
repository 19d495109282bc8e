"""The study folder: where things are, its settings (``study.toml``) and which raw file is which.

Everything a stage needs to know about the study comes from here, so that every stage agrees on paths, settings
and transcript IDs, and a mistake in ``study.toml`` or ``manifest.csv`` is reported once, with its line.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, Problem

TRANSCRIPT_EXTENSIONS = (".docx", ".odt", ".rtf", ".txt", ".vtt", ".srt", ".csv", ".tsv", ".xlsx", ".eaf")
DEFAULT_CODEBOOK = "codebooks/rupture_repair.yaml"
KINDS = ("session", "ipr")
PARTICIPANTS = ("client", "therapist")
ROLES = ("therapist", "client", "interviewer", "participant", "unknown")
MANIFEST_COLUMNS = ("file", "case", "session", "kind", "participant", "offset_s", "speakers")

# Files that live in data/raw/ but are not transcripts.
_NOT_TRANSCRIPTS = re.compile(r"^(readme(\..*)?|manifest\.csv|\..*|~\$.*|.*\.(md|pdf|json|toml|yaml|yml))$", re.I)
_NAME_RE = re.compile(
    r"^(?P<case>[A-Za-z0-9-]+)_(?P<session>[A-Za-z0-9-]+)_(?:(?P<sess>session)|ipr-(?P<participant>client|therapist))$",
    re.I,
)


@dataclass
class Settings:
    """``study.toml``, with a default for every setting."""

    codebook: str = DEFAULT_CODEBOOK
    coders: list[str] = field(default_factory=list)
    speakers: dict[str, str] = field(default_factory=dict)
    window_s: float = 60.0
    stop_patterns: list[str] = field(default_factory=list)
    blind: bool = False
    repair_window_s: float = 300.0
    deidentify_key: str | None = None


# The schema of study.toml: section -> key -> (type check, description of the type).
_SCHEMA: dict[str | None, dict[str, tuple[type | tuple[type, ...], str]]] = {
    None: {"codebook": (str, "a path"), "coders": (list, "a list of names")},
    "speakers": {},  # any label = role
    "align": {"window_s": ((int, float), "a number of seconds"), "stop_patterns": (list, "a list of regexes")},
    "export": {"blind": (bool, "true or false")},
    "report": {"repair_window_s": ((int, float), "a number of seconds")},
    "deidentify": {"key": (str, "a path")},
}


def _line_of(text: str, key: str, section: str | None) -> int:
    """The line where ``key`` is set (in ``section``), for error messages; 0 when not found."""
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[\s*([^\]]+?)\s*\]$", s)
        if m:
            current = m.group(1)
            if section is None and key == current:
                return n
            continue
        if current == section and re.match(rf'^["\']?{re.escape(key)}["\']?\s*=', s):
            return n
    return 0


def parse_settings(text: str, file: str = "study.toml") -> Settings:
    """Settings from the text of ``study.toml``; every problem in it at once."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        where = f"line {m.group(1)}" if m else ""
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise InputError(Problem(file, f"not valid TOML: {msg}", where, "fix the syntax; see the README")) from None
    problems: list[Problem] = []
    s = Settings()

    def where(key: str, section: str | None) -> str:
        n = _line_of(text, key, section)
        return f"line {n}" if n else ""

    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or key is None:
                problems.append(Problem(file, f"unknown section [{key}]", where(key, None),
                                        f"known sections: {', '.join(k for k in _SCHEMA if k)}"))
                continue
            schema = _SCHEMA[key]
            for sub, subval in value.items():
                if key == "speakers":
                    if not isinstance(subval, str) or subval.lower() not in ROLES:
                        problems.append(Problem(file, f"speaker {sub!r} has role {subval!r}", where(sub, key),
                                                f"use one of: {', '.join(ROLES)}"))
                    else:
                        s.speakers[sub.strip().lower()] = subval.lower()
                    continue
                if sub not in schema:
                    problems.append(Problem(file, f"unknown key {sub!r} in [{key}]", where(sub, key),
                                            f"known keys: {', '.join(schema) or 'none'}"))
                    continue
                typ, desc = schema[sub]
                if not isinstance(subval, typ) or isinstance(subval, bool) and typ is not bool:
                    problems.append(Problem(file, f"{key}.{sub} must be {desc}, not {subval!r}", where(sub, key)))
                    continue
                _set(s, key, sub, subval, problems, file, where(sub, key))
        else:
            if key not in _SCHEMA[None]:
                problems.append(Problem(file, f"unknown key {key!r}", where(key, None),
                                        f"known top-level keys: {', '.join(_SCHEMA[None])}; sections: "
                                        + ", ".join(f"[{k}]" for k in _SCHEMA if k)))
                continue
            typ, desc = _SCHEMA[None][key]
            if not isinstance(value, typ):
                problems.append(Problem(file, f"{key} must be {desc}, not {value!r}", where(key, None)))
                continue
            if key == "coders":
                bad = [c for c in value if not isinstance(c, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", c)]
                if bad:
                    problems.append(Problem(file, f"coder names must be simple folder names, not {bad!r}",
                                            where(key, None), "use letters, digits, _ . -"))
                    continue
                wrong = next(filter(None, map(misnamed_coder, value)), None)
                if wrong:
                    problems.append(Problem(file, f"the coder name {wrong[0]}", where(key, None), wrong[1]))
                    continue
            setattr(s, key, value)
    if problems:
        raise InputError(problems)
    return s


# The coder who records what a consensus meeting decided: not an independent coder (left out of the agreement
# between coders); on the units it coded, its codes are the report's consensus.
CONSENSUS = "consensus"
# The name the codes tables give to codes no coder's workbook holds: a coder so named would be mixed with them.
NOT_CODERS = {"auto": "the automatic suggestions"}


def misnamed_coder(name: str) -> tuple[str, str] | None:
    """What is wrong with a coder's name (in study.toml, or as a folder of data/coded/), and what to do; None when
    nothing is."""
    if name.lower() in NOT_CODERS:
        return f"{name!r} is the report's name for {NOT_CODERS[name.lower()]}", "give the coder another name"
    if name.lower() == CONSENSUS != name:
        return f"{name!r} is the consensus coder's, written {CONSENSUS!r}", f"write {CONSENSUS!r}"
    return None


def _set(s: Settings, section: str, key: str, value, problems: list[Problem], file: str, where: str) -> None:
    if section == "align" and key == "stop_patterns":
        for pat in value:
            try:
                rx = re.compile(pat)
            except (re.error, TypeError) as e:
                problems.append(Problem(file, f"stop pattern {pat!r} is not a valid regular expression: {e}", where))
                continue
            if "time" not in rx.groupindex:
                problems.append(Problem(file, f"stop pattern {pat!r} has no group named 'time'", where,
                                        "write the time part as (?P<time>...)"))
                continue
            s.stop_patterns.append(pat)
    elif section == "align":
        s.window_s = float(value)
    elif section == "export":
        s.blind = value
    elif section == "report":
        s.repair_window_s = float(value)
    elif section == "deidentify":
        s.deidentify_key = value


@dataclass(frozen=True)
class Source:
    """One raw transcript file and what it is."""

    file: str  # relative to data/raw/, with forward slashes
    path: Path
    case: str
    session: str
    kind: str  # session | ipr
    participant: str | None  # client | therapist, for ipr
    offset_s: float = 0.0
    speakers: tuple[tuple[str, str], ...] = ()  # (label, role) of this file alone, on top of study.toml's

    @property
    def transcript_id(self) -> str:
        tail = "session" if self.kind == "session" else f"ipr-{self.participant}"
        return f"{self.case}_{self.session}_{tail}"

    @property
    def session_key(self) -> tuple[str, str]:
        return (self.case, self.session)


@dataclass
class Study:
    root: Path
    settings: Settings

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def interim(self) -> Path:
        return self.root / "data" / "interim"

    @property
    def coded(self) -> Path:
        return self.root / "data" / "coded"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def codebook_path(self) -> Path:
        return (self.root / self.settings.codebook).resolve()

    def relative(self, path: Path) -> str:
        """A path as the researcher sees it: from the study folder (as given, when outside it)."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def coders(self) -> list[str]:
        """The coders: ``study.toml``'s list, else the folders already in ``data/coded/``, else one coder."""
        if self.settings.coders:
            return list(self.settings.coders)
        if self.coded.is_dir():
            found = sorted(p.name for p in self.coded.iterdir() if p.is_dir() and not p.name.startswith("."))
            if found:
                return found
        return ["coder1"]


def load_study(root: str | Path = ".") -> Study:
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(Problem(str(root), "no such study folder", hint="give --study DIR, or run `ipr init DIR`"))
    toml = root / "study.toml"
    settings = parse_settings(toml.read_text(encoding="utf-8-sig"), "study.toml") if toml.exists() else Settings()
    return Study(root, settings)


def _is_transcript(p: Path) -> bool:
    return p.suffix.lower() in TRANSCRIPT_EXTENSIONS and not _NOT_TRANSCRIPTS.match(p.name)


def discover_sources(study: Study) -> list[Source]:
    """Every transcript in ``data/raw/`` with what it is, from the manifest or the file-name convention."""
    raw = study.raw
    if not raw.is_dir():
        raise InputError(Problem("data/raw", "the folder is missing",
                                 hint="put the transcripts in data/raw/ (see the README)"))
    found = sorted(p for p in raw.rglob("*") if _is_transcript(p)
                   and not any(part.startswith(".") for part in p.relative_to(raw).parts))
    files = [p for p in found if p.is_file()]
    manifest = raw / "manifest.csv"
    listed = _read_manifest(manifest, raw) if manifest.exists() else {}
    # a link to a transcript that is not there (moved, or on a drive not mounted) would be a transcript missing
    problems = [Problem(f"data/raw/{p.relative_to(raw).as_posix()}", "is a link to a file that is not there",
                        hint="put the transcript itself in data/raw/, or remove the link")
                for p in found if p.is_symlink() and not p.exists()]
    sources: list[Source] = []
    for p in files:
        rel = p.relative_to(raw).as_posix()
        if rel in listed:
            sources.append(listed.pop(rel))
            continue
        m = _NAME_RE.match(p.stem)
        if not m:
            problems.append(Problem(f"data/raw/{rel}", "cannot tell which case, session and kind this file is",
                                    hint="name it like D01_S2_session.docx or D01_S2_ipr-client.docx, "
                                         "or list it in data/raw/manifest.csv"))
            continue
        kind = "session" if m["sess"] else "ipr"
        participant = m["participant"].lower() if m["participant"] else None
        sources.append(Source(rel, p, m["case"], m["session"], kind, participant))
    for rel in listed:  # listed, and present, but not of a form the pipeline reads
        problems.append(Problem("data/raw/manifest.csv", f"lists {rel!r}, which is not a transcript form",
                                hint=f"save it as one of {', '.join(TRANSCRIPT_EXTENSIONS)}"))
    seen: dict[str, str] = {}
    for s in sources:
        if s.transcript_id in seen:
            problems.append(Problem(f"data/raw/{s.file}", f"is the same transcript ({s.transcript_id}) as "
                                    f"data/raw/{seen[s.transcript_id]}",
                                    hint="keep one file per transcript, or correct case/session/participant"))
        seen[s.transcript_id] = s.file
    if problems:
        raise InputError(problems)
    return sources


def file_speakers(text: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """The manifest's ``speakers`` cell (``SPEAKER_00=therapist; SPEAKER_01=client``): a file's own labels, for
    transcripts whose labels name someone else in each file (a diarizer's ``SPEAKER_00``, ``Speaker 1``); and the
    first pair that is not a label and a role ("" when all are)."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        label, _, role = part.rpartition("=")
        if not label.strip() or role.strip().lower() not in ROLES:
            return (), part
        pairs.append((label.strip(), role.strip().lower()))
    return tuple(pairs), ""


def _read_manifest(path: Path, raw: Path) -> dict[str, Source]:
    file = "data/raw/manifest.csv"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("cp1252", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("file", "case", "session", "kind") if c not in header]
    if missing:
        raise InputError(Problem(file, f"the header lacks {', '.join(missing)}", "row 1",
                                 f"the columns are {', '.join(MANIFEST_COLUMNS)}"))
    unknown = [h for h in header if h and h not in MANIFEST_COLUMNS]
    problems: list[Problem] = []
    if unknown:
        problems.append(Problem(file, f"unknown column(s) {', '.join(unknown)}", "row 1",
                                f"the columns are {', '.join(MANIFEST_COLUMNS)}"))
    out: dict[str, Source] = {}
    for n, row in enumerate(reader, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue
        where = f"row {n}"
        rel = row.get("file", "").replace("\\", "/")
        kind = row.get("kind", "").lower()
        participant = row.get("participant", "").lower() or None
        bad = False
        if not rel:
            problems.append(Problem(file, "the file is empty", where, "give the path relative to data/raw/"))
            continue
        if not (raw / rel).is_file():
            problems.append(Problem(file, f"lists {rel!r}, which is not in data/raw/", where,
                                    "fix the file name or remove the row"))
            bad = True
        if not row.get("case") or not row.get("session"):
            problems.append(Problem(file, "case and session must both be given", where))
            bad = True
        if kind not in KINDS:
            problems.append(Problem(file, f"kind {row.get('kind')!r} is not one of {', '.join(KINDS)}", where))
            bad = True
        elif kind == "ipr" and participant not in PARTICIPANTS:
            problems.append(Problem(file, f"an ipr row needs participant client or therapist, not "
                                          f"{row.get('participant', '')!r}", where))
            bad = True
        elif kind == "session":
            participant = None
        offset = 0.0
        if row.get("offset_s"):
            try:
                offset = float(row["offset_s"])
            except ValueError:
                problems.append(Problem(file, f"offset_s {row['offset_s']!r} is not a number of seconds", where))
                bad = True
        speakers, wrong = file_speakers(row.get("speakers", ""))
        if wrong:
            problems.append(Problem(file, f"speakers: {wrong!r} is not a label and a role", where,
                                    f"write them as \"SPEAKER_00=therapist; SPEAKER_01=client\" (roles: "
                                    f"{', '.join(ROLES)})"))
            bad = True
        if rel in out:
            problems.append(Problem(file, f"lists {rel!r} twice", where, "keep one row per file"))
            bad = True
        if not bad:
            out[rel] = Source(rel, raw / rel, row["case"], row["session"], kind, participant, offset, speakers)
    if problems:
        raise InputError(problems)
    return out
