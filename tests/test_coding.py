"""Applying a codebook: lemmas, lower case, negation, annotations, structure, scope by role and unit, spans."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.codebook import load_codebook
from pipeline.coding import CODE_COLUMNS, apply_codebook, is_negated, is_question
from pipeline.nlp import make_nlp, prepare, shared_nlp

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def book():
    return load_codebook(DATA / "codebooks" / "small.yaml")


def turns_of(*pairs, kind="session"):
    """A turns table of one transcript from (role, text) pairs."""
    return pd.DataFrame({
        "transcript_id": "D01_S1_session", "kind": kind, "seq": range(len(pairs)),
        "turn_id": [f"T{i}" for i in range(len(pairs))], "speaker": [r[0].upper() for r, _ in pairs],
        "role": [r for r, _ in pairs], "text": [t for _, t in pairs],
    })


NO_SEGMENTS = pd.DataFrame(columns=["segment_id", "participant", "recall_text", "status"])


def code(book, *pairs, segments=NO_SEGMENTS):
    return apply_codebook(book, turns_of(*pairs), segments)


def found(table, unit_id=None):
    rows = table if unit_id is None else table[table["unit_id"] == unit_id]
    return sorted(set(rows["code_id"]))


def test_the_table_has_the_columns_of_the_design(book):
    table = code(book, ("client", "Felt judged."))
    assert list(table.columns) == CODE_COLUMNS
    assert set(table["coder"]) == {"auto"}
    empty = code(book, ("client", "Nice weather today."))
    assert list(empty.columns) == CODE_COLUMNS and empty.empty


@pytest.mark.parametrize("text", [
    "Will you listen to me.", "He listened to me", "she's listening to me", "Listening to me? Sure.", "LISTEN TO ME",
])
def test_phrases_match_every_form_of_the_words(book, text):
    # "listen to me" finds listened, listening, and a capital at the start of the turn does not stop it.
    assert found(code(book, ("client", text))) == ["strain.unheard"]


def test_a_capital_at_the_start_does_not_stop_a_lemma_match(book):
    assert found(code(book, ("client", "Felt judged, to be honest."))) == ["strain.unheard"]
    assert found(code(book, ("client", "FELT JUDGED."))) == ["strain.unheard"]


def test_contractions_match_either_way(book):
    for text in ("You don't understand.", "You do not understand", "you didn't understand", "You doesn’t understand"):
        assert found(code(book, ("client", text))) == ["strain.unheard"], text


def test_evidence_is_the_exact_text_and_span(book):
    text = "Well. I Felt  JUDGED by   you, really."
    table = code(book, ("client", text))
    row = table.iloc[0]
    assert row["evidence"] == "Felt  JUDGED"
    assert text[row["start_char"]:row["end_char"]] == row["evidence"]
    assert row["rule_id"] == "judged" and row["unit_type"] == "turn" and row["unit_id"] == "T0"


@pytest.mark.parametrize("text", [
    "I didn't feel judged.", "I never felt judged by you.", "I did not really feel judged",
    "It's not that I felt judged", "No one would say I felt judged",
])
def test_a_phrase_in_a_negated_clause_does_not_count(book, text):
    assert found(code(book, ("client", text))) == []


@pytest.mark.parametrize("text", [
    "I'm not sure, but I felt judged.", "No, I felt judged.", "I don't know, I felt judged",
    "I don't know I felt judged", "Nothing happened; then I felt judged.",
])
def test_negation_stops_at_the_clause(book, text):
    assert found(code(book, ("client", text))) == ["strain.unheard"], text


def test_a_negation_inside_the_phrase_is_part_of_the_phrase(book):
    assert found(code(book, ("client", "Honestly you don't understand"))) == ["strain.unheard"]


def test_negated_require_finds_only_negated_matches(book):
    assert found(code(book, ("client", "I'm not upset."))) == ["strain.denial"]
    assert found(code(book, ("client", "I wasn't angry with her"))) == ["strain.denial"]
    assert found(code(book, ("client", "I was upset."))) == []


def test_negated_allow_counts_both(book):
    assert found(code(book, ("client", "I'm fine."))) == ["strain.fine"]
    assert found(code(book, ("client", "No, I'm fine."))) == ["strain.fine"]
    assert found(code(book, ("client", "I never said I'm fine"))) == ["strain.fine"]


def test_is_negated_window():
    nlp = shared_nlp()
    doc = nlp("i did not go to the shop and then felt judged")
    assert not is_negated(doc, 9)  # "felt": the "not" is more than five words back
    doc = nlp("i did not feel judged")
    assert is_negated(doc, 3)


def test_annotations_are_not_words_for_the_rules(book):
    text = "You should listen (laughs) to me"
    table = code(book, ("client", text))
    row = table[table["code_id"] == "strain.unheard"].iloc[0]
    assert row["evidence"] == "listen (laughs) to me"
    assert text[row["start_char"]:row["end_char"]] == row["evidence"]
    assert found(code(book, ("client", "Listen [inaudible 00:12:31] to me"))) == ["strain.unheard"]


def test_a_rule_can_ask_for_an_annotation(book):
    table = code(book, ("client", "And then my dad died (laughs)."), ("client", "And then my dad died."))
    assert found(table, "T0") == ["strain.laugh", "strain.split"]
    assert found(table, "T1") == []
    laugh = table[table["code_id"] == "strain.laugh"].iloc[0]
    assert laugh["evidence"] == "(laughs)"
    split = table[table["code_id"] == "strain.split"].iloc[0]
    assert split["evidence"] == "died"


def test_structural_rule_minimal_response(book):
    table = code(
        book,
        ("therapist", "How did that feel for you?"), ("client", "Dunno really."),  # short answer to an open question
        ("therapist", "Did you take the bus?"), ("client", "Yes."),  # closed question: not minimal
        ("therapist", "What was that like?"), ("client", "It was hard, I kept thinking about her all day."),
        ("client", "Mm."),  # after a client turn
    )
    assert found(table, "T1") == ["strain.short"]
    assert found(table, "T3") == found(table, "T5") == found(table, "T6") == []
    assert table[table["unit_id"] == "T1"].iloc[0]["evidence"] == "Dunno really."


def test_is_question():
    assert is_question("So. What was that like?", open_only=True)
    assert is_question("Tell me more about that.", open_only=True)
    assert not is_question("Did you go?", open_only=True)
    assert is_question("Did you go?", open_only=False)
    assert not is_question("Okay.", open_only=False)


def test_regex_runs_on_the_text_without_annotations(book):
    assert found(code(book, ("client", "Whatever (sighs)."))) == ["strain.short"]
    assert found(code(book, ("client", "whatever you like, we can go"))) == []


def test_token_pattern(book):
    table = code(book, ("client", "I always felt unheard there"), ("client", "I felt heard"))
    assert found(table, "T0") == ["strain.pattern"] and found(table, "T1") == []


def test_scope_by_role(book):
    table = code(book, ("therapist", "Listen to me, what I meant was"), ("client", "What I meant was no"))
    assert found(table, "T0") == ["helper"]  # client codes do not apply to a therapist turn
    assert found(table, "T1") == []  # therapist codes do not apply to a client turn


def test_scope_by_unit_and_segment_roles(book):
    segments = pd.DataFrame({
        "segment_id": ["D01_S1_ipr-client#1", "D01_S1_ipr-therapist#1", "x#3"],
        "participant": ["client", "therapist", "client"],
        "recall_text": ["I felt unheard and I missed it. Listen to me.", "I felt unheard, I missed it", ""],
        "status": ["aligned", "no_time", "aligned"],
    })
    table = code(book, ("client", "I missed it"), segments=segments)
    assert found(table, "T0") == []  # a segment code does not apply to a turn
    assert found(table, "D01_S1_ipr-client#1") == ["recall"]  # turn codes do not apply to segments
    assert found(table, "D01_S1_ipr-therapist#1") == ["recall", "recall.therapist"]
    assert set(table["unit_type"]) == {"segment"}


def test_ipr_interview_turns_are_not_coded_as_turns(book):
    table = apply_codebook(book, turns_of(("client", "Listen to me"), kind="ipr"), NO_SEGMENTS)
    assert table.empty


def test_turns_without_role_or_text_are_tolerated(book):
    turns = turns_of(("client", "Listen to me"), ("unknown", ""), ("client", None))
    table = apply_codebook(book, turns, None)
    assert found(table) == ["strain.unheard"]


def test_prepare_keeps_offsets():
    text = "  I (laughs)  FELT\n judged — don’t "
    prepared = prepare(text, [(4, 12)])
    assert prepared.text == "i felt judged — don't"
    for word in prepared.text.split():
        at = prepared.text.index(word)
        a, b = prepared.span(at, at + len(word))
        assert text[a:b].lower().replace("’", "'") == word


def test_make_nlp_lemmatises_without_a_model():
    nlp = make_nlp()
    assert [t.lemma_ for t in nlp("felt listened n't 's")] == ["feel", "listen", "not", "be"]


def test_a_large_study_is_coded_whole(book):
    """Many units (the workers' slices when forked): every one of them coded.  Speed is `make bench`'s to
    measure; no test asserts a time."""
    n = 3000  # about 100k words: a third of the 1,000-page benchmark
    text = "and then I felt like you were not really listening to me when I talked about my mother and the job"
    texts = [f"{text} {i} (laughs) you don't understand" for i in range(n)]
    turns = pd.DataFrame({"transcript_id": "x", "kind": "session", "seq": range(n), "turn_id": range(n),
                          "role": "client", "text": texts})
    default = load_codebook(Path(__file__).parent.parent / "codebooks" / "rupture_repair.yaml")
    table = apply_codebook(default, turns, None)
    assert set(table["unit_id"]) == {str(i) for i in range(n)}


@pytest.mark.parametrize("text, name", [
    ("And then he died (laughing).", "laughs"), ("And then he died [Laughter]", "laughs"),
    ("he died (chuckles)", "laughs"), ("he died [crying]", "crying"), ("he died (.)", "pause"),
])
def test_annotation_names(text, name):
    from pipeline.coding import find_annotations

    assert name in [n for n, _, _ in find_annotations(text)]


def test_an_annotations_column_changes_nothing(book):
    turns = turns_of(("client", "And then my dad died (laughs)."))
    plain = apply_codebook(book, turns, NO_SEGMENTS)
    turns["annotations"] = [["laughs"]]
    assert apply_codebook(book, turns, NO_SEGMENTS).equals(plain)


def test_fillers_are_skipped_in_phrases(book):
    assert found(code(book, ("client", "I really felt quite honestly judged"))) == ["strain.unheard"]
    assert found(code(book, ("client", "You just don't really understand"))) == ["strain.unheard"]
