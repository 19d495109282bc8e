"""Bad input meets a clear message and leaves the study as it was.

Every case starts from a copy of the demo study that was analysed once (so there are earlier outputs to lose),
breaks one thing the way people do, and runs ``ipr analyze``.  Each must exit with status 1, print one line per
problem naming the file and the line, row or cell, print no traceback, and leave every file of the study
byte-identical (earlier outputs, coders' workbooks, raw data), with no file added.

Some odd inputs are not errors, because a researcher would want the run to go on (``TOLERATED``): UTF-16 text
without a byte-order mark is read as it is; times that go backwards, a session without times and an interview
without stop markers are warnings that name the file (and the line), and the run goes on.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REPO

from pipeline.cli import main

RAW = "data/raw"
CODED = "data/coded"


# --- the analysed study, once per module; a copy per case ------------------------------------------------------

def analyze(root: Path):
    return CliRunner().invoke(main, ["analyze", "--study", str(root)])


def snapshot(root: Path) -> dict[str, str]:
    """Every file (by SHA-256) and folder of the study."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = ("link to " + str(p.readlink()) if p.is_symlink() else "dir" if p.is_dir()
                    else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


# --- ways to break things ---------------------------------------------------------------------------------------

def put(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def go(root: Path):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return go


def edit(rel: str, fn: Callable[[str], str]) -> Callable[[Path], None]:
    def go(root: Path):
        path = root / rel
        new = fn(path.read_text(encoding="utf-8"))
        assert new != path.read_text(encoding="utf-8"), f"the edit of {rel} changed nothing"
        path.write_text(new, encoding="utf-8")
    return go


def sub(rel: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    return edit(rel, lambda t: t.replace(old, new, count))


def append(rel: str, text: str) -> Callable[[Path], None]:
    return edit(rel, lambda t: t + text)


def cut(rel: str, keep: float = 0.5) -> Callable[[Path], None]:
    def go(root: Path):
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[: int(len(data) * keep)])
    return go


def link(rel: str, target: str) -> Callable[[Path], None]:
    def go(root: Path):
        (root / rel).symlink_to(target)
    return go


def both(*steps) -> Callable[[Path], None]:
    def go(root: Path):
        for step in steps:
            step(root)
    return go


def junk(n: int = 3000, seed: int = 9) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.randrange(256) for _ in range(n)) + b"\x00\x01\x02\x03" * 50


def cfb(encrypted: bool) -> bytes:
    """The start of an OLE compound file, as Office writes a password-protected .docx/.xlsx (directory entries
    EncryptionInfo and EncryptedPackage) or an old .doc/.xls."""
    header = bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    header += b"\x00" * (512 - len(header))
    names = ["Root Entry", "EncryptionInfo", "EncryptedPackage"] if encrypted else ["Root Entry", "WordDocument"]
    entries = b"".join(n.encode("utf-16-le").ljust(64, b"\x00") + b"\x00" * 64 for n in names)
    return header + entries.ljust(512, b"\x00") + junk(1024)


def prose_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Notes from the session. We talked about work, then about her mother.")
    document.add_paragraph("She seemed tired. Next time: the worksheet.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def utf16_cut(root: Path):
    path = root / RAW / "D01_S3_ipr-client.txt"
    data = path.read_text(encoding="utf-8").encode("utf-16-le")
    path.write_bytes(data[:2001])  # an odd number of bytes: the last character is cut in half


def workbook(rel: str, fn: Callable) -> Callable[[Path], None]:
    """Edit a coder's workbook as a coder would, in a spreadsheet program, and save it."""
    def go(root: Path):
        book = openpyxl.load_workbook(root / rel)
        fn(book)
        book.save(root / rel)
    return go


def set_cells(sheet: str, **cells) -> Callable:
    def fn(book):
        for ref, value in cells.items():
            book[sheet][ref] = value
    return fn


def delete_unit_id_column(book):
    book["Turns"].delete_cols(1)


def rename_sheet(book):
    book["Turns"].title = "My codes"


CODE = "rupture.withdrawal.denial"  # a real code ID of the default codebook
A_SESSION = f"{CODED}/coder_a/D01_S3_session.xlsx"
A_IPR = f"{CODED}/coder_a/D01_S3_ipr-client.xlsx"
B_SESSION = f"{CODED}/coder_b/D02_S5_session.xlsx"
MANIFEST = f"{RAW}/manifest.csv"
KEY_SETTING = '\n[deidentify]\nkey = "private/key.csv"\n'
EVERY_ERROR = (REPO / "tests" / "data" / "codebooks" / "every_error.yaml").read_text(encoding="utf-8")
EXPECTED_CODEBOOK_LINES = len(re.findall(r"# expect:", EVERY_ERROR))

# name -> (how to break the study, the problems expected: (file, where, words of the message) each; the number of
# error lines, when it is not one per expected problem)
CASES: dict[str, tuple[Callable, list[tuple[str, str, str]]]] = {
    # transcripts
    "empty txt": (put(f"{RAW}/D01_S3_ipr-client.txt", b""), [(f"{RAW}/D01_S3_ipr-client.txt", "", "empty")]),
    "empty docx": (put(f"{RAW}/D01_S3_session.docx", b""), [(f"{RAW}/D01_S3_session.docx", "", "empty")]),
    "blank vtt": (put(f"{RAW}/D02_S5_session.vtt", b" \n\r\n\t\n"), [(f"{RAW}/D02_S5_session.vtt", "", "empty")]),
    "binary junk txt": (put(f"{RAW}/D01_S3_ipr-client.txt", junk()),
                        [(f"{RAW}/D01_S3_ipr-client.txt", "", "not")]),
    "binary junk vtt": (put(f"{RAW}/D02_S5_session.vtt", junk(seed=3)),
                        [(f"{RAW}/D02_S5_session.vtt", "", "not")]),
    "binary junk docx": (put(f"{RAW}/D01_S3_session.docx", junk()),
                         [(f"{RAW}/D01_S3_session.docx", "", "not a Word file")]),
    "truncated docx": (cut(f"{RAW}/D01_S3_session.docx"),
                       [(f"{RAW}/D01_S3_session.docx", "", "damaged or incomplete")]),
    "password-protected docx": (put(f"{RAW}/D01_S3_ipr-therapist.docx", cfb(encrypted=True)),
                                [(f"{RAW}/D01_S3_ipr-therapist.docx", "", "password-protected")]),
    "old .doc named .docx": (put(f"{RAW}/D01_S3_ipr-therapist.docx", cfb(encrypted=False)),
                             [(f"{RAW}/D01_S3_ipr-therapist.docx", "", "old-format Word file")]),
    "xlsx that is not a zip": (put(f"{RAW}/D03_S1_session.xlsx", "Speaker,Text\nT,Hello\n"),
                               [(f"{RAW}/D03_S1_session.xlsx", "", "not an Excel file")]),
    "password-protected xlsx": (put(f"{RAW}/D03_S1_session.xlsx", cfb(encrypted=True)),
                                [(f"{RAW}/D03_S1_session.xlsx", "", "password-protected")]),
    "UTF-16 without BOM, cut short": (utf16_cut, [(f"{RAW}/D01_S3_ipr-client.txt", "", "not valid UTF-16")]),
    "no speakers (txt)": (put(f"{RAW}/D01_S3_ipr-client.txt", "We talked for a while.\nThen about her mother.\n"),
                          [(f"{RAW}/D01_S3_ipr-client.txt", "", "no speaker labels")]),
    "no speakers (docx)": (put(f"{RAW}/D01_S3_session.docx", prose_docx()),
                           [(f"{RAW}/D01_S3_session.docx", "", "no speaker labels")]),
    "a file named neither way": (put(f"{RAW}/notes from session 3.txt", "T: Hello.\nC: Hi.\n"),
                                 [(f"{RAW}/notes from session 3.txt", "", "cannot tell which case")]),
    "one transcript twice": (put(f"{RAW}/D01_S3_session.txt", "T: Hello.\nC: Hi.\n"),
                             [(f"{RAW}/D01_S3_session.txt", "", "same transcript")]),
    "a link to a transcript that is gone": (link(f"{RAW}/D03_S1_session.txt", "../../elsewhere/D03_S1_session.txt"),
                                            [(f"{RAW}/D03_S1_session.txt", "", "a link to a file that is not there")]),
    "two bad transcripts at once": (both(put(f"{RAW}/D01_S3_ipr-client.txt", b""),
                                         put(f"{RAW}/D01_S3_session.docx", junk())),
                                    [(f"{RAW}/D01_S3_ipr-client.txt", "", "empty"),
                                     (f"{RAW}/D01_S3_session.docx", "", "not a Word file")]),
    # the manifest
    "manifest: a missing file": (append(MANIFEST, "D09_S1_session.docx,D09,S1,session,,\n"),
                                 [(MANIFEST, "row 8", "not in data/raw")]),
    "manifest: unknown kind": (sub(MANIFEST, "D01,S3,session", "D01,S3,video"),
                               [(MANIFEST, "row 2", "kind 'video'")]),
    "manifest: ipr row without participant": (sub(MANIFEST, "D01,S3,ipr,client", "D01,S3,ipr,"),
                                              [(MANIFEST, "row 3", "participant")]),
    "manifest: duplicate row": (append(MANIFEST, "D01_S3_session.docx,D01,S3,session,,\n"),
                                [(MANIFEST, "row 8", "twice")]),
    "manifest: a column missing": (sub(MANIFEST, "kind", "type"), [(MANIFEST, "row 1", "lacks kind")]),
    "manifest: offset not a number": (sub(MANIFEST, "client,-2", "client,two"),
                                      [(MANIFEST, "row 6", "offset_s 'two'")]),
    "manifest: lists a PDF": (both(put(f"{RAW}/D03_S1_session.pdf", b"%PDF-1.4"),
                                   append(MANIFEST, "D03_S1_session.pdf,D03,S1,session,,\n")),
                              [(MANIFEST, "", "not a transcript form")]),
    # the codebook
    "codebook: every kind of error": (both(put("codebooks/broken.yaml", EVERY_ERROR),
                                           sub("study.toml", "rupture_repair.yaml", "broken.yaml")),
                                      [("codebooks/broken.yaml", "line 4", "unknown key 'colour'"),
                                       ("codebooks/broken.yaml", "line 11", "duplicate ID"),
                                       ("codebooks/broken.yaml", "line ", "invalid regular expression")]),
    "codebook: a token pattern spaCy refuses (checked where spaCy is loaded)": (
        sub("codebooks/rupture_repair.yaml", "pattern: [{LOWER: i}, {LEMMA:", "pattern: [{LOWR: i}, {LEMMA:"),
        [("codebooks/rupture_repair.yaml", "line 272", "invalid token pattern")]),
    "codebook: missing": (sub("study.toml", "rupture_repair.yaml", "nope.yaml"),
                          [("codebooks/nope.yaml", "", "missing")]),
    "codebook: invalid YAML": (both(put("codebooks/bad.yaml", "title: x\ncodes:\n  - id: a\n   name: [unclosed\n"),
                                    sub("study.toml", "rupture_repair.yaml", "bad.yaml")),
                               [("codebooks/bad.yaml", "line ", "not valid YAML")]),
    "codebook: not UTF-8": (both(put("codebooks/latin.yaml", b"title: caf\xe9\n\xff\xfe\x00"),
                                 sub("study.toml", "rupture_repair.yaml", "latin.yaml")),
                            [("codebooks/latin.yaml", "", "not UTF-8")]),
    # study.toml
    "study.toml: unknown key": (edit("study.toml", lambda t: "colour = 'blue'\n" + t),
                                [("study.toml", "line 1", "unknown key 'colour'")]),
    "study.toml: unknown section": (append("study.toml", "\n[plots]\ndpi = 300\n"),
                                    [("study.toml", "line 11", "unknown section [plots]")]),
    "study.toml: wrong type": (sub("study.toml", "window_s = 60", 'window_s = "sixty"'),
                               [("study.toml", "line 9", "window_s must be a number")]),
    "study.toml: coders not a list": (sub("study.toml", 'coders = ["coder_a", "coder_b"]', 'coders = "coder_a"'),
                                      [("study.toml", "line 3", "coders must be a list")]),
    "study.toml: the consensus coder capitalised": (
        sub("study.toml", 'coders = ["coder_a", "coder_b"]', 'coders = ["coder_a", "coder_b", "Consensus"]'),
        [("study.toml", "line 3", "the coder name 'Consensus' is the consensus coder's, written 'consensus'")]),
    "study.toml: a coder named as the automatic suggestions": (
        sub("study.toml", 'coders = ["coder_a", "coder_b"]', 'coders = ["coder_a", "Auto"]'),
        [("study.toml", "line 3", "the coder name 'Auto' is the report's name for the automatic suggestions")]),
    "study.toml: blind not true/false": (append("study.toml", '\n[export]\nblind = "yes"\n'),
                                         [("study.toml", "line 12", "true or false")]),
    "study.toml: unknown speaker role": (sub("study.toml", '"Dr. Ruiz" = "therapist"', '"Dr. Ruiz" = "doctor"'),
                                         [("study.toml", "line 6", "role 'doctor'")]),
    "study.toml: bad stop pattern": (append("study.toml", "stop_patterns = ['[CUE (?P<time>.*']\n"),
                                     [("study.toml", "line 10", "not a valid regular expression")]),
    "study.toml: invalid TOML": (append("study.toml", "window_s = = 5\n"),
                                 [("study.toml", "line 10", "not valid TOML")]),
    "study.toml: key file missing": (append("study.toml", KEY_SETTING), [("private/key.csv", "", "missing")]),
    "study.toml: key file without its columns": (both(append("study.toml", KEY_SETTING),
                                                      put("private/key.csv", "who,alias\nAnna Novak,C1\n")),
                                                 [("private/key.csv", "row 1", "name and pseudonym")]),
    # the coders' workbooks
    "workbook: unknown code": (workbook(A_SESSION, set_cells("Turns", I5="rupture.sulking")),
                               [(A_SESSION, "sheet Turns, cell I5", "unknown code 'rupture.sulking'")]),
    "workbook: a code's name typed": (workbook(A_SESSION, set_cells("Turns", I5="Minimal response", J5=CODE)),
                                      [(A_SESSION, "sheet Turns, cell I5", "unknown code 'Minimal response' (did you "
                                        "mean rupture.withdrawal.minimal_response? choose a code")]),
    "workbook: a typo in a code": (workbook(A_SESSION, set_cells("Turns", I5="rupture.withdrawl.denial")),
                                   [(A_SESSION, "sheet Turns, cell I5", "(did you mean rupture.withdrawal.denial?")]),
    "workbook: unknown code in Segments": (workbook(A_IPR, set_cells("Segments", K3="nonsense", M3="a memo")),
                                           [(A_IPR, "sheet Segments, cell K3", "unknown code 'nonsense'")]),
    "workbook: a comment typed into 'suggested codes'": (
        workbook(A_SESSION, set_cells("Turns", G10="resolution.redirect (agree)")),
        [(A_SESSION, "sheet Turns, cell G10", "'suggested codes' holds 'resolution.redirect (agree)': that column is "
                                             "the rules' and is not read (move codes to a 'code' column")]),
    "workbook: a memo typed into the alignment's 'note'": (workbook(A_IPR, set_cells("Segments", I4="check this")),
                                                           [(A_IPR, "sheet Segments, cell I4", "'note' holds")]),
    "workbook: a coder's folder named as the automatic suggestions": (
        both(sub("study.toml", 'coders = ["coder_a", "coder_b"]', ""), put(f"{CODED}/auto/D01_S3_session.xlsx", b"PK")),
        [(f"{CODED}/auto/", "", "the coder name 'auto' is the report's name for the automatic suggestions")]),
    "workbook: the consensus coder's folder capitalised": (
        both(sub("study.toml", 'coders = ["coder_a", "coder_b"]', ""),
             put(f"{CODED}/Consensus/D01_S3_session.xlsx", b"PK")),
        [(f"{CODED}/Consensus/", "", "the coder name 'Consensus' is the consensus coder's, written 'consensus' "
                                     "(write 'consensus': rename the folder")]),
    "workbook: a turn's words corrected in the workbook": (
        workbook(A_SESSION, set_cells("Turns", F5="Busy. Work has been a lot.")),
        [(A_SESSION, "sheet Turns, cell F5", "the turn's words were changed here: 'text' is not read, and a "
                                            "refreshed workbook would write the transcript's words over it (undo the "
                                            "change; to correct the transcript, correct data/raw/D01_S3_session.docx, "
                                            "line 4)")]),
    "workbook: saved in LibreOffice's own format beside it": (
        put(f"{CODED}/coder_a/D01_S3_session.ods", b"PK"),
        [(f"{CODED}/coder_a/D01_S3_session.ods", "", "is coder_a's workbook D01_S3_session.xlsx saved as .ods, "
                                                     "which the run does not read")]),
    "workbook: unit_id column deleted": (workbook(A_SESSION, delete_unit_id_column),
                                         [(A_SESSION, "sheet Turns, row 1", "unit_id column is missing")]),
    "workbook: unit_id cell deleted": (workbook(A_SESSION, set_cells("Turns", A7=None, I7=CODE)),
                                       [(A_SESSION, "sheet Turns, cell A7", "no unit_id")]),
    "workbook: sheet renamed": (workbook(A_SESSION, rename_sheet), [(A_SESSION, "", "no sheet named Turns")]),
    "workbook: open in Excel (lock file)": (put(f"{CODED}/coder_a/~$D01_S3_session.xlsx", b"\x00lock"),
                                            [(A_SESSION, "", "lock file")]),
    "workbook: open in LibreOffice (lock file)": (put(f"{CODED}/coder_a/.~lock.D01_S3_session.xlsx#", "lock"),
                                                  [(A_SESSION, "", "lock file")]),
    "workbook: not a workbook": (put(A_SESSION, "unit_id,code 1\n"), [(A_SESSION, "", "not a readable Excel")]),
    "workbook: truncated": (cut(A_SESSION), [(A_SESSION, "", "not a readable Excel")]),
    "workbooks of two coders": (both(workbook(A_SESSION, set_cells("Turns", J4="x.y")),
                                     workbook(B_SESSION, set_cells("Turns", K9="Denial!"))),
                                [(A_SESSION, "sheet Turns, cell J4", "unknown code 'x.y'"),
                                 (B_SESSION, "sheet Turns, cell K9", "unknown code 'Denial!'")]),
}
LINE_COUNTS = {"codebook: every kind of error": EXPECTED_CODEBOOK_LINES}


def test_there_are_enough_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_named_and_nothing_changes(study, name):
    breaking, expected = CASES[name]
    breaking(study)
    before = snapshot(study)
    result = analyze(study)
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert errors, out
    assert len(errors) == LINE_COUNTS.get(name, len(expected)), out
    for file, where, words in expected:
        place = f"{file}, {where}" if where else f"{file}:"
        assert any(place in line and words in line for line in errors), f"no line with {place!r} {words!r}:\n{out}"
    for line in errors:
        assert str(study) not in line, f"name files relative to the study: {line}"
    assert snapshot(study) == before, "a failed run changed the study"


# --- odd input that is not an error ---------------------------------------------------------------------------

def no_times(root: Path):
    """The session as plain text without any times (a transcriber's typed version)."""
    text = (root / RAW / "D02_S5_session.vtt").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines()[1:] if "-->" not in ln and not ln.strip().isdigit()]
    (root / RAW / "D02_S5_session.txt").write_text("\n".join(lines), encoding="utf-8")
    (root / RAW / "D02_S5_session.vtt").unlink()
    sub(MANIFEST, "D02_S5_session.vtt", "D02_S5_session.txt")(root)


def utf16_no_bom(root: Path):
    path = root / RAW / "D01_S3_ipr-client.txt"
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16-le"))


TOLERATED = {
    "times going backwards": (sub(f"{RAW}/D01_S3_ipr-client.txt", "[00:05:20] I:", "[00:01:00] I:"),
                              f"{RAW}/D01_S3_ipr-client.txt, line 11: the time 0:01:00 is earlier"),
    "a session without times": (no_times, f"{RAW}/D02_S5_session.txt: the session transcript has no times"),
    "an interview without stop markers": (edit(f"{RAW}/D01_S3_ipr-client.txt",
                                               lambda t: re.sub(r"(?m)^\[Video paused at [0-9:]+\]$", "", t)),
                                          f"{RAW}/D01_S3_ipr-client.txt: no stop markers found"),
    "UTF-16 without a byte-order mark": (utf16_no_bom, None),
}


@pytest.mark.parametrize("name", list(TOLERATED))
def test_odd_input_that_is_not_an_error(study, name):
    breaking, warning = TOLERATED[name]
    turns_before = pd.read_parquet(study / "data" / "interim" / "turns.parquet")
    breaking(study)
    result = analyze(study)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    for line in warnings:
        assert str(study) not in line, f"name files relative to the study: {line}"
    if warning:
        assert any(warning in line for line in warnings), result.output
    else:
        turns = pd.read_parquet(study / "data" / "interim" / "turns.parquet")
        pd.testing.assert_frame_equal(turns, turns_before)
