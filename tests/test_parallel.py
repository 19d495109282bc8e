"""Both cores: forked coding gives what one process gives; forked workers write whole workbooks."""

import pandas as pd
from click.testing import CliRunner
from openpyxl import load_workbook

import pipeline.coding
import pipeline.export
from pipeline.cli import main
from pipeline.codebook import load_codebook


def test_forked_coding_equals_one_process(demo_study, monkeypatch):
    assert CliRunner().invoke(main, ["ingest", "--study", str(demo_study)]).exit_code == 0
    assert CliRunner().invoke(main, ["align", "--study", str(demo_study)]).exit_code == 0
    interim = demo_study / "data" / "interim"
    turns, segments = pd.read_parquet(interim / "turns.parquet"), pd.read_parquet(interim / "segments.parquet")
    book = load_codebook(demo_study / "codebooks" / "rupture_repair.yaml")
    one = pipeline.coding.apply_codebook(book, turns, segments)
    monkeypatch.setattr(pipeline.coding, "PARALLEL_FROM", 1)
    two = pipeline.coding.apply_codebook(book, turns, segments)
    assert len(one) > 50
    pd.testing.assert_frame_equal(one, two)


def test_workbooks_written_by_forked_workers_hold_every_unit(demo_study, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline.export, "PARALLEL_FROM", 1)
    assert CliRunner().invoke(main, ["analyze", "--study", str(demo_study)]).exit_code == 0
    wb = load_workbook(demo_study / "data" / "coded" / "coder_b" / "D02_S5_session.xlsx")
    rows = list(wb["Turns"].iter_rows(values_only=True))
    turns = pd.read_parquet(demo_study / "data" / "interim" / "turns.parquet")
    assert [r[0] for r in rows[1:]] == list(turns[turns["transcript_id"] == "D02_S5_session"]["turn_id"])
