"""The whole pipeline on the demo study, as `make analyze` runs it."""

import csv

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REPO, copy_demo
from docx import Document
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.timecode import parse_time

DESIGN_COLUMNS = {
    "turns": ["transcript_id", "case", "session", "kind", "participant", "turn_id", "seq", "speaker", "role",
              "start_s", "end_s", "text", "source_file", "source_line"],
    "stops": ["transcript_id", "stop_no", "video_s", "session_s", "source_line"],
    "segments": ["segment_id", "transcript_id", "case", "session", "participant", "stop_no", "video_s",
                 "session_s", "session_transcript_id", "window_start_s", "window_end_s", "session_turn_ids",
                 "context_text", "recall_text", "status"],
    "codes": ["unit_type", "unit_id", "code_id", "coder", "rule_id", "evidence", "start_char", "end_char"],
}


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):

    root = tmp_path_factory.mktemp("e2e") / "study"
    copy_demo(root)
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    tables = {name: pd.read_parquet(root / "data" / "interim" / f"{name}.parquet") for name in DESIGN_COLUMNS}
    return root, tables, result.output


def test_tables_have_the_contract_columns(analyzed):
    _, tables, _ = analyzed
    for name, columns in DESIGN_COLUMNS.items():
        assert list(tables[name].columns[: len(columns)]) == columns, name


def test_every_demo_transcript_is_read_with_roles(analyzed):
    _, tables, _ = analyzed
    turns = tables["turns"]
    assert turns["transcript_id"].nunique() == 6
    assert not (turns["role"] == "unknown").any()
    session = turns[turns["kind"] == "session"]
    assert set(session["role"]) == {"therapist", "client"}
    ipr = turns[turns["transcript_id"] == "D02_S5_ipr-therapist"]
    assert set(ipr["role"]) == {"interviewer", "therapist"}
    assert session["start_s"].notna().all()


def _expected():
    with open(REPO / "tests" / "data" / "demo_expected.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("row", _expected(), ids=lambda r: f"{r['file']}#{r['stop_no']}")
def test_each_demo_stop_aligns_with_the_turn_it_is_about(analyzed, row):
    _, tables, _ = analyzed
    tid = row["file"].rsplit(".", 1)[0]
    segs = tables["segments"]
    seg = segs[(segs["transcript_id"] == tid) & (segs["stop_no"] == int(row["stop_no"]))]
    assert len(seg) == 1
    seg = seg.iloc[0]
    assert seg["status"] == "aligned"
    assert seg["video_s"] == parse_time(row["video_time"])
    turns = tables["turns"].set_index("turn_id")
    on_screen = turns.loc[seg["session_turn_ids"].split(";")[-1]]
    assert on_screen["text"].startswith(row["on_screen_text_start"].rstrip())
    assert abs(on_screen["start_s"] - parse_time(row["on_screen_turn_start"])) < 0.01
    assert seg["recall_text"].strip()


def test_planted_moments_are_coded(analyzed):
    _, tables, _ = analyzed
    codes = tables["codes"]
    auto = codes[codes["coder"] == "auto"]
    turns = tables["turns"].set_index("turn_id")
    segs = tables["segments"]
    found = 0
    planted = 0
    for row in _expected():
        if not row["families"]:
            continue
        tid = row["file"].rsplit(".", 1)[0]
        seg = segs[(segs["transcript_id"] == tid) & (segs["stop_no"] == int(row["stop_no"]))].iloc[0]
        window = seg["session_turn_ids"].split(";")[-2:]  # the turn on screen and the one before it
        coded = auto[auto["unit_id"].isin(window)]["code_id"]
        for fam in row["families"].split(";"):
            planted += 1
            found += any(c.startswith(fam) for c in coded)
    assert planted and found / planted >= 0.8, f"{found} of {planted} planted moments coded"
    assert not auto[auto["unit_type"] == "segment"].empty
    families = {c.split(".")[0] for c in auto["code_id"]}
    assert {"rupture", "resolution", "recall"} <= families
    assert (auto["evidence"].str.len() > 0).all()
    for r in auto[auto["unit_type"] == "turn"].itertuples():
        text = turns.loc[r.unit_id, "text"]
        assert text[r.start_char: r.end_char] == r.evidence


def test_workbooks_open_with_the_design_sheets(analyzed):
    root, tables, _ = analyzed
    for coder in ("coder_a", "coder_b"):
        wb = load_workbook(root / "data" / "coded" / coder / "D01_S3_ipr-client.xlsx")
        assert wb.sheetnames[:3] == ["Segments", "Codebook", "How to code"]
        header = [c.value for c in wb["Segments"][1]]
        for col in ("unit_id", "suggested codes", "code 1", "code 2", "code 3", "memo"):
            assert col in header
        ids = [r[0].value for r in wb["Segments"].iter_rows(min_row=2)]
        assert ids == list(tables["segments"].query("transcript_id == 'D01_S3_ipr-client'")["segment_id"])
        wb = load_workbook(root / "data" / "coded" / coder / "D02_S5_session.xlsx")
        assert wb.sheetnames[0] == "Turns"


def test_report_opens_with_a_code_frequency_table(analyzed):
    root, tables, _ = analyzed
    doc = Document(root / "reports" / "summary.docx")
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert "Code frequencies" in headings
    assert any(t.rows[0].cells[0].text == "code_id" for t in doc.tables)
    assert (root / "reports" / "tables.xlsx").exists()


def test_second_run_keeps_workbooks_untouched(analyzed):
    root, _, _ = analyzed
    wb = root / "data" / "coded" / "coder_a" / "D01_S3_session.xlsx"
    before = wb.stat().st_mtime_ns
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    assert wb.stat().st_mtime_ns == before
