"""Stop markers in IPR interviews: taken out of the turns in every form, with their place among the turns."""

from pathlib import Path

import docx
import openpyxl

from pipeline.ingest.readers import read_transcript

IPR = Path(__file__).parent / "data" / "ingest" / "ipr"


def stops(parsed):
    return [(s.video_s, s.line, s.after_turn) for s in parsed.stops]


def test_stops_in_a_text_interview():
    parsed = read_transcript(IPR / "D01_S3_ipr-client.txt")
    assert [(t.speaker, t.text) for t in parsed.turns] == [
        ("I", "We'll watch the session and you stop it whenever something stands out."),
        ("C", "Okay."),
        ("I", "What was going on for you there?"),
        ("C", "I felt like she wasn't listening (.) like she had her own plan."),
        ("I", "And here?"),
        ("C", "Here it was better. [inaudible 00:12:31] she got it."),
        ("I", "Two stops in a row?"),
        ("C", "Yes."),
    ]
    assert stops(parsed) == [(252, 5, 2), (723, 9, 4), (940, 11, 6), (962, 12, 6)]
    assert parsed.turns[4].line == 9  # the turn after a marker on the same line keeps that line


def test_study_stop_patterns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("I: Ready?\n[CUE 4:12]\nC: Yes.\n", encoding="utf-8")
    assert stops(read_transcript(path)) == []
    parsed = read_transcript(path, [r"^\[CUE (?P<time>[0-9:.]+)\]$"])
    assert stops(parsed) == [(252, 2, 1)] and len(parsed.turns) == 2


def test_stops_in_word_paragraphs(tmp_path):
    document = docx.Document()
    for text in ["I: Ready?", "[Paused 00:04:12]", "C: There.", "<<paused at 5:00>> I: And now?", "C: Now."]:
        document.add_paragraph(text)
    document.save(tmp_path / "t.docx")
    parsed = read_transcript(tmp_path / "t.docx")
    assert [t.text for t in parsed.turns] == ["Ready?", "There.", "And now?", "Now."]
    assert stops(parsed) == [(252, 2, 1), (300, 4, 2)]


def test_stops_in_a_word_table(tmp_path):
    document = docx.Document()
    table = document.add_table(rows=0, cols=3)
    for row in [("Time", "Speaker", "Text"), ("00:00:01", "I", "Ready?"), ("", "", "[Video stopped: 4:12.5]"),
                ("00:00:30", "C", "There.")]:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = value
    document.save(tmp_path / "t.docx")
    parsed = read_transcript(tmp_path / "t.docx")
    assert [t.text for t in parsed.turns] == ["Ready?", "There."]
    assert stops(parsed) == [(252.5, 3, 1)]


def test_stops_in_tables_and_subtitles(tmp_path):
    (tmp_path / "t.csv").write_text("speaker,text\nI,Ready?\n,STOP 2 - 00:12:03\nC,There.\n", encoding="utf-8")
    assert stops(read_transcript(tmp_path / "t.csv")) == [(723, 3, 1)]
    book = openpyxl.Workbook()
    for row in [("speaker", "text"), ("I", "Ready?"), ("I", "--- video halted at 1:02:03 --- What now?")]:
        book.active.append(row)
    book.save(tmp_path / "t.xlsx")
    parsed = read_transcript(tmp_path / "t.xlsx")
    assert stops(parsed) == [(3723, 3, 1)] and parsed.turns[1].text == "What now?"
    vtt = ("WEBVTT\n\n1\n00:01.000 --> 00:02.000\nI: Ready?\n\n2\n00:03.000 --> 00:04.000\n"
           "[Video paused at 00:04:12]\n\n3\n00:05.000 --> 00:06.000\nC: There.\n")
    (tmp_path / "t.vtt").write_text(vtt, encoding="utf-8")
    parsed = read_transcript(tmp_path / "t.vtt")
    assert stops(parsed) == [(252, 8, 1)] and len(parsed.turns) == 2
    assert not parsed.warnings  # the marker's cue is no turn without a speaker


def test_a_time_in_an_annotation_or_a_pause_is_no_stop(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("I: Go on. (2.0)\n[inaudible 00:12:31]\nC: (pause) I stopped at 4:12 then.\n",
                    encoding="utf-8")
    assert read_transcript(path).stops == []
