"""Forms that libraries read: WebVTT, SubRip, CSV/XLSX tables, ELAN."""

from pathlib import Path

import openpyxl
import pytest

from pipeline.ingest.readers import read_transcript

SAME = Path(__file__).parent / "data" / "ingest" / "same"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(path: Path):
    return [(t.speaker, t.start_s, t.end_s, t.text) for t in read_transcript(path).turns]


def test_teams_vtt_voice_spans_and_consecutive_cues_of_one_speaker(tmp_path):
    text = ("WEBVTT\n\nNOTE exported from Teams\n\n"
            "0a1b2c3d-0000-4e51-8b0a-2f6d9c1e7a10/1-0\n00:00:01.000 --> 00:00:02.500\n<v Dr. Ruiz>Hello.</v>\n\n"
            "0a1b2c3d-0000-4e51-8b0a-2f6d9c1e7a10/1-1\n00:00:02.500 --> 00:00:04.000\n<v Dr. Ruiz>How are you?\n\n"
            "0a1b2c3d-0000-4e51-8b0a-2f6d9c1e7a10/2-0\n01:00:05.000 --> 01:00:06.000\n"
            "<v.loud Jo>Fine: thanks.</v>\n")
    assert rows(write(tmp_path, "t.vtt", text)) == [
        ("Dr. Ruiz", 1.0, 2.5, "Hello."), ("Dr. Ruiz", 2.5, 4.0, "How are you?"),
        ("Jo", 3605.0, 3606.0, "Fine: thanks."),
    ]


def test_zoom_vtt_multi_line_cue(tmp_path):
    text = "WEBVTT\n\n1\n00:01.000 --> 00:04.000\nJane Doe: Hello there,\nhow are you?\n"
    assert rows(write(tmp_path, "t.vtt", text)) == [("Jane Doe", 1.0, 4.0, "Hello there, how are you?")]


def test_subtitles_without_speakers_have_an_empty_speaker_and_a_warning(tmp_path):
    path = write(tmp_path, "t.srt", "1\n00:00:01,000 --> 00:00:02,000\n<i>Hello.</i>\n\n"
                                    "2\n00:00:03,000 --> 00:00:04,000\nand then: nothing\n")
    parsed = read_transcript(path)
    assert [(t.speaker, t.text) for t in parsed.turns] == [("", "Hello."), ("", "and then: nothing")]
    assert len(parsed.warnings) == 1 and "2 turn(s) name no speaker" in parsed.warnings[0]


@pytest.mark.parametrize("text", [
    "Text,Who,Timestamp\nHello.,T,00:00:05\nHi.,C,0:12\n",
    "who;start;text\nT;5;Hello.\nC;12;Hi.\n",
    "Speaker\tStart_ms\tEnd_ms\tTranscript\nT\t5000\t6000\tHello.\nC\t12000\t\tHi.\n",
    "T,00:00:05,Hello.\nC,00:00:12,Hi.\n",  # no header: told by what the columns hold
    "00:00:05,Hello.,T\n00:00:12,Hi.,C\n",
    'Name,Begin Time,Content\nT,00:00:05,Hello.\n,,\nC,00:00:12,"Hi."\n',
])
def test_csv_columns_by_header_or_by_content(tmp_path, text):
    got = [(s, start, t) for s, start, _, t in rows(write(tmp_path, "t.csv", text))]
    assert got == [("T", 5.0, "Hello."), ("C", 12.0, "Hi.")]


@pytest.mark.parametrize("text", [
    "Timespan,Content,Speaker\n0:05.0 - 0:09.5,Hello.,T\n1:02:03.5 - 1:02:10.0,Hi.,C\n",  # NVivo's export
    "Time,Speaker,Text\n00:00:05 --> 00:00:09.5,T,Hello.\n01:02:03.5-->01:02:10,C,Hi.\n",
    "Time span;Speaker;Text\n0:05 – 0:09.5;T;Hello.\n1:02:03.5 to 1:02:10;C;Hi.\n",
    "0:05.0 - 0:09.5,T,Hello.\n1:02:03.5 - 1:02:10.0,C,Hi.\n",  # no header: told by what the column holds
])
def test_a_column_of_time_spans_gives_start_and_end(tmp_path, text):
    assert rows(write(tmp_path, "t.csv", text)) == [("T", 5.0, 9.5, "Hello."), ("C", 3723.5, 3730.0, "Hi.")]


@pytest.mark.parametrize("text", ["When,Who,Text\n00:00:05,T,Hello there.\n00:00:12,C,Hi.\n",
                                  "When,Who,Said\n00:00:05,T,Hello there.\n00:00:12,C,Hi.\n"])
def test_a_column_of_times_under_a_header_we_do_not_know_is_found_by_what_it_holds(tmp_path, text):
    assert rows(write(tmp_path, "t.csv", text)) == [("T", 5.0, None, "Hello there."), ("C", 12.0, None, "Hi.")]


def test_an_end_column_beside_a_span_is_the_end(tmp_path):
    text = "Timespan,End,Speaker,Text\n0:05 - 0:09,0:11,T,Hello.\n"
    assert rows(write(tmp_path, "t.csv", text)) == [("T", 5.0, 11.0, "Hello.")]


def test_csv_quoted_text_over_several_lines_keeps_its_first_line(tmp_path):
    text = 'speaker,text\nT,"Hello,\nstill me."\nC,Hi.\n'
    parsed = read_transcript(write(tmp_path, "t.csv", text))
    assert [(t.text, t.line) for t in parsed.turns] == [("Hello, still me.", 2), ("Hi.", 4)]


def test_xlsx_reads_the_first_sheet_that_holds_turns(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "About"
    book.active.append(["Study", "D01"])
    sheet = book.create_sheet("Transcript")
    sheet.append(["Start", "End", "Speaker", "Text"])
    sheet.append([5, 6.5, "T", "Hello."])
    sheet.append(["0:12", None, "C", "Hi."])
    book.save(tmp_path / "t.xlsx")
    assert rows(tmp_path / "t.xlsx") == [("T", 5.0, 6.5, "Hello."), ("C", 12.0, None, "Hi.")]


def test_elan_tiers_are_speakers_dependent_tiers_are_not(tmp_path):
    parsed = read_transcript(SAME / "session.eaf")
    assert {t.speaker for t in parsed.turns} == {"Therapist", "Client"}
    assert "ehrlich gesagt" not in " ".join(t.text for t in parsed.turns)
    assert [t.start_s for t in parsed.turns] == sorted(t.start_s for t in parsed.turns)
    assert parsed.turns[0].line == 22  # the annotation's line in the XML


def test_elan_unaligned_time_slot_gives_no_time(tmp_path):
    text = (SAME / "session.eaf").read_text(encoding="utf-8").replace(
        '<TIME_SLOT TIME_SLOT_ID="ts12" TIME_VALUE="75000"/>', '<TIME_SLOT TIME_SLOT_ID="ts12"/>')
    parsed = read_transcript(write(tmp_path, "t.eaf", text))
    assert parsed.turns[-1].end_s is None and parsed.turns[-1].start_s == 70.0


def test_a_turn_number_column_is_not_the_text(tmp_path):
    text = "Turn number,Line no,Speaker,Turn\n1,3,T,Hello.\n2,4,C,Hi.\n"
    assert [(s, t) for s, _, _, t in rows(write(tmp_path, "t.csv", text))] == [("T", "Hello."), ("C", "Hi.")]
