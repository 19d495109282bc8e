"""The coding history (data/coded/history.csv): each code a coder gave or took back and each memo, with when the
workbook was saved; appended, never rewritten; told against the history itself, so that deleting data/interim/
neither loses nor repeats a change; a unit edited in its transcript moves, its codes not given again."""

import os
import shutil
from datetime import UTC, datetime

import pandas as pd
from click.testing import CliRunner
from conftest import copy_demo
from docx import Document
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.history import COLUMNS, changes, replay

X, Y = "rupture.withdrawal.denial", "rupture.confrontation.rejecting_intervention"
SESSION = "D01_S3_session"


def _state(codes, memo, unit_type="turn"):
    return {"codes": codes, "memo": memo, "transcript_id": "T1", "unit_type": unit_type}


def _rows(before, after, edited=None):
    return pd.DataFrame(changes(before, after, edited or {}, "2026-01-01 10:00:00", lambda *a: "2026-01-01 09:00:00"),
                        columns=COLUMNS)


def test_each_change_is_a_row():
    before = {("a", "u1"): _state([X], "hm"), ("a", "u2"): _state([X, Y], "")}
    after = {("a", "u1"): _state([Y], ""), ("a", "u2"): _state([X, Y], "later"), ("b", "u1"): _state([X], "")}
    rows = _rows(before, after)
    assert sorted(zip(rows["coder"], rows["unit_id"], rows["change"], rows["code_id"], rows["memo"], strict=True)) == [
        ("a", "u1", "code given", Y, ""), ("a", "u1", "code taken back", X, ""), ("a", "u1", "memo deleted", "", "hm"),
        ("a", "u2", "memo written", "", "later"), ("b", "u1", "code given", X, "")]
    assert set(rows["read"]) == {"2026-01-01 10:00:00"} and set(rows["saved"]) == {"2026-01-01 09:00:00"}


def test_a_unit_edited_in_its_transcript_moves_with_its_codes():
    first = _rows({}, {("a", "old"): _state([X], "m")})
    rows = _rows(replay(first), {("a", "new"): _state([X], "m")}, {"old": "new"})
    assert rows[["unit_id", "change", "from_unit_id"]].values.tolist() == [["new", "unit edited", "old"]]
    assert replay(pd.concat([first, rows])) == {("a", "new"): _state([X], "m")}


states = st.dictionaries(st.tuples(st.sampled_from("ab"), st.sampled_from(["u1", "u2", "u3"])),
                         st.builds(_state, st.lists(st.sampled_from([X, Y, "c.z"]), unique=True),
                                   st.sampled_from(["", "memo", "other memo"])))


@settings(max_examples=200, deadline=None)
@given(st.lists(states, min_size=1, max_size=4))
def test_the_history_replayed_is_the_coding_as_it_stands(steps):
    """Whatever the coders do, run after run, the history replayed gives their codes and memos as they are."""
    history = pd.DataFrame(columns=COLUMNS)
    for after in steps:
        history = pd.concat([history, _rows(replay(history), after)], ignore_index=True)
        assert _sorted(replay(history)) == _sorted({k: v for k, v in after.items() if v["codes"] or v["memo"]})


def _sorted(state: dict) -> dict:
    """Codes as a set: the history records which codes a unit has, not in which cells."""
    return {k: {**v, "codes": sorted(v["codes"])} for k, v in state.items()}


def _invoke(root):
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    return result


def _set(path, row, codes, memo):
    wb = load_workbook(path)
    ws = wb["Turns"]
    head = [c.value for c in ws[1]]
    for i in range(1, 4):
        ws.cell(row, head.index(f"code {i}") + 1).value = codes[i - 1] if i <= len(codes) else None
    ws.cell(row, head.index("memo") + 1).value = memo or None
    wb.save(path)
    return ws.cell(row, 1).value


def test_the_runs_record_what_the_coders_changed(tmp_path):
    root = copy_demo(tmp_path / "study")
    _invoke(root)
    assert not (root / "data" / "coded" / "history.csv").exists()  # nothing coded, nothing to record
    book = root / "data" / "coded" / "coder_a" / f"{SESSION}.xlsx"
    unit = _set(book, 5, [X, Y], "she pulls back")
    os.utime(book, (1_700_000_000, 1_700_000_000))  # saved 2023-11-14 22:13:20 UTC
    _invoke(root)
    history = pd.read_csv(root / "data" / "coded" / "history.csv", dtype=str, keep_default_na=False)
    assert history[["coder", "transcript_id", "unit_type", "unit_id", "change", "code_id", "memo"]].values.tolist() == [
        ["coder_a", SESSION, "turn", unit, "code given", X, ""],
        ["coder_a", SESSION, "turn", unit, "code given", Y, ""],
        ["coder_a", SESSION, "turn", unit, "memo written", "", "she pulls back"]]
    assert set(history["saved"]) == {"2023-11-14 22:13:20"}
    read = datetime.strptime(history["read"].iloc[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - read).total_seconds()) < 600  # when the run read it

    _set(book, 5, [Y], "")  # the coder takes a code back and deletes the memo
    _invoke(root)
    history = pd.read_csv(root / "data" / "coded" / "history.csv", dtype=str, keep_default_na=False)
    assert history[["change", "code_id", "memo"]].values.tolist()[3:] == [
        ["code taken back", X, ""], ["memo deleted", "", "she pulls back"]]

    shutil.rmtree(root / "data" / "interim")  # the tables are gone: the history is neither lost nor repeated
    _invoke(root)
    assert len(pd.read_csv(root / "data" / "coded" / "history.csv")) == 5
    run = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Run")
    assert "5 changes by 1 coder, saved 2023-11-14 to " in run.loc[run["what"] == "coding history", "value"].item()


def test_a_turn_corrected_in_its_transcript_keeps_its_history(tmp_path):
    root = copy_demo(tmp_path / "study")
    _invoke(root)
    book = root / "data" / "coded" / "coder_a" / f"{SESSION}.xlsx"
    ws = load_workbook(book)["Turns"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 6).value and len(ws.cell(r, 6).value) > 40)
    words = ws.cell(row, 6).value
    unit = _set(book, row, [X], "")
    _invoke(root)
    raw = root / "data" / "raw" / f"{SESSION}.docx"
    document = Document(str(raw))
    paragraph = next(p for p in document.paragraphs if words[:30] in p.text)
    for run in paragraph.runs:
        run.text = run.text.replace(words[:10], words[:10].upper())
    document.save(str(raw))
    _invoke(root)
    history = pd.read_csv(root / "data" / "coded" / "history.csv", dtype=str, keep_default_na=False)
    assert history["change"].tolist() == ["code given", "unit edited"]
    assert history["from_unit_id"].iloc[1] == unit and history["unit_id"].iloc[1] != unit


def test_a_coder_no_longer_read_took_nothing_back(tmp_path):
    """A folder dropped from study.toml's coders (a pilot coder) is not read: its codes were not taken back."""
    root = copy_demo(tmp_path / "study")
    _invoke(root)
    _set(root / "data" / "coded" / "coder_b" / f"{SESSION}.xlsx", 5, [X], "")
    _invoke(root)
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace('coders = ["coder_a", "coder_b"]', 'coders = ["coder_a"]'))
    result = _invoke(root)
    assert "data/coded/coder_b" in result.output  # (the run says the folder is not read)
    history = pd.read_csv(root / "data" / "coded" / "history.csv")
    assert history["change"].tolist() == ["code given"]
