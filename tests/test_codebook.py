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
