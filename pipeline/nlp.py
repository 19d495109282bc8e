"""The spaCy pipeline the coding rules run on: blank English plus the lookup lemmatizer.

Why blank: the rules need tokens, lower case and lemmas, nothing a statistical model adds, and a study must run
offline on any machine: nothing is ever downloaded (the lemma tables ship with ``spacy-lookups-data``).

Why a text is prepared before parsing (:func:`prepare`): the lookup table lemmatises the exact token text
("Felt" stays "Felt"), so the text is lower-cased; transcription conventions such as ``(laughs)`` are not
words, so they are cut out; curly apostrophes become straight ones ("don’t" is "do" + "n't"); runs of white
space become one space (otherwise spaCy makes a space token that breaks a phrase).  The prepared text keeps a
map back to the original, so every match still reports its exact span in the text the coder reads.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import numpy

import pipeline.spacy_import  # noqa: F401  # isort: skip (first: spaCy without its command line)
import spacy
from spacy.attrs import LEMMA, ORTH
from spacy.language import Language
from spacy.tokens import Doc

# The lookup table gives odd lemmas for clitics and a few common words ("'s" -> "have", "'re" -> "'re",
# "does" -> "doe"); these make "don't", "do not" and "did not" one phrase, and "it's"/"it is" another.
CLITIC_LEMMAS = {
    "does": "do", "n't": "not", "'s": "be", "'re": "be", "'m": "be", "'ve": "have", "'ll": "will", "'d": "would",
    "ca": "can", "wo": "will", "sha": "shall", "gon": "go", "na": "to", "wanna": "want", "gotta": "get",
    "'cause": "because", "cos": "because", "coz": "because", "cuz": "because",
}

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})


class LookupLemmas:
    """Lemmas from the spacy-lookups-data table, set on the whole doc at once.

    The same table as spaCy's lookup lemmatizer, with the clitic fixes above; but where that lemmatizer
    creates a Python object per token (half the coding time of a large study), this one maps the token
    hashes through a cache and writes the lemma column in one call.  The table is kept as the plain dict of
    words it is stored as: spaCy's ``Table`` hashes all of its 40,000 words first, which the process that
    codes a changed transcript was waiting for.
    """

    def __init__(self, nlp: Language):
        from spacy.util import load_language_data, registry

        self.words: dict[str, str] = load_language_data(registry.lookups.get("en")["lemma_lookup"])
        self.strings = nlp.vocab.strings
        self.cache: dict[int, int] = {}
        for word, lemma in CLITIC_LEMMAS.items():
            self.cache[self.strings.add(word)] = self.strings.add(lemma)

    def _lemma(self, orth: int) -> int:
        lemma = self.words.get(self.strings[orth])
        hashed = self.strings.add(lemma) if lemma else orth
        self.cache[orth] = hashed
        return hashed

    def __call__(self, doc: Doc) -> Doc:
        if len(doc):
            cache, miss = self.cache, self._lemma
            orths = doc.to_array([ORTH])
            lemmas = numpy.array([cache.get(o) or miss(o) for o in orths.tolist()], dtype="uint64")
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))
        return doc


@Language.factory("lookup_lemmas")
def _make_lookup_lemmas(nlp: Language, name: str) -> LookupLemmas:
    return LookupLemmas(nlp)


def make_nlp() -> Language:
    """A blank English pipeline with the lookup lemmas of spacy-lookups-data (no model, no download)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lookup_lemmas")
    return nlp


@lru_cache(maxsize=1)
def shared_nlp() -> Language:
    """One pipeline per process: loading the lemma table takes a moment, so it is done once."""
    return make_nlp()


@dataclass
class Prepared:
    """A unit's text made ready for matching, with the way back to the original offsets.

    ``text`` is what spaCy parses.  ``_starts`` / ``_origins`` are parallel lists: the prepared text from
    ``_starts[i]`` on comes from the original text from ``_origins[i]`` on, character for character, up to the
    next piece.  A text without anything cut out has one piece and maps onto itself.
    """

    original: str
    text: str  # lower case: what spaCy parses
    _starts: list[int]
    _origins: list[int]
    cased: str = ""  # the same text in its original case: what regular expressions run on

    def to_original(self, i: int) -> int:
        """Original offset of the prepared offset ``i`` (a start, or an end when ``end`` is a span end)."""
        k = bisect_right(self._starts, i) - 1
        return self._origins[k] + (i - self._starts[k])

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the prepared span [start, end)."""
        if end <= start:
            s = self.to_original(start)
            return s, s
        return self.to_original(start), self.to_original(end - 1) + 1


_ODD_SPACE = re.compile(r" \s+|[^\S ]\s*")  # anything but one plain space between words


def prepare(text: str, cut=()) -> Prepared:
    """Lower-case ``text``, cut the spans ``cut`` (annotations) and squeeze white space, keeping the offsets.

    When lower-casing would change the length (a few non-English letters), the original case is kept so the
    offsets stay valid; lemma matches on such a text may then miss a capitalised word, nothing worse.
    """
    low = text.lower()
    if len(low) != len(text):
        low = text
    low = low.translate(_APOSTROPHES)
    cased_all = text.translate(_APOSTROPHES)
    if not cut and not _ODD_SPACE.search(low) and low[:1] != " " and low[-1:] != " ":
        return Prepared(text, low, [0], [0], cased_all)
    # The original is read as pieces to copy, separated by gaps to squeeze into at most one space: cut spans
    # (annotations) and odd white space.
    gaps = [(a, b) for a, b in cut if b > a]
    gaps += [m.span() for m in _ODD_SPACE.finditer(low)]
    gaps += [m.span() for m in re.finditer(r"^\s+|\s+$", low)]  # leading and trailing space: not words
    gaps.sort()
    out: list[str] = []
    cased: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    length = 0
    pos = 0
    pending_space = False  # a gap was passed since the last piece copied

    def copy(a: int, b: int) -> None:
        nonlocal length, pending_space
        if a < b and length and out[-1][-1:] == " " and low[a] == " ":
            a += 1  # "I (laughs) felt": one space, not two
        if b <= a:
            return
        if pending_space and length and out[-1][-1:] != " " and low[a] != " ":
            starts.append(length)
            origins.append(a)
            out.append(" ")
            cased.append(" ")
            length += 1
        pending_space = False
        starts.append(length)
        origins.append(a)
        out.append(low[a:b])
        cased.append(cased_all[a:b])
        length += b - a

    for a, b in gaps:
        if b <= pos:
            continue
        copy(pos, max(a, pos))
        pending_space = True
        pos = b
    copy(pos, len(low))
    prepared = "".join(out).rstrip(" ")
    if not starts:
        starts, origins = [0], [0]
    return Prepared(text, prepared, starts, origins, "".join(cased)[: len(prepared)])
