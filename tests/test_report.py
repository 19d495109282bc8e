"""The PI's report: the docx's sections, tables and images against the tables they come from.

Built on small hand-made tables (a session, two IPR interviews, automatic codes and two coders), so the tests are
fast and every expected number can be counted by hand.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from docx import Document
from openpyxl import load_workbook

from pipeline.codebook import Code, Codebook
from pipeline.report import build_report, pair_rows
from pipeline.study import Settings, Study
from pipeline.summaries import COMPUTED, SINGLE, consensus_made_of, report_tables, with_consensus
from pipeline.word import DOCX_HIDDEN, cell_text, docx_cells

CODES = [
    ("rupture", "Rupture markers"), ("rupture.withdrawal", "Withdrawal"),
    ("rupture.withdrawal.minimal_response", "Minimal response"), ("rupture.withdrawal.denial", "Denial"),
    ("rupture.confrontation", "Confrontation"),
    ("rupture.confrontation.complaint_therapist", "Complaints about the therapist"),
    ("resolution", "Resolution strategies"), ("resolution.validate", "Validating the defensive posture"),
    ("resolution.rationale", "Giving a rationale"),
    ("recall.rupture", "Recalled strain"), ("recall.rupture.unheard", "Felt unheard"),
    ("recall.repair", "Recalled repair"), ("recall.repair.understood", "Felt understood again"),
    ("recall.awareness", "Therapist awareness"), ("recall.awareness.at_the_time", "Noticed at the time"),
    ("recall.awareness.not_noticed", "Did not notice"),
]


def make_codebook() -> Codebook:
    return Codebook(title="Rupture and repair (test)", version="1.2", digest="ab" * 32,
                    codes=[Code(id=i, name=n, parent=i.rsplit(".", 1)[0] if "." in i else None) for i, n in CODES])


def _turn(tid, kind, participant, seq, speaker, role, start, text, case="D01", session="S3"):
    return {"transcript_id": tid, "case": case, "session": session, "kind": kind, "participant": participant,
            "turn_id": f"{tid}#{seq}", "seq": seq, "speaker": speaker, "role": role, "start_s": start,
            "end_s": np.nan, "text": text, "source_file": f"{tid}.txt", "source_line": seq}


NOW = "2025-01-01T11:00:00+00:00"
SESSION = "D01_S3_session"
SESSION_TURNS = [  # seq, role, start, text
    (1, "therapist", 0.0, "How has the week been?"),
    (2, "client", 20.0, "Fine."),  # withdrawal at 0:00:20
    (3, "therapist", 40.0, "It sounds like fine is all you want to say today, and that makes sense."),  # repair
    (4, "client", 95.0, "I guess."),  # withdrawal at 0:01:35, repaired by seq 3? no: by seq 5
    (5, "therapist", 130.0, "Let me explain why I asked about your week."),  # rationale at 0:02:10
    (6, "client", 400.0, "You never listen to me."),  # confrontation at 0:06:40, no repair within 300 s
    (7, "therapist", 420.0, "Tell me more about your mother."),
    (8, "client", 800.0, "Fine, whatever."),  # withdrawal at 0:13:20, repaired at 0:14:00
    (9, "therapist", 840.0, "I can see this is hard to talk about, and that is fine."),
]


def make_tables():
    turns = [_turn(SESSION, "session", None, s, r[0].upper(), r, t, x) for s, r, t, x in SESSION_TURNS]
    turns += [_turn("D01_S3_ipr-client", "ipr", "client", i, lab, role, np.nan, x) for i, (lab, role, x) in
              enumerate([("I", "interviewer", "What was happening here?"),
                         ("C", "client", "I felt unheard, like nobody was listening."),
                         ("I", "interviewer", "And here?"), ("C", "client", "Nothing much really.")], 1)]
    turns += [_turn("D01_S3_ipr-therapist", "ipr", "therapist", i, lab, role, np.nan, x) for i, (lab, role, x) in
              enumerate([("I", "interviewer", "What did you notice?"),
                         ("T", "therapist", "I noticed she went quiet, I felt it at the time.")], 1)]
    turns = pd.DataFrame(turns)
    ctx = "[0:00:00] T: How has the week been?\n[0:00:20] C: Fine."
    segs = [
        ("D01_S3_ipr-client@0:00:25", "D01_S3_ipr-client", "client", 1, 25.0, 0.0, 25.0,
         f"{SESSION}#1;{SESSION}#2", ctx, "I felt unheard, like nobody was listening.", "aligned",
         "D01_S3_ipr-therapist@0:00:30"),
        ("D01_S3_ipr-client@0:07:00", "D01_S3_ipr-client", "client", 2, 420.0, 360.0, 420.0,
         f"{SESSION}#6;{SESSION}#7", "[0:06:40] C: You never listen to me.\n[0:07:00] T: Tell me more about your "
         "mother.", "Nothing much really.", "aligned", ""),
        ("D01_S3_ipr-client@1:30:00", "D01_S3_ipr-client", "client", 3, 5400.0, np.nan, np.nan, "", "",
         "(no recall)", "time_out_of_range", ""),
        ("D01_S3_ipr-therapist@0:00:30", "D01_S3_ipr-therapist", "therapist", 1, 30.0, 0.0, 30.0,
         f"{SESSION}#1;{SESSION}#2", ctx, "I noticed she went quiet, I felt it at the time.", "aligned",
         "D01_S3_ipr-client@0:00:25"),
    ]
    segments = pd.DataFrame([{
        "segment_id": sid, "transcript_id": tid, "case": "D01", "session": "S3", "participant": part,
        "stop_no": no, "video_s": v, "session_s": v, "session_transcript_id": SESSION if st == "aligned" else None,
        "window_start_s": ws, "window_end_s": we, "session_turn_ids": ids, "context_text": c, "recall_text": rt,
        "status": st, "note": "", "recall_turn_ids": "", "recall_dialogue": rt, "linked_segment_ids": link}
        for sid, tid, part, no, v, ws, we, ids, c, rt, st, link in segs])
    alignment = pd.DataFrame([
        {"transcript_id": "D01_S3_ipr-client", "case": "D01", "session": "S3", "participant": "client", "stops": 3,
         "aligned": 2, "not_aligned": "1 time_out_of_range", "notes": ""},
        {"transcript_id": "D01_S3_ipr-therapist", "case": "D01", "session": "S3", "participant": "therapist",
         "stops": 1, "aligned": 1, "not_aligned": "", "notes": ""}])

    def code(unit_type, unit_id, code_id, coder="auto", evidence=""):
        return {"unit_type": unit_type, "unit_id": unit_id, "code_id": code_id, "coder": coder,
                "rule_id": "r1" if coder == "auto" else "", "evidence": evidence, "start_char": 0, "end_char": 0}

    t = f"{SESSION}#"
    codes = pd.DataFrame([
        code("turn", t + "2", "rupture.withdrawal.minimal_response", evidence="Fine."),
        code("turn", t + "2", "rupture.withdrawal.minimal_response", evidence="Fine."),  # a second match: 1 unit
        code("turn", t + "3", "resolution.validate", evidence="makes sense"),
        code("turn", t + "4", "rupture.withdrawal.minimal_response", evidence="I guess."),
        code("turn", t + "5", "resolution.rationale", evidence="explain why"),
        code("turn", t + "6", "rupture.confrontation.complaint_therapist", evidence="never listen"),
        code("turn", t + "8", "rupture.withdrawal.minimal_response", evidence="whatever"),
        code("turn", t + "8", "rupture.withdrawal.denial", evidence="Fine"),
        code("turn", t + "9", "resolution.validate", evidence="that is fine"),
        code("segment", "D01_S3_ipr-client@0:00:25", "recall.rupture.unheard", evidence="felt unheard"),
        code("segment", "D01_S3_ipr-therapist@0:00:30", "recall.awareness.at_the_time", evidence="at the time"),
        # two coders: they agree on turn 6 and on the client's recall, disagree on turn 2
        code("turn", t + "6", "rupture.confrontation.complaint_therapist", "coder_a"),
        code("turn", t + "6", "rupture.confrontation.complaint_therapist", "coder_b"),
        code("turn", t + "7", "resolution.rationale", "coder_a"),
        code("turn", t + "2", "rupture.withdrawal.minimal_response", "coder_a"),
        code("segment", "D01_S3_ipr-client@0:00:25", "recall.rupture.unheard", "coder_a"),
        code("segment", "D01_S3_ipr-client@0:00:25", "recall.rupture.unheard", "coder_b"),
    ])
    return {"turns": turns, "segments": segments, "alignment": alignment, "codes": codes}


def make_audit(inputs=True, warnings=("data/raw/D01_S3_ipr-client.txt, line 9: stop 3 at 1:30:00 is outside",)):
    return {"software": "ipr-pipeline 0.1.0, Python 3.11", "codebook": "Rupture and repair (test), version 1.2",
            "settings": {"window_s": 60.0, "repair_window_s": 300.0, "coders": ["coder_a", "coder_b"],
                         "blind coding": False},
            "started": "2025-01-01T10:00:00+00:00",
            "inputs": [{"file": f"data/raw/{t}.txt", "transcript_id": t, "kind": k, "sha256": "0f" * 32}
                       for t, k in [(SESSION, "session"), ("D01_S3_ipr-client", "ipr"),
                                    ("D01_S3_ipr-therapist", "ipr")]] if inputs else [],
            "warnings": list(warnings)}


# --- reading the docx back ------------------------------------------------------------------------------------

def body(doc):
    """The document in order: ("p", style, text) and ("t", table) items."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    items = []
    for el in doc.element.body.iterchildren():
        if el.tag.endswith("}p"):
            p = Paragraph(el, doc)
            items.append(("p", p.style.name, p.text))
        elif el.tag.endswith("}tbl"):
            items.append(("t", Table(el, doc)))
    return items


def captioned_tables(doc) -> dict[str, list[list[str]]]:
    """Tables by their sheet name, from the caption ``Table N. ... [sheet: NAME]`` just before them."""
    out, caption = {}, None
    for item in body(doc):
        if item[0] == "p" and item[1] == "Caption" and "[sheet:" in item[2]:
            caption = item[2].split("[sheet: ")[1].rstrip("]")
        elif item[0] == "t" and caption:
            out[caption] = [[c.text for c in row.cells] for row in item[1].rows]
            caption = None
    return out


def headings(doc) -> list[str]:
    return [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]


def shown(df: pd.DataFrame, name: str) -> list[list[str]]:
    """What the docx should show of a table: header and cells, without the spreadsheet-only columns, long texts
    cut, repeated group labels shown once."""
    return docx_cells(df, name)


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "study"
    (root / "data" / "interim").mkdir(parents=True)
    return Study(root, Settings(coders=["coder_a", "coder_b"]))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report for every test that only reads it."""
    root = tmp_path_factory.mktemp("report") / "study"
    (root / "data" / "interim").mkdir(parents=True)
    study = Study(root, Settings(coders=["coder_a", "coder_b"]))
    tables = make_tables()
    path = build_report(study, make_codebook(), tables, make_audit(), now=NOW)
    data = report_tables(study, make_codebook(), tables, make_audit(), now=NOW)
    return study, path, Document(path), data.tables


# --- the tests --------------------------------------------------------------------------------------------------

def test_the_report_has_every_section(report):
    """The body, then what grows with the study in appendices, each named where the body reports on it."""
    _, _, doc, _ = report
    h = headings(doc)
    body = ["At a glance", "Overview", "Alignment quality", "Code frequencies", "Rupture → repair sequences",
            "Both sides of a moment", "Exemplars", "Agreement between coders", "Methods and audit trail"]
    appendices = ["Appendix A. Each rupture marker and its repair", "Appendix B. Ruptures per 5-minute segment",
                  "Appendix C. Timelines", "Appendix D. Both sides of each moment"]
    for section in body + appendices + ["Input files", "Warnings of the run"]:
        assert section in h, section
    at = [h.index(s) for s in body + appendices]
    assert at == sorted(at)
    texts = [p.text for p in doc.paragraphs]
    assert ("In the appendices: each rupture marker with the resolution strategy that followed it (Appendix A), the "
            "ruptures of each session per 5-minute segment, as the 3RS counts them (Appendix B) and a timeline of "
            "each session (Appendix C).") in texts
    assert ("In the appendices: the two recalls of each moment side by side, with the session excerpt (Appendix "
            "D).") in texts
    assert next(i for i, t in enumerate(h) if t.startswith("Moment 1: ")) > h.index(appendices[3])


def test_every_table_repeats_its_header_row_on_each_page(report):
    """Written as Word writes it (a bare ``w:tblHeader``): a long table stays readable on its later pages."""
    from docx.oxml.ns import qn

    _, _, doc, _ = report
    assert len(doc.tables) > 10
    for table in doc.tables:
        marks = table.rows[0]._tr.findall(f"{qn('w:trPr')}/{qn('w:tblHeader')}")
        assert len(marks) == 1 and marks[0].get(qn("w:val")) is None, table.rows[0].cells[0].text
        assert not any(r._tr.findall(f"{qn('w:trPr')}/{qn('w:tblHeader')}") for r in table.rows[1:])


def test_every_docx_table_equals_its_source_table(report):
    _, _, doc, tables = report
    in_doc = captioned_tables(doc)
    expected = {"Overview", "Transcripts", "Alignment", "Codes by family", "Codes by code", "Codes by role",
                "Codes by case and session", "Repair summary", "Rupture sequences", "Ruptures per 5 minutes",
                "Both sides", "Run", "Settings", "Inputs"}
    assert expected <= set(in_doc)
    for name in in_doc:
        assert in_doc[name] == shown(tables[name], name), name


def test_overview_counts(report):
    _, _, _, tables = report
    ov = dict(zip(tables["Overview"]["what"], tables["Overview"]["count"], strict=True))
    turns = make_tables()["turns"]
    words = sum(len(t.split()) for t in turns["text"])
    assert ov["cases"] == 1 and ov["sessions"] == 1 and ov["IPR interviews"] == 2 and ov["turns"] == len(turns)
    assert ov["words"] == words and ov["pages (350 words a page)"] == round(words / 350, 1)


def test_alignment_table_says_why_not(report):
    _, _, _, tables = report
    al = tables["Alignment"]
    client = al[al["participant"] == "client"].iloc[0]
    assert (client["stops"], client["aligned"], client["aligned %"]) == (3, 2, "67%")
    assert client["not aligned (why)"] == "1 time out of range"
    assert al.iloc[-1]["case"] == "(all)" and al.iloc[-1]["stops"] == 4


def test_code_frequencies_count_units_per_source_with_consensus(report):
    _, _, _, tables = report
    by_code = tables["Codes by code"].set_index("code_id")
    assert list(by_code.columns[-4:]) == ["auto", "coder_a", "coder_b", "consensus"]
    # two matches in one unit count once
    assert by_code.loc["rupture.withdrawal.minimal_response", "auto"] == 3
    assert by_code.loc["rupture.withdrawal.minimal_response", "name"] == "Minimal response"
    assert by_code.loc["rupture.confrontation.complaint_therapist", "consensus"] == 1
    assert by_code.loc["rupture.withdrawal.minimal_response", "consensus"] == 1  # t2: coder_a alone coded it
    assert by_code.loc["recall.rupture.unheard", "consensus"] == 1
    # codebook order, not alphabetical
    assert list(by_code.index[:2]) == ["rupture.withdrawal.minimal_response", "rupture.withdrawal.denial"]
    fam = tables["Codes by family"].set_index("family")
    assert fam.loc["resolution", "auto"] == 3 and fam.loc["resolution", "name"] == "Resolution strategies"
    role = tables["Codes by role"]
    auto_w = role[(role["coded by"] == "auto") & (role["family"] == "rupture.withdrawal")].iloc[0]
    assert auto_w["client turn"] == 4 and auto_w["therapist turn"] == 0 and auto_w["all"] == 4
    cs = tables["Codes by case and session"]
    assert list(cs.columns) == ["coded by", "case", "session", "withdrawal", "confrontation", "resolution",
                                "recalled strain", "awareness", "all"]
    a = cs[cs["coded by"] == "coder_a"].iloc[0]
    assert (a["case"], a["session"], a["resolution"], a["withdrawal"], a["all"]) == ("D01", "S3", 1, 1, 4)


def test_rupture_sequences_in_the_report(report):
    _, _, _, tables = report
    s = tables["Rupture sequences"]
    auto = s[s["coded by"] == "auto"]
    assert list(auto["rupture at"]) == ["0:00:20", "0:01:35", "0:06:40", "0:13:20"]
    assert list(auto["repair at"]) == ["0:00:40", "0:02:10", "", "0:14:00"]
    assert list(auto["time to repair"]) == ["0:00:20", "0:00:35", "", "0:00:40"]
    assert list(auto["outcome"]) == ["repaired", "repaired", "no repair in window", "repaired"]
    assert auto.iloc[0]["rupture markers"] == "Minimal response"
    assert auto.iloc[0]["rupture codes"] == "rupture.withdrawal.minimal_response"
    assert auto.iloc[3]["rupture markers"] == "Minimal response; Denial" or auto.iloc[3]["rupture markers"] == (
        "Denial; Minimal response")
    assert auto.iloc[0]["resolution strategy"] == "Validating the defensive posture"
    cons = s[s["coded by"] == "consensus"]
    # t2 (coder_a alone coded it) has no repair; t6 (both coders) was repaired by t7's rationale (coder_a's alone)
    assert list(cons["outcome"]) == ["no repair in window", "repaired"]
    summary = tables["Repair summary"]
    a = summary[summary["coded by"] == "auto"].iloc[0]
    assert (a["ruptures"], a["repaired"], a["resolution rate"], a["median time to repair"]) == (4, 3, "75%",
                                                                                              "0:00:35")
    per = tables["Ruptures per 5 minutes"]
    per = per[per["coded by"] == "auto"]
    assert list(per["ruptures"]) == [2, 1, 1]
    assert list(per["5-minute segment"]) == ["1: 0:00:00–0:05:00", "2: 0:05:00–0:10:00", "3: 0:10:00–0:14:00"]


def test_both_sides_side_by_side(report):
    _, _, doc, tables = report
    both = tables["Both sides"]
    assert len(both) == 1
    r = both.iloc[0]
    assert (r["client noticed"], r["therapist noticed"], r["both noticed"]) == ("yes", "yes", "yes")
    assert r["client stop"] == "0:00:25" and r["therapist stop"] == "0:00:30" and r["moment"] == "0:00:00–0:00:25"
    assert r["therapist awareness"] == "Noticed at the time"
    assert (r["client codes by"], r["therapist codes by"]) == ("consensus", "auto")
    pairs = [t for t in doc.tables if t.rows[0].cells[0].text.startswith("Client (video")]
    assert len(pairs) == 1
    assert [[c.text for c in row.cells] for row in pairs[0].rows] == [list(x) for x in pair_rows(r.to_dict())]
    assert "I felt unheard" in pairs[0].rows[1].cells[0].text
    assert "Felt unheard (recall.rupture.unheard)" in pairs[0].rows[2].cells[0].text


def test_exemplars_show_recall_with_context_and_video_time(report):
    _, _, doc, tables = report
    ex = tables["Exemplars"]
    unheard = ex[ex["code_id"] == "recall.rupture.unheard"].iloc[0]
    assert unheard["coded by"] == "consensus"  # consensus first
    assert (unheard["case"], unheard["participant"], unheard["video time"]) == ("D01", "client", "0:00:25")
    assert "Fine." in unheard["session excerpt"]
    # a session turn's exemplar carries the recall about it
    mr = ex[ex["code_id"] == "rupture.withdrawal.minimal_response"].iloc[0]
    assert mr["unit"] == "client turn" and mr["recall"].startswith("I felt unheard")
    assert mr["video time"] == "0:00:25"
    texts = [p.text for p in doc.paragraphs]
    for code_id, name in ex[["code_id", "name"]].drop_duplicates().itertuples(index=False):
        assert f"{name} ({code_id})" in texts
    assert any("Case D01, session S3, client recall, video 0:00:25" in t for t in texts)
    assert (ex.groupby("code_id").size() <= 2).all()


def test_figures_are_embedded_and_saved(report):
    study, _, doc, _ = report
    pngs = sorted(p.name for p in (study.reports / "figures").glob("*.png"))
    assert pngs == ["code_frequencies_recall.png", "code_frequencies_resolution.png",
                    "code_frequencies_rupture.png", "timeline_D01_S3.png"]
    assert len(doc.inline_shapes) == len(pngs)
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption" and p.text.startswith("Figure")]
    assert len(captions) == 4
    assert "Coded units per code: rupture markers (session turns), by source" in captions[0]
    # every image fits a page
    assert all(shape.height.cm <= 21.01 and shape.width.cm <= 16.01 for shape in doc.inline_shapes)


def test_the_pictures_are_stored_as_the_pngs_they_are(report):
    """Not compressed a second time (the rest of the package is)."""
    import zipfile

    study, path, doc, _ = report
    with zipfile.ZipFile(path) as z:
        media = [i for i in z.infolist() if i.filename.startswith("word/media/")]
        assert len(media) == 4 and all(i.compress_type == zipfile.ZIP_STORED for i in media)
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist() if i not in media)
        pngs = sorted(p.read_bytes() for p in (study.reports / "figures").glob("*.png"))
        assert sorted(z.read(i) for i in media) == pngs
    from docx.opc import pkgwriter

    assert pkgwriter.PhysPkgWriter.__name__ == "PhysPkgWriter"  # python-docx's own writer, once the report is saved


def test_tables_xlsx_has_every_table(report):
    study, _, _, tables = report
    wb = load_workbook(study.reports / "tables.xlsx", read_only=True)
    assert set(wb.sheetnames) == {name[:31] for name in tables}
    for name, df in tables.items():
        rows = list(wb[name[:31]].iter_rows(values_only=True))
        assert list(rows[0]) == list(df.columns)
        assert len(rows) - 1 == len(df), name
    seq = list(wb["Rupture sequences"].iter_rows(values_only=True))
    assert seq[1][seq[0].index("client said")] == "Fine."


def test_long_text_columns_of_tables_xlsx_are_wide_and_wrapped(report):
    study, _, _, tables = report
    book = load_workbook(study.reports / "tables.xlsx")
    long_columns = 0
    for name, df in tables.items():
        sheet = book[name[:31]]
        for i, column in enumerate(df.columns, 1):
            long = df[column].astype(str).str.len().max() > 60 and not pd.api.types.is_numeric_dtype(df[column])
            letter = sheet.cell(1, i).column_letter
            assert (sheet.column_dimensions[letter].width == 50) == long, (name, column)
            if len(df):
                assert bool(sheet.cell(2, i).alignment.wrap_text) == long, (name, column)
            long_columns += long
    assert long_columns >= 3  # quotes, recalls, warnings


def test_audit_trail_lists_inputs_with_sha256_and_warnings(report):
    _, _, doc, tables = report
    inputs = captioned_tables(doc)["Inputs"]
    assert inputs[0] == ["file", "kind", "sha256"] and len(inputs) == 4
    assert [r[2] for r in inputs[1:]] == [i["sha256"] for i in make_audit()["inputs"]]
    texts = [p.text for p in doc.paragraphs]
    assert any("outside" in t for t in texts)
    run = dict(zip(tables["Run"]["what"], tables["Run"]["value"], strict=True))
    assert run["codebook"].startswith("Rupture and repair")
    assert run["pipeline run started (UTC)"].startswith("2025")


def test_agreement_is_read_when_present(study):
    pd.DataFrame([{"code_id": "recall.rupture.unheard", "units": 3, "coders": 2, "percent_agreement": 100.0,
                   "cohen_kappa": 1.0, "krippendorff_alpha": 1.0, "positive_agreement": 1.0},
                  {"code_id": "(all codes)", "units": 3, "coders": 2, "percent_agreement": 66.7,
                   "cohen_kappa": 0.4, "krippendorff_alpha": 0.41, "positive_agreement": 0.5}]
                 ).to_parquet(study.interim / "agreement.parquet")
    pd.DataFrame([{"coder": "coder_a", "code_id": "recall.rupture.unheard", "units": 3, "suggested": 1, "coded": 1,
                   "both": 1, "precision": 1.0, "recall": 1.0},
                  {"coder": "coder_a", "code_id": "(all codes)", "units": 3, "suggested": 4, "coded": 3,
                   "both": 2, "precision": 0.5, "recall": 2 / 3}]).to_parquet(
        study.interim / "suggestions_vs_coders.parquet")
    doc = Document(build_report(study, make_codebook(), make_tables(), make_audit()))
    versus = captioned_tables(doc)["Suggestions vs coders, all"]
    assert versus == [["coder", "units", "suggested", "coded", "both", "precision", "recall"],
                      ["coder_a", "3", "4", "3", "2", "0.50", "0.67"]]
    wb = load_workbook(study.reports / "tables.xlsx", read_only=True)
    assert len(list(wb["Suggestions vs coders"].iter_rows())) == 3
    ag = captioned_tables(doc)["Agreement"]
    # the code's name above its ID, in one column
    assert ag[0][:3] == ["code", "units", "coders"] and ag[1][0] == "Felt unheard\nrecall.rupture.unheard"
    assert ag[2][0] == "(all codes)" and ag[2][3] == "67%" and ag[2][4] == "0.40"
    assert ag[0][-1] == "Gwet's AC1" and ag[2][-1] == ""  # (a table made before AC1 was computed)


def test_agreement_missing_is_said_plainly(report):
    _, _, doc, _ = report
    texts = [p.text for p in doc.paragraphs]
    assert any("agreement has not been computed yet" in t for t in texts)


def _empty_tables():
    t = make_tables()
    return {"turns": t["turns"], "segments": t["segments"].iloc[0:0], "alignment": t["alignment"].iloc[0:0],
            "codes": t["codes"].iloc[0:0]}


def test_a_study_with_nothing_coded_or_aligned_still_reads(study):
    study.settings.coders = []
    tables = _empty_tables()
    doc = Document(build_report(study, make_codebook(), tables, make_audit(inputs=False, warnings=()), now=NOW))
    texts = " ".join(p.text for p in doc.paragraphs)
    assert "No IPR interviews were found, so nothing was aligned." in texts
    assert "No codes were applied" in texts
    assert "No rupture marker was found in any session" in texts
    assert "No coder has coded yet" in texts
    assert "no moments to compare" in texts
    assert "no exemplars yet" in texts
    assert "None." in texts
    assert len(doc.inline_shapes) == 1  # the timeline of the session, empty but with its clock
    # no sequences, no moments: their appendices are left out, and the letters follow on
    assert [t for t in headings(doc) if t.startswith("Appendix")] == [
        "Appendix A. Ruptures per 5-minute segment", "Appendix B. Timelines"]
    assert ("In the appendices: the ruptures of each session per 5-minute segment, as the 3RS counts them "
            "(Appendix A) and a timeline of each session (Appendix B).") in [p.text for p in doc.paragraphs]
    assert captioned_tables(doc)["Repair summary"][1][:5] == ["auto", "D01", "S3", "0", "0"]
    assert "Codes by code" not in captioned_tables(doc)  # an empty table is left out; the text says why
    data = report_tables(study, make_codebook(), tables, make_audit(inputs=False, warnings=()), now=NOW)
    for name, df in captioned_tables(doc).items():
        assert df == shown(data.tables[name], name), name


def test_stops_that_do_not_align_are_reported(study):
    tables = make_tables()
    seg = tables["segments"].assign(status="no_session_transcript", linked_segment_ids="", context_text="",
                                    window_start_s=np.nan, window_end_s=np.nan)
    tables["segments"] = seg
    doc = Document(build_report(study, make_codebook(), tables, make_audit()))
    texts = " ".join(p.text for p in doc.paragraphs)
    assert "Nothing was aligned" in texts and "0 of 4 stops were aligned" in texts


def test_stale_figures_are_removed(study):
    tables = make_tables()
    build_report(study, make_codebook(), tables, make_audit())
    stale = study.reports / "figures" / "timeline_D09_S1.png"
    stale.write_bytes(b"old")
    mine = study.reports / "figures" / "my_own_plot.png"
    mine.write_bytes(b"keep")
    build_report(study, make_codebook(), tables, make_audit())
    assert not stale.exists() and mine.exists()


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_the_report_converts_to_pdf(report, tmp_path):
    _, path, _, _ = report
    out = tmp_path / "pdf"
    result = subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
                             "--convert-to", "pdf", "--outdir", str(out), str(path)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    pdf = out / "summary.pdf"
    assert pdf.exists() and pdf.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        assert pages >= 3


def test_docx_shows_group_labels_once_and_hides_spreadsheet_columns(report):
    _, _, doc, tables = report
    seq = captioned_tables(doc)["Rupture sequences"]
    header = seq[0]
    for hidden in DOCX_HIDDEN["Rupture sequences"]:
        assert hidden not in header
    assert "rupture_turn_id" in tables["Rupture sequences"].columns
    assert seq[1][:3] == ["auto", "D01", "S3"] and seq[2][:3] == ["", "", ""]
    assert seq[5][:3] == ["consensus", "D01", "S3"]  # a new group shows its labels again
    long = pd.DataFrame({"coded by": ["auto"], "text": ["word " * 200]})
    assert docx_cells(long, "x")[1][1].endswith("…") and len(docx_cells(long, "x")[1][1]) == 600
    assert cell_text(3.0) == "3" and cell_text(float("nan")) == "" and cell_text(None) == ""


def test_merged_excerpts_keep_session_order_and_each_line_once():
    from pipeline.summaries import merge_excerpts, noticed

    a = "[0:00:10] T: one\n[0:00:20] C: two"
    b = "[0:00:20] C: two\n[0:00:30] T: three\n[1:00:05] C: late"
    merged = "[0:00:10] T: one\n[0:00:20] C: two\n[0:00:30] T: three\n[1:00:05] C: late"
    assert merge_excerpts(b, a, None) == merged
    assert noticed(["recall.awareness.noticed_on_replay"], "therapist")
    assert not noticed(["recall.awareness.not_noticed"], "therapist")
    assert not noticed(["recall.awareness.noticed_at_time"], "client")
    assert noticed(["recall.rupture.hurt"], "client") and not noticed(["recall.repair.relief"], "client")


def test_a_long_table_shows_its_first_rows_and_says_where_the_rest_is(study, monkeypatch):
    import pipeline.word

    monkeypatch.setattr(pipeline.word, "DOCX_MAX_ROWS", 2)
    doc = Document(build_report(study, make_codebook(), make_tables(), make_audit(), now=NOW))
    data = report_tables(study, make_codebook(), make_tables(), make_audit(), now=NOW)
    seq = captioned_tables(doc)["Rupture sequences"]
    assert seq == shown(data.tables["Rupture sequences"], "Rupture sequences")[:3]
    texts = [p.text for p in doc.paragraphs]
    assert "The first 2 of 6 rows; all of them are in the sheet 'Rupture sequences' of reports/tables.xlsx." in texts
    wb = load_workbook(study.reports / "tables.xlsx", read_only=True)
    assert len(list(wb["Rupture sequences"].iter_rows())) == 7


def test_the_consensus_is_what_two_coders_gave_or_the_one_coders_codes():
    """A study that double-codes a part for reliability and single-codes the rest: on a unit one coder coded,
    the consensus is that coder's codes; on a unit two coded, the codes both gave (a memo alone counts as coding
    it, with no code); on a unit the consensus coder coded, its codes."""
    def row(unit, code, coder):
        return {"unit_type": "turn", "unit_id": unit, "code_id": code, "coder": coder, "rule_id": "",
                "evidence": "", "start_char": -1, "end_char": -1}

    codes = pd.DataFrame([row("t1", "x", "coder_a"), row("t1", "x", "coder_b"), row("t1", "y", "coder_b"),
                          row("t2", "x", "coder_a"), row("t3", "y", "coder_a"), row("t4", "x", "coder_a"),
                          row("t4", "x", "coder_b"), row("t4", "y", "consensus")])
    coded = pd.DataFrame({"coder": ["coder_a", "coder_b", "coder_a", "coder_a", "coder_b", "coder_a", "coder_b",
                                    "consensus", "consensus"],
                          "unit_id": ["t1", "t1", "t2", "t3", "t3", "t4", "t4", "t4", "t5"]})
    made = with_consensus(codes, coded)
    agreed = made[made["coder"] == "consensus"]
    assert sorted(zip(agreed["unit_id"], agreed["code_id"], agreed["rule_id"], strict=True)) == [
        ("t1", "x", COMPUTED), ("t2", "x", SINGLE), ("t4", "y", "")]  # t3: coder_b's memo said no code
    assert consensus_made_of(made) == (
        "per unit, the consensus coder's codes where it coded the unit (data/coded/consensus/); the codes two or more "
        "coders gave it where two or more coded it; the coder's codes where one coder coded it")
    assert with_consensus(made, coded) is made  # made once
    without = with_consensus(codes)  # who coded t3 told by the codes alone: coder_a
    assert ("t3", "y") in set(zip(without.loc[without["coder"] == "consensus", "unit_id"],
                                  without.loc[without["coder"] == "consensus", "code_id"], strict=True))


def test_a_recalls_codes_are_the_consensus_coders_where_it_coded_the_recall():
    import pandas as pd

    from pipeline.summaries import recall_codes, recall_codes_by_unit

    def row(unit, code, coder):
        return {"unit_type": "segment", "unit_id": unit, "code_id": code, "coder": coder}
    codes = pd.DataFrame([row("s1", "recall.rupture.hurt", "auto"), row("s1", "recall.repair.relief", "consensus"),
                          row("s1", "recall.rupture.hurt", "ann"),
                          row("s2", "recall.rupture.hurt", "auto"), row("s2", "recall.rupture.judged", "ann"),
                          row("s3", "recall.rupture.hurt", "ann"), row("s3", "recall.rupture.hurt", "bob")])
    assert recall_codes(codes, "s1") == (["recall.repair.relief"], "consensus")  # the consensus coder's
    assert recall_codes(codes, "s2") == (["recall.rupture.hurt"], "auto")  # one coder: the suggestions
    assert recall_codes(codes, "s3") == ([], "consensus")  # two coders, no consensus row: none agreed on
    assert recall_codes_by_unit(codes) == {u: recall_codes(codes, u) for u in ("s1", "s2", "s3")}
