"""Each kind of bad file gets one line that names it, says what is wrong and what to do; never a traceback."""

import io
import os
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from pipeline.errors import InputError
from pipeline.ingest.readers import read_transcript

SAME = Path(__file__).parent / "data" / "ingest" / "same"


def docx_bytes() -> bytes:
    document = docx.Document()
    for i in range(40):
        document.add_paragraph(f"T: line {i}")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["Number", "Value"])
    book.active.append([1, 2])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_without_document() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("hello.txt", "not a Word file")
    return buffer.getvalue()


BAD = {
    "empty.txt": (b"", "empty"),
    "blank.txt": (b"  \n\r\n\t\n", "empty"),
    "junk.txt": (os.urandom(64) + b"\x00\x01\x02\x03" * 200, "not"),
    "nolabels.txt": (b"We talked for a while about work.\nThen about her mother.\n", "no speaker labels"),
    "empty.docx": (b"", "not a readable Word document"),
    "truncated.docx": (None, "not a readable Word document"),
    "text.docx": (b"T: I am not a zip file\n", "not a readable Word document"),
    "other.docx": (zip_without_document(), "not a readable Word document"),
    "nolabels.docx": (None, "no speaker labels"),
    "text.xlsx": (b"Speaker,Text\nT,hello\n", "not a readable Excel workbook"),
    "numbers.xlsx": (xlsx_bytes(), "no column of turn text"),
    "noheader.vtt": (b"00:00:01.000 --> 00:00:02.000\nT: hi\n", "not valid WebVTT"),
    "badtime.vtt": (b"WEBVTT\n\n00:00:xx.000 --> 00:00:02.000\nT: hi\n", "no cue could be read"),
    "empty.vtt": (b"WEBVTT\n\n", "no turns"),
    "bad.srt": (b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:0x,000 --> 00:00:03,000\nho\n",
                "not valid SubRip"),
    "notsrt.srt": (b"hello world\nthis is not srt\n", "not valid SubRip"),
    "numbers.csv": (b"a,b\n1,2\n3,4\n", "no column of turn text"),
    "broken.eaf": (b"<?xml version='1.0'?><ANNOTATION_DOCUMENT><TIER", "not a readable ELAN file"),
    "session.pdf": (b"%PDF-1.4", "not a transcript form"),
    "session.doc": (b"\xd0\xcf\x11\xe0", "not a transcript form"),
    "notes.md": (b"# notes", "not a transcript form"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_give_one_clear_line(tmp_path, name):
    data, message = BAD[name]
    if name == "truncated.docx":
        data = docx_bytes()[:1500]
    if name == "nolabels.docx":
        document = docx.Document()
        document.add_paragraph("Notes from the session. We talked about work.")
        buffer = io.BytesIO()
        document.save(buffer)
        data = buffer.getvalue()
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_transcript(path)
    (problem,) = caught.value.problems
    text = str(problem)
    assert name in text and message in text
    assert "\n" not in text and "Traceback" not in text
    assert problem.hint, "every error says what to do"


def test_the_error_of_a_bad_srt_names_the_line(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_bytes(BAD["bad.srt"][0])
    with pytest.raises(InputError) as caught:
        read_transcript(path)
    assert caught.value.problems[0].where == "line 5"


def test_a_malformed_cue_among_good_ones_is_a_warning(tmp_path):
    path = tmp_path / "t.vtt"
    path.write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nT: hi\n\n00:0x.000 --> 00:04.000\nC: lost\n\n"
                    "00:05.000 --> 00:06.000\nT: ok\n", encoding="utf-8")
    parsed = read_transcript(path)
    assert [t.text for t in parsed.turns] == ["hi", "ok"]
    assert any("1 malformed cue" in w and "line 6" in w for w in parsed.warnings)


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        read_transcript(tmp_path / "gone.txt")


def test_a_bad_time_cell_is_a_warning_not_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,speaker,text\n00:00:05,T,Hello\nsoon,C,Hi\n", encoding="utf-8")
    parsed = read_transcript(path)
    assert [t.start_s for t in parsed.turns] == [5.0, None]
    assert any("line 3" in w and "soon" in w for w in parsed.warnings)


def test_every_good_fixture_reads_without_error():
    for path in SAME.iterdir():
        assert read_transcript(path).turns
