"""Loading codebooks: the dataclasses, inheritance, the digest, and the default codebook."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.codebook import Code, Codebook, load_codebook, validate_codebook
from pipeline.errors import InputError

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
DEFAULT = ROOT / "codebooks" / "rupture_repair.yaml"


def test_load_small_codebook():
    path = DATA / "codebooks" / "small.yaml"
    book = load_codebook(path)
    assert isinstance(book, Codebook)
    assert book.title == "Small test codebook" and book.version == "0.1.0" and book.instrument == "none"
    assert book.changelog == [{"version": "0.1.0", "date": "2026-11-25", "changes": "For the tests."}]
    assert book.path == path
    assert book.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert book.ids()[:3] == ["strain", "strain.unheard", "strain.denial"]
    code = book.get("strain.unheard")
    assert isinstance(code, Code)
    assert code.parent == "strain" and code.examples == ["You never listen."]
    assert [r.id for r in code.rules] == ["unheard-phrases", "judged"]
    assert book.get("nope") is None
    assert book.replaced() == {"strain.not_listened_to": "strain.unheard", "strain.ignored": "strain.unheard"}
    assert book.readable_ids()["strain.ignored"] == "strain.unheard"
    assert book.readable_ids()["strain.denial"] == "strain.denial"


def test_units_and_roles_are_inherited_from_the_parent():
    book = load_codebook(DATA / "codebooks" / "small.yaml")
    assert book.get("strain.denial").units == ("turn",) and book.get("strain.denial").roles == ("client",)
    assert book.get("recall.therapist").units == ("segment",) and book.get("recall.therapist").roles == ("therapist",)
    assert book.get("recall").roles == ()  # empty: any role
    assert book.get("strain.denial").rules[0].id == "strain.denial#1"  # the default rule ID
    assert book.get("strain.denial").rules[0].negated == "require"


def test_default_codebook_is_valid_and_has_the_design_ids():
    assert validate_codebook(DEFAULT) == []
    book = load_codebook(DEFAULT)
    ids = set(book.ids())
    expected = {
        "rupture.withdrawal." + x for x in (
            "denial", "minimal_response", "abstract_communication", "avoidant_storytelling", "deferential_appeasing",
            "content_affect_split", "self_criticism_hopelessness")
    } | {
        "rupture.confrontation." + x for x in (
            "complaint_therapist", "rejecting_intervention", "complaint_activities", "defending_self",
            "controlling_pressuring")
    } | {
        "resolution." + x for x in (
            "clarify_misunderstanding", "change_task_goals", "rationale", "invite_relationship_talk",
            "acknowledge_contribution", "disclose_experience", "link_to_patterns", "validate_defensive_posture",
            "redirect")
    } | {"recall.rupture." + x for x in ("unheard", "judged", "frustrated", "hurt", "confused", "held_back")} \
      | {"recall.repair." + x for x in ("understood", "relief", "trust_restored")} \
      | {"recall.awareness." + x for x in ("noticed_at_time", "noticed_on_replay", "not_noticed")}
    assert expected <= ids
    for code in book.codes:
        assert code.name and code.definition and code.brief, code.id
        if code.id in expected:
            assert code.rules and code.when_to_use and code.when_not_to_use and code.examples, code.id
        if code.id.startswith(("rupture.", "resolution.")):
            assert code.units == ("turn",)
        if code.id.startswith("rupture."):
            assert code.roles == ("client",)
        if code.id.startswith("resolution."):
            assert code.roles == ("therapist",)
        if code.id.startswith("recall."):
            assert code.units == ("segment",)
        if code.id.startswith("recall.awareness"):
            assert code.roles == ("therapist",)


def test_load_raises_input_error_with_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("title: x\ncodes:\n  - id: a\n    name: A\n  - id: a.b\n    name: B\n    definiton: typo\n")
    with pytest.raises(InputError) as err:
        load_codebook(path)
    lines = [p.where for p in err.value.problems]
    assert "line 3" in lines and "line 7" in lines
    assert all(p.file == str(path) for p in err.value.problems)


def expected_problems(path: Path) -> list[tuple[int, str]]:
    return [
        (n, line.split("# expect:")[1].strip())
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if "# expect:" in line
    ]


def test_validate_reports_every_problem_with_its_line():
    path = DATA / "codebooks" / "every_error.yaml"
    problems = validate_codebook(path)
    expected = expected_problems(path)
    assert len(expected) > 25
    for line, text in expected:
        assert any(p.where == f"line {line}" and text in str(p) for p in problems), (line, text, problems)
    # ... and nothing else: every problem reported is one of the expected ones.
    assert {(p.where, True) for p in problems} <= {(f"line {n}", True) for n, _ in expected}, problems
    assert all(p.file == str(path) for p in problems)
    lines = [int(p.where.split()[1]) for p in problems]
    assert lines == sorted(lines)  # in file order


def test_problems_read_as_one_line_each():
    problems = validate_codebook(DATA / "codebooks" / "every_error.yaml")
    for p in problems:
        assert "\n" not in str(p) and str(p).startswith(str(DATA / "codebooks" / "every_error.yaml") + ", line ")


@pytest.mark.parametrize("text, where, message", [
    ("title: x\ncodes:\n  - id: a\n    name: [unclosed\n", "line 5", "not valid YAML"),
    ("- just\n- a list\n", "line 1", "must be a mapping"),
    ("title: x\n", "line 1", "no codes"),
    ("version: 1\ncodes:\n  - {id: a, name: A, definition: d}\n", "line 1", "no title"),
    ("title: x\ncodes: []\n", "line 2", "no codes"),
    ("title: x\nchangelog: first\ncodes:\n  - {id: a, name: A, definition: d}\n", "line 2", "changelog"),
    ("title: x\ncodes:\n  - {name: A, definition: d}\n", "line 3", "without an 'id'"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: d, examples: {a: 1}}\n", "line 3", "examples"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: d, rules: {phrases: [x]}}\n", "line 3", "must be a list"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: [d]}\n", "line 3", "must be text"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: d}\n  - {id: b, name: B, definition: d, replaces: [a]}\n",
     "line 4", "code 'b' replaces 'a', which is still a code of this codebook"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: d, replaces: [old]}\n"
     "  - {id: b, name: B, definition: d,\n     replaces: old}\n", "line 5",
     "code 'b' replaces 'old', and so does 'a'"),
    ("title: x\ncodes:\n  - {id: a, name: A, definition: d, replaces: [two words]}\n", "line 3",
     "'two words' in 'replaces' is not a code ID"),
    ("title: x\nretired: [a]\ncodes:\n  - {id: a, name: A, definition: d}\n", "line 2",
     "'a' is retired, but is still a code of this codebook"),
    ("title: x\nretired: [old]\ncodes:\n  - {id: a, name: A, definition: d, replaces: [old]}\n", "line 2",
     "'old' is retired, but 'a' replaces it"),
    ("title: x\nretired: [two words]\ncodes:\n  - {id: a, name: A, definition: d}\n", "line 2",
     "'two words' in 'retired' is not a code ID"),
    ("title: x\nretired: {a: 1}\ncodes:\n  - {id: a, name: A, definition: d}\n", "line 2",
     "'retired' must be a list of names"),
])
def test_whole_file_problems(tmp_path, text, where, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    problems = validate_codebook(path)
    assert any(p.where == where and message in p.message for p in problems), problems


def test_missing_file_and_bad_encoding(tmp_path):
    assert "cannot read" in validate_codebook(tmp_path / "missing.yaml")[0].message
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: caf\xe9\n".encode("latin-1"))
    assert "UTF-8" in validate_codebook(path)[0].message


def test_yes_and_no_stay_phrases(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("title: x\ncodes:\n  - id: a\n    name: A\n    definition: d\n"
                    "    rules:\n      - phrases: [no, yes, on]\n")
    assert load_codebook(path).get("a").rules[0].phrases == ["no", "yes", "on"]
