"""Coder workbooks on small tables: the layout coders get, and reading their work back without losing a cell."""

import json
import os
import zipfile
from datetime import date

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.codebook import Code, Codebook
from pipeline.export import BLIND_NOTE, export
from pipeline.readback import REMOVED_SHEET, coder_codes, lock_file, read_workbooks, workbook_path
from pipeline.study import Settings, Study

CODES = ["rupture.withdrawal.denial", "rupture.confrontation.complaint", "resolution.clarify",
         "recall.rupture.hurt"]


def small_codebook(digest="cb1") -> Codebook:
    return Codebook(title="Small", version="1.0", digest=digest, codes=[
        Code(CODES[0], "Denial", brief="Denies a feeling", definition="The client denies...",
             examples=["I'm fine"], units=("turn",), roles=("client",)),
        Code(CODES[1], "Complaint", brief="Complains", units=("turn",), roles=("client",)),
        Code(CODES[2], "Clarify", brief="Clarifies", units=("turn",), roles=("therapist",)),
        Code(CODES[3], "Hurt", brief="Felt hurt", units=("segment",)),
    ])


def session_turns(texts=None) -> pd.DataFrame:
    texts = texts or ["How are you?", "=I'm fine, really.", "You seem quiet.", "This is pointless."]
    rows = []
    for i, text in enumerate(texts, 1):
        role = "therapist" if i % 2 else "client"
        rows.append({"transcript_id": "D01_S1_session", "case": "D01", "session": "S1", "kind": "session",
                     "participant": None, "turn_id": f"D01_S1_session:{abs(hash(text)) % 10**8:08d}", "seq": i,
                     "speaker": "T" if role == "therapist" else "C", "role": role, "start_s": 10.0 * i,
                     "end_s": 10.0 * i + 5, "text": text, "source_file": "D01_S1_session.txt", "source_line": i})
    return pd.DataFrame(rows)


def segments() -> pd.DataFrame:
    return pd.DataFrame([{
        "segment_id": "D01_S1_ipr-client@0:00:30", "transcript_id": "D01_S1_ipr-client", "case": "D01",
        "session": "S1", "participant": "client", "stop_no": 1, "video_s": 30.0, "session_s": 30.0,
        "session_transcript_id": "D01_S1_session", "window_start_s": 0.0, "window_end_s": 30.0,
        "session_turn_ids": "", "context_text": "[0:00:20] C: =I'm fine, really.", "recall_text": "I felt hurt.",
        "recall_dialogue": "I: What was happening?\nC: I felt hurt.", "status": "aligned", "note": ""}])


def auto_codes(turns: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([
        {"unit_type": "turn", "unit_id": turns["turn_id"].iloc[1], "code_id": CODES[0], "coder": "auto",
         "rule_id": "r1", "evidence": "fine", "start_char": 5, "end_char": 9},
        {"unit_type": "segment", "unit_id": "D01_S1_ipr-client@0:00:30", "code_id": CODES[3], "coder": "auto",
         "rule_id": "r2", "evidence": "hurt", "start_char": 7, "end_char": 11},
    ])


class Demo:
    """A tiny study: one session, one IPR interview, two coders."""

    def __init__(self, root, blind=False):
        self.study = Study(root, Settings(coders=["alice", "bob"], blind=blind))
        self.codebook = small_codebook()
        self.turns = session_turns()
        self.segments = segments()

    def read(self):
        back = read_workbooks(self.study, self.codebook.ids())
        assert not back.problems, [str(p) for p in back.problems]
        return back.entries

    def export(self):
        entries = self.read()
        turns = pd.concat([self.turns, pd.DataFrame([{"transcript_id": "D01_S1_ipr-client", "kind": "ipr"}])],
                          ignore_index=True)
        kinds = dict(zip(turns["transcript_id"], turns["kind"], strict=True))
        return export(self.study, kinds, self.turns, self.segments, auto_codes(self.turns), self.codebook, entries)

    def path(self, coder, tid="D01_S1_session"):
        return workbook_path(self.study, coder, tid)


def header(ws, row=1):
    return [c.value for c in ws[row]]


def fill(path, sheet, values: dict, rows=None):
    """Write {column name: value} into the rows of ``unit_id``s (``rows``: unit_id -> dict) as a coder would."""
    wb = load_workbook(path)
    ws = wb[sheet]
    names = header(ws)
    for r in range(2, ws.max_row + 1):
        uid = ws.cell(r, 1).value
        for col, value in (rows or {}).get(uid, values if not rows else {}).items():
            if col not in names:
                names.append(col)
                ws.cell(1, len(names)).value = col
            ws.cell(r, names.index(col) + 1).value = value
    wb.save(path)


@pytest.fixture
def demo(tmp_path):
    d = Demo(tmp_path / "study")
    d.export()
    return d


def test_workbooks_have_the_design_sheets_and_columns(demo):
    wb = load_workbook(demo.path("alice"))
    assert wb.sheetnames == ["Turns", "Codebook", "How to code"]
    ws = wb["Turns"]
    assert header(ws) == ["unit_id", "#", "time", "speaker", "role", "text", "suggested codes", "evidence",
                          "code 1", "code 2", "code 3", "memo"]
    assert [c.value for c in ws["A"][1:]] == list(demo.turns["turn_id"])
    assert ws["G3"].value == CODES[0] and "fine" in ws["H3"].value
    assert ws["F3"].value == "=I'm fine, really." and ws["F3"].data_type == "s"
    seg = load_workbook(demo.path("bob", "D01_S1_ipr-client"))["Segments"]
    assert header(seg)[:9] == ["unit_id", "stop", "video time", "status", "session excerpt", "recall",
                               "suggested codes", "evidence", "note"]
    assert seg["C2"].value == "0:00:30" and seg["F2"].value.startswith("I: What was happening?")


def test_what_coders_like_frozen_header_filters_wrapping_widths_heights(demo):
    ws = load_workbook(demo.path("alice"))["Turns"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:L5"
    assert ws["F2"].alignment.wrap_text and ws["L2"].alignment.wrap_text
    assert ws.column_dimensions["F"].width == 70
    assert ws.column_dimensions["I"].width >= len(CODES[1])  # a code ID fits its drop-down column
    assert all(ws.row_dimensions[r].height for r in range(2, 6))
    assert ws.print_title_rows == "$1:$1"


def test_code_columns_are_drop_downs_of_the_codebook_sheet(demo):
    wb = load_workbook(demo.path("alice"))
    (dv,) = wb["Turns"].data_validations.dataValidation
    assert dv.type == "list"
    assert dv.formula1 == "Codebook!$A$2:$A$5"  # no leading "=": as Excel writes it
    assert str(dv.sqref) == "I2:K5"
    assert [c.value for c in wb["Codebook"]["A"][1:]] == CODES
    assert header(wb["Codebook"])[:4] == ["id", "name", "brief definition", "full definition"]
    how = [c.value for c in wb["How to code"]["A"] if c.value]
    assert how[0] == "How to code"
    assert any("counts as coded" in line for line in how)


def test_the_file_is_plain_valid_xlsx_without_formulas(demo):
    with zipfile.ZipFile(demo.path("alice")) as z:
        assert z.testzip() is None
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                xml = z.read(name).decode()
                assert "<f>" not in xml and "<f " not in xml, name
        assert "<formula1>Codebook!$A$2:$A$5</formula1>" in z.read("xl/worksheets/sheet1.xml").decode()


def test_blind_coding_hides_the_suggestions(tmp_path):
    d = Demo(tmp_path / "study", blind=True)
    d.export()
    for tid in ("D01_S1_session", "D01_S1_ipr-client"):
        wb = load_workbook(d.path("alice", tid))
        ws = wb.worksheets[0]
        col = header(ws).index("suggested codes") + 1
        assert {ws.cell(r, col).value for r in range(2, ws.max_row + 1)} == {BLIND_NOTE}
        assert any("blind" in (c.value or "") for c in wb["How to code"]["A"])
        with zipfile.ZipFile(d.path("alice", tid)) as z:
            sheet = z.read("xl/worksheets/sheet1.xml").decode()
        assert "fine</t>" not in sheet and "hurt</t>" not in sheet  # no evidence either
        assert CODES[0] not in sheet and CODES[3] not in sheet


def test_codes_memos_and_own_columns_come_back_however_the_sheet_was_rearranged(demo):
    t = list(demo.turns["turn_id"])
    path = demo.path("alice")
    wb = load_workbook(path)
    ws = wb["Turns"]
    names = header(ws)
    ws.cell(1, len(names) + 1).value = "my notes"
    ws.cell(1, len(names) + 2).value = "note"  # a name the Segments sheet uses, but not this one
    # sort by text, descending, as a coder might; then code
    body = sorted(([c.value for c in row] for row in ws.iter_rows(min_row=2)), key=lambda r: r[5], reverse=True)
    for r, values in enumerate(body, 2):
        for c, v in enumerate(values, 1):
            ws.cell(r, c).value = v
    row_of = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    ws.cell(row_of[t[1]], names.index("code 1") + 1).value = CODES[0]
    ws.cell(row_of[t[1]], names.index("code 2") + 1).value = CODES[1].upper()  # typed, in capitals
    ws.cell(row_of[t[1]], names.index("memo") + 1).value = "=not a formula, a memo"
    ws.cell(row_of[t[1]], names.index("memo") + 1).data_type = "s"
    ws.cell(row_of[t[3]], names.index("code 3") + 1).value = f"{CODES[1]}; {CODES[0]}"  # pasted, two in one
    ws.cell(row_of[t[2]], names.index("memo") + 1).value = "nothing here"
    ws.cell(row_of[t[0]], len(names) + 1).value = "ask supervisor"
    ws.cell(row_of[t[2]], len(names) + 2).value = "check audio"
    ws.cell(row_of[t[3]], len(names) + 3).value = "no header"  # a value in a column without a name
    ws.column_dimensions["H"].hidden = True  # evidence
    wb.save(path)
    entries = demo.read().set_index("unit_id")
    assert entries.loc[t[1], "codes"] == f"{CODES[0]};{CODES[1]}"
    assert entries.loc[t[1], "memo"] == "=not a formula, a memo"
    assert entries.loc[t[3], "codes"] == f"{CODES[1]};{CODES[0]}"
    assert entries.loc[t[2], "memo"] == "nothing here" and entries.loc[t[2], "codes"] == ""
    assert json.loads(entries.loc[t[0], "extra"]) == {"my notes": "ask supervisor"}
    assert json.loads(entries.loc[t[2], "extra"]) == {"note": "check audio"}
    assert json.loads(entries.loc[t[3], "extra"]) == {"column O": "no header"}
    assert set(entries["coder"]) == {"alice"}
    rows = coder_codes(demo.read())
    assert sorted(zip(rows["unit_id"], rows["code_id"], strict=True)) == sorted(
        [(t[1], CODES[0]), (t[1], CODES[1]), (t[3], CODES[1]), (t[3], CODES[0])])
    assert set(rows["coder"]) == {"alice"}

    # the transcript changes (a turn is added): the workbook is refreshed, and everything is carried over
    demo.turns = session_turns(["How are you?", "=I'm fine, really.", "You seem quiet.", "This is pointless.",
                                "Say more?"])
    assert demo.export()
    wb = load_workbook(path)
    ws = wb["Turns"]
    names = header(ws)
    assert names[-3:] == ["my notes", "note", "column O"]
    assert ws.column_dimensions["H"].hidden  # the coder's hidden column stays hidden
    back = {ws.cell(r, 1).value: [c.value for c in ws[r]] for r in range(2, ws.max_row + 1)}
    assert back[t[1]][names.index("code 1")] == CODES[0] and back[t[1]][names.index("code 2")] == CODES[1]
    assert back[t[1]][names.index("memo")] == "=not a formula, a memo"
    assert ws.cell(list(back).index(t[1]) + 2, names.index("memo") + 1).data_type == "s"
    assert back[t[0]][names.index("my notes")] == "ask supervisor"
    assert back[t[2]][names.index("note")] == "check audio"
    assert back[t[3]][names.index("column O")] == "no header"
    assert len(back) == 5
    assert len(list((path.parent / ".backup").glob("D01_S1_session.*.xlsx"))) == 1
    assert REMOVED_SHEET not in wb.sheetnames


def test_an_unchanged_workbook_is_never_rewritten(demo):
    path = demo.path("alice")
    fill(path, "Turns", {}, rows={demo.turns["turn_id"].iloc[0]: {"memo": "read"}})
    before = (path.stat().st_mtime_ns, path.read_bytes())
    assert demo.export() == []
    (demo.study.interim / "export_state.json").unlink()  # interim is safe to delete: the digest is in the file
    assert demo.export() == []
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    assert not (path.parent / ".backup").exists()


def test_codes_of_a_unit_that_disappeared_move_to_removed_units_and_keep_their_date(demo):
    t = list(demo.turns["turn_id"])
    path = demo.path("bob")
    fill(path, "Turns", {}, rows={t[3]: {"code 1": CODES[1], "memo": "angry"}, t[1]: {"code 1": CODES[0]}})
    demo.turns = session_turns(["How are you?", "=I'm fine, really.", "You seem quiet.", "This is useless."])
    demo.export()
    wb = load_workbook(path)
    assert wb.sheetnames[-1] == REMOVED_SHEET
    rs = wb[REMOVED_SHEET]
    assert header(rs)[:5] == ["unit_id", "unit_type", "removed on", "code 1", "memo"]
    assert rs.column_dimensions["A"].width == 34  # the whole ID: the unit's text is no longer beside it
    assert [c.value for c in rs[2]][:5] == [t[3], "turn", date.today().isoformat(), CODES[1], "angry"]
    assert t[3] not in [c.value for c in wb["Turns"]["A"]]
    # the date it was removed survives later rewrites; the codes never enter the codes table as current codes
    rs["C2"].value = "2020-01-02"
    wb.save(path)
    entries = demo.read()
    assert (t[3], "2020-01-02") in set(zip(entries["unit_id"], entries["removed_on"], strict=True))
    assert t[3] not in set(coder_codes(entries)["unit_id"])
    demo.codebook = small_codebook("cb2")  # anything that refreshes the workbook
    demo.export()
    rs = load_workbook(path)[REMOVED_SHEET]
    assert [c.value for c in rs[2]][:5] == [t[3], "turn", "2020-01-02", CODES[1], "angry"]
    # the unit comes back: so do its codes
    demo.turns = session_turns()
    demo.export()
    wb = load_workbook(path)
    assert REMOVED_SHEET not in wb.sheetnames
    ws = wb["Turns"]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == t[3])
    assert row[8] == CODES[1] and row[11] == "angry"
    # one per rewrite of the file the coder had saved; the last rewrite replaced the pipeline's own file
    assert len(list((path.parent / ".backup").glob("D01_S1_session.*.xlsx"))) == 2


def test_a_workbook_no_coder_saved_is_rewritten_without_a_backup_unless_the_run_cannot_tell(demo):
    path = demo.path("alice")
    demo.codebook = small_codebook("cb2")
    assert path in demo.export()
    assert not (path.parent / ".backup").exists()  # exactly as the pipeline wrote it: nothing of the coder's
    (demo.study.interim / "export_state.json").unlink()  # what the pipeline wrote is no longer known
    demo.codebook = small_codebook("cb3")
    assert path in demo.export()
    assert len(list((path.parent / ".backup").glob("D01_S1_session.*.xlsx"))) == 1


def test_more_codes_than_columns_get_more_columns(demo):
    path = demo.path("alice")
    uid = demo.turns["turn_id"].iloc[1]
    fill(path, "Turns", {}, rows={uid: {"code 1": CODES[0], "code 2": CODES[1], "code 3": CODES[2],
                                        "code 4": CODES[3]}})
    assert demo.read()["codes"].tolist() == [";".join(CODES)]
    demo.codebook = small_codebook("cb2")
    demo.export()
    ws = load_workbook(path)["Turns"]
    assert header(ws)[8:13] == ["code 1", "code 2", "code 3", "code 4", "memo"]
    assert demo.read()["codes"].tolist() == [";".join(CODES)]
    (dv,) = ws.data_validations.dataValidation
    assert str(dv.sqref) == "I2:L5"


def _problems(demo):
    return [str(p) for p in read_workbooks(demo.study, demo.codebook.ids()).problems]


def test_an_unknown_code_names_workbook_sheet_and_cell(demo):
    fill(demo.path("alice"), "Turns", {}, rows={demo.turns["turn_id"].iloc[2]: {"code 2": "rupture.withdrawl"}})
    (p,) = _problems(demo)
    assert p.startswith("data/coded/alice/D01_S1_session.xlsx, sheet Turns, cell J4: unknown code "
                        "'rupture.withdrawl'")


def test_a_deleted_unit_id_column_is_named(demo):
    path = demo.path("bob", "D01_S1_ipr-client")
    wb = load_workbook(path)
    wb["Segments"].delete_cols(1)
    wb.save(path)
    (p,) = _problems(demo)
    assert p.startswith("data/coded/bob/D01_S1_ipr-client.xlsx, sheet Segments, row 1: the unit_id column is "
                        "missing")


def test_a_deleted_unit_id_cell_is_named_when_its_row_has_codes(demo):
    path = demo.path("bob")
    wb = load_workbook(path)
    ws = wb["Turns"]
    ws["A3"].value = None
    ws["I3"].value = CODES[0]
    ws["A4"].value = None  # no codes in this row: nothing to lose
    wb.save(path)
    (p,) = _problems(demo)
    assert p.startswith("data/coded/bob/D01_S1_session.xlsx, sheet Turns, cell A3: this row has codes or a memo "
                        "but no unit_id")


@pytest.mark.parametrize("lock", ["~$D01_S1_session.xlsx", "~$1_S1_session.xlsx", ".~lock.D01_S1_session.xlsx#"])
def test_a_workbook_open_in_excel_or_libreoffice_is_named(demo, lock):
    (demo.path("alice").parent / lock).write_bytes(b"owner")
    assert lock_file(demo.path("alice")) is not None
    (p,) = _problems(demo)
    assert p.startswith("data/coded/alice/D01_S1_session.xlsx: is open in Excel or LibreOffice")
    assert "delete" in p


@pytest.mark.parametrize("content", [b"unit_id,code 1\nx,y\n", b"PK\x03\x04broken", b""])
def test_a_file_that_is_not_a_workbook_is_named(demo, content):
    demo.path("alice").write_bytes(content)
    (p,) = _problems(demo)
    assert p.startswith("data/coded/alice/D01_S1_session.xlsx: is not a readable Excel workbook")


def test_a_zip_that_is_not_a_workbook_is_named(demo):
    with zipfile.ZipFile(demo.path("alice"), "w") as z:
        z.writestr("hello.txt", "not a workbook")
    (p,) = _problems(demo)
    assert "is not a readable Excel workbook" in p


def test_every_problem_of_every_workbook_at_once(demo):
    fill(demo.path("alice"), "Turns", {}, rows={demo.turns["turn_id"].iloc[2]: {"code 1": "nope"}})
    demo.path("bob").write_bytes(b"garbage")
    assert len(_problems(demo)) == 2


def test_a_title_row_above_the_header_is_tolerated(demo):
    path = demo.path("alice")
    wb = load_workbook(path)
    ws = wb["Turns"]
    ws.insert_rows(1)
    ws["A1"].value = "My coding of D01"
    ws["I4"].value = CODES[0]
    wb.save(path)
    entries = demo.read()
    assert list(entries["unit_id"]) == [demo.turns["turn_id"].iloc[1]]
    assert list(entries["row"]) == [4]


def test_lock_files_and_backups_are_not_read_as_workbooks(demo):
    path = demo.path("alice")
    (path.parent / ".backup").mkdir()
    (path.parent / ".backup" / "D01_S1_session.x.xlsx").write_bytes(b"junk")
    os.utime(path)
    assert _problems(demo) == []


def test_each_coder_s_workbook_names_its_coder_and_keeps_its_own_work(demo):
    """Coders with nothing in a transcript's workbook get one copied from another's; a coder's own work is
    never in a copy."""
    from pipeline.files import sha256_file

    def about(coder):
        return load_workbook(demo.path(coder))["How to code"]["A2"].value

    def state(coder):
        states = json.loads((demo.study.interim / "export_state.json").read_text())
        return states[demo.study.relative(demo.path(coder))]

    for coder in ("alice", "bob"):
        assert about(coder).startswith(f"Transcript D01_S1_session, coder {coder};")
        assert state(coder)["sha256"] == sha256_file(demo.path(coder))
    fill(demo.path("alice"), "Turns", {"code 1": CODES[0], "memo": "hers"})
    demo.codebook = small_codebook(digest="cb2")  # every workbook is made again
    written = demo.export()
    assert {demo.path("alice"), demo.path("bob")} <= set(written)
    alice = load_workbook(demo.path("alice"))["Turns"]
    assert [c.value for c in alice["L"][1:]] == ["hers"] * len(demo.turns)
    assert [c.value for c in load_workbook(demo.path("bob"))["Turns"]["L"][1:]] == [None] * len(demo.turns)
    assert about("alice").startswith("Transcript D01_S1_session, coder alice;")
    assert about("bob").startswith("Transcript D01_S1_session, coder bob;")
    assert state("bob")["sha256"] == sha256_file(demo.path("bob"))
