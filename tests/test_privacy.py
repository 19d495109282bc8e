"""Privacy and safety end to end: raw data is never written, real names never reach an output, spreadsheets are
never formulas.

- Raw data: SHA-256 and modification time of every file in data/raw/ are the same after a run, and during an
  in-process run any attempt to open, create, rename or delete a file under data/raw/ for writing is caught.
- De-identification: with a key file (``private/pseudonyms.csv``), a therapist's and a client's real names (in
  any case, whole or by a part), an e-mail address and phone numbers planted in Word, WebVTT and plain-text
  transcripts appear in no output at all (Parquet, workbooks, report, tables, CSV, JSON, figures, backups), and
  the key's content is not copied anywhere; a real name typed into a coder's memo fails the run, naming the
  workbook, before anything is written.
- Spreadsheet safety: transcript text that begins with ``=``, ``+``, ``-`` or ``@`` is text in every workbook (no
  ``<f>`` element anywhere), and a turn longer than a spreadsheet cell holds is cut with a visible note.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import docx
import openpyxl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import copy_demo

from pipeline.cli import main
from pipeline.xlsx import EXCEL_CELL_LIMIT

KEY = "name,pseudonym\nMaria Ruiz,Therapist-D02\nJonas Weber,Client-D01\n"
REAL = ["maria", "ruiz", "jonas", "weber"]  # every part of every real name, matched as whole words in any case
EMAIL = "jonas.weber@example.org"
PHONES = [r"7700\D{0,3}900\D{0,3}123", r"7946\D{0,3}0958"]
INJECTIONS = ['=HYPERLINK("http://evil.example/x","click me") I felt judged when you said that.',
              "+1+1 is what my manager said I am worth", "-2+3 weeks of the same sheet", "@SUM(A1:A3) nothing"]
LONG_WORDS = 7000  # a turn of about 40,000 characters: more than a spreadsheet cell holds


def analyze(root: Path):
    return CliRunner().invoke(main, ["analyze", "--study", str(root)])


def plant(root: Path) -> None:
    """Real names, an e-mail, phones, formula-like text and an overlong turn, in three transcript forms."""
    raw = root / "data" / "raw"
    with open(root / "study.toml", "a", encoding="utf-8") as f:
        f.write('\n[deidentify]\nkey = "private/pseudonyms.csv"\n')
    (root / "private").mkdir()
    (root / "private" / "pseudonyms.csv").write_text(KEY, encoding="utf-8")
    # Word: the client says his name, the therapist's first name, a phone; the formula-like turns; a long turn.
    document = docx.Document(str(raw / "D01_S3_session.docx"))
    document.add_paragraph("C: I'm Jonas Weber, by the way, and Maria said I could call on 07700 900123.")
    for text in INJECTIONS:
        document.add_paragraph(f"C: {text}")
    document.add_paragraph("C: " + " ".join(["I felt judged and unheard."] * (LONG_WORDS // 5)))
    document.save(str(raw / "D01_S3_session.docx"))
    # Plain text: in the last recall of the client's interview.
    with open(raw / "D01_S3_ipr-client.txt", "a", encoding="utf-8") as f:
        f.write(f"\nC: WEBER is my surname, jonas my first name; write to {EMAIL} or +44 20 7946 0958.\n"
                "I: Thanks, Jonas.\n")
    # WebVTT: the therapist's full name in a label and in text.
    with open(raw / "D02_S5_session.vtt", "a", encoding="utf-8") as f:
        f.write("\n68\n00:12:30.000 --> 00:12:33.000\nMaria Ruiz: Thanks, MARIA RUIZ here, ruiz.m@clinic.example\n")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> tuple[Path, object]:
    root = copy_demo(tmp_path_factory.mktemp("keyed") / "study")
    plant(root)
    result = analyze(root)
    if result.exit_code == 0:  # the REFI-QDA project too is an output
        result = CliRunner().invoke(main, ["qdpx", "export", "--study", str(root)])
    return root, result


def outputs(root: Path) -> list[Path]:
    """Every file the pipeline may have written: all of the study but its inputs."""
    inputs = {root / "data" / "raw", root / "private", root / "codebooks", root / "study.toml"}
    return [p for p in sorted(root.rglob("*")) if p.is_file() and not any(p == i or i in p.parents for i in inputs)]


def texts(path: Path) -> list[str]:
    """Every text an output holds, read independently of the pipeline's own leak check."""
    data = path.read_bytes()
    out = [data.decode("utf-8", errors="replace"), data.decode("latin-1")]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                xml = z.read(member).decode("utf-8", errors="replace")
                out += [xml, re.sub(r"<[^>]+>", "", xml), re.sub(r"<[^>]+>", " ", xml)]  # runs joined, or not
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        out.append(str(table.schema.metadata))
        for column in table.columns:
            out.append("\n".join(map(str, column.to_pylist())))
    return out


def found(pattern: str, path: Path) -> bool:
    rx = re.compile(pattern, re.I)
    return any(rx.search(t) for t in texts(path))


def test_the_run_with_a_key_succeeds(keyed):
    root, result = keyed
    assert result.exit_code == 0, result.output


def test_no_real_name_email_or_phone_in_any_output(keyed):
    root, _ = keyed
    files = outputs(root)
    assert {p.suffix for p in files} >= {".parquet", ".xlsx", ".docx", ".csv", ".json", ".png", ".qdpx"}
    leaks = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        for name in REAL:
            if found(rf"(?<![a-z]){name}(?![a-z])", path):
                leaks.append(f"{rel}: {name}")
        for pattern in [re.escape(EMAIL), r"ruiz\.m@", *PHONES]:
            if found(pattern, path):
                leaks.append(f"{rel}: {pattern}")
    assert not leaks, leaks


def test_the_pseudonyms_stand_where_the_names_were(keyed):
    root, _ = keyed
    import pandas as pd

    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    text = "\n".join(turns["text"]) + "\n".join(turns["speaker"])
    for expected in ("Client-D01", "Therapist-D02", "[email]", "[phone]", "Dr. Therapist-D02"):
        assert expected in text
    # the role of a relabelled speaker still comes from the real label in study.toml
    assert set(turns[turns["speaker"] == "Dr. Therapist-D02"]["role"]) == {"therapist"}


def test_the_key_file_is_not_copied_anywhere(keyed):
    root, _ = keyed
    key = (root / "private" / "pseudonyms.csv").read_bytes()
    for path in outputs(root):
        assert key not in path.read_bytes(), path
        assert not found(r"Maria Ruiz\W{1,3}Therapist-D02|Jonas Weber\W{1,3}Client-D01", path), path
    assert not any(p.name == "pseudonyms.csv" for p in outputs(root))


def test_a_real_name_in_a_memo_fails_the_run_naming_the_workbook(keyed, tmp_path):
    source, _ = keyed
    root = tmp_path / "study"
    shutil.copytree(source, root)
    rel = "data/coded/coder_b/D01_S3_session.xlsx"
    book = openpyxl.load_workbook(root / rel)
    sheet = book["Turns"]
    memo = [c.value for c in sheet[1]].index("memo") + 1
    sheet.cell(5, memo).value = "He looked at me when he said it; ask weber about it next time"
    book.save(root / rel)
    before = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    result = analyze(root)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: {rel}, sheet Turns, row 5:") and "real name" in errors[0], errors
    assert "weber" not in errors[0].lower(), "the message does not repeat the name"
    after = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert after == before, "nothing was written"


# --- spreadsheet safety -----------------------------------------------------------------------------------------

def workbooks(root: Path) -> list[Path]:
    return [p for p in outputs(root) if p.suffix == ".xlsx"]


def test_no_formula_in_any_workbook(keyed):
    root, _ = keyed
    books = workbooks(root)
    assert any(p.name == "tables.xlsx" for p in books)
    seen = set()
    for path in books:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if member.startswith("xl/worksheets/"):
                    xml = z.read(member).decode("utf-8")
                    assert not re.search(r"<(\w+:)?f[ >/]", xml), f"{path.name} {member} holds a formula"
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                        assert cell.data_type == "s", (path.name, sheet.title, cell.coordinate)
                        seen.add(cell.value)
    for text in INJECTIONS:  # each stands as text in both coders' workbooks of the session
        assert text in seen, text
        for coder in ("coder_a", "coder_b"):
            sheet = openpyxl.load_workbook(root / "data" / "coded" / coder / "D01_S3_session.xlsx")["Turns"]
            cells = [c for row in sheet.iter_rows() for c in row if c.value == text]
            assert cells and all(c.data_type == "s" for c in cells)


def test_an_overlong_turn_is_cut_with_a_visible_note(keyed):
    root, _ = keyed
    import pandas as pd

    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    longest = turns["text"].str.len().max()
    assert longest > EXCEL_CELL_LIMIT  # the table keeps the whole turn
    longest_cells = []
    for path in workbooks(root):
        for sheet in openpyxl.load_workbook(path, read_only=True).worksheets:
            for row in sheet.iter_rows(values_only=True):
                for value in row:
                    if isinstance(value, str):
                        assert len(value) <= EXCEL_CELL_LIMIT, (path.name, sheet.title)
                        if len(value) > EXCEL_CELL_LIMIT - 200:
                            longest_cells.append(value)
    assert longest_cells, "the long turn is in the workbooks"
    assert all("cut" in v[-100:] for v in longest_cells)


# --- raw data is read-only ---------------------------------------------------------------------------------------

def raw_state(raw: Path) -> dict[str, tuple[str, int, int]]:
    return {p.relative_to(raw).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns,
                                             p.stat().st_mode) for p in sorted(raw.rglob("*"))}


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def guard(monkeypatch, raw: Path) -> list[str]:
    """Catch (and refuse) every attempt to write, create, rename or delete anything under ``raw``."""
    raw_s = os.path.realpath(raw)
    attempts: list[str] = []

    def under(p) -> bool:
        if isinstance(p, int):
            return False
        try:
            real = os.path.realpath(os.fsdecode(os.fspath(p)))
        except TypeError:
            return False
        return real == raw_s or real.startswith(raw_s + os.sep)

    def refuse(what, p):
        attempts.append(f"{what} {p}")
        raise PermissionError(f"test: {what} under data/raw: {p}")

    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            refuse(f"open({mode!r})", file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and under(path):
            refuse("os.open for writing", path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def moved(src, dst, *args, _real=real, _name=name, **kwargs):
            if under(src) or under(dst):
                refuse(f"os.{_name}", f"{src} -> {dst}")
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, moved)
    for name in ("remove", "unlink", "rmdir", "mkdir", "utime", "chmod", "truncate"):
        real = getattr(os, name)

        def changed(path, *args, _real=real, _name=name, **kwargs):
            if under(path):
                refuse(f"os.{_name}", path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, changed)
    return attempts


def test_the_guard_catches_writes(monkeypatch, tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "a.txt").write_text("x")
    attempts = guard(monkeypatch, raw)
    for attempt in (lambda: (raw / "a.txt").write_text("y"), lambda: open(raw / "b.txt", "a"),
                    lambda: (raw / "a.txt").unlink(), lambda: (raw / "a.txt").rename(tmp_path / "c.txt"),
                    lambda: (raw / "d.txt").touch(), lambda: zipfile.ZipFile(raw / "e.zip", "w")):
        with pytest.raises(PermissionError):
            attempt()
    assert len(attempts) >= 6
    assert (raw / "a.txt").read_text() == "x"  # reading is fine


def test_raw_data_is_never_written(monkeypatch, demo_study):
    raw = demo_study / "data" / "raw"
    assert analyze(demo_study).exit_code == 0  # a first run: the second one refreshes earlier outputs
    (raw / "D01_S3_ipr-client.txt").write_text(
        (raw / "D01_S3_ipr-client.txt").read_text(encoding="utf-8") + "\nC: One more thing.\n", encoding="utf-8")
    before = raw_state(raw)
    attempts = guard(monkeypatch, raw)
    result = analyze(demo_study)
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert attempts == []
    assert raw_state(raw) == before


def test_a_run_opens_no_network_connection(monkeypatch, demo_study):
    import socket

    tried = []

    def refuse(*args, **kwargs):
        tried.append(args)
        raise OSError("test: no network")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    result = analyze(demo_study)
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert tried == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write read-only files")
def test_a_read_only_raw_folder_is_fine(demo_study):
    raw = demo_study / "data" / "raw"
    paths = sorted(raw.rglob("*"), reverse=True)
    try:
        for p in paths + [raw]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        result = analyze(demo_study)
        assert result.exit_code == 0, result.output
    finally:
        for p in [raw] + paths[::-1]:
            p.chmod(0o755 if p.is_dir() else 0o644)


# --- the key file as people make it ------------------------------------------------------------------------------

def key_from(tmp_path, data: bytes):
    from pipeline.deidentify import load_key
    from pipeline.study import Settings, Study

    (tmp_path / "key.csv").write_bytes(data)
    return load_key(Study(tmp_path, Settings(deidentify_key="key.csv")))


def test_a_key_saved_by_excel_in_cp1252_or_with_semicolons(tmp_path):
    deid = key_from(tmp_path, "name;pseudonym\r\nTomás Berg;Therapist-2\r\n".encode("cp1252"))
    assert deid("Tomás said, and TOMÁS again") == "Therapist-2 said, and Therapist-2 again"
    deid = key_from(tmp_path, "name,pseudonym\nTomás Berg,T2\n".encode("utf-16"))
    assert deid("Berg, Tomás") == "T2, T2"


def test_typographic_apostrophes_and_hyphenated_names(tmp_path):
    deid = key_from(tmp_path, "name,pseudonym\nSiobhán O'Neil,C-9\nAnne-Marie Dubois,C-8\n".encode())
    assert deid("Thanks, Ms O’Neil; O'NEIL.") == "Thanks, Ms C-9; C-9."
    assert deid("Anne-Marie, or just Anne, or Marie") == "C-8, or just C-8, or C-8"


def test_a_pseudonym_that_holds_a_real_name_is_refused(tmp_path):
    from pipeline.errors import InputError

    with pytest.raises(InputError) as e:
        key_from(tmp_path, b"name,pseudonym\nAnna Novak,Anna-2\nJo Berg,P3\n")
    assert [str(p) for p in e.value.problems] == [
        "key.csv, row 2: the pseudonym 'Anna-2' holds a real name (or a part of one) of the key (choose a "
        "pseudonym that shares no word with any name)"]


def test_a_backup_holding_a_real_name_fails_the_leak_check(keyed, tmp_path):
    from pipeline.deidentify import find_leaks, load_key
    from pipeline.study import load_study

    root = tmp_path / "study"
    shutil.copytree(keyed[0], root)
    study = load_study(root)
    assert find_leaks(study, load_key(study)) == []
    backup = root / "data" / "coded" / "coder_a" / ".backup" / "D01_S3_session.20250101-120000.xlsx"
    backup.parent.mkdir(exist_ok=True)
    book = openpyxl.Workbook()
    book.active["A1"] = "Jonas said so"
    book.save(backup)
    (problem,) = find_leaks(study, load_key(study))
    assert problem.file == backup.relative_to(root).as_posix() and "backup" in problem.hint
