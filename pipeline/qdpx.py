"""The study as a REFI-QDA project (``.qdpx``), the exchange format NVivo, ATLAS.ti, MAXQDA and QualCoder open.

A team's coding is not locked in here: a PI who writes up in NVivo, a second team that codes on in ATLAS.ti, or
a data archive gets the transcripts, the codebook, every coder's codes and memos, the consensus and the
suggestions, and the link from each recall to the session moment it recalls, which no other tool makes.

- Every transcript is a text source: its turns one per line (time, speaker, words), and in an interview a line
  for each stop of the video.  A unit's codes are a selection of its words: a session turn's words, or a
  recall's, what the participant said from the stop to the end of the recall.
- Each coder, the consensus and the suggestions are users; a unit one of them coded is a selection made by that
  user, with a coding per code and the coder's memo as its description; a suggestion is a selection of the words
  its rule matched, the rule as its description (which rule matched which text, as the audit asks).
- Each aligned recall is linked to the session turns that were on screen before its stop (a REFI link, which
  ATLAS.ti shows as a hyperlink between quotations).
- The cases are the dyads; three sets hold the sessions, the client interviews and the therapist interviews.

GUIDs are made from the IDs, so the same study gives the same GUIDs, and a code has the GUID it has in the
codebook's .qdc (``ipr codebook convert --to qdc``).  The project is checked against the REFI-QDA schema
before it is written.

The other way, a coder who codes the exported project in one of those programs brings the work back
(:func:`import_coding`): each selection codes the units whose lines it touches.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .codebook_convert import code_tree, guid_of
from .errors import InputError, Problem
from .files import XML_UNSAFE, atomic_path
from .study import CONSENSUS
from .summaries import AUTO, sources, with_consensus
from .timecode import format_time

NS = "urn:QDA-XML:project:1.0"
SCHEMA = Path(__file__).parent / "data" / "refi_qda_project.xsd"
_GUIDS = uuid.UUID("2f6c1d8e-7a43-4c1b-9e0d-5a1f3b7c9e21")
USER_NAMES = {AUTO: "ipr suggestions"}  # a user's name in the project, where it is not the coder's folder name
SETS = {("session", ""): "Session transcripts", ("ipr", "client"): "Client IPR interviews",
        ("ipr", "therapist"): "Therapist IPR interviews"}


def guid(*parts: str) -> str:
    """A GUID that the same parts always give (REFI asks for GUIDs; a re-export should not change them)."""
    return str(uuid.uuid5(_GUIDS, "\x1f".join(parts))).upper()


@dataclass
class Source:
    """One transcript as REFI-QDA's plain text, and where each unit's words are in it: (start, end) character
    positions, the end not included."""

    transcript_id: str
    text: str
    turns: dict[str, tuple[int, int]] = field(default_factory=dict)  # turn_id -> its words
    stops: dict[int, tuple[int, int]] = field(default_factory=dict)  # stop_no -> its line

    @property
    def guid(self) -> str:
        return guid("source", self.transcript_id)


def source_text(turns: pd.DataFrame, stops: pd.DataFrame) -> Source:
    """The turns of one transcript (in order), a line each: ``[h:mm:ss] Speaker: words`` (no time where none is
    known); in an interview, a line ``[Stop N: video h:mm:ss]`` where the video was stopped."""
    tid = turns["transcript_id"].iloc[0]
    out, at = [], 0
    source = Source(tid, "")
    marks = sorted(zip(stops["after_seq"], stops["stop_no"], stops["video_s"], strict=True))

    def line(prefix: str, words: str) -> tuple[int, int]:
        nonlocal at
        start = at + len(prefix)
        out.append(f"{prefix}{words}\n")
        at += len(out[-1])
        return start, start + len(words)

    k = 0
    for turn_id, seq, speaker, start_s, text in zip(turns["turn_id"], turns["seq"], turns["speaker"],
                                                     turns["start_s"], turns["text"], strict=True):
        while k < len(marks) and marks[k][0] < seq:
            source.stops[int(marks[k][1])] = line("", f"[Stop {marks[k][1]}: video {format_time(marks[k][2])}]")
            k += 1
        time = format_time(start_s)
        source.turns[turn_id] = line(f"[{time}] " * bool(time) + f"{speaker}: ", text)
    for _, stop_no, video_s in marks[k:]:
        source.stops[int(stop_no)] = line("", f"[Stop {stop_no}: video {format_time(video_s)}]")
    source.text = "".join(out)
    return source


def source_texts(turns: pd.DataFrame, stops: pd.DataFrame) -> dict[str, Source]:
    """Every transcript's source, by transcript ID."""
    return {tid: source_text(t, stops[stops["transcript_id"] == tid])
            for tid, t in turns.sort_values(["transcript_id", "seq"]).groupby("transcript_id", sort=True)}


def _span(source: Source, turn_ids: list[str], stop_no: int | None = None) -> tuple[int, int] | None:
    """From the first to the last of ``turn_ids`` in ``source``; with none there, the stop's line."""
    spans = [source.turns[t] for t in turn_ids if t in source.turns]
    if spans:
        return spans[0][0], spans[-1][1]
    return source.stops.get(stop_no) if stop_no is not None else None


def _ids(joined: str | None) -> list[str]:
    return [t for t in (joined or "").split(";") if t]


@dataclass
class Selection:
    """A span of a source: a unit as one user coded it (``codes``, ``memo``), or, with no user, a recall or the
    session moment it recalls, for the link between them."""

    start: int
    end: int
    guid: str
    name: str
    user: str | None = None
    memo: str | None = None
    codes: list[str] = field(default_factory=list)


@dataclass
class Place:
    """Where a unit is: its transcript, its span there, and the spans of the words its text is made of (a turn's
    words; a recall's, the participant's turns, its text joined with line ends), for the suggestions' evidence."""

    transcript_id: str
    span: tuple[int, int]
    pieces: list[tuple[int, int]]

    def of(self, start_char: int, end_char: int) -> tuple[int, int]:
        """The span of characters ``start_char:end_char`` of the unit's text; the unit's own span when they are
        not known (-1) or not within one piece."""
        at = 0
        for start, end in self.pieces:
            if at <= start_char and end_char <= at + end - start:
                return start + start_char - at, start + end_char - at
            at += end - start + 1  # (the line end that joins the pieces)
        return self.span


def _units_where(texts: dict[str, Source], info: pd.DataFrame, turns: pd.DataFrame,
                 segments: pd.DataFrame) -> dict[str, Place]:
    """unit_id -> where it is: a session turn's words; a recall's, what the participant said after the stop (the
    interviewer's question when the participant said nothing; the stop's line when no one did)."""
    where = {}
    for tid in info.index[info["kind"] == "session"]:
        where.update((turn_id, Place(tid, span, [span])) for turn_id, span in texts[tid].turns.items())
    role = dict(zip(turns["turn_id"], turns["role"], strict=True))
    for s in segments.itertuples(index=False):
        if s.transcript_id not in texts:
            continue
        ids = _ids(s.recall_turn_ids)
        said = [t for t in ids if role.get(t) == s.participant]
        span = _span(texts[s.transcript_id], said or ids, s.stop_no)
        if span:
            where[s.segment_id] = Place(s.transcript_id, span, [texts[s.transcript_id].turns[t] for t in said
                                                                if t in texts[s.transcript_id].turns])
    return where


def project(name: str, codebook, turns: pd.DataFrame, stops: pd.DataFrame, segments: pd.DataFrame,
            codes: pd.DataFrame, memos: pd.DataFrame, coded: pd.DataFrame | None = None,
            now: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """``project.qde`` and the text of each source (by file name in ``sources/``).

    ``codes``: the codes table (the suggestions and each coder's); ``memos``: (coder, unit_id, memo) of the
    coders' entries; ``coded``: (coder, unit_id) of the units each coder coded (for the consensus)."""
    from lxml import etree

    if turns.empty:
        raise InputError(Problem("data/interim/turns.parquet", "holds no transcript",
                                 hint="put the transcripts in data/raw/ and run `ipr analyze`"))

    def el(parent, tag: str, text: str | None = None, **attrs):
        e = etree.SubElement(parent, f"{{{NS}}}{tag}",
                             {k: XML_UNSAFE.sub("", str(v)) for k, v in attrs.items() if v is not None})
        if text:
            e.text = XML_UNSAFE.sub("", text)  # (a control character pasted into a memo is no XML)
        return e

    stamp = (now or datetime.now(UTC)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    codes = with_consensus(codes, coded)
    known = set(codebook.ids())
    codes = codes[codes["code_id"].isin(known)]
    users = {u: guid("user", u) for u in sources(codes) if u == AUTO or (codes["coder"] == u).any()}
    users.update({c: guid("user", c) for c in sorted(set(memos["coder"])) if c not in users})

    root = etree.Element(f"{{{NS}}}Project", nsmap={None: NS}, name=name, origin="ipr-pipeline",
                         creationDateTime=stamp)
    users_el = el(root, "Users")
    for user, g in users.items():
        el(users_el, "User", guid=g, name=USER_NAMES.get(user, user))
    code_tree(el(el(root, "CodeBook"), "Codes"), codebook, NS)

    texts = source_texts(turns, stops)
    info = turns.drop_duplicates("transcript_id").set_index("transcript_id")
    cases_el = el(root, "Cases")
    for case, tids in info.groupby("case", sort=True).groups.items():
        case_el = el(cases_el, "Case", guid=guid("case", str(case)), name=str(case))
        for tid in sorted(tids):
            el(case_el, "SourceRef", targetGUID=texts[tid].guid)

    where = _units_where(texts, info, turns, segments)
    selections: dict[str, list[Selection]] = {tid: [] for tid in texts}
    coders = codes[codes["coder"] != AUTO]
    by_unit = coders.groupby(["coder", "unit_id"], sort=False)["code_id"].agg(list)
    memo_of = {(m.coder, m.unit_id): m.memo for m in memos.itertuples(index=False) if m.memo}
    for user, unit in sorted(set(by_unit.index) | set(memo_of)):
        if unit in where and user in users:
            place = where[unit]
            given = list(dict.fromkeys(by_unit.get((user, unit), [])))
            selections[place.transcript_id].append(Selection(*place.span, guid("selection", user, unit), unit, user,
                                                             memo_of.get((user, unit)), given))
    # a suggestion is a selection of the words its rule matched, which says the rule
    auto = codes[(codes["coder"] == AUTO) & codes["unit_id"].isin(set(where))]
    for (unit, first, last), found in auto.groupby(["unit_id", "start_char", "end_char"], sort=True):
        place = where[unit]
        rules = ", ".join(dict.fromkeys(found["rule_id"]))
        selections[place.transcript_id].append(Selection(
            *place.of(int(first), int(last)), guid("suggestion", unit, str(first), str(last)), unit, AUTO,
            f"matched by {rules}", list(dict.fromkeys(found["code_id"]))))
    links = []
    for s in segments[segments["status"] == "aligned"].itertuples(index=False):
        moment = _span(texts[s.session_transcript_id], _ids(s.session_turn_ids)) \
            if s.session_transcript_id in texts else None
        if s.segment_id in where and moment:
            tid = where[s.segment_id].transcript_id
            recall = Selection(*where[s.segment_id].span, guid("recall", s.segment_id),
                               f"{s.segment_id}: recall at stop {s.stop_no}")
            shown = Selection(*moment, guid("moment", s.segment_id),
                              f"{s.segment_id}: on screen before {s.participant} IPR stop {s.stop_no}")
            selections[tid].append(recall)
            selections[s.session_transcript_id].append(shown)
            links.append((recall.guid, shown.guid, s.segment_id))

    sources_el = el(root, "Sources")
    files = {}
    for tid, source in texts.items():
        row = info.loc[tid]
        path = f"{source.guid}.txt"
        files[path] = source.text
        src = el(sources_el, "TextSource", guid=source.guid, name=tid, plainTextPath=f"internal://{path}",
                 creationDateTime=stamp)
        el(src, "Description", f"{row['kind']} transcript, case {row['case']}, session {row['session']}"
           + (f", {row['participant']} interviewed" if row["kind"] == "ipr" else "")
           + f"; from data/raw/{row['source_file']}")
        for sel in sorted(selections[tid], key=lambda sel: (sel.start, sel.guid)):
            sel_el = el(src, "PlainTextSelection", guid=sel.guid, name=sel.name, startPosition=sel.start,
                        endPosition=sel.end, creatingUser=users.get(sel.user), creationDateTime=stamp)
            if sel.memo:
                el(sel_el, "Description", sel.memo)
            for code in sel.codes:
                coding = el(sel_el, "Coding", guid=guid("coding", sel.guid, code),
                            creatingUser=users[sel.user], creationDateTime=stamp)
                el(coding, "CodeRef", targetGUID=guid_of(code))
    if links:
        links_el = el(root, "Links")
        for origin, target, segment_id in links:
            el(links_el, "Link", guid=guid("link", segment_id), name="recalls", direction="OneWay",
               originGUID=origin, targetGUID=target)
    sets_el = None
    for (kind, participant), set_name in SETS.items():
        members = info[info["kind"] == kind]
        if participant:
            members = members[members["participant"] == participant]
        if members.empty:
            continue
        sets_el = el(root, "Sets") if sets_el is None else sets_el
        set_el = el(sets_el, "Set", guid=guid("set", set_name), name=set_name)
        for tid in sorted(members.index):
            el(set_el, "MemberSource", targetGUID=texts[tid].guid)
    about = {AUTO: "'ipr suggestions': the codes the codebook's rules suggested",
             CONSENSUS: "'consensus': the consensus the report counts"}
    el(root, "Description", f"Exported by ipr-pipeline on {stamp}. Each user's selections are the units it coded; "
       + "; ".join(about[u] for u in users if u in about) + "; each recall is linked to the session turns on screen "
       "before its stop.")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True), files


def check_project(data: bytes, name: str) -> None:
    """Raise InputError when ``data`` does not validate against the REFI-QDA project schema."""
    import xmlschema

    errors = list(xmlschema.XMLSchema(str(SCHEMA)).iter_errors(io.BytesIO(data)))
    if errors:
        raise InputError([Problem(name, f"not a valid REFI-QDA project: {e.reason or e.message}") for e in errors[:5]])


def write_qdpx(path: Path, qde: bytes, files: dict[str, str]) -> Path:
    """The project as a .qdpx: a zip of ``project.qde`` and the sources in ``sources/``."""
    check_project(qde, str(path))  # never write a file that other programs would reject
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("project.qde", qde)
            for name, text in files.items():
                z.writestr(f"sources/{name}", text.encode("utf-8"))
    return path


# --- a coder's work in another program, read back -----------------------------------------------------------------


@dataclass
class Imported:
    """A coder's codes and memos from a project coded in another program, as rows of the entries table."""

    entries: pd.DataFrame
    user: str  # whose codings they were, in the project
    selections: int


def _line_units(source: Source, kind: str, segments: pd.DataFrame) -> list[str | None]:
    """The unit of each line of a source as exported: a session turn's line is the turn; in an interview, a
    stop's line and its recall's lines are the segment (the other lines, the session replayed, are no unit)."""
    starts = sorted([(span[0], turn) for turn, span in source.turns.items()]
                    + [(span[0], f"(stop {n})") for n, span in source.stops.items()])
    units: list[str | None] = [turn if kind == "session" else None for _, turn in starts]
    if kind != "session":
        line_of = {name: k for k, (_, name) in enumerate(starts)}
        for s in segments[segments["transcript_id"] == source.transcript_id].itertuples(index=False):
            for name in [f"(stop {s.stop_no})", *_ids(s.recall_turn_ids)]:
                if name in line_of:
                    units[line_of[name]] = s.segment_id
    return units


def read_project(path: Path) -> tuple[object, dict[str, str]]:
    """project.qde (parsed) and the text of each source file in the project, by its name in the zip."""
    from lxml import etree

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            qde = next(n for n in names if n.lower().endswith(".qde"))
            root = etree.fromstring(z.read(qde), etree.XMLParser(resolve_entities=False, huge_tree=True))
            texts = {n.split("/")[-1]: z.read(n).decode("utf-8-sig", errors="replace") for n in names
                     if n.lower().endswith(".txt")}
    except (zipfile.BadZipFile, StopIteration, etree.XMLSyntaxError, OSError) as exc:
        raise InputError(Problem(str(path), f"is not a readable REFI-QDA project ({type(exc).__name__})",
                                 hint="export the project again from the other program as REFI-QDA (.qdpx)")) from None
    return root, texts


def import_coding(path: Path, codebook, turns: pd.DataFrame, stops: pd.DataFrame, segments: pd.DataFrame,
                  ours: set[str], user: str | None = None) -> Imported:
    """The codings one user made in a project exported by ``ipr qdpx export`` and coded in another program, as
    the units they fall on: a selection codes every unit whose line it touches.  ``ours``: the users the export
    wrote (the coders, the consensus, the suggestions), whose codings are not the new work.

    The sources are found by name (the transcript ID) or GUID, and read line by line, so a program that wrote the
    text back with other line ends reads the same; a source whose lines were changed stops the import, as does a
    code that is not in the codebook (found by GUID, else by name)."""
    root, files = read_project(path)
    q = {"q": NS}
    name = str(path)
    users = {u.get("guid"): u.get("name") or u.get("guid") for u in root.iterfind(".//q:Users/q:User", q)}
    codings = [(sel, c) for sel in root.iterfind(".//q:PlainTextSelection", q) for c in sel.iterfind("q:Coding", q)]
    new_users = sorted({users.get(c.get("creatingUser") or sel.get("creatingUser"), "") for sel, c in codings}
                       - ours - {""})
    if user is None:
        if len(new_users) != 1:
            raise InputError(Problem(name, f"holds the codings of {len(new_users)} new users ({', '.join(new_users)})"
                                     if new_users else "holds no codings but those this study exported",
                                     hint="name the one to import with --user" if new_users else
                                     "code the project in the other program, export it, and import that file"))
        user = new_users[0]
    elif user not in new_users:
        raise InputError(Problem(name, f"holds no codings by {user!r}", hint=f"its new users: {', '.join(new_users)}"
                                 if new_users else "check the user's name in the other program"))

    by_guid = {guid_of(c.id): c.id for c in codebook.codes}
    by_name = {c.name.casefold(): c.id for c in codebook.codes if c.name}
    names = {c.get("guid"): c.get("name") or "" for c in root.iterfind(".//q:CodeBook//q:Code", q)}
    unknown: set[str] = set()

    texts = source_texts(turns, stops)
    kinds = dict(zip(turns["transcript_id"], turns["kind"], strict=True))
    tid_of = {s.guid: tid for tid, s in texts.items()} | {tid: tid for tid in texts}
    problems, given, memos, n = [], {}, {}, 0
    for src in root.iterfind(".//q:Sources/q:TextSource", q):
        tid = tid_of.get(src.get("name")) or tid_of.get(src.get("guid"))
        mine = [(sel, [c for c in sel.iterfind("q:Coding", q)
                       if users.get(c.get("creatingUser") or sel.get("creatingUser")) == user])
                for sel in src.iterfind("q:PlainTextSelection", q)]
        mine = [(sel, cs) for sel, cs in mine if cs]
        if not mine:
            continue
        if tid is None:
            problems.append(Problem(name, f"source {src.get('name')!r} is not a transcript of this study",
                                    hint="import a project exported from this study by `ipr qdpx export`"))
            continue
        raw = src.findtext("q:PlainTextContent", namespaces=q)
        if raw is None:
            raw = files.get((src.get("plainTextPath") or "").split("/")[-1])
        ours_lines = texts[tid].text.splitlines()
        if raw is None:
            problems.append(Problem(name, f"holds no plain text of {tid} (REFI-QDA's plainTextPath), which the "
                                    "positions of its codings count in",
                                    hint="export the project from the other program with its sources as text"))
            continue
        if [line.rstrip() for line in raw.splitlines()] != [line.rstrip() for line in ours_lines]:
            problems.append(Problem(name, f"the text of {tid} is not the text the study exported",
                                    hint="code the sources as exported (without editing their text), or export "
                                         "the study again with `ipr qdpx export` and code that"))
            continue
        units = _line_units(texts[tid], kinds[tid], segments)
        for sel, cs in mine:
            start, end = int(sel.get("startPosition", 0)), int(sel.get("endPosition", 0))
            first, last = raw.count("\n", 0, start), raw.count("\n", 0, max(start, end - 1))
            hit = [u for u in dict.fromkeys(units[first:last + 1]) if u]
            n += bool(hit)
            for unit in hit:
                for c in cs:
                    ref = c.find("q:CodeRef", q)
                    target = ref.get("targetGUID") if ref is not None else ""
                    code = by_guid.get(target) or by_name.get(names.get(target, "").casefold())
                    if code:
                        given.setdefault((tid, unit), []).append(code)
                    else:
                        unknown.add(names.get(target) or target)
                memo = (sel.findtext("q:Description", namespaces=q) or "").strip()
                if memo and memo not in memos.get((tid, unit), []):
                    memos.setdefault((tid, unit), []).append(memo)
    if unknown:
        problems.append(Problem(name, f"{user}'s codes {', '.join(map(repr, sorted(unknown)))} are not in the "
                                "codebook",
                                hint="add them to the codebook (or code with the codebook's codes) and import again"))
    if problems:
        raise InputError(problems)
    rows = [{"transcript_id": tid, "unit_type": "turn" if kinds[tid] == "session" else "segment", "unit_id": unit,
             "codes": ";".join(dict.fromkeys(given.get((tid, unit), []))),
             "memo": " | ".join(memos.get((tid, unit), []))} for tid, unit in sorted(set(given) | set(memos))]
    return Imported(pd.DataFrame(rows, columns=["transcript_id", "unit_type", "unit_id", "codes", "memo"]), user, n)
