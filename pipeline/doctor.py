"""``ipr doctor``: check a study folder without running the pipeline and without writing anything.

It runs the same checks as ``ipr analyze`` (settings, file names and manifest, every transcript, the codebook,
the coders' workbooks, the de-identification key), but reports every area at once, each with a one-line "ok"
summary or its problems, plus the warnings a run would give.  Nothing is written: not the tables, not the
workbooks, not a cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, Problem
from .study import Settings, Study, load_study


@dataclass
class Area:
    name: str
    summary: str = ""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Diagnosis:
    areas: list[Area]

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.areas)

    def lines(self) -> list[str]:
        out = []
        for a in self.areas:
            if a.ok:
                out.append(f"ok: {a.name}: {a.summary}")
            else:
                n = len(a.problems)
                out.append(f"not ok: {a.name}: {n} problem{'s' if n > 1 else ''}"
                           + (f" ({a.summary})" if a.summary else ""))
                out += [f"error: {p}" for p in a.problems]
            out += [f"warning: {w}" for w in a.warnings]
        n = sum(len(a.problems) for a in self.areas)
        out.append("all good: run `ipr analyze`" if not n else
                   f"{n} problem{'s' if n > 1 else ''} to fix; then run `ipr doctor` again")
        return out


def _relative(problems: list[Problem], root: Path) -> list[Problem]:
    out = []
    for p in problems:
        file = p.file
        try:
            file = Path(file).resolve().relative_to(root).as_posix()
        except (ValueError, OSError):
            pass
        out.append(Problem(file, p.message, p.where, p.hint))
    return out


def _check(area: Area, root: Path, fn: Callable):
    """Run one of the pipeline's own checks; its InputError becomes the area's problems."""
    try:
        return fn()
    except InputError as e:
        area.problems += _relative(e.problems, root)
        return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def diagnose(root: str | Path = ".") -> Diagnosis:
    root = Path(root).resolve()
    if not root.is_dir():
        return Diagnosis([Area("study folder", problems=[Problem(str(root), "no such study folder",
                                                                 hint="give --study DIR, or run `ipr init DIR`")])])
    settings = Area("settings")
    study = _check(settings, root, lambda: load_study(root))
    if study is None:
        study = Study(root, Settings())  # go on with the defaults, to check the rest
        settings.summary = "the other checks use the default settings"
    else:
        s = study.settings
        settings.summary = ("study.toml read" if (root / "study.toml").exists() else "no study.toml: the defaults") \
            + f"; coders {', '.join(study.coders())}; window {s.window_s:g} s"
    key = Area("de-identification")
    deid = _check(key, root, lambda: _load_key(study))
    if key.ok:
        key.summary = ("off (no [deidentify] key in study.toml)" if deid is None else
                       f"on: {_plural(len({p for _, p in deid.names}), 'pseudonym')} from "
                       f"{study.settings.deidentify_key}")
    codebook = Area("codebook")
    code_ids = _codebook(codebook, study)
    transcripts = Area("transcripts")
    _transcripts(transcripts, study, deid)
    workbooks = Area("coders' workbooks")
    _workbooks(workbooks, study, code_ids, deid)
    return Diagnosis([settings, transcripts, codebook, workbooks, key])


def _load_key(study: Study):
    from .deidentify import load_key

    deid = load_key(study)
    rel = study.settings.deidentify_key
    if deid is not None:
        path = (study.root / rel).resolve()
        for folder in (study.raw, study.interim, study.coded, study.reports):
            if folder.resolve() in path.parents:
                raise InputError(Problem(rel, "the key file is inside a folder the pipeline reads or writes",
                                         hint="move it to a folder of its own, such as private/, and set "
                                              "[deidentify] key in study.toml to it"))
    return deid


def _codebook(area: Area, study: Study) -> dict[str, str] | None:
    from .stages import load_codebook  # (a codebook whose patterns spaCy accepted in a run: spaCy is not loaded)

    rel = study.settings.codebook
    if not study.codebook_path.exists():
        area.problems.append(Problem(rel, "the codebook file is missing",
                                     hint="set `codebook` in study.toml to a codebook in codebooks/"))
        return None
    book = _check(area, study.root, lambda: load_codebook(study))
    if book is None:
        return None
    area.summary = f"{rel}: {_plural(len(book.codes), 'code')}" + (f", version {book.version}" if book.version else "")
    return book.readable_ids()


def _transcripts(area: Area, study: Study, deid) -> None:
    from .align import align
    from .ingest import ingest
    from .ingest.readers import SAVE_AS
    from .study import discover_sources

    if study.raw.is_dir():
        for p in sorted(study.raw.rglob("*")):
            hint = SAVE_AS.get(p.suffix.lower())
            if p.is_file() and hint and not p.name.startswith((".", "~$")):
                area.warnings.append(f"data/raw/{p.relative_to(study.raw).as_posix()}: is not read ({p.suffix} is "
                                     f"not a transcript form): {hint}")
    sources = _check(area, study.root, lambda: discover_sources(study))
    if sources is None:
        return
    sessions = sum(s.kind == "session" for s in sources)
    area.summary = f"{_plural(len(sources), 'transcript')}: {_plural(sessions, 'session')}, " \
                   f"{_plural(len(sources) - sessions, 'IPR interview')}"
    if deid is None and study.settings.deidentify_key:
        area.summary += "; read once the de-identification key reads"
        return
    # as `ipr ingest` reads them: a transcript whose bytes were read in a run is not read again (reading every
    # transcript of a large study takes a while, and one that was read then reads the same now)
    result = _check(area, study.root, lambda: ingest(study))
    if result is None:
        return
    area.warnings += [w for w in result.warnings if w not in area.warnings]
    area.summary += f", {_plural(len(result.stops), 'stop')}"
    if len(result.turns):  # how the stops will align, as `ipr align` would say it
        aligned = align(result.turns, result.stops, study.settings.window_s)
        area.warnings += [w for w in aligned.warnings if w not in area.warnings]
        n = int((aligned.segments["status"] == "aligned").sum()) if len(aligned.segments) else 0
        area.summary += f" ({n} of {len(aligned.segments)} aligned)"


def _workbooks(area: Area, study: Study, code_ids: dict[str, str] | None, deid) -> None:
    from .deidentify import entry_leaks
    from .readback import read_workbooks

    books = sorted(study.coded.glob("*/*.xlsx")) if study.coded.is_dir() else []
    books = [b for b in books if not b.name.startswith(("~$", ".")) and not b.parent.name.startswith(".")]
    if not books:
        area.summary = "none yet (`ipr analyze` writes them)"
        return
    if code_ids is None:
        area.summary = f"{_plural(len(books), 'workbook')}; their codes are checked once the codebook reads"
    back = read_workbooks(study, code_ids or {})
    area.warnings += back.warnings
    area.problems += [p for p in _relative(back.problems, study.root)
                      if code_ids is not None or not p.message.startswith("unknown code")]
    entries = back.entries
    if deid is not None and len(entries):
        area.problems += entry_leaks(entries, deid)
    coders = len({b.parent.name for b in books})
    units = entries[(entries["codes"] != "") | (entries["memo"] != "")] if len(entries) else entries
    area.summary = area.summary or (f"{_plural(len(books), 'workbook')} of {_plural(coders, 'coder')}, "
                                    f"{_plural(len(units), 'unit')} coded")

