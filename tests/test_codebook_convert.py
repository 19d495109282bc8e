"""Codebook conversions: REFI-QDA .qdc both ways (schema-valid), xlsx both ways, docx, team spreadsheets."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema

from pipeline.codebook import load_codebook, validate_codebook
from pipeline.codebook_convert import SCHEMA, convert, read_codebook
from pipeline.errors import InputError

ROOT = Path(__file__).parent.parent
DEFAULT = ROOT / "codebooks" / "rupture_repair.yaml"
SMALL = Path(__file__).parent / "data" / "codebooks" / "small.yaml"
FIELDS = ("id", "name", "parent", "brief", "definition", "when_to_use", "when_not_to_use", "examples", "units", "roles",
          "replaces")


def fields(book):
    return [tuple(getattr(c, f) for f in FIELDS) for c in book.codes]


def rules(book):
    return [(r.code_id, r.id, r.phrases, r.regex, r.pattern, r.structure, r.params, r.negated, r.match, r.annotation)
            for r in book.rules()]


@pytest.fixture()
def default_copy(tmp_path):
    path = tmp_path / "rupture_repair.yaml"
    path.write_bytes(DEFAULT.read_bytes())
    return path


def test_qdc_validates_against_the_refi_qda_schema(default_copy):
    qdc = convert(default_copy, "qdc")
    assert qdc == default_copy.with_suffix(".qdc")
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(qdc))
    text = qdc.read_text(encoding="utf-8")
    assert 'xmlns="urn:QDA-XML:codebook:1.0"' in text
    assert "When not to use:" in text and "Examples:" in text and "Roles: client" in text


def test_yaml_qdc_yaml_round_trip_keeps_codes_and_fields(default_copy, tmp_path):
    original = load_codebook(default_copy)
    qdc = convert(default_copy, "qdc")
    back = convert(qdc, "yaml", out=tmp_path / "back.yaml")
    assert validate_codebook(back) == []
    again = load_codebook(back)
    assert fields(again) == fields(original)
    assert (again.title, again.version) == (original.title, original.version)
    assert again.rules() == []  # rules are not part of the REFI-QDA standard (README says so)
    assert read_codebook(qdc).ids() == original.ids()


def test_qdc_guids_are_stable(default_copy, tmp_path):
    first = convert(default_copy, "qdc").read_bytes()
    second = convert(default_copy, "qdc", out=tmp_path / "again.qdc").read_bytes()
    assert first == second


def test_qdc_from_another_program(tmp_path):
    path = tmp_path / "nvivo.qdc"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="NVivo 14">\n'
        "  <Codes>\n"
        '    <Code guid="1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="Alliance strain" isCodable="false">\n'
        "      <Description>Any strain between client and therapist.</Description>\n"
        '      <Code guid="2FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="Felt unheard" isCodable="true"/>\n'
        "    </Code>\n"
        "  </Codes>\n"
        "</CodeBook>\n", encoding="utf-8")
    book = read_codebook(path)
    assert book.ids() == ["alliance_strain", "alliance_strain.felt_unheard"]
    assert book.get("alliance_strain").definition == "Any strain between client and therapist."
    assert book.get("alliance_strain.felt_unheard").parent == "alliance_strain"
    out = convert(path, "yaml")
    problems = validate_codebook(out)  # the child has no definition in NVivo: the team is told where
    assert [p.message for p in problems] == ["code 'alliance_strain.felt_unheard': the definition is empty"]


@pytest.mark.parametrize("text, message", [
    ("<CodeBook><Codes>", "not valid XML"),
    ('<?xml version="1.0"?><Project xmlns="urn:QDA-XML:project:1.0"/>', "root element is <Project>"),
])
def test_bad_qdc(tmp_path, text, message):
    path = tmp_path / "bad.qdc"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_codebook(path)
    assert message in str(err.value)


def test_xlsx_round_trip_keeps_everything(default_copy, tmp_path):
    original = load_codebook(default_copy)
    xlsx = convert(default_copy, "xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["Codes", "Rules", "About"]
    assert [c.value for c in wb["Codes"][1]][:5] == ["id", "name", "parent", "brief definition", "full definition"]
    back = load_codebook(convert(xlsx, "yaml", out=tmp_path / "back.yaml"))
    assert fields(back) == fields(original)
    assert rules(back) == rules(original)
    assert back.changelog == original.changelog and back.title == original.title


def test_docx_for_review(default_copy):
    from docx import Document

    docx = convert(default_copy, "docx")
    text = "\n".join(p.text for p in Document(str(docx)).paragraphs)
    assert "Minimal response  (rupture.withdrawal.minimal_response)" in text
    assert "When not to use:" in text and "Rules (automatic suggestions):" in text
    assert "structure: minimal_response (max_words 3" in text


def test_team_spreadsheet_csv(tmp_path):
    path = tmp_path / "team codebook.csv"
    path.write_text(
        "Code,Parent,Brief definition,Definition,When to use,When not to use,Examples,Roles,Keywords\n"
        "Rupture,,Strain,Strain in the alliance.,,,,client,\n"
        "Felt unheard,Rupture,Not listened to,The client says they are not heard.,Complaints,Not praise,"
        "\"You never listen; You don't hear me\",,\"not listening; don't hear me\"\n"
        "Repair,,Mending,The strain eases.,,,,any,\n", encoding="utf-8")
    book = read_codebook(path)
    assert book.ids() == ["rupture", "rupture.felt_unheard", "repair"]
    unheard = book.get("rupture.felt_unheard")
    assert unheard.parent == "rupture" and unheard.examples == ["You never listen", "You don't hear me"]
    assert unheard.roles == ("client",)  # inherited from the parent row
    assert unheard.rules[0].phrases == ["not listening", "don't hear me"]
    assert book.get("repair").roles == ()
    out = convert(path, "yaml")
    assert out == tmp_path / "team codebook.yaml"
    assert validate_codebook(out) == []
    assert load_codebook(out).ids() == book.ids()


def test_team_spreadsheet_xlsx_with_ids(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["ID", "Name", "Full definition", "Inclusion criteria", "Exclusion criteria", "Units"])
    ws.append(["strain", "Strain", "Strain.", "", "", "turn"])
    ws.append(["strain.unheard", "Unheard", "Not heard.", "Use it", "Not it", ""])
    path = tmp_path / "sheet.xlsx"
    wb.save(path)
    book = read_codebook(path)
    assert book.get("strain.unheard").parent == "strain"
    assert book.get("strain.unheard").when_to_use == "Use it" and book.get("strain.unheard").units == ("turn",)


@pytest.mark.parametrize("text, where, message", [
    ("Code,Colour\nA,red\n", "cell B1", "unknown column 'Colour'"),
    ("Code,Parent,Definition\nA,Nowhere,d\n", "cell B2", "unknown parent 'Nowhere'"),
    ("Code,Definition,Roles\nA,d,patient\n", "cell C2", "unknown role 'patient'"),
    ("id,name,definition\na,A,d\na,B,d\n", "row 3", "duplicate code 'a'"),
    ("Definition,When to use\nd,u\n", "row 1", "no column names the codes"),
])
def test_spreadsheet_problems(tmp_path, text, where, message):
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_codebook(path)
    assert any(p.where == where and message in p.message for p in err.value.problems), err.value.problems


def test_convert_problems(tmp_path, default_copy):
    with pytest.raises(InputError, match="cannot convert to 'pdf'"):
        convert(default_copy, "pdf")
    with pytest.raises(InputError, match="would overwrite the input"):
        convert(default_copy, "yaml")
    with pytest.raises(InputError, match="no such file"):
        convert(tmp_path / "missing.yaml", "qdc")
    with pytest.raises(InputError, match="cannot read a codebook from a '.txt'"):
        (tmp_path / "c.txt").write_text("x")
        convert(tmp_path / "c.txt", "yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\ncodes:\n  - id: a\n    name: A\n")
    with pytest.raises(InputError, match="line 3"):
        convert(bad, "qdc")


def test_writes_are_atomic(default_copy):
    convert(default_copy, "xlsx")
    convert(default_copy, "qdc")
    assert sorted(p.name for p in default_copy.parent.iterdir()) == [
        "rupture_repair.qdc", "rupture_repair.xlsx", "rupture_repair.yaml"]


def test_small_codebook_round_trips_through_every_form(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_bytes(SMALL.read_bytes())
    original = load_codebook(path)
    assert original.get("strain.unheard").replaces == ["strain.not_listened_to", "strain.ignored"]
    assert original.retired == ["strain.other", "strain.vague"]
    back = load_codebook(convert(convert(path, "xlsx"), "yaml", out=tmp_path / "x.yaml"))
    assert fields(back) == fields(original) and rules(back) == rules(original)
    assert back.retired == original.retired
    again = load_codebook(convert(convert(path, "qdc"), "yaml", out=tmp_path / "q.yaml"))
    assert fields(again) == fields(original)
    from docx import Document

    text = "\n".join(p.text for p in Document(str(convert(path, "docx"))).paragraphs)
    assert "Replaces (codes renamed to this one or merged into it): strain.not_listened_to, strain.ignored" in text
    assert "Retired codes (kept in coders' cells, not counted): strain.other, strain.vague" in text
