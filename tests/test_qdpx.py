"""`ipr qdpx`: the demo study, coded by two coders, as a REFI-QDA project.  Read back as another program would
(the zip, project.qde and the sources): each selection holds the words of its unit, each user's codings are that
coder's codes (the consensus and the suggestions too), memos are the selections' descriptions, and each aligned
recall is linked to the session turns on screen before its stop."""

import shutil
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import copy_demo
from lxml import etree
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.codebook import load_codebook
from pipeline.codebook_convert import qdc_bytes
from pipeline.errors import InputError
from pipeline.qdpx import check_project, guid

Q = {"q": "urn:QDA-XML:project:1.0"}
X, Y = "rupture.withdrawal.denial", "rupture.confrontation.rejecting_intervention"
R = "recall.rupture.unheard"
SESSION, IPR = "D02_S5_session", "D02_S5_ipr-client"


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _code(path, sheet, plan: dict) -> None:
    """``plan``: row number -> (codes, memo)."""
    wb = load_workbook(path)
    ws = wb[sheet]
    head = [c.value for c in ws[1]]
    for row, (codes, memo) in plan.items():
        for i, code in enumerate(codes, 1):
            ws.cell(row, head.index(f"code {i}") + 1).value = code
        ws.cell(row, head.index("memo") + 1).value = memo or None
    wb.save(path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_demo(tmp_path_factory.mktemp("qdpx") / "study")
    assert _invoke("analyze", "--study", root).exit_code == 0
    coded = root / "data" / "coded"
    _code(coded / "coder_a" / f"{SESSION}.xlsx", "Turns", {2: ([X], "she means it"), 3: ([X, Y], ""), 4: ([], "hm")})
    _code(coded / "coder_b" / f"{SESSION}.xlsx", "Turns", {2: ([X], ""), 3: ([Y], "")})
    _code(coded / "coder_a" / f"{IPR}.xlsx", "Segments", {2: ([R], "")})
    assert _invoke("analyze", "--study", root).exit_code == 0
    result = _invoke("qdpx", "export", "--study", root)
    assert result.exit_code == 0, result.output
    path = root / "reports" / "study.qdpx"
    assert result.output.startswith("wrote reports/study.qdpx: 6 transcripts, ")
    with zipfile.ZipFile(path) as z:
        qde = z.read("project.qde")
        texts = {n.removeprefix("sources/"): z.read(n).decode("utf-8") for n in z.namelist() if n != "project.qde"}
    tree = etree.fromstring(qde)
    interim = root / "data" / "interim"
    tables = {n: pd.read_parquet(interim / f"{n}.parquet") for n in ("turns", "segments", "codes")}
    return {"root": root, "qde": qde, "tree": tree, "texts": texts, **tables}


def _selections(p) -> list[dict]:
    """Every selection: its source, unit, user name, words, code names and description."""
    users = {u.get("guid"): u.get("name") for u in p["tree"].iterfind(".//q:User", Q)}
    codes = {c.get("guid"): c.get("name") for c in p["tree"].iterfind(".//q:Code", Q)}
    out = []
    for src in p["tree"].iterfind(".//q:TextSource", Q):
        text = p["texts"][src.get("plainTextPath").removeprefix("internal://")]
        for sel in src.iterfind("q:PlainTextSelection", Q):
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            out.append({"source": src.get("name"), "guid": sel.get("guid"), "unit": sel.get("name"),
                        "user": users.get(sel.get("creatingUser")), "words": text[start:end],
                        "codes": [codes[c.find("q:CodeRef", Q).get("targetGUID")] for c in sel.iterfind("q:Coding", Q)],
                        "memo": sel.findtext("q:Description", namespaces=Q)})
    return out


def test_every_transcript_is_a_source_with_its_turns_one_a_line(project):
    sources = {s.get("name"): s for s in project["tree"].iterfind(".//q:TextSource", Q)}
    assert set(sources) == set(project["turns"]["transcript_id"])
    session = project["texts"][sources[SESSION].get("plainTextPath").removeprefix("internal://")]
    lines = session.splitlines()
    turns = project["turns"][project["turns"]["transcript_id"] == SESSION].sort_values("seq")
    assert len(lines) == len(turns)
    first = turns.iloc[0]
    assert lines[0] == f"[0:00:04] {first['speaker']}: {first['text']}"
    interview = project["texts"][sources[IPR].get("plainTextPath").removeprefix("internal://")]
    assert "[Stop 1: video 0:01:51]" in interview.splitlines()


def test_each_selection_holds_the_words_of_its_unit(project):
    turns, segments = project["turns"].set_index("turn_id"), project["segments"].set_index("segment_id")
    auto = project["codes"][project["codes"]["coder"] == "auto"]
    evidence = {(u, e) for u, e in zip(auto["unit_id"], auto["evidence"], strict=True)}
    checked = suggested = 0
    for sel in _selections(project):
        if sel["user"] == "ipr suggestions":  # a suggestion: the words its rule matched, in a turn or a recall
            assert (sel["unit"], sel["words"]) in evidence, sel
            assert sel["memo"].startswith("matched by ") and sel["codes"], sel
            suggested += 1
        elif sel["unit"] in turns.index:
            assert sel["words"] == turns.loc[sel["unit"], "text"], sel
            checked += 1
        elif sel["unit"] in segments.index:  # a recall: the participant's words after the stop, in order
            recall = segments.loc[sel["unit"], "recall_text"].split("\n")
            assert sel["words"].startswith(recall[0]) and sel["words"].endswith(recall[-1]), sel
            checked += 1
    assert checked > 5 and suggested > 50
    units = {sel["unit"] for sel in _selections(project) if sel["user"] == "ipr suggestions"}
    assert units & set(segments.index) and units & set(turns.index)


def test_each_users_codings_are_that_coders_codes(project):
    names = {c.id: c.name for c in load_codebook(project["root"] / "codebooks" / "rupture_repair.yaml").codes}
    given = {(s["user"], s["unit"], c) for s in _selections(project) for c in s["codes"]}
    codes = project["codes"]
    expected = {("ipr suggestions" if r.coder == "auto" else r.coder, r.unit_id, names[r.code_id])
                for r in codes.itertuples()}
    turns = project["turns"][project["turns"]["transcript_id"] == SESSION].sort_values("seq")["turn_id"].tolist()
    # the consensus: where both coded, the codes both gave; where one coded, that coder's
    expected |= {("consensus", turns[0], names[X]), ("consensus", turns[1], names[Y])}
    expected |= {("consensus", r.unit_id, names[R]) for r in codes[codes["coder"] == "coder_a"].itertuples()
                 if r.unit_type == "segment"}
    assert given == expected
    assert {u.get("name") for u in project["tree"].iterfind(".//q:User", Q)} == {
        "ipr suggestions", "coder_a", "coder_b", "consensus"}


def test_a_coders_memo_is_the_description_of_their_selection(project):
    turns = project["turns"][project["turns"]["transcript_id"] == SESSION].sort_values("seq")["turn_id"].tolist()
    mine = {s["unit"]: s for s in _selections(project) if s["user"] == "coder_a" and s["source"] == SESSION}
    assert mine[turns[0]]["memo"] == "she means it"
    assert mine[turns[2]]["memo"] == "hm" and mine[turns[2]]["codes"] == []  # a memo alone is a selection too
    assert mine[turns[1]]["memo"] is None


def test_each_aligned_recall_is_linked_to_the_session_moment_it_recalls(project):
    by_guid = {s["guid"]: s for s in _selections(project)}
    turns = project["turns"].set_index("turn_id")
    aligned = project["segments"][project["segments"]["status"] == "aligned"]
    links = {link.get("originGUID"): by_guid[link.get("targetGUID")]
             for link in project["tree"].iterfind(".//q:Link", Q)}
    assert len(links) == len(aligned) > 10
    for s in aligned.itertuples():
        recall, moment = by_guid[guid("recall", s.segment_id)], links[guid("recall", s.segment_id)]
        assert recall["source"] == s.transcript_id and recall["words"].startswith(s.recall_text.split("\n")[0])
        assert moment["source"] == s.session_transcript_id
        window = s.session_turn_ids.split(";")
        assert moment["words"].startswith(turns.loc[window[0], "text"])
        assert moment["words"].endswith(turns.loc[window[-1], "text"])


def test_the_project_is_valid_and_the_same_study_gives_the_same_guids(project):
    check_project(project["qde"], "study.qdpx")  # (the command checked it too, before writing)
    result = _invoke("qdpx", "export", "--study", project["root"], "--out", project["root"] / "again.qdpx")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(project["root"] / "again.qdpx") as z:
        again = etree.fromstring(z.read("project.qde"))
    assert [e.get("guid") for e in again.iter()] == [e.get("guid") for e in project["tree"].iter()]
    codebook = load_codebook(project["root"] / "codebooks" / "rupture_repair.yaml")
    qdc = etree.fromstring(qdc_bytes(codebook))
    assert {c.get("guid") for c in qdc.iter("{*}Code")} == {c.get("guid") for c in project["tree"].iter("{*}Code")}


def test_sets_hold_the_sessions_and_each_participants_interviews(project):
    names = {s.get("guid"): s.get("name") for s in project["tree"].iterfind(".//q:TextSource", Q)}
    sets = {s.get("name"): sorted(names[m.get("targetGUID")] for m in s.iterfind("q:MemberSource", Q))
            for s in project["tree"].iterfind(".//q:Set", Q)}
    assert sets == {"Session transcripts": ["D01_S3_session", "D02_S5_session"],
                    "Client IPR interviews": ["D01_S3_ipr-client", "D02_S5_ipr-client"],
                    "Therapist IPR interviews": ["D01_S3_ipr-therapist", "D02_S5_ipr-therapist"]}
    cases = {c.get("name"): len(c.findall("q:SourceRef", Q)) for c in project["tree"].iterfind(".//q:Case", Q)}
    assert cases == {"D01": 3, "D02": 3}


def test_an_invalid_project_is_never_written():
    bad = b'<Project xmlns="urn:QDA-XML:project:1.0" name="x"><Users><User guid="not-a-guid"/></Users></Project>'
    with pytest.raises(InputError, match="not a valid REFI-QDA project"):
        check_project(bad, "study.qdpx")


def test_before_any_run_it_says_what_to_run(demo_study):
    result = _invoke("qdpx", "export", "--study", demo_study)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: data/interim/turns.parquet: is missing (run `ipr ingest` (or `ipr analyze`) first)"]
    assert not (demo_study / "reports" / "study.qdpx").exists()


# --- a coder's work in another program, read back ---------------------------------------------------------------

DANA = "0D6A1F00-1111-4222-8333-944455556666"


def _coded_elsewhere(project, path, picks, crlf=True, edit=None, texts=True):
    """The exported project as another program writes it back after Dana coded it there: ``picks`` are
    (transcript, line of the start (its number, or how it begins), start offset in its words, line of the end, end
    offset, code name, memo); with ``crlf`` the texts have Windows line ends (positions counted in them); without
    ``texts`` the sources' texts are left out (a program that writes them as rich text only)."""
    tree = etree.fromstring(project["qde"])
    etree.SubElement(tree.find("q:Users", Q), f"{{{Q['q']}}}User", guid=DANA, name="Dana")
    codes = {c.get("name"): c.get("guid") for c in tree.iter(f"{{{Q['q']}}}Code")}
    keep, texts = texts, dict(project["texts"])
    for n, (tid, first, start, last, end, code, memo) in enumerate(picks):
        src = next(s for s in tree.iterfind(".//q:TextSource", Q) if s.get("name") == tid)
        name = src.get("plainTextPath").removeprefix("internal://")
        lines = texts[name].split("\n")
        first, last = (next(k for k, line in enumerate(lines) if line.startswith(i)) if isinstance(i, str) else i
                       for i in (first, last))
        words = [line.index(": ") + 2 if ": " in line and not line.startswith("[Stop") else 0 for line in lines]
        at = [sum(len(x) + (2 if crlf else 1) for x in lines[:k]) for k in range(len(lines))]
        sel = etree.SubElement(src, f"{{{Q['q']}}}PlainTextSelection",
                               guid=f"0D6A1F00-2222-4222-8333-9444555566{n:02d}",
                               startPosition=str(at[first] + words[first] + start),
                               endPosition=str(at[last] + words[last] + end), creatingUser=DANA)
        if memo:
            etree.SubElement(sel, f"{{{Q['q']}}}Description").text = memo
        coding = etree.SubElement(sel, f"{{{Q['q']}}}Coding", guid=f"0D6A1F00-3333-4222-8333-9444555566{n:02d}",
                                  creatingUser=DANA)
        if code not in codes:  # a code made in the other program
            codes[code] = f"0D6A1F00-4444-4222-8333-9444555566{n:02d}"
            etree.SubElement(tree.find("q:CodeBook/q:Codes", Q), f"{{{Q['q']}}}Code", guid=codes[code], name=code,
                             isCodable="true")
        etree.SubElement(coding, f"{{{Q['q']}}}CodeRef", targetGUID=codes[code])
    if edit:
        texts = {k: edit(v) for k, v in texts.items()}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.qde", etree.tostring(tree))
        for name, text in texts.items() if keep else ():
            z.writestr(f"sources/{name}", text.replace("\n", "\r\n") if crlf else text)
    return path


def _with_eli(path):
    """The project with a second coder's work in it: Eli made the first of Dana's codings."""
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    tree = etree.fromstring(files["project.qde"])
    eli = "0D6A1F00-5555-4222-8333-944455556666"
    etree.SubElement(tree.find("q:Users", Q), f"{{{Q['q']}}}User", guid=eli, name="Eli")
    next(c for c in tree.iter(f"{{{Q['q']}}}Coding") if c.get("creatingUser") == DANA).set("creatingUser", eli)
    files["project.qde"] = etree.tostring(tree)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def elsewhere(project, tmp_path):
    root = tmp_path / "study"
    shutil.copytree(project["root"], root)
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace('"coder_b"]', '"coder_b", "dana"]'))
    names = {c.id: c.name for c in load_codebook(root / "codebooks" / "rupture_repair.yaml").codes}
    picks = [(SESSION, 0, 3, 0, 10, names[X], "dana: she means it"),  # inside one turn's words
             (SESSION, 1, 5, 2, 4, names[Y], ""),  # across two turns
             (IPR, "[Stop 2:", 0, "[Stop 2:", 5, names[R], "")]  # the line of the stop 2 (its recall)
    return root, picks


def test_a_coders_work_in_another_program_comes_back_as_their_workbooks(project, elsewhere, tmp_path):
    root, picks = elsewhere
    path = _coded_elsewhere(project, tmp_path / "dana.qdpx", picks)
    result = _invoke("qdpx", "import", str(path), "--coder", "dana", "--study", root)
    assert result.exit_code == 0, result.output
    assert "imported Dana's 4 codes on 4 units (3 selections) into data/coded/dana/, 2 workbooks" in result.output
    assert _invoke("analyze", "--study", root).exit_code == 0
    codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    turns = project["turns"][project["turns"]["transcript_id"] == SESSION].sort_values("seq")["turn_id"].tolist()
    recall = project["segments"][project["segments"]["transcript_id"] == IPR].sort_values("stop_no")["segment_id"]
    assert set(map(tuple, codes.loc[codes["coder"] == "dana", ["unit_id", "code_id"]].values.tolist())) == {
        (turns[0], X), (turns[1], Y), (turns[2], Y), (recall.iloc[1], R)}
    entries = pd.read_parquet(root / "data" / "interim" / "coder_entries.parquet")
    assert entries.loc[(entries["coder"] == "dana") & (entries["unit_id"] == turns[0]), "memo"].item() == \
        "dana: she means it"
    agreement = pd.read_csv(root / "reports" / "agreement.csv")
    assert agreement.loc[agreement["code_id"] == "(all codes)", "coders"].item() == 3
    # Dana has coded now: another import would merge, and never does
    again = _invoke("qdpx", "import", str(path), "--coder", "dana", "--study", root)
    assert again.exit_code == 1
    assert "error: data/coded/dana: dana has codes or memos in their workbooks already" in again.output


def test_an_import_that_cannot_be_read_right_changes_nothing(project, elsewhere, tmp_path):
    root, picks = elsewhere
    before = sorted(p.relative_to(root) for p in (root / "data").rglob("*"))
    cases = [
        (_coded_elsewhere(project, tmp_path / "a.qdpx", picks[:1] + [(SESSION, 3, 0, 3, 4, "My new code", "")]),
         ["dana"], "Dana's codes 'My new code' are not in the codebook"),
        (_coded_elsewhere(project, tmp_path / "b.qdpx", picks, edit=lambda t: t.replace("\n", "\n\n", 1)),
         ["dana"], f"the text of {IPR} is not the text the study exported"),
        (_coded_elsewhere(project, tmp_path / "c.qdpx", picks), ["newbie"], "'newbie' is not one of the coders"),
        (_coded_elsewhere(project, tmp_path / "e.qdpx", picks, texts=False), ["dana"],
         f"holds no plain text of {SESSION} (REFI-QDA's plainTextPath)"),
        (_coded_elsewhere(project, tmp_path / "d.qdpx", picks), ["dana", "--user", "Bo"], "holds no codings by 'Bo'"),
        (_with_eli(_coded_elsewhere(project, tmp_path / "f.qdpx", picks)), ["dana"],
         "holds the codings of 2 new users (Dana, Eli) (name the one to import with --user)"),
    ]
    for path, args, said in cases:
        result = _invoke("qdpx", "import", str(path), "--coder", *args, "--study", root)
        assert result.exit_code == 1, result.output
        assert said in result.output, result.output
        assert len(result.output.strip().splitlines()) <= 2  # (one line per problem)
    assert sorted(p.relative_to(root) for p in (root / "data").rglob("*")) == before


def test_a_suggestions_evidence_is_found_in_the_recalls_turns():
    """A recall's text is its participant's turns joined with line ends; each lies elsewhere in the source."""
    from pipeline.qdpx import Place

    place = Place("T", (10, 35), [(10, 20), (30, 35)])
    assert place.of(0, 5) == (10, 15)
    assert place.of(11, 14) == (30, 33)  # in the second turn
    assert place.of(8, 13) == (10, 35)  # across the two: the whole recall
    assert place.of(-1, -1) == (10, 35)  # no evidence known
