"""Codebooks: the YAML a team writes, read into dataclasses and checked, every problem with its line.

A codebook is a document a team maintains, reviews and exchanges, so it is validated as a whole: one run of
``ipr codebook validate`` lists every problem at once (duplicate IDs, unknown parents, cycles, empty
definitions, unknown keys, invalid token patterns or regular expressions, codes that can apply to no unit),
each naming the file and the line, rather than stopping at the first.

The format is documented in ``codebooks/README.md``.  In short: metadata (title, version, instrument,
changelog) and a list of codes with dotted IDs; each code has the team-codebook fields of MacQueen et al.
(1998), where it applies (units, roles, inherited from the parent when absent) and its rules.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import InputError, Problem

# The columns of the codes table (design.md, codes.parquet), whoever made the codes: the rules or a coder.
CODE_COLUMNS = ["unit_type", "unit_id", "code_id", "coder", "rule_id", "evidence", "start_char", "end_char"]


def codes_frame(rows: list[tuple]):
    """The codes table of rows in the order of CODE_COLUMNS."""
    import pandas as pd

    return pd.DataFrame(rows, columns=CODE_COLUMNS).astype({"start_char": "int64", "end_char": "int64"})

UNITS = ("turn", "segment")
ROLES = ("therapist", "client", "interviewer", "participant", "unknown")
SEGMENT_ROLES = ("client", "therapist")  # a segment's role is the IPR participant
NEGATION_MODES = ("exclude", "allow", "require")

TOP_KEYS = {"title", "version", "instrument", "description", "authors", "changelog", "retired", "codes"}
CODE_KEYS = {
    "id", "name", "parent", "brief", "definition", "when_to_use", "when_not_to_use", "examples", "units",
    "roles", "rules", "replaces",
}
CHANGELOG_KEYS = {"version", "date", "changes"}
RULE_KINDS = ("phrases", "regex", "pattern", "structure")
RULE_KEYS = {"id", "negated", "annotation", "match", *RULE_KINDS}
MATCH_MODES = ("lemma", "lower")
ID_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass
class Rule:
    """One way a code is found in a unit's text; every code applied names the rule that matched.

    Exactly one of ``phrases``, ``regex``, ``pattern`` or ``structure`` says what to look for; ``annotation``
    additionally requires a transcription convention (``laughs``) in the unit, and may also stand alone.
    ``negated`` says what a match inside a negated clause does: ``exclude`` it (the default), ``allow`` it,
    or ``require`` the negation (a denial: "I'm not upset").
    """

    id: str
    code_id: str
    phrases: list[str] = field(default_factory=list)
    regex: str | None = None
    pattern: list[dict] | None = None
    structure: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the structural rule's settings (max_words ...)
    annotation: str | None = None
    negated: str = "exclude"
    match: str = "lemma"  # phrases: "lemma" (any form of the words) or "lower" (exactly these words)
    line: int = 0

    @property
    def kind(self) -> str:
        for kind in RULE_KINDS:
            if getattr(self, kind):
                return kind
        return "annotation"


@dataclass
class Code:
    """One code with the fields of a team codebook (MacQueen et al. 1998), its scope and its rules."""

    id: str
    name: str = ""
    parent: str | None = None
    brief: str = ""
    definition: str = ""
    when_to_use: str = ""
    when_not_to_use: str = ""
    examples: list[str] = field(default_factory=list)
    units: tuple[str, ...] = UNITS
    roles: tuple[str, ...] = ()  # empty: any role
    rules: list[Rule] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)  # IDs of codes renamed to this one, or merged into it
    line: int = 0

    def applies_to(self, unit: str, role: str | None) -> bool:
        """Whether this code can be applied to a unit of this type spoken by (or recalled by) this role."""
        return unit in self.units and (not self.roles or role in self.roles)


@dataclass
class Codebook:
    title: str = ""
    version: str = ""
    instrument: str = ""
    changelog: list[dict] = field(default_factory=list)
    path: Path | None = None
    codes: list[Code] = field(default_factory=list)
    digest: str = ""  # sha256 of the file's bytes: later stages skip work when it has not changed
    description: str = ""
    retired: list[str] = field(default_factory=list)  # IDs of codes dropped: coders' cells keep them, uncounted

    def get(self, code_id: str) -> Code | None:
        for code in self.codes:
            if code.id == code_id:
                return code
        return None

    def ids(self) -> list[str]:
        return [c.id for c in self.codes]

    def rules(self) -> list[Rule]:
        return [r for c in self.codes for r in c.rules]

    def children(self, code_id: str) -> list[Code]:
        return [c for c in self.codes if c.parent == code_id]

    def replaced(self) -> dict[str, str]:
        """Old ID -> the code that replaces it: the IDs of codes renamed or merged, which coders' workbooks made
        before may still hold."""
        return {old: c.id for c in self.codes for old in c.replaces}

    def readable_ids(self) -> dict[str, str]:
        """Every ID a coder's cell may hold -> the code it stands for ("" for a retired code: kept, not counted)."""
        return {c.id: c.id for c in self.codes} | self.replaced() | dict.fromkeys(self.retired, "")


# --- reading YAML with line numbers -------------------------------------------------------------------------


class _Map(dict):
    """A YAML mapping that remembers its line and the line of each key."""

    line = 0
    key_lines: dict
    duplicate_keys: list


class _Seq(list):
    """A YAML sequence that remembers its line and the line of each item."""

    line = 0
    item_lines: list


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when built with it: 5x faster
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    out.duplicate_keys = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float)):
            key = str(key)
        if key in out:
            out.duplicate_keys.append((key, key_node.start_mark.line + 1))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    """Dates and timestamps stay text: a changelog date is shown as written."""
    return loader.construct_scalar(node)


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool | str:
    """Only true and false are booleans: YAML 1.1 would make the phrase ``no`` (or yes, on, off) a boolean."""
    value = loader.construct_scalar(node)
    return value.lower() == "true" if value.lower() in ("true", "false") else value


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _line(obj: Any, key: Any = None, default: int = 0) -> int:
    if isinstance(obj, _Map):
        return obj.key_lines.get(key, obj.line) if key is not None else obj.line
    if isinstance(obj, _Seq):
        return obj.item_lines[key] if isinstance(key, int) and key < len(obj.item_lines) else obj.line
    return default


# --- building and checking ------------------------------------------------------------------------------------


class _Checker:
    """Builds a Codebook from the YAML tree and collects every problem on the way."""

    def __init__(self, path: Path, check_patterns: bool = True):
        self.path = path
        self.file = str(path)
        self.problems: list[Problem] = []
        self.check_patterns = check_patterns  # spaCy's own check: loads spaCy, so skipped for a known codebook

    def add(self, line: int, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, message, f"line {line}" if line else "", hint))

    def text(self, mapping: _Map, key: str, what: str) -> str:
        value = mapping.get(key)
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            self.add(_line(mapping, key), f"{what}: '{key}' must be text, not a {type(value).__name__}")
            return ""
        return str(value).strip()

    def names(self, mapping: _Map, key: str, what: str) -> list[str] | None:
        """A list of names; one name written without brackets is a list of one."""
        value = mapping.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return [value.strip()]
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            self.add(_line(mapping, key), f"{what}: '{key}' must be a list of names", "for example [client]")
            return []
        return [str(v).strip() for v in value]

    def unknown_keys(self, mapping: _Map, allowed: set[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                near = _closest(str(key), allowed)
                self.add(_line(mapping, key), f"{what}: unknown key '{key}'",
                         f"did you mean '{near}'?" if near else "allowed: " + ", ".join(sorted(allowed)))
        for key, line in mapping.duplicate_keys:
            self.add(line, f"{what}: key '{key}' is given twice", "keep one")

    # The whole file.
    def codebook(self, data: Any, raw: bytes) -> Codebook:
        book = Codebook(path=self.path, digest=hashlib.sha256(raw).hexdigest())
        if not isinstance(data, _Map):
            self.add(1, "a codebook must be a mapping with 'title', 'version' and 'codes'",
                     "see codebooks/README.md for the format")
            return book
        self.unknown_keys(data, TOP_KEYS, "codebook")
        book.title = self.text(data, "title", "codebook")
        book.version = self.text(data, "version", "codebook")
        book.instrument = self.text(data, "instrument", "codebook")
        book.description = self.text(data, "description", "codebook")
        if not book.title:
            self.add(_line(data, "title", 1), "codebook: no title", "add 'title: ...' at the top")
        book.changelog = self.changelog(data)
        self.retired_line = _line(data, "retired", 1)
        for old in self.names(data, "retired", "codebook") or []:
            if not ID_RE.match(old):
                self.add(self.retired_line, f"codebook: '{old}' in 'retired' is not a code ID",
                         "list the IDs of the codes dropped from the codebook")
            elif old not in book.retired:
                book.retired.append(old)
        codes = data.get("codes")
        if not isinstance(codes, list) or not codes:
            self.add(_line(data, "codes", 1), "codebook: no codes", "add a 'codes:' list")
            return book
        for i, item in enumerate(codes):
            code = self.code(item, _line(codes, i))
            if code is not None:
                book.codes.append(code)
        self.relations(book)
        return book

    def changelog(self, data: _Map) -> list[dict]:
        entries = data.get("changelog")
        if entries is None:
            return []
        if not isinstance(entries, list):
            self.add(_line(data, "changelog"), "codebook: 'changelog' must be a list of {version, date, changes}")
            return []
        out = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, _Map):
                self.add(_line(entries, i), "changelog: each entry must be {version, date, changes}")
                continue
            self.unknown_keys(entry, CHANGELOG_KEYS, "changelog")
            out.append({k: str(entry.get(k, "") or "") for k in ("version", "date", "changes")})
        return out

    # One code.
    def code(self, item: Any, line: int) -> Code | None:
        if not isinstance(item, _Map):
            self.add(line, "each code must be a mapping with at least 'id', 'name' and 'definition'")
            return None
        cid = self.text(item, "id", "code")
        what = f"code '{cid}'" if cid else "code"
        if not cid:
            self.add(item.line, "code without an 'id'", "add 'id: family.code_name'")
        elif not ID_RE.match(cid):
            self.add(_line(item, "id"), f"{what}: the ID may only contain letters, digits, _ and - between dots",
                     "for example rupture.withdrawal.denial")
        self.unknown_keys(item, CODE_KEYS, what)
        code = Code(id=cid or f"<code at line {item.line}>", line=item.line)
        code.name = self.text(item, "name", what)
        parent = self.text(item, "parent", what)
        code.parent = parent or None
        code._parent_line = _line(item, "parent")  # type: ignore[attr-defined]
        code.brief = self.text(item, "brief", what)
        code.definition = self.text(item, "definition", what)
        code.when_to_use = self.text(item, "when_to_use", what)
        code.when_not_to_use = self.text(item, "when_not_to_use", what)
        if not code.name:
            self.add(item.line, f"{what}: no 'name'", "give the code a short readable name")
        if not code.definition:
            self.add(_line(item, "definition", item.line), f"{what}: the definition is empty",
                     "say what the code means, in a sentence or two")
        examples = item.get("examples")
        if examples is not None:
            if isinstance(examples, str):
                examples = [examples]
            if not isinstance(examples, list) or not all(isinstance(e, (str, int, float)) for e in examples):
                self.add(_line(item, "examples"), f"{what}: 'examples' must be a list of quotes")
            else:
                code.examples = [str(e) for e in examples]
        units = self.names(item, "units", what)
        if units is not None:
            for u in units:
                if u not in UNITS:
                    self.add(_line(item, "units"), f"{what}: unknown unit '{u}'", "units are turn and segment")
            code.units = tuple(u for u in units if u in UNITS)
            code._own_units = True  # type: ignore[attr-defined]
        roles = self.names(item, "roles", what)
        if roles is not None:
            for r in roles:
                if r not in ROLES:
                    self.add(_line(item, "roles"), f"{what}: unknown role '{r}'", "roles: " + ", ".join(ROLES))
            code.roles = tuple(r for r in roles if r in ROLES)
            code._own_roles = True  # type: ignore[attr-defined]
        replaces = self.names(item, "replaces", what)
        for old in replaces or []:
            if not ID_RE.match(old):
                self.add(_line(item, "replaces"), f"{what}: '{old}' in 'replaces' is not a code ID",
                         "list the IDs of the codes renamed to this one or merged into it")
            elif old not in code.replaces:
                code.replaces.append(old)
        code._replaces_line = _line(item, "replaces")  # type: ignore[attr-defined]
        rules = item.get("rules")
        if rules is not None:
            if not isinstance(rules, list):
                self.add(_line(item, "rules"), f"{what}: 'rules' must be a list")
            else:
                for i, r in enumerate(rules):
                    rule = self.rule(r, _line(rules, i), code, i + 1)
                    if rule is not None:
                        code.rules.append(rule)
        return code

    # One rule.
    def rule(self, item: Any, line: int, code: Code, n: int) -> Rule | None:
        what = f"code '{code.id}', rule {n}"
        if not isinstance(item, _Map):
            self.add(line, f"{what}: a rule must be a mapping such as {{phrases: [...]}}")
            return None
        kinds = [k for k in RULE_KINDS if k in item]
        params = {k: v for k, v in item.items() if k not in RULE_KEYS}
        if "structure" in item:
            from pipeline.structures import STRUCTURES

            name = str(item["structure"])
            spec = STRUCTURES.get(name)
            if spec is None:
                self.add(_line(item, "structure"), f"{what}: unknown structure '{name}'",
                         "known: " + ", ".join(sorted(STRUCTURES)))
            else:
                for key, value in params.items():
                    if key not in spec.params:
                        self.add(_line(item, key), f"{what}: unknown key '{key}' for structure '{name}'",
                                 "allowed: " + ", ".join(sorted(spec.params)) if spec.params else "")
                    else:
                        problem = spec.params[key](value)
                        if problem:
                            self.add(_line(item, key), f"{what}: '{key}': {problem}")
                params = {**spec.defaults, **params}
        else:
            self.unknown_keys(_strip_dupes(item), RULE_KEYS, what)
            params = {}
        for key, line_ in item.duplicate_keys:
            self.add(line_, f"{what}: key '{key}' is given twice", "keep one")
        if len(kinds) > 1:
            self.add(item.line, f"{what}: one rule has one of {', '.join(RULE_KINDS)}; this one has "
                     + " and ".join(kinds), "split it into two rules")
        if not kinds and "annotation" not in item:
            self.add(item.line, f"{what}: the rule says nothing to look for",
                     "give it phrases, regex, pattern, structure or annotation")
        rid = str(item.get("id") or f"{code.id}#{n}")
        rule = Rule(id=rid, code_id=code.id, line=item.line, params=params)
        if "id" in item and not ID_RE.match(rid.replace("#", "_")):
            self.add(_line(item, "id"), f"{what}: rule ID '{rid}' may only contain letters, digits, _ . - #")
        negated = str(item.get("negated", "exclude"))
        if negated not in NEGATION_MODES:
            self.add(_line(item, "negated"), f"{what}: negated: '{negated}' is not one of "
                     + ", ".join(NEGATION_MODES))
        rule.negated = negated if negated in NEGATION_MODES else "exclude"
        match = str(item.get("match", "lemma"))
        if match not in MATCH_MODES:
            self.add(_line(item, "match"), f"{what}: match: '{match}' is not one of " + ", ".join(MATCH_MODES))
        elif "match" in item and "phrases" not in item:
            self.add(_line(item, "match"), f"{what}: 'match' only applies to phrases")
        rule.match = match if match in MATCH_MODES else "lemma"
        if "annotation" in item:
            ann = str(item["annotation"] or "").strip().lower()
            if not ann or not re.match(r"^[a-z_]+$", ann):
                self.add(_line(item, "annotation"), f"{what}: annotation must be a name such as laughs")
            rule.annotation = ann or None
        if "phrases" in item:
            phrases = item["phrases"]
            if isinstance(phrases, str):
                phrases = [phrases]
            if not isinstance(phrases, list) or not phrases:
                self.add(_line(item, "phrases"), f"{what}: 'phrases' must be a non-empty list of phrases")
            else:
                for i, p in enumerate(phrases):
                    if not isinstance(p, (str, int, float)) or not str(p).strip():
                        self.add(_line(phrases, i), f"{what}: phrase {i + 1} is empty or not text")
                    else:
                        rule.phrases.append(str(p).strip())
        if "regex" in item:
            try:
                rule.regex = str(item["regex"])
                re.compile(rule.regex)
            except re.error as e:
                self.add(_line(item, "regex"), f"{what}: invalid regular expression: {e}")
                rule.regex = None
        if "pattern" in item:
            problem = _check_pattern(item["pattern"]) if self.check_patterns else ""
            if problem:
                self.add(_line(item, "pattern"), f"{what}: invalid token pattern: {problem}",
                         "see https://spacy.io/usage/rule-based-matching#adding-patterns-attributes")
            else:
                rule.pattern = _plain(item["pattern"])
        if "structure" in item:
            rule.structure = str(item["structure"])
        return rule

    # Across codes.
    def relations(self, book: Codebook) -> None:
        seen: dict[str, int] = {}
        for code in book.codes:
            if code.id in seen:
                self.add(code.line, f"code '{code.id}': duplicate ID (first at line {seen[code.id]})",
                         "every code needs its own ID")
            else:
                seen[code.id] = code.line
        rules_seen: dict[str, int] = {}
        for rule in book.rules():
            if rule.id in rules_seen:
                self.add(rule.line, f"rule ID '{rule.id}' is used twice (first at line {rules_seen[rule.id]})")
            else:
                rules_seen[rule.id] = rule.line
        ids = set(seen)
        for code in book.codes:
            if code.parent is None and "." in code.id:
                implied = code.id.rsplit(".", 1)[0]
                if implied in ids:
                    code.parent = implied
                else:
                    self.add(code.line, f"code '{code.id}': unknown parent '{implied}'",
                             f"add a code with the ID '{implied}' (parents are codes too)")
            elif code.parent is not None and code.parent not in ids:
                self.add(getattr(code, "_parent_line", code.line), f"code '{code.id}': unknown parent '{code.parent}'",
                         "the parent must be the ID of another code")
                code.parent = None
        replaced_by: dict[str, Code] = {}
        for code in book.codes:
            line = getattr(code, "_replaces_line", code.line)
            for old in code.replaces:
                if old in ids:
                    self.add(line, f"code '{code.id}' replaces '{old}', which is still a code of this codebook",
                             f"delete the code '{old}', or take it out of 'replaces'")
                elif old in replaced_by:
                    self.add(line, f"code '{code.id}' replaces '{old}', and so does '{replaced_by[old].id}'",
                             "a code's entries can go to one code only: keep one, and have coders recode a code "
                             "that was split")
                else:
                    replaced_by[old] = code
        for old in book.retired:
            if old in ids:
                self.add(self.retired_line, f"codebook: '{old}' is retired, but is still a code of this codebook",
                         f"delete the code '{old}', or take it out of 'retired'")
            elif old in replaced_by:
                self.add(self.retired_line, f"codebook: '{old}' is retired, but '{replaced_by[old].id}' replaces it",
                         "keep one: 'replaces' moves coders' codes to the new code, 'retired' leaves them uncounted")
        by_id = {c.id: c for c in book.codes}
        in_cycle: set[str] = set()
        for code in book.codes:
            chain, node = [code.id], code
            while node.parent is not None and node.parent in by_id:
                if node.parent in chain:
                    if code.id in chain[chain.index(node.parent):]:  # the code is on the cycle itself
                        in_cycle.add(code.id)
                        self.add(code.line, f"code '{code.id}': its parents form a cycle: "
                                 + " -> ".join(chain[chain.index(node.parent):] + [node.parent]),
                                 "a code cannot be its own ancestor")
                    break
                chain.append(node.parent)
                node = by_id[node.parent]
        for cid in in_cycle:  # cut the cycles so that inheritance below terminates
            by_id[cid].parent = None
        for code in book.codes:  # inherit units and roles from the nearest ancestor that gives them
            for attr, own in (("units", "_own_units"), ("roles", "_own_roles")):
                node = code
                while not getattr(node, own, False) and node.parent in by_id:
                    node = by_id[node.parent]
                setattr(code, attr, getattr(node, attr))
        for code in book.codes:
            for attr in ("_own_units", "_own_roles", "_parent_line", "_replaces_line"):
                code.__dict__.pop(attr, None)
            if not _can_apply(code):
                self.add(code.line, f"code '{code.id}' can apply to no unit: units {list(code.units)}, "
                         f"roles {list(code.roles)}",
                         "segments are recalled by a client or a therapist; turns may have any role")


def _can_apply(code: Code) -> bool:
    if "turn" in code.units:
        return True
    if "segment" in code.units:
        return not code.roles or any(r in SEGMENT_ROLES for r in code.roles)
    return False


def _strip_dupes(item: _Map) -> _Map:
    copy = _Map(item)
    copy.line, copy.key_lines, copy.duplicate_keys = item.line, item.key_lines, []
    return copy


def _plain(obj: Any) -> Any:
    """Plain dicts and lists (the line-keeping subclasses are an implementation detail)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


_PATTERN_VOCAB = None


def _check_pattern(pattern: Any) -> str:
    """The spaCy Matcher's own validation of a token pattern, as one line ('' when valid)."""
    global _PATTERN_VOCAB
    if not isinstance(pattern, list) or not pattern or not all(isinstance(t, dict) for t in pattern):
        return "a token pattern is a list of token descriptions such as [{LEMMA: feel}, {LOWER: unheard}]"
    import pipeline.spacy_import  # noqa: F401  # isort: skip (first: spaCy without its command line)
    from spacy.matcher import Matcher
    from spacy.vocab import Vocab

    if _PATTERN_VOCAB is None:
        _PATTERN_VOCAB = Vocab()
    matcher = Matcher(_PATTERN_VOCAB, validate=True)
    try:
        matcher.add("check", [_plain(pattern)])
    except Exception as e:  # MatchPatternError, ValueError, KeyError: all mean "not a valid pattern"
        return " ".join(str(e).split())[:300]
    return ""


def _closest(word: str, options: set[str]) -> str:
    import difflib

    hits = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return hits[0] if hits else ""


# --- the public functions ----------------------------------------------------------------------------------------


def _read(path: Path, checked: str | None = None, patterns: bool = True) -> tuple[Codebook, list[Problem]]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        return Codebook(path=path), [Problem(str(path), f"cannot read the codebook: {e.strerror or e}")]
    checker = _Checker(path, check_patterns=patterns and hashlib.sha256(raw).hexdigest() != checked)
    try:
        data = yaml.load(raw.decode("utf-8-sig"), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except UnicodeDecodeError:
        return Codebook(path=path), [Problem(str(path), "the codebook is not UTF-8 text", hint="save it as UTF-8")]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e)
        return Codebook(path=path), [Problem(str(path), f"not valid YAML: {what}", where,
                                             "check the indentation and quotes on that line")]
    book = checker.codebook(data, raw)
    return book, checker.problems


def validate_codebook(path: str | Path) -> list[Problem]:
    """Every problem of the codebook at ``path``, in file order, each with its line; [] when it is fine."""
    _, problems = _read(Path(path))
    return sorted(problems, key=lambda p: (int(p.where.split()[-1]) if p.where.startswith("line ") else 0))


def load_codebook(path: str | Path, checked: str | None = None, patterns: bool = True) -> Codebook:
    """Read and check a YAML codebook; raises InputError listing every problem when it has any.

    ``checked``: the digest of a codebook whose token patterns spaCy already accepted (in an earlier run);
    when it is this file's, they are not checked again, so a re-run need not load spaCy at all.  ``patterns``
    False: spaCy's check of the token patterns is left to the process that codes (``coding.code_checked``),
    which loads spaCy anyway."""
    book, problems = _read(Path(path), checked, patterns)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (int(p.where.split()[-1]) if p.where else 0)))
    return book
