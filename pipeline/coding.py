"""Applying a codebook: every rule run over session turns and IPR segments, every code applied with its evidence.

The codes are suggestions for coders to review, so each row says which rule matched which text, with the exact
character span in the unit's text (a turn's ``text``, a segment's ``recall_text``).

Speed: a study of 1,000 pages must be coded in seconds.  All texts go through ``nlp.pipe`` once (a blank
pipeline: tokenizer and lookup lemmas only); all phrases of all rules sit in one PhraseMatcher on lemmas,
whose cost hardly grows with the number of phrases; token patterns (the spaCy Matcher, whose cost grows with
every pattern) and regular expressions are for the few things phrases cannot say.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pipeline.spacy_import  # noqa: F401  # isort: skip (first: spaCy without its command line)
from spacy.attrs import LEMMA, LOWER, ORTH, SPACY
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from pipeline.codebook import CODE_COLUMNS, Code, Codebook, Rule, codes_frame, load_codebook  # noqa: F401 (API)
from pipeline.conventions import find_annotations
from pipeline.errors import InputError
from pipeline.nlp import Prepared, prepare, shared_nlp
from pipeline.structures import STRUCTURES, is_question  # noqa: F401 (is_question: part of this API)

# --- negation -------------------------------------------------------------------------------------------------

NEGATION_CUES = {
    "not", "n't", "never", "no", "nobody", "nothing", "none", "nowhere", "noone", "neither", "nor", "hardly",
    "barely", "scarcely", "without", "cannot", "lack", "lacking",
}
# Words after which a cue does not negate what follows: "I don't know, I felt judged", "no wonder".
NOT_NEGATING_AFTER = {"know", "only", "just", "matter", "mind", "doubt", "wonder", "kidding", "joke", "surprise"}
CLAUSE_BREAKS = {".", ";", "!", "?", ",", ":", "but", "though", "although", "however", "yet", "--", "-", "…"}
NEGATION_WINDOW = 5  # tokens looked back from the start of a match, within its clause


def is_negated(doc: Doc, start: int) -> bool:
    """Whether the match starting at token ``start`` is inside a negated clause.

    Looks back at most NEGATION_WINDOW tokens and stops at a clause break; a negation word inside the match
    itself ("you don't understand") belongs to the phrase and is never a negation of it.
    """
    for i in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
        tok = doc[i]
        low = tok.lower_
        if low in CLAUSE_BREAKS:
            return False
        if low in NEGATION_CUES or tok.lemma_ == "not":
            follower = doc[i + 1].lower_ if i + 1 < len(doc) else ""
            if follower in NOT_NEGATING_AFTER or (low == "no" and follower in ("one's",)):
                continue
            return True
    return False


# --- fillers ------------------------------------------------------------------------------------------------

# Words people put inside the phrases a rule lists ("I felt a bit silly", "I really disagree", "she totally got
# it"): phrases are matched as if these were not there, in the rule's phrase and in the text alike.  Kept short
# on purpose: only words that seldom carry a code's meaning (a phrase that needs one, like "just tell me",
# goes in a rule with `match: lower`, which matches exactly).
FILLERS = {"just", "really", "actually", "honestly", "truly", "totally", "completely", "quite", "very", "literally",
           "basically", "kinda", "sorta", "um", "umm", "uh", "er", "erm", "uhm", "ah"}
FILLER_SEQUENCES = (("a", "little", "bit"), ("a", "bit"), ("a", "wee", "bit"))


_FILLER_HASHES: dict[int, tuple[set[int], int, list[tuple[int, ...]]]] = {}


def _filler_hashes(doc: Doc) -> tuple[set[int], int, list[tuple[int, ...]]]:
    strings = doc.vocab.strings
    key = id(strings)
    if key not in _FILLER_HASHES:
        _FILLER_HASHES[key] = ({strings.add(w) for w in FILLERS}, strings.add("a"),
                               [tuple(strings.add(w) for w in seq) for seq in FILLER_SEQUENCES])
    return _FILLER_HASHES[key]


def _kept_tokens(doc: Doc) -> list[int] | None:
    """Indices of the tokens that are not fillers, or None when there is no filler.

    Works on the token hashes (no Token objects): this runs on every unit of a study.
    """
    fillers, a_id, sequences = _filler_hashes(doc)
    lowers = doc.to_array(LOWER).tolist()
    drop: set[int] = set()
    for i, low in enumerate(lowers):
        if low in fillers:
            drop.add(i)
        elif low == a_id:
            for seq in sequences:
                if tuple(lowers[i:i + len(seq)]) == seq:
                    drop.update(range(i, i + len(seq)))
                    break
    if not drop:
        return None
    return [i for i in range(len(lowers)) if i not in drop]


def without_fillers(doc: Doc) -> tuple[Doc, list[int] | None]:
    """The doc without filler words, and the index of each of its tokens in ``doc`` (None: the doc itself)."""
    keep = _kept_tokens(doc)
    if keep is None or not keep:
        return doc, None
    strings = doc.vocab.strings
    attrs = doc.to_array([ORTH, LEMMA, SPACY])
    rows = attrs[keep]
    slim = Doc(doc.vocab, words=[strings[h] for h in rows[:, 0].tolist()],
               spaces=[bool(x) for x in rows[:, 2].tolist()], lemmas=[strings[h] for h in rows[:, 1].tolist()])
    return slim, keep


# Conventions that are punctuation rather than inserted words: they stay in the text (a "--" ends a clause).
NOT_CUT = {"interruption", "trailing_off"}


# --- units ------------------------------------------------------------------------------------------------------


@dataclass
class Unit:
    """What a rule sees of one unit: its text (prepared for matching), its role and what came just before."""

    unit_type: str
    unit_id: str
    role: str | None
    text: str
    prev_text: str | None = None  # the previous turn of the same transcript (structural rules)
    prev_role: str | None = None
    annotations: list[tuple[str, int, int]] = field(default_factory=list)
    prepared: Prepared | None = None


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value).strip() == ""


Columns = dict[str, list]  # a table as its columns: what the coding process gets (it need not import pandas)


def _turn_units(turns: Columns) -> list[Unit]:
    texts = turns.get("text") or []
    rows = [i for i in range(len(texts)) if "kind" not in turns or str(turns["kind"][i]) == "session"]
    if not rows:
        return []
    group = [str(turns["transcript_id"][i]) if "transcript_id" in turns else "" for i in rows]
    order = [turns["seq"][i] for i in rows] if "seq" in turns else list(range(len(rows)))
    roles = [turns["role"][i] for i in rows] if "role" in turns else [None] * len(rows)
    ids = [turns["turn_id"][i] for i in rows] if "turn_id" in turns else [str(k) for k in range(len(rows))]
    texts = [texts[i] for i in rows]
    units: list[Unit] = []
    prev: int | None = None
    for k in sorted(range(len(rows)), key=lambda k: (group[k], order[k], k)):
        if prev is not None and group[prev] != group[k]:
            prev = None
        text = "" if _is_blank(texts[k]) else str(texts[k])
        unit = Unit("turn", str(ids[k]), None if _is_blank(roles[k]) else str(roles[k]), text)
        if prev is not None:
            unit.prev_text = "" if _is_blank(texts[prev]) else str(texts[prev])
            unit.prev_role = None if _is_blank(roles[prev]) else str(roles[prev])
        units.append(unit)
        prev = k
    return [u for u in units if u.text.strip()]


def _segment_units(segments: Columns) -> list[Unit]:
    if "recall_text" not in segments:
        return []
    texts = segments["recall_text"]
    roles = segments.get("participant") or [None] * len(texts)
    return [Unit("segment", str(sid), None if _is_blank(role) else str(role), str(text))
            for sid, role, text in zip(segments["segment_id"], roles, texts, strict=False) if not _is_blank(text)]


# --- the compiled codebook --------------------------------------------------------------------------------------


@dataclass
class TokenPattern:
    """One token pattern in a Matcher of its own, run only on texts that have every word it requires.

    The spaCy Matcher costs time for every pattern over every token; most texts cannot match a given pattern
    because a word it requires is absent, and that is cheap to see on the token hashes first.
    """

    matcher: Matcher
    required: list[tuple[int, set[int]]]  # (LOWER or LEMMA, hashes): the text must have one of each

    def __call__(self, doc: Doc, columns: dict[int, set[int]]) -> list[tuple[int, int, int]]:
        for attr, hashes in self.required:
            if columns[attr].isdisjoint(hashes):
                return []
        return list(self.matcher(doc))


def _required(pattern: list[dict], strings) -> list[tuple[int, set[int]]]:
    """For each token a pattern cannot do without: the words (lower case or lemma) it may be."""
    out = []
    for spec in pattern:
        if spec.get("OP", "1") not in ("1", "+"):
            continue
        for name, attr in (("LOWER", LOWER), ("LEMMA", LEMMA)):
            value = spec.get(name)
            values = [value] if isinstance(value, str) else value.get("IN") if isinstance(value, dict) else None
            if values and all(isinstance(v, str) for v in values) and (not isinstance(value, dict) or len(value) == 1):
                out.append((attr, {strings.add(v) for v in values}))
    return out


@dataclass
class Compiled:
    """A codebook's rules turned into matchers, ready to run over many texts."""

    codebook: Codebook
    rules: list[Rule]
    codes: dict[str, Code]
    phrase_lemma: PhraseMatcher
    phrase_lower: PhraseMatcher
    tokens: list[TokenPattern]
    regexes: list[tuple[int, re.Pattern]]
    structures: list[int]
    annotation_only: list[int]


_COMPILED: dict[str, Compiled] = {}  # by the codebook file's digest: one per process


def compiled_codebook(codebook: Codebook) -> Compiled:
    """The codebook's matchers, compiled once per process (a tenth of a second a time): the warm process that
    loads spaCy compiles them too, before it is given anything to code."""
    if not codebook.digest:  # not read from a file: nothing tells one such codebook from another
        return compile_codebook(codebook)
    if codebook.digest not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[codebook.digest] = compile_codebook(codebook)
    return _COMPILED[codebook.digest]


_CHECKED: dict[str, InputError | None] = {}  # by digest: the whole check of a codebook this process made


def get_ready(codebook_path) -> None:
    """spaCy loaded and the study's codebook checked whole and compiled: what the process that will code what
    changed does while the run reads the transcripts.  Checking it whole includes spaCy's check of its token
    patterns, which the run's own reading of the codebook leaves to this process (``code_checked``): spaCy is
    loaded here anyway."""
    shared_nlp()
    try:
        digest = hashlib.sha256(Path(codebook_path).read_bytes()).hexdigest()
        book = _checked(codebook_path, digest)
    except Exception:  # noqa: BLE001 (unreadable: the run's own reading reports it, with its lines)
        return
    if book is not None:
        compiled_codebook(book)


def code_checked(codebook: Codebook, turns: Columns, segments: Columns) -> list[tuple]:
    """``code_rows`` for a codebook read without spaCy's check of its token patterns: that check is made here
    first (by ``get_ready``, or now), and its problems are raised as the codebook's."""
    if codebook.digest not in _CHECKED:
        _checked(codebook.path, codebook.digest)
    if _CHECKED[codebook.digest] is not None:
        raise _CHECKED[codebook.digest]
    return code_rows(codebook, turns, segments)


def _checked(path, digest: str) -> Codebook | None:
    """The codebook read and checked whole (None when it has problems), the outcome kept by its digest."""
    try:
        book = load_codebook(path)
    except InputError as e:
        _CHECKED[digest] = e
        return None
    _CHECKED[digest] = None
    return book


def compile_codebook(codebook: Codebook) -> Compiled:
    nlp = shared_nlp()
    rules = codebook.rules()
    lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
    lower = PhraseMatcher(nlp.vocab, attr="LOWER")
    tokens: list[TokenPattern] = []
    regexes, structures, annotation_only = [], [], []
    for i, rule in enumerate(rules):
        key = str(i)
        if rule.phrases:
            if rule.match == "lower":  # exactly these words, fillers and all
                lower.add(key, [nlp.make_doc(prepare(p).text) for p in rule.phrases])
            else:
                lemma.add(key, [without_fillers(d)[0] for d in nlp.pipe(prepare(p).text for p in rule.phrases)])
        elif rule.pattern:
            matcher = Matcher(nlp.vocab)
            matcher.add(key, [rule.pattern])
            tokens.append(TokenPattern(matcher, _required(rule.pattern, nlp.vocab.strings)))
        elif rule.regex:
            regexes.append((i, re.compile(rule.regex)))
        elif rule.structure:
            structures.append(i)
        elif rule.annotation:
            annotation_only.append(i)
    return Compiled(codebook, rules, {c.id: c for c in codebook.codes}, lemma, lower, tokens, regexes,
                    structures, annotation_only)


# --- applying ---------------------------------------------------------------------------------------------------


def _annotations_of(unit: Unit) -> None:
    text = unit.text
    unit.annotations = find_annotations(text)
    unit.prepared = prepare(text, [(a, b) for name, a, b in unit.annotations if name not in NOT_CUT])


def _negation_ok(rule: Rule, doc: Doc, start_token: int) -> bool:
    if rule.negated == "allow":
        return True
    negated = is_negated(doc, start_token)
    return negated if rule.negated == "require" else not negated


def _whole_words(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """Widen a token span to whole written words: "wasn't listening", not "n't listening"."""
    while start > 0 and not doc[start - 1].whitespace_ and not doc[start - 1].is_punct and not doc[start].is_punct:
        start -= 1
    while end < len(doc) and not doc[end - 1].whitespace_ and not doc[end].is_punct and not doc[end - 1].is_punct:
        end += 1
    return start, end


def _token_at(doc: Doc, char: int) -> int:
    for tok in doc:
        if tok.idx + len(tok) > char:
            return tok.i
    return len(doc)


def _matches(comp: Compiled, unit: Unit, doc: Doc, allowed: set[int]) -> list[tuple[int, int, int]]:
    """(rule index, start char, end char) in the prepared text, for the rules allowed for this unit."""
    found: list[tuple[int, int, int]] = []
    names = {name for name, _, _ in unit.annotations}
    slim, kept = without_fillers(doc)
    token_hits = list(comp.phrase_lemma(slim))
    if kept is not None:  # back to the tokens of the full text
        token_hits = [(m, kept[a], kept[b - 1] + 1) for m, a, b in token_hits]
    token_hits += list(comp.phrase_lower(doc))
    if comp.tokens:
        arr = doc.to_array([LOWER, LEMMA])
        columns = {LOWER: set(arr[:, 0].tolist()), LEMMA: set(arr[:, 1].tolist())}
        for pattern in comp.tokens:
            token_hits += pattern(doc, columns)
    for match_id, start, end in token_hits:
        i = int(doc.vocab.strings[match_id])
        if i not in allowed:
            continue
        rule = comp.rules[i]
        if rule.annotation and rule.annotation not in names:
            continue
        if _negation_ok(rule, doc, start):
            start, end = _whole_words(doc, start, end)
            found.append((i, doc[start].idx, doc[end - 1].idx + len(doc[end - 1])))
    for i, rx in comp.regexes:
        if i not in allowed:
            continue
        rule = comp.rules[i]
        if rule.annotation and rule.annotation not in names:
            continue
        for m in rx.finditer(unit.prepared.cased):
            if m.end() > m.start() and _negation_ok(rule, doc, _token_at(doc, m.start())):
                found.append((i, m.start(), m.end()))
    for i in comp.structures:
        if i not in allowed:
            continue
        rule = comp.rules[i]
        if rule.annotation and rule.annotation not in names:
            continue
        for start, end in STRUCTURES[rule.structure].find(unit, doc, rule.params):
            found.append((i, doc[start].idx, doc[end - 1].idx + len(doc[end - 1])))
    return found


def _keep_outermost(hits: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """One row per match: of overlapping matches of the same rule, keep the longest (the earliest on ties)."""
    hits = sorted(set(hits), key=lambda h: (h[0], h[1], -(h[2] - h[1])))
    out: list[tuple[int, int, int]] = []
    for h in hits:
        if out and out[-1][0] == h[0] and h[1] < out[-1][2]:
            continue
        out.append(h)
    return out


def apply_codebook(codebook: Codebook, turns, segments, compiled: Compiled | None = None):
    """The codes table (design.md, codes.parquet): one row per (unit, code, rule, match), coder ``auto``.

    Session turns (``kind == 'session'``) are coded as turns with their speaker's role; IPR interview turns
    are not (their unit is the segment); every segment with a recall is coded with its participant as role.
    """
    columns = [{} if table is None else table.to_dict("list") for table in (turns, segments)]
    return codes_frame(code_rows(codebook, *columns, compiled))


def code_rows(codebook: Codebook, turns: Columns, segments: Columns, compiled: Compiled | None = None) -> list[tuple]:
    """``apply_codebook`` on tables given as their columns, its rows as tuples in the order of CODE_COLUMNS:
    all that the process that codes needs, and nothing that imports pandas there."""
    comp = compiled or compiled_codebook(codebook)
    allowed_by_scope: dict[tuple[str, str | None], set[int]] = {}
    todo: list[tuple[Unit, set[int]]] = []
    for unit in _turn_units(turns) + _segment_units(segments):
        key = (unit.unit_type, unit.role)
        if key not in allowed_by_scope:
            allowed_by_scope[key] = {
                i for i, r in enumerate(comp.rules) if comp.codes[r.code_id].applies_to(unit.unit_type, unit.role)
            }
        allowed = allowed_by_scope[key]
        if allowed:
            todo.append((unit, allowed))
    return _code_all(comp, todo)


# With many units both cores pay: each forked worker inherits the loaded pipeline and the compiled codebook,
# and returns plain tuples (spaCy's own n_process serialises every Doc, which costs more than it saves here).
PARALLEL_FROM = 4000


def _code_all(comp: Compiled, todo: list[tuple[Unit, set[int]]]) -> list[tuple]:
    from .parallel import cores, each

    shared_nlp()  # loaded before the fork, so the workers have it
    if len(todo) < PARALLEL_FROM:
        return _code_units(comp, todo)
    n = min(cores(), 4)
    # slices of about the same amount of text, not of units: a recall is several times as long as a turn
    ends = list(itertools.accumulate(len(unit.text) for unit, _ in todo))
    cuts = [0] + [bisect.bisect_left(ends, ends[-1] * i / n) for i in range(1, n)] + [len(todo)]
    slices = [todo[a:b] for a, b in itertools.pairwise(cuts)]
    return [row for part in each(lambda part: _code_units(comp, part), slices, parallel_from=2) for row in part]


def _code_units(comp: Compiled, todo: list[tuple[Unit, set[int]]]) -> list[tuple]:
    """The code rows of these units, as tuples in the order of CODE_COLUMNS."""
    rows: list[tuple] = []
    nlp = shared_nlp()
    for unit, _ in todo:  # (here, so that forked workers share this too)
        _annotations_of(unit)
    docs = nlp.pipe((u.prepared.text for u, _ in todo), batch_size=1000)
    for (unit, allowed), doc in zip(todo, docs, strict=False):
        hits = _matches(comp, unit, doc, allowed)
        for rule in (comp.rules[i] for i in comp.annotation_only if i in allowed):
            hits_ann = [(a, b) for name, a, b in unit.annotations if name == rule.annotation]
            for a, b in hits_ann:
                rows.append((unit.unit_type, unit.unit_id, rule.code_id, "auto", rule.id, unit.text[a:b], a, b))
        for i, start, end in _keep_outermost(hits):
            rule = comp.rules[i]
            a, b = unit.prepared.span(start, end)
            rows.append((unit.unit_type, unit.unit_id, rule.code_id, "auto", rule.id, unit.text[a:b], a, b))
    return rows


# --- evaluation -------------------------------------------------------------------------------------------------

DEFAULT_FAMILIES = (
    "rupture.withdrawal", "rupture.confrontation", "resolution", "recall.rupture", "recall.repair",
    "recall.awareness",
)


def family_of(code_id: str, families: tuple[str, ...] | list[str]) -> str | None:
    """The longest family that is the code or one of its ancestors."""
    best = None
    for fam in families:
        if (code_id == fam or code_id.startswith(fam + ".")) and (best is None or len(fam) > len(best)):
            best = fam
    return best


def predict_families(codebook: Codebook, labelled, families=DEFAULT_FAMILIES,
                     compiled: Compiled | None = None) -> list[set[str]]:
    """For each labelled sentence, the families of the codes the codebook applies to it, on its own."""
    import pandas as pd

    labelled = labelled.reset_index(drop=True)
    units = labelled["unit"].fillna("turn").astype(str).str.strip()
    is_turn = units == "turn"
    turns = pd.DataFrame({
        "transcript_id": [f"L{i}" for i in labelled.index[is_turn]],  # each sentence alone: no context
        "kind": "session", "seq": 0, "turn_id": [f"L{i}" for i in labelled.index[is_turn]],
        "role": labelled.loc[is_turn, "role"].tolist(), "text": labelled.loc[is_turn, "text"].tolist(),
    })
    segments = pd.DataFrame({
        "segment_id": [f"L{i}" for i in labelled.index[~is_turn]],
        "participant": labelled.loc[~is_turn, "role"].tolist(),
        "recall_text": labelled.loc[~is_turn, "text"].tolist(), "status": "aligned",
    })
    codes = apply_codebook(codebook, turns, segments, compiled)
    predicted: list[set[str]] = [set() for _ in range(len(labelled))]
    for uid, cid in zip(codes["unit_id"], codes["code_id"], strict=False):
        fam = family_of(cid, families)
        if fam:
            predicted[int(uid[1:])].add(fam)
    return predicted


def evaluate(codebook: Codebook, labelled, families=DEFAULT_FAMILIES):
    """Precision, recall and F1 of the codebook per family on labelled sentences.

    ``labelled`` has the columns text, role, unit (turn or segment) and families (``;``-separated, empty for
    none).  A sentence counts as a hit for a family when any code of that family is applied to it.
    ``n`` is the number of sentences labelled with the family.
    """
    import pandas as pd

    labelled = labelled.reset_index(drop=True)
    predicted = predict_families(codebook, labelled, families)
    gold = [
        {f.strip() for f in str(v).split(";") if f.strip()} if not _is_blank(v) else set()
        for v in labelled["families"].tolist()
    ]
    rows = []
    for fam in families:
        tp = sum(1 for g, p in zip(gold, predicted, strict=False) if fam in g and fam in p)
        fp = sum(1 for g, p in zip(gold, predicted, strict=False) if fam not in g and fam in p)
        fn = sum(1 for g, p in zip(gold, predicted, strict=False) if fam in g and fam not in p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"family": fam, "precision": round(precision, 3), "recall": round(recall, 3),
                     "f1": round(f1, 3), "n": tp + fn, "tp": tp, "fp": fp, "fn": fn})
    return pd.DataFrame(rows)
