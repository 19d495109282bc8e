"""The round trip on the demo study: two coders code their workbooks as people do (codes, memos, a sorted sheet,
an added column, a hidden column), a transcript is corrected (a coded turn's typo fixed, another coded turn said
otherwise), `ipr analyze` runs again; every entry is found in codes.parquet, in the re-exported workbooks and in
agreement figures equal to a computation by hand."""

import shutil
from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import copy_demo
from openpyxl import load_workbook

from pipeline.cli import main
from pipeline.codebook import load_codebook

AGREEMENT_COLUMNS = ["code_id", "units", "coders", "percent_agreement", "cohen_kappa", "krippendorff_alpha",
                     "positive_agreement"]  # as the design has them; more columns may follow
X, Y = "rupture.withdrawal.denial", "rupture.confrontation.rejecting_intervention"
Y2 = "rupture.withdrawal.minimal_response"
Z = "resolution.clarify_misunderstanding"
R1, R2 = "recall.rupture.unheard", "recall.repair.understood"
SESSION, IPR = "D02_S5_session", "D01_S3_ipr-client"


def _invoke(*args):
    return CliRunner().invoke(main, list(args))


def _units(path, sheet):
    ws = load_workbook(path, read_only=True)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    head = list(rows[0])
    return [dict(zip(head, r, strict=False)) for r in rows[1:]]


def _code(path, sheet, plan: dict, sort_by=None, add_column=None, hide=None):
    """Code a workbook as a coder would: ``plan`` unit_id -> (codes, memo)."""
    wb = load_workbook(path)
    ws = wb[sheet]
    head = [c.value for c in ws[1]]
    if sort_by:  # sort the rows, as Data > Sort does
        body = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
        body.sort(key=lambda r: str(r[head.index(sort_by)]))
        for r, values in enumerate(body, 2):
            for c, v in enumerate(values, 1):
                ws.cell(r, c).value = v
                ws.cell(r, c).data_type = "s" if isinstance(v, str) else ws.cell(r, c).data_type
    if add_column:
        head.append(add_column[0])
        ws.cell(1, len(head)).value = add_column[0]
    for r in range(2, ws.max_row + 1):
        uid = ws.cell(r, 1).value
        if uid in plan:
            codes, memo = plan[uid]
            for i, code in enumerate(codes, 1):
                ws.cell(r, head.index(f"code {i}") + 1).value = code
            if memo:
                cell = ws.cell(r, head.index("memo") + 1)
                cell.value = memo
                cell.data_type = "s"  # typed as text (a memo may begin with "=")
        if add_column and uid in add_column[1]:
            ws.cell(r, len(head)).value = add_column[1][uid]
    if hide:
        ws.column_dimensions[ws.cell(1, head.index(hide) + 1).column_letter].hidden = True
    wb.save(path)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip") / "study"
    copy_demo(root)
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    coded = root / "data" / "coded"
    turns = _units(coded / "coder_a" / f"{SESSION}.xlsx", "Turns")
    clients = [t for t in turns if t["role"] == "client"]
    therapists = [t for t in turns if t["role"] == "therapist"]
    c = [t["unit_id"] for t in clients]
    t = [t["unit_id"] for t in therapists]
    s = [u["unit_id"] for u in _units(coded / "coder_a" / f"{IPR}.xlsx", "Segments")]
    # the turn a correction of the transcript will change (its ID follows its text)
    changed = next(u for u in clients[4:] if "small thing" in u["text"])["unit_id"]
    plan = {
        "coder_a": {c[0]: ([X], ""), c[1]: ([X, Y], ""), c[2]: ([Y], ""), c[3]: ([], "nothing here"),
                    changed: ([X], "fine, fine"), t[0]: ([Z], ""), t[1]: ([Z], "=nice move"),
                    s[0]: ([R1], ""), s[1]: ([R1], ""), s[2]: ([], "no idea")},
        "coder_b": {c[0]: ([X], ""), c[1]: ([Y], ""), c[2]: ([], "not sure"), c[3]: ([X, Y2], ""),
                    changed: ([X], ""), t[0]: ([Z], ""), c[6]: ([Y], "only me"),
                    s[0]: ([R1], ""), s[1]: ([R2], ""), s[2]: ([R2], "")},
    }
    _code(coded / "coder_a" / f"{SESSION}.xlsx", "Turns", {u: p for u, p in plan["coder_a"].items() if u in c + t},
          sort_by="text", add_column=("my notes", {c[0]: "ask supervisor"}), hide="evidence")
    _code(coded / "coder_b" / f"{SESSION}.xlsx", "Turns", {u: p for u, p in plan["coder_b"].items() if u in c + t})
    _code(coded / "coder_a" / f"{IPR}.xlsx", "Segments", {u: p for u, p in plan["coder_a"].items() if u in s},
          hide="status")
    _code(coded / "coder_b" / f"{IPR}.xlsx", "Segments", {u: p for u, p in plan["coder_b"].items() if u in s},
          add_column=("second look", {s[2]: "yes"}))
    untouched = coded / "coder_a" / f"{IPR}.xlsx"
    before = untouched.stat().st_mtime_ns
    # the transcript is corrected: a typo in one coded turn (its codes follow it), another coded turn said otherwise
    # (its codes go to Removed units)
    vtt = root / "data" / "raw" / f"{SESSION}.vtt"
    text = vtt.read_text(encoding="utf-8").replace("the toilets and waited", "the toilet and waited")
    vtt.write_text(text.replace("I'm fine, honestly. It doesn't bother me. It was a small thing, mostly her friends "
                                "from work, so it makes sense she didn't invite me.", "Can we talk about work?"),
                   encoding="utf-8")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    assert untouched.stat().st_mtime_ns == before  # its transcript did not change: not rewritten
    now = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    edited = now.loc[now["text"].str.contains("the toilet and waited"), "turn_id"].item()
    assert edited != c[2]
    assert (f"warning: data/coded/coder_a/{SESSION}.xlsx: the codes of 1 unit edited in the transcript stay with it "
            "(sheet Turns, row ") in result.output
    plans = {coder: {edited if u == c[2] else u: p for u, p in mine.items() if u != changed}
             for coder, mine in plan.items()}
    return {"root": root, "plan": plans, "changed": changed, "c": c, "t": t, "s": s, "edited": edited}


def test_every_entry_is_in_the_codes_table_with_the_coders_name(study):
    codes = pd.read_parquet(study["root"] / "data" / "interim" / "codes.parquet")
    mine = codes[codes["coder"] != "auto"]
    expected = {(coder, u, code) for coder, plan in study["plan"].items() for u, (cs, _) in plan.items()
                for code in cs}
    assert set(zip(mine["coder"], mine["unit_id"], mine["code_id"], strict=True)) == expected
    assert len(mine) == len(expected)
    assert set(mine.loc[mine["unit_id"].isin(study["s"]), "unit_type"]) == {"segment"}
    assert set(mine.loc[~mine["unit_id"].isin(study["s"]), "unit_type"]) == {"turn"}
    assert (codes["coder"] == "auto").any()


def test_the_re_exported_workbooks_keep_every_entry(study):
    coded = study["root"] / "data" / "coded"
    for coder, plan in study["plan"].items():
        path = coded / coder / f"{SESSION}.xlsx"
        assert list((path.parent / ".backup").glob(f"{SESSION}.*.xlsx")), "a backup before the rewrite"
        rows = {r["unit_id"]: r for r in _units(path, "Turns")}
        for u, (cs, memo) in plan.items():
            if u in study["s"]:
                continue
            assert [rows[u][f"code {i}"] for i in range(1, len(cs) + 1)] == cs, (coder, u)
            assert (rows[u]["memo"] or "") == memo, (coder, u)
        assert study["changed"] not in rows
        removed = _units(path, "Removed units")
        assert [(r["unit_id"], r["code 1"], r["removed on"]) for r in removed] == [
            (study["changed"], "rupture.withdrawal.denial", date.today().isoformat())]
        assert removed[0]["memo"] == ("fine, fine" if coder == "coder_a" else None)
    a = load_workbook(coded / "coder_a" / f"{SESSION}.xlsx")["Turns"]
    head = [c.value for c in a[1]]
    assert head[-1] == "my notes"
    notes = {r[0]: r[-1] for r in a.iter_rows(min_row=2, values_only=True)}
    assert notes[study["c"][0]] == "ask supervisor"
    assert a.column_dimensions[a.cell(1, head.index("evidence") + 1).column_letter].hidden
    memo = next(r for r in a.iter_rows(min_row=2) if r[0].value == study["t"][1])[head.index("memo")]
    assert memo.value == "=nice move" and memo.data_type == "s"
    # the interview workbooks were not rewritten: the coders' entries are there as they left them
    b = {r["unit_id"]: r for r in _units(coded / "coder_b" / f"{IPR}.xlsx", "Segments")}
    assert b[study["s"][2]]["second look"] == "yes" and b[study["s"][1]]["code 1"] == R2


def test_a_rewritten_workbook_keeps_the_coders_order_of_rows(study):
    """coder_a sorted the sheet by text; the corrected turn (a new unit) comes right after the turn before it in
    the transcript.  coder_b did not sort: the transcript's order."""
    coded = study["root"] / "data" / "coded"
    a = _units(coded / "coder_a" / f"{SESSION}.xlsx", "Turns")
    b = _units(coded / "coder_b" / f"{SESSION}.xlsx", "Turns")
    assert [r["unit_id"] for r in a] != [r["unit_id"] for r in b]  # (the test means something)
    new = next(i for i, r in enumerate(b) if r["text"] == "Can we talk about work?")
    old = [r for r in a if r["unit_id"] != b[new]["unit_id"]]
    assert [str(r["text"]) for r in old] == sorted(str(r["text"]) for r in old)
    assert a[[r["unit_id"] for r in a].index(b[new - 1]["unit_id"]) + 1]["unit_id"] == b[new]["unit_id"]
    assert [r["#"] for r in b] == sorted(r["#"] for r in b)


@pytest.mark.parametrize("stages", [["ingest"], ["ingest", "align", "export"]])
def test_codes_follow_an_edited_turn_whatever_ran_since_the_workbooks_were_written(study, tmp_path, stages):
    """The transcript is corrected and `ipr ingest` (or each stage alone) runs before `ipr analyze`: the turns as
    the workbooks show them are kept, so the coders' codes still follow the edited turn."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    before = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    old = before.loc[before["text"].str.startswith("Up and down. Work was okay."), "turn_id"].item()
    coded = {coder: plan[old][0] for coder, plan in study["plan"].items() if old in plan}
    assert coded  # (the test means something)
    vtt = root / "data" / "raw" / f"{SESSION}.vtt"
    vtt.write_text(vtt.read_text(encoding="utf-8").replace("Up and down. Work was okay.", "Up and down. Work was ok."),
                   encoding="utf-8")
    for stage in stages:
        result = _invoke(stage, "--study", str(root))
        assert result.exit_code == 0, result.output
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    new = turns.loc[turns["text"].str.startswith("Up and down. Work was ok."), "turn_id"].item()
    assert new != old
    codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    mine = codes[codes["coder"] != "auto"]
    assert {(c, k) for c, k in zip(mine.loc[mine["unit_id"] == new, "coder"], mine.loc[mine["unit_id"] == new,
            "code_id"], strict=True)} == {(c, k) for c, ks in coded.items() for k in ks}
    assert old not in set(mine["unit_id"])
    for coder, codes_given in coded.items():
        book = root / "data" / "coded" / coder / f"{SESSION}.xlsx"
        rows = {r["unit_id"]: r for r in _units(book, "Turns")}
        assert [rows[new][f"code {i}"] for i in range(1, len(codes_given) + 1)] == codes_given
        assert old not in {r["unit_id"] for r in _units(book, "Removed units")}


def test_a_new_unit_goes_after_the_one_before_it_in_the_transcript():
    from pipeline.export import in_coders_order

    rows = [[u] for u in ("new0", "a", "b", "new1", "new2", "c", "d")]
    assert [r[0] for r in in_coders_order(rows, ["d", "b", "gone", "a", "c"])] == [
        "new0", "d", "b", "new1", "new2", "a", "c"]
    assert in_coders_order(rows, []) == rows


def _reference(study) -> dict[str, dict]:
    """Agreement of the two coders by hand: per code over the jointly coded units it applies to (or was given)."""
    codebook = load_codebook(study["root"] / "codebooks" / "rupture_repair.yaml")
    turns = pd.read_parquet(study["root"] / "data" / "interim" / "turns.parquet").set_index("turn_id")
    a, b = ({u: set(cs) for u, (cs, _) in study["plan"][k].items()} for k in ("coder_a", "coder_b"))
    joint = [u for u in a if u in b]
    used = sorted({code for u in joint for code in a[u] | b[u]}, key=codebook.ids().index)

    def figures(pairs):
        n = len(pairs)
        agree = sum(x == y for x, y in pairs)
        pa, pb = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
        p_o, p_e = agree / n, pa * pb + (1 - pa) * (1 - pb)
        both = sum(x and y for x, y in pairs)
        n1 = sum(x + y for x, y in pairs)
        n0 = 2 * n - n1
        return {"units": n, "coders": 2, "percent_agreement": 100 * p_o,
                "cohen_kappa": (p_o - p_e) / (1 - p_e) if p_e < 1 else None,
                "krippendorff_alpha": 1 - (2 * n - 1) * 2 * (n - agree) / (2 * n0 * n1) if n0 and n1 else None,
                "positive_agreement": 2 * both / (2 * both + n - agree) if both or n - agree else None}

    out, pooled = {}, []
    for code in used:
        c = codebook.get(code)
        units = [u for u in joint
                 if (("segment", None) if u in study["s"] else ("turn", turns.loc[u, "role"]))[0] in c.units
                 and (u in study["s"] or not c.roles or turns.loc[u, "role"] in c.roles)
                 or code in a[u] | b[u]]
        pairs = [(int(code in a[u]), int(code in b[u])) for u in units]
        out[code] = figures(pairs)
        pooled += pairs
    out["(all codes)"] = {**figures(pooled), "units": len(joint)}
    return out


def test_agreement_equals_the_computation_by_hand(study):
    root = study["root"]
    csv = pd.read_csv(root / "reports" / "agreement.csv")
    assert list(csv.columns)[:len(AGREEMENT_COLUMNS)] == AGREEMENT_COLUMNS
    table = pd.read_parquet(root / "data" / "interim" / "agreement.parquet").set_index("code_id")
    expected = _reference(study)
    assert list(table.index) == list(expected)
    for code, figures in expected.items():
        for name, value in figures.items():
            got = table.loc[code, name]
            if value is None:
                assert pd.isna(got), (code, name)
            else:
                assert got == pytest.approx(value), (code, name)
    assert csv.set_index("code_id").loc["(all codes)", "percent_agreement"] == pytest.approx(
        expected["(all codes)"]["percent_agreement"], abs=1e-4)
    sheets = load_workbook(root / "reports" / "tables.xlsx", read_only=True).sheetnames
    assert "Agreement" in sheets and "Suggestions vs coders" in sheets and len(sheets) > 2
    versus = pd.read_csv(root / "reports" / "suggestions_vs_coders.csv")
    assert set(versus["coder"]) == {"coder_a", "coder_b"}
    assert (versus["code_id"] == "(all codes)").sum() == 2


def test_the_disagreements_are_listed_for_a_consensus_meeting(study):
    """Every code one coder gave a unit both coded and the other did not, with the unit's words: in
    reports/disagreements.csv, the sheet Disagreements of tables.xlsx, and counted in the report."""
    from docx import Document

    root = study["root"]
    a, b = ({u: set(cs) for u, (cs, _) in study["plan"][k].items()} for k in ("coder_a", "coder_b"))
    expected = {(u, code, "coder_a" if code in a[u] else "coder_b", "coder_b" if code in a[u] else "coder_a")
                for u in a.keys() & b.keys() for code in a[u] ^ b[u]}
    listed = pd.read_csv(root / "reports" / "disagreements.csv", keep_default_na=False)
    assert set(zip(listed["unit_id"], listed["code_id"], listed["given_by"], listed["not_given_by"],
                   strict=True)) == expected
    assert len(listed) == len(expected) and set(listed["consensus"]) == {""}
    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet").set_index("turn_id")["text"]
    edited = listed.set_index("unit_id").loc[study["edited"]]  # the turn whose typo was fixed: its words now
    assert edited["text"] == turns[study["edited"]] and "the toilet and waited" in edited["text"]
    sheet = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Disagreements", keep_default_na=False)
    assert list(sheet.columns[:5]) == ["transcript_id", "unit_id", "code_id", "name", "given by"]
    assert len(sheet) == len(expected)
    assert sheet.loc[sheet["code_id"] == Y2, "name"].tolist() == ["Minimal response"]
    text = "\n".join(p.text for p in Document(str(root / "reports" / "summary.docx")).paragraphs)
    units = len({u for u, *_ in expected})
    assert (f"The coders decided {len(expected)} codes differently (one coder gave it, another did not) on "
            f"{units} units.") in text


def test_coding_progress_counts_each_coders_units_per_transcript(study):
    from docx import Document

    root = study["root"]
    interim = root / "data" / "interim"
    turns, segments = pd.read_parquet(interim / "turns.parquet"), pd.read_parquet(interim / "segments.parquet")
    units = (turns[turns["kind"] == "session"].groupby("transcript_id").size()
             .add(segments.groupby("transcript_id").size(), fill_value=0))
    progress = pd.read_csv(root / "reports" / "coding_progress.csv")
    assert len(progress) == 2 * len(units)  # every transcript, for each coder: those not begun too
    for r in progress.itertuples(index=False):
        plan = study["plan"][r.coder]
        coded = (sum(u in study["s"] for u in plan) if r.transcript_id == IPR else
                 sum(u not in study["s"] for u in plan) if r.transcript_id == SESSION else 0)
        assert (r.units, r.coded) == (units[r.transcript_id], coded), r
    by_coder = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Coding progress by coder")
    total = int(units.sum())
    assert by_coder.set_index("coder").loc["coder_a", "units coded"] == f"{len(study['plan']['coder_a'])} of {total:,}"
    tables = Document(str(root / "reports" / "summary.docx")).tables
    assert any(t.rows[0].cells[0].text == "coder" and t.rows[0].cells[1].text == "transcripts begun" for t in tables)


def test_with_three_coders_each_pair_has_its_agreement(study, tmp_path):
    from docx import Document

    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace('"coder_b"]', '"coder_b", "coder_c"]'))
    assert _invoke("analyze", "--study", str(root)).exit_code == 0
    c = study["c"]
    _code(root / "data" / "coded" / "coder_c" / f"{SESSION}.xlsx", "Turns", {c[0]: ([X], ""), c[1]: ([Y], "")})
    result = _invoke("agreement", "--study", str(root))
    assert result.exit_code == 0, result.output
    assert "coder_a and coder_c: 75.0% agreement" in result.output  # c[0]: X, X; c[1]: X and Y, Y
    assert "coder_b and coder_c: 100.0% agreement" in result.output
    assert _invoke("analyze", "--study", str(root)).exit_code == 0
    pairs = pd.read_csv(root / "reports" / "agreement_by_pair.csv")
    assert list(zip(pairs["coder_1"], pairs["coder_2"], pairs["units"], strict=True)) == [
        ("coder_a", "coder_b", len(study["plan"]["coder_a"].keys() & study["plan"]["coder_b"].keys())),
        ("coder_a", "coder_c", 2), ("coder_b", "coder_c", 2)]
    report = Document(str(root / "reports" / "summary.docx"))
    assert "Table" in next(p.text for p in report.paragraphs if "Agreement between each pair of coders" in p.text)


def test_ipr_agreement_prints_and_keeps_the_other_tables(study, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    result = _invoke("agreement", "--study", str(root))
    assert result.exit_code == 0, result.output
    assert "(all codes)" in result.output and "suggestions against coder_a" in result.output
    assert "differently on" in result.output and "reports/disagreements.csv" in result.output
    assert f"coder_b has coded {len(study['plan']['coder_b'])} of " in result.output
    sheets = load_workbook(root / "reports" / "tables.xlsx", read_only=True).sheetnames
    assert "Agreement" in sheets and len(sheets) > 2


# --- import errors: one line naming workbook, sheet and cell; exit 1; nothing written ----------------------

def _snapshot(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _broken(study, tmp_path, breaker):
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    breaker(root / "data" / "coded")
    before = _snapshot(root)
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 1, result.output
    assert _snapshot(root) == before, "nothing may be written"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _set_cells(path, sheet, **cells):
    """A coder's edit of some cells (by reference), saved."""
    wb = load_workbook(path)
    for ref, value in cells.items():
        wb[sheet][ref].value = value
    wb.save(path)


def _row_of(ws, unit_id) -> int:
    return next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == unit_id)


def test_an_unknown_code_stops_the_run(study, tmp_path):
    line = _broken(study, tmp_path,
                   lambda coded: _set_cells(coded / "coder_b" / f"{IPR}.xlsx", "Segments", K3="recall.rupture.angry"))
    assert line.startswith(f"error: data/coded/coder_b/{IPR}.xlsx, sheet Segments, cell K3: unknown code "
                           "'recall.rupture.angry'")


def test_a_deleted_unit_id_column_stops_the_run(study, tmp_path):
    def breaker(coded):
        path = coded / "coder_a" / f"{SESSION}.xlsx"
        wb = load_workbook(path)
        wb["Turns"].delete_cols(1)
        wb.save(path)
    line = _broken(study, tmp_path, breaker)
    assert line.startswith(f"error: data/coded/coder_a/{SESSION}.xlsx, sheet Turns, row 1: the unit_id column is "
                           "missing")


def test_a_deleted_unit_id_cell_stops_the_run(study, tmp_path):
    def breaker(coded):
        path = coded / "coder_b" / f"{SESSION}.xlsx"
        wb = load_workbook(path)
        ws = wb["Turns"]
        row = _row_of(ws, study["c"][0])
        ws.cell(row, 1).value = None
        wb.save(path)
        return row
    line = _broken(study, tmp_path, breaker)
    assert line.startswith(f"error: data/coded/coder_b/{SESSION}.xlsx, sheet Turns, cell A")
    assert "no unit_id" in line


def test_a_workbook_open_in_excel_stops_the_run(study, tmp_path):
    line = _broken(study, tmp_path, lambda coded: (coded / "coder_a" / "~$1_S3_ipr-client.xlsx").write_bytes(b"x"))
    assert line.startswith(f"error: data/coded/coder_a/{IPR}.xlsx: is open in Excel or LibreOffice")


def test_a_file_that_is_not_a_workbook_stops_the_run(study, tmp_path):
    line = _broken(study, tmp_path, lambda coded: (coded / "coder_b" / f"{IPR}.xlsx").write_text("unit_id\n"))
    assert line.startswith(f"error: data/coded/coder_b/{IPR}.xlsx: is not a readable Excel workbook")


def test_a_copy_of_a_workbook_in_the_coders_folder_stops_the_run(study, tmp_path):
    """A coder's download "(1)" beside the workbook: which holds the coder's decision cannot be told, and reading
    both would add a stale copy's codes to the coder's."""
    def breaker(coded):
        shutil.copy(coded / "coder_b" / f"{SESSION}.xlsx", coded / "coder_b" / f"{SESSION} (1).xlsx")
    line = _broken(study, tmp_path, breaker)
    assert line.startswith(f"error: data/coded/coder_b/{SESSION} (1).xlsx, sheet Turns, row ")
    coded = [u for u in _units(study["root"] / "data" / "coded" / "coder_b" / f"{SESSION}.xlsx", "Turns")
             if u["code 1"] or u["memo"]]
    assert f"is coded here and in data/coded/coder_b/{SESSION}.xlsx (row " in line
    assert f"and {len(coded) - 1} more of its units" in line
    assert line.endswith(f"keep the one with the latest work, named {SESSION}.xlsx, and move the other out of "
                         "data/coded/coder_b/)")


def test_the_copy_is_named_whichever_workbook_was_read_first():
    from pipeline.readback import ENTRY_COLUMNS, units_in_two_workbooks

    def entry(coder, unit, workbook, row, sheet="Turns"):
        return dict.fromkeys(ENTRY_COLUMNS, "") | {"coder": coder, "unit_id": unit, "workbook": workbook,
                                                  "sheet": sheet, "row": row}
    a, copy = "data/coded/ann/S1.xlsx", "data/coded/ann/Copy of S1.xlsx"
    rows = [entry("ann", "u1", a, 2), entry("ann", "u2", a, 3), entry("bob", "u1", "data/coded/bob/S1.xlsx", 2),
            entry("ann", "u1", copy, 5), entry("ann", "u2", copy, 6),
            entry("ann", "u3", a, 4), entry("ann", "u3", copy, 7, sheet="Removed units")]  # removed: not coded
    for order in (rows, rows[::-1]):
        problems = units_in_two_workbooks(pd.DataFrame(order, columns=ENTRY_COLUMNS))
        assert [(p.file, p.where) for p in problems] == [(copy, f"sheet Turns, row {5 if order is rows else 6}")]
        assert f"is coded here and in {a} (row {2 if order is rows else 3}), and 1 more of its units" in \
            problems[0].message


def test_a_workbook_of_another_coder_in_a_coders_folder_stops_the_run(study, tmp_path):
    """coder_a's workbook put in coder_b's folder (over coder_b's own): its codes would count as coder_b's, and
    the agreement of the two would be a coder's agreement with themself."""
    def breaker(coded):
        shutil.copy(coded / "coder_a" / f"{IPR}.xlsx", coded / "coder_b" / f"{IPR}.xlsx")
    line = _broken(study, tmp_path, breaker)
    assert line == (f"error: data/coded/coder_b/{IPR}.xlsx, sheet How to code: was made for coder_a, so its codes "
                    "would count as coder_b's (move it back to data/coded/coder_a/; to code on from coder_a's codes "
                    "as coder_b, write coder_b for coder_a in that sheet)")


def test_a_coders_folder_renamed_is_not_another_coders_work(study, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    coded = root / "data" / "coded"
    (coded / "coder_a").rename(coded / "alice")  # the workbooks say coder_a, who is no longer a coder
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace('"coder_a"', '"alice"'))
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    assert "alice" in set(codes["coder"]) and "coder_a" not in set(codes["coder"])


def test_a_code_typed_into_suggested_codes_stops_the_run(study, tmp_path):
    """'suggested codes' is the rules' column: a code typed there would not be read, and a refreshed workbook
    would write the suggestions over it."""
    def breaker(coded):
        path = coded / "coder_b" / f"{SESSION}.xlsx"
        wb = load_workbook(path)
        ws = wb["Turns"]
        r = _row_of(ws, study["c"][5])
        ws[f"G{r}"].value = f"{ws[f'G{r}'].value or ''} {X}".strip()
        wb.save(path)
        breaker.row = r
    line = _broken(study, tmp_path, breaker)
    assert line == (f"error: data/coded/coder_b/{SESSION}.xlsx, sheet Turns, cell G{breaker.row}: 'suggested codes' "
                    f"holds {X}, which the rules did not suggest here: codes in that column are not read (move it "
                    "to a 'code' column)")


def test_a_memo_typed_into_the_alignments_note_stops_the_run(study, tmp_path):
    line = _broken(study, tmp_path,
                   lambda coded: _set_cells(coded / "coder_b" / f"{IPR}.xlsx", "Segments", I3="she looks away here"))
    assert line == (f"error: data/coded/coder_b/{IPR}.xlsx, sheet Segments, cell I3: 'note' holds 'she looks away "
                    "here': that column is the alignment's and is not read (move it to 'memo')")


def test_suggestions_deleted_or_reordered_by_a_coder_are_no_problem(study, tmp_path):
    """Rejecting a suggestion by deleting it, or sorting a cell's suggestions, loses nothing: the run goes on."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    path = root / "data" / "coded" / "coder_b" / f"{IPR}.xlsx"
    wb = load_workbook(path)
    ws = wb["Segments"]
    suggested = [r for r in range(2, ws.max_row + 1) if ws[f"G{r}"].value]
    assert len(suggested) >= 2 and "," in ws[f"G{suggested[0]}"].value
    ws[f"G{suggested[0]}"].value = ", ".join(reversed(ws[f"G{suggested[0]}"].value.split(", ")))
    ws[f"G{suggested[1]}"].value = None
    wb.save(path)
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output


def test_a_code_renamed_in_the_codebook_is_told_once_and_read_as_the_new_code_with_replaces(study, tmp_path):
    """Codebooks change while coders code.  A code renamed without a word stops the run with one line for the code
    (not one per cell); with ``replaces`` the coders' codes are read as the new code, and their workbooks show it."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    new = "rupture.withdrawal.denying"
    book = root / "codebooks" / "rupture_repair.yaml"
    book.write_text(book.read_text(encoding="utf-8").replace(f"  - id: {X}\n", f"  - id: {new}\n"), encoding="utf-8")
    before = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    given = before[(before["coder"] != "auto") & (before["code_id"] == X)]
    history = pd.read_csv(root / "data" / "coded" / "history.csv")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: data/coded/coder_a/{SESSION}.xlsx, sheet Turns, cell I")
    assert (f"unknown code '{X}': it is no longer in codebooks/rupture_repair.yaml, but this cell and "
            f"{len(given) - 1} more hold it, in 2 workbooks (if it became {new} or was merged into another code, "
            f"add 'replaces: [{X}]' to that code") in errors[0]

    text = book.read_text(encoding="utf-8")
    book.write_text(text.replace(f"  - id: {new}\n", f"  - id: {new}\n    replaces: [{X}]\n"), encoding="utf-8")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    after = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    coders = after[after["coder"] != "auto"]
    assert X not in set(after["code_id"])
    renamed = coders[coders["code_id"] == new]
    assert sorted(zip(renamed["coder"], renamed["unit_id"], strict=True)) == sorted(
        zip(given["coder"], given["unit_id"], strict=True))
    for coder in ("coder_a", "coder_b"):
        cells = [u[f"code {i}"] for u in _units(root / "data" / "coded" / coder / f"{SESSION}.xlsx", "Turns")
                 for i in (1, 2, 3)]
        assert X not in cells and new in cells
    run = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Run")
    assert f"{X} → {new}" in set(run["value"])
    # the codebook renamed the code, not the coders: their coding history has no change
    pd.testing.assert_frame_equal(pd.read_csv(root / "data" / "coded" / "history.csv"), history)


def test_a_code_retired_from_the_codebook_stays_in_the_coders_cells_and_is_not_counted(study, tmp_path):
    """A code dropped on purpose (not renamed): listed as retired, the coders' cells keep it, in the refreshed
    workbooks too, and nothing counts it; each run says so."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    book = root / "codebooks" / "rupture_repair.yaml"
    text = book.read_text(encoding="utf-8").replace(f"  - id: {X}\n", "  - id: rupture.withdrawal.something_else\n")
    book.write_text(text.replace("\ncodes:\n", f"\nretired: [{X}]\ncodes:\n", 1), encoding="utf-8")
    given = {(coder, u) for coder, plan in study["plan"].items() for u, (cs, _) in plan.items() if X in cs}
    history = pd.read_csv(root / "data" / "coded" / "history.csv")
    for run in range(2):  # the second run reads the workbooks it did not rewrite from the last run's table
        result = _invoke("analyze", "--study", str(root))
        assert result.exit_code == 0, result.output
        # (and the turn said otherwise, whose X both coders' Removed units hold)
        assert (f"warning: {X}: retired in codebooks/rupture_repair.yaml, so it is not counted; {len(given) + 2} "
                "cells in 2 coders' workbooks hold it, and keep it") in result.output, run
        codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
        assert X not in set(codes["code_id"])
        for coder in ("coder_a", "coder_b"):
            rows = _units(root / "data" / "coded" / coder / f"{SESSION}.xlsx", "Turns")
            held = {r["unit_id"] for r in rows if X in (r["code 1"], r["code 2"], r["code 3"])}
            assert held == {u for c, u in given if c == coder}
    # a unit whose only code was retired (and no memo) is not coded any more
    progress = pd.read_csv(root / "reports" / "coding_progress.csv").set_index(["coder", "transcript_id"])
    only_x = {(c, u) for c, u in given if study["plan"][c][u] == ([X], "")}
    assert only_x
    for coder in ("coder_a", "coder_b"):
        plan = study["plan"][coder]
        expected = sum(u not in study["s"] for u in plan) - sum(1 for c, _ in only_x if c == coder)
        assert progress.loc[(coder, SESSION), "coded"] == expected
    run = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Run").set_index("what")["value"]
    assert run["codes retired (not counted; kept in coders' cells)"] == X
    # the code is still in the coders' cells: their coding history has no change
    pd.testing.assert_frame_equal(pd.read_csv(root / "data" / "coded" / "history.csv"), history)


def test_a_folder_of_someone_not_a_coder_is_not_read_and_the_run_says_so(study, tmp_path):
    """With coders listed in study.toml, a pilot round's folder (or a former coder's) in data/coded/ would have
    counted as one more coder in the agreement."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    (root / "data" / "coded" / "pilot").mkdir()
    shutil.copy(root / "data" / "coded" / "coder_b" / f"{SESSION}.xlsx", root / "data" / "coded" / "pilot")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    assert ("warning: data/coded/pilot/: not a coder of study.toml (coders = ['coder_a', 'coder_b']), so its "
            "workbooks are not read") in result.output
    codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    assert set(codes["coder"]) == {"auto", "coder_a", "coder_b"}
    agreement = pd.read_csv(root / "reports" / "agreement.csv")
    assert agreement.loc[agreement["code_id"] == "(all codes)", "coders"].item() == 2
    result = _invoke("doctor", "--study", str(root))
    assert "data/coded/pilot/: not a coder" in result.output


def _share(root, coder: str) -> str:
    """The share of the study's units the coder coded, as the report writes it (from coding_progress.csv, which
    test_coding_progress_counts_each_coders_units_per_transcript checks)."""
    progress = pd.read_csv(root / "reports" / "coding_progress.csv")
    mine = progress[progress["coder"] == coder]
    return f"{100 * mine['coded'].sum() / mine['units'].sum():.0f}%"


def test_the_consensus_coder_is_the_reports_consensus_and_not_a_coder_who_agrees(study, tmp_path):
    """Coders code alone, then meet and decide the units they disagreed on; a coder named consensus records that.
    On the units it coded its codes are the report's consensus (a memo alone: no code), on the others the codes
    both coders gave; and it is left out of the agreement."""
    from docx import Document

    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace('"coder_b"]', '"coder_b", "consensus"]'))
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    agreed = root / "data" / "coded" / "consensus" / f"{SESSION}.xlsx"
    assert "Record here what the coders decided when they met" in load_workbook(agreed)["How to code"]["A2"].value
    c = study["c"]
    # the meeting sees what each coder gave each unit, and which codes are disputed
    rows = {r["unit_id"]: r for r in _units(agreed, "Turns")}
    assert rows[c[1]]["coders' codes"] == f"coder_a: {X}, {Y}\ncoder_b: {Y}" and rows[c[1]]["disputed"] == X
    assert rows[c[3]]["coders' codes"] == f"coder_a: no code (memo: nothing here)\ncoder_b: {X}, {Y2}"
    assert rows[c[3]]["disputed"] == f"{X}, {Y2}"
    assert rows[c[0]]["disputed"] is None and rows[c[6]]["coders' codes"] == f"coder_b: {Y} (memo: only me)"
    assert "coders' codes" not in _units(root / "data" / "coded" / "coder_a" / f"{SESSION}.xlsx", "Turns")[0]
    _code(agreed, "Turns", {c[0]: ([Y], ""), c[1]: ([Y], ""), c[3]: ([], "nothing after all")})
    s = study["s"]
    _code(root / "data" / "coded" / "consensus" / f"{IPR}.xlsx", "Segments", {s[0]: ([], "not unheard after all")})
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output

    by_code = pd.read_excel(root / "reports" / "tables.xlsx", sheet_name="Codes by code").set_index("code_id")
    assert by_code.loc[Y, "consensus"] == 3  # c[0] and c[1], as the meeting decided; c[6], coded by coder_b alone
    assert by_code.loc[X, "consensus"] == 0  # both coders gave X to c[0], but the meeting gave it Y
    assert by_code.loc[Z, "consensus"] == 2  # t[0]: both coders gave Z, not taken up; t[1]: coder_a's alone
    assert by_code.loc[R1, "consensus"] == 0  # s[0]: both coders gave R1, and the meeting decided on no code
    agreement = pd.read_csv(root / "reports" / "agreement.csv")
    assert agreement.loc[agreement["code_id"] == "(all codes)", "coders"].item() == 2
    versus = pd.read_csv(root / "reports" / "suggestions_vs_coders.csv")
    assert "consensus" in set(versus["coder"])
    text = "\n".join(p.text for p in Document(str(root / "reports" / "summary.docx")).paragraphs)
    assert (f"Human coding: coder_a ({_share(root, 'coder_a')} of the units coded), coder_b ({_share(root, 'coder_b')} "
            "of the units coded); the consensus is per unit, the consensus coder's codes where it coded the unit "
            "(data/coded/consensus/); the codes two or more coders gave it where two or more coded it; the coder's "
            "codes where one coder coded it") in text
    # the disagreements show what the meeting decided: c[1] was X (coder_a) and Y; c[3] X and Y2 (coder_b)
    listed = pd.read_csv(root / "reports" / "disagreements.csv", keep_default_na=False).set_index(
        ["unit_id", "code_id"])["consensus"]
    assert listed[(c[1], X)] == "not given"
    assert (listed[(c[3], X)], listed[(c[3], Y2)]) == ("not given", "not given")
    assert listed[(study["edited"], Y)] == ""  # not decided yet
    assert "The consensus coder has decided 3 of them;" in text
    # a coder changes their mind: the consensus workbook shows it, and keeps the consensus's codes
    _code(root / "data" / "coded" / "coder_b" / f"{SESSION}.xlsx", "Turns", {c[1]: ([X, Y], "")})
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    rows = {r["unit_id"]: r for r in _units(agreed, "Turns")}
    assert rows[c[1]]["coders' codes"] == f"coder_a: {X}, {Y}\ncoder_b: {X}, {Y}" and rows[c[1]]["disputed"] is None
    assert (rows[c[1]]["code 1"], rows[c[3]]["memo"]) == (Y, "nothing after all")
    extra = pd.read_parquet(root / "data" / "interim" / "coder_entries.parquet").query("coder == 'consensus'")
    assert set(extra["extra"]) == {""}  # the pipeline's columns are not read as the coder's own


def test_without_a_consensus_coder_the_consensus_is_what_two_coders_gave(study):
    """... on a unit both coded; on a unit one coded, that coder's codes; a memo alone counts as coding it."""
    from docx import Document

    by_code = pd.read_excel(study["root"] / "reports" / "tables.xlsx", sheet_name="Codes by code").set_index("code_id")
    a, b = study["plan"]["coder_a"], study["plan"]["coder_b"]
    for code in (X, Y, Y2, Z, R1, R2):
        agreed = {u for u in a.keys() & b.keys() if code in a[u][0] and code in b[u][0]}
        alone = {u for u, (cs, _) in [*a.items(), *b.items()] if code in cs and not (u in a and u in b)}
        assert by_code.loc[code, "consensus"] == len(agreed | alone), code
    text = "\n".join(p.text for p in Document(str(study["root"] / "reports" / "summary.docx")).paragraphs)
    root = study["root"]
    assert (f"Human coding: coder_a ({_share(root, 'coder_a')} of the units coded), coder_b ({_share(root, 'coder_b')} "
            "of the units coded); the consensus is per unit, the codes two or more coders gave it where two or more "
            "coded it; the coder's codes where one coder coded it") in text


def _turns(tid, *rows):
    """Turns of transcript ``tid`` from (turn_id, role, text), numbered in order."""
    return pd.DataFrame([{"transcript_id": tid, "kind": "session", "turn_id": f"{tid}:{i}", "role": role, "seq": n,
                          "text": text}
                         for n, (i, role, text) in enumerate(rows, 1)])


def test_edited_turns_are_found_by_their_words_and_role():
    from pipeline.readback import edited_turns

    before = _turns("S", ("a", "client", "I went to the toilets and waited for it to stop."),
                    ("b", "therapist", "Mm."), ("c", "client", "Mm."), ("d", "client", "Something else entirely."),
                    ("e", "therapist", "How was the week since we last met?"))
    now = _turns("S", ("a2", "client", "I went to the toilet and waited for it to stop."),  # a typo fixed
                 ("b2", "therapist", "Mm."), ("c2", "client", "Mm."),  # labels renamed: new IDs, the same words
                 ("d2", "client", "Can we talk about work?"),  # said otherwise: not the same turn
                 ("e", "therapist", "How was the week since we last met?"))  # unchanged
    assert edited_turns(before, now) == {"S:a": "S:a2", "S:b": "S:b2", "S:c": "S:c2"}
    assert edited_turns(None, now) == {}
    far = _turns("S", *[(f"x{i}", "client", "Filler.") for i in range(40)],
                 ("a2", "client", "I went to the toilet and waited for it to stop."))
    assert "S:a" not in edited_turns(before, far)  # 40 turns away: not the turn that was edited


def test_relabelled_speakers_keep_the_coders_codes(study, tmp_path):
    """A team renames the speaker labels of a coded session (every turn gets a new ID): the codes stay."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    interim = root / "data" / "interim"

    def coded():
        """(coder, code, speaker, words) of every coder's code on a session turn."""
        codes, turns = pd.read_parquet(interim / "codes.parquet"), pd.read_parquet(interim / "turns.parquet")
        mine = codes[(codes["coder"] != "auto") & (codes["unit_type"] == "turn")]
        said = turns.set_index("turn_id").loc[mine["unit_id"]]
        return sorted(zip(mine["coder"], mine["code_id"], said["speaker"], said["text"], strict=True))

    before = coded()
    vtt = root / "data" / "raw" / f"{SESSION}.vtt"
    vtt.write_text(vtt.read_text(encoding="utf-8").replace("\nClient: ", "\nCl: "), encoding="utf-8")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    after = coded()
    assert [(c, k, "Client" if s == "Cl" else s, t) for c, k, s, t in after] == before
    speakers = {s for _, _, s, _ in after}
    assert "Cl" in speakers and "Client" not in speakers
    for coder in ("coder_a", "coder_b"):  # nothing more was removed than the fixture's turn said otherwise
        removed = _units(root / "data" / "coded" / coder / f"{SESSION}.xlsx", "Removed units")
        assert [r["unit_id"] for r in removed] == [study["changed"]]


def test_a_recall_whose_stop_time_is_corrected_keeps_the_coders_codes(study, tmp_path):
    """A segment's ID is its stop's video time: a typo in a stop marker corrected made it a new segment."""
    root = tmp_path / "s"
    shutil.copytree(study["root"], root)
    ipr = root / "data" / "raw" / f"{IPR}.txt"
    ipr.write_text(ipr.read_text(encoding="utf-8").replace("[Video paused at 00:03:07]", "[Video paused at 00:03:09]"),
                   encoding="utf-8")
    result = _invoke("analyze", "--study", str(root))
    assert result.exit_code == 0, result.output
    old, new = f"{IPR}@0:03:07", f"{IPR}@0:03:09"
    assert study["s"][0] == old
    assert (f"warning: data/coded/coder_a/{IPR}.xlsx: the codes of 1 unit edited in the transcript stay with it "
            "(sheet Segments, row 2)") in result.output
    codes = pd.read_parquet(root / "data" / "interim" / "codes.parquet")
    mine = codes[(codes["coder"] != "auto") & codes["unit_id"].isin([old, new])]
    assert sorted(zip(mine["coder"], mine["unit_id"], mine["code_id"], strict=True)) == [
        ("coder_a", new, R1), ("coder_b", new, R1)]
    rows = {u["unit_id"]: u for u in _units(root / "data" / "coded" / "coder_a" / f"{IPR}.xlsx", "Segments")}
    assert rows[new]["code 1"] == R1 and old not in rows


def test_edited_segments_are_found_by_their_recall():
    from pipeline.readback import edited_segments

    def segs(*rows):
        return pd.DataFrame([{"transcript_id": "I", "segment_id": f"I@{s}", "stop_no": n, "recall_text": r}
                             for s, n, r in rows])
    before = segs(("0:03:07", 1, "I was annoyed. Really annoyed."), ("0:05:00", 2, "Relief, mostly."),
                  ("0:07:00", 3, "Nothing much."))
    now = segs(("0:01:00", 1, "A stop added before the others."), ("0:03:09", 2, "I was annoyed. Really annoyed."),
               ("0:05:00", 3, "Relief, mostly."), ("0:07:30", 4, "Something else altogether, and longer."))
    assert edited_segments(before, now) == {"I@0:03:07": "I@0:03:09"}
    now = segs(("0:03:07", 1, "I was annoyed. Really annoyed."), ("0:05:02", 2, "Relief, mostly, I think."),
               ("0:07:00", 3, "Nothing much."))
    assert edited_segments(before, now) == {"I@0:05:00": "I@0:05:02"}  # the same stop, its recall nearly the same
