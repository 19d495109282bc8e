"""LibreOffice's .odt and Rich Text Format .rtf transcripts: read with their own rules for text (ODF's spaces,
footnotes and annotations; RTF's code pages and escapes), as paragraphs or tables, with a clear error for a file
that is not what its name says; and a study whose interview and session come in these forms aligns as before."""

import shutil

import docx
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import copy_demo
from test_ingest_forms import save_odt

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.ingest.readers import READERS, read_transcript
from pipeline.study import TRANSCRIPT_EXTENSIONS


def test_every_form_found_in_data_raw_has_its_reader():
    assert set(READERS) == set(TRANSCRIPT_EXTENSIONS)


def turns(path):
    return [(t.speaker, t.text, t.start_s, t.line) for t in read_transcript(path).turns]


def test_odt_paragraphs_as_a_reader_sees_them(tmp_path):
    body = ('<text:p>T:<text:s text:c="2"/>How was<text:tab/>the week?<text:note text:note-class="footnote">'
            "<text:note-citation>1</text:note-citation><text:note-body><text:p>C: a footnote</text:p>"
            "</text:note-body></text:note><text:line-break/>C: Fine.</text:p>"
            "<text:p>T: Really?<office:annotation><text:p>check this</text:p></office:annotation></text:p>"
            '<text:list><text:list-item><text:p>C: In a <text:span text:style-name="T1">list</text:span>.</text:p>'
            '</text:list-item></text:list><text:section text:name="S"><text:p>T: In a section.</text:p></text:section>')
    assert turns(save_odt(tmp_path / "s.odt", body)) == [
        ("T", "How was\tthe week?", None, 1), ("C", "Fine.", None, 1), ("T", "Really?", None, 2),
        ("C", "In a list.", None, 3), ("T", "In a section.", None, 4)]


def test_odt_stop_markers_are_stops(tmp_path):
    body = ("<text:p>I: Shall we watch?</text:p><text:p>[Video paused at 00:04:12]</text:p>"
            "<text:p>I: What was going on?</text:p><text:p>C: I felt unheard.</text:p>")
    parsed = read_transcript(save_odt(tmp_path / "D1_S1_ipr-client.odt", body))
    assert [(s.video_s, s.line, s.after_turn) for s in parsed.stops] == [(252.0, 2, 1)]
    assert [t.text for t in parsed.turns] == ["Shall we watch?", "What was going on?", "I felt unheard."]


@pytest.mark.parametrize("content", [b"not a zip at all", None])
def test_a_damaged_odt_is_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "D1_S1_session.odt"
    if content is None:  # a zip without the document's text
        save_odt(path, "<text:p>T: Hi.</text:p>")
        import zipfile

        with zipfile.ZipFile(path, "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as e:
        read_transcript(path)
    assert len(e.value.problems) == 1
    message = str(e.value.problems[0])
    assert message.startswith(f"{path}: the file is not a readable OpenDocument text")
    assert "save it again as .odt, or as .docx" in message


def _rtf(body: str, code_page: int = 1252) -> bytes:
    return (r"{\rtf1\ansi\ansicpg" + str(code_page) + r"\deff0{\fonttbl{\f0\fnil Calibri;}}\uc1\pard\f0\fs22 "
            + body + "}").encode("ascii")


def test_rtf_escapes_and_code_pages(tmp_path):
    (tmp_path / "a.rtf").write_bytes(_rtf(r"T: Caf\'e9 or tea?\par C: I\rquote d say \u8220?tea\u8221?.\line "
                                          r"Maybe.\par "))
    assert turns(tmp_path / "a.rtf") == [("T", "Café or tea?", None, 1), ("C", "I’d say “tea”. Maybe.", None, 2)]
    (tmp_path / "b.rtf").write_bytes(_rtf(r"T: \'cf\'f0\'e8\'e2\'e5\'f2.\par ", code_page=1251))
    assert turns(tmp_path / "b.rtf") == [("T", "Привет.", None, 1)]


def test_an_rtf_table_is_read_as_a_table(tmp_path):
    rows = [("Time", "Speaker", "Text"), ("00:00:05", "Therapist", "How are you?"), ("00:00:09", "Client", "Tired.")]
    body = r"Session 3\par " + "".join(
        r"\trowd\cellx2000\cellx4000\cellx9000 " + "".join(rf"\intbl {cell}\cell " for cell in row) + r"\row "
        for row in rows)
    (tmp_path / "s.rtf").write_bytes(_rtf(body))
    assert [(s, t, start) for s, t, start, _ in turns(tmp_path / "s.rtf")] == [
        ("Therapist", "How are you?", 5.0), ("Client", "Tired.", 9.0)]


def test_a_file_named_rtf_that_is_not_rtf_says_so(tmp_path):
    path = tmp_path / "D1_S1_session.rtf"
    path.write_text("T: Hello.\n")
    with pytest.raises(InputError, match=r"is not in Rich Text Format.*save it as \.docx"):
        read_transcript(path)


def test_a_study_with_an_odt_interview_and_an_rtf_session_aligns_as_before(analysed, tmp_path):
    """The demo's client interview as LibreOffice paragraphs and its session as RTF paragraphs: the same turns,
    stops and recalls as from the .txt and .docx they were made from."""
    root = copy_demo(tmp_path / "study")
    raw = root / "data" / "raw"
    lines = (raw / "D01_S3_ipr-client.txt").read_text(encoding="utf-8").splitlines()
    esc = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
    save_odt(raw / "D01_S3_ipr-client.odt", "".join(f"<text:p>{line.translate(esc)}</text:p>" for line in lines))
    paragraphs = [p.text for p in docx.Document(str(raw / "D01_S3_session.docx")).paragraphs]
    rtf = "".join(p.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}") + r"\par " for p in paragraphs)
    (raw / "D01_S3_session.rtf").write_bytes(_rtf("".join(c if ord(c) < 128 else rf"\u{ord(c)}?" for c in rtf)))
    for old in ("D01_S3_ipr-client.txt", "D01_S3_session.docx"):
        (raw / old).unlink()
    manifest = (raw / "manifest.csv").read_text(encoding="utf-8")
    (raw / "manifest.csv").write_text(manifest.replace("D01_S3_ipr-client.txt", "D01_S3_ipr-client.odt")
                                      .replace("D01_S3_session.docx", "D01_S3_session.rtf"), encoding="utf-8")
    shutil.rmtree(raw.parent / "interim", ignore_errors=True)
    result = CliRunner().invoke(main, ["analyze", "--study", str(root)])
    assert result.exit_code == 0, result.output
    columns = ["segment_id", "status", "session_turn_ids", "recall_text"]
    new = pd.read_parquet(root / "data" / "interim" / "segments.parquet")[columns]
    old = pd.read_parquet(analysed / "data" / "interim" / "segments.parquet")[columns]
    pd.testing.assert_frame_equal(new, old)
    before = pd.read_parquet(analysed / "data" / "interim" / "turns.parquet")
    after = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    for tid in ("D01_S3_ipr-client", "D01_S3_session"):
        keep = ["turn_id", "speaker", "role", "start_s", "text"]
        pd.testing.assert_frame_equal(after[after["transcript_id"] == tid][keep].reset_index(drop=True),
                                      before[before["transcript_id"] == tid][keep].reset_index(drop=True))
