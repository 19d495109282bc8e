"""Plain-text layouts, encodings and line ends."""

import codecs
from pathlib import Path

import pytest

from pipeline.ingest.encoding import guess_encoding
from pipeline.ingest.readers import read_transcript

SAME = Path(__file__).parent / "data" / "ingest" / "same"


def write(tmp_path: Path, text: str, name: str = "t.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def turns(path: Path):
    return [(t.speaker, t.start_s, t.text) for t in read_transcript(path).turns]


@pytest.mark.parametrize("line, speaker, start", [
    ("[00:01:02] T: Hello.", "T", 62),
    ("00:01:02 T: Hello.", "T", 62),
    ("(00:01:02) Th.: Hello.", "Th.", 62),
    ("00:01:02 - Therapist: Hello.", "Therapist", 62),
    ("T (01:02): Hello.", "T", 62),
    ("T [1:01:02]: Hello.", "T", 3662),
    ("T 01:02: Hello.", "T", 62),
    ("T: [00:01:02] Hello.", "T", 62),
    ("T: Hello.", "T", None),
    ("Dr. Ruiz: Hello.", "Dr. Ruiz", None),
    ("Speaker 1: Hello.", "Speaker 1", None),
    ("[1:02.5] C: Hello.", "C", 62.5),
    ("[00:01:02:15] T: Hello.", "T", 62),  # a video timecode: frames dropped
    ("01:01:02:29 - Therapist: Hello.", "Therapist", 3662),
])
def test_label_colon_forms(tmp_path, line, speaker, start):
    path = write(tmp_path, f"{line}\nC: Fine.\n")
    assert turns(path)[0] == (speaker, start, "Hello.")


def test_a_time_range_gives_start_and_end(tmp_path):
    turn = read_transcript(write(tmp_path, "[00:01:10 - 00:01:15] C: range\nT: ok\n")).turns[0]
    assert (turn.start_s, turn.end_s) == (70, 75)


def test_continuation_lines_are_joined_and_sentences_with_colons_stay_text(tmp_path):
    path = write(tmp_path, "T: So tell me.\nC: Well, it went like this.\nAnd she said: go away.\n"
                           "[inaudible 00:12:31] and then 12:40 came.\n\nT: Hm.\n")
    assert turns(path) == [
        ("T", None, "So tell me."),
        ("C", None, "Well, it went like this. And she said: go away. [inaudible 00:12:31] and then 12:40 came."),
        ("T", None, "Hm."),
    ]


def test_a_time_inside_a_convention_is_never_a_start(tmp_path):
    path = write(tmp_path, "T: Yes.\n[inaudible 00:12:31] C: no\n(00:12:40) C: Right.\n")
    got = turns(path)
    assert got[0] == ("T", None, "Yes. [inaudible 00:12:31] C: no")
    assert got[1] == ("C", 760, "Right.")


def test_a_time_on_its_own_line_times_the_next_turn(tmp_path):
    assert turns(write(tmp_path, "[00:02:00]\nT: After.\nC: Untimed.\n")) == [
        ("T", 120, "After."), ("C", None, "Untimed.")]


def test_otter_with_its_own_speaker_names(tmp_path):
    text = ("Speaker 1  0:03\nHow are you?\n\nJane Doe (Guest)  1:02:03\nSo: it was hard.\nReally hard.\n\n"
            "Speaker 1  1:02:10\nOk.\n\nTranscribed by https://otter.ai\n")
    assert turns(write(tmp_path, text)) == [
        ("Speaker 1", 3, "How are you?"),
        ("Jane Doe (Guest)", 3723, "So: it was hard. Really hard."),
        ("Speaker 1", 3730, "Ok."),
    ]


def test_teams_names_with_a_comma(tmp_path):
    text = "Doe, Jane   0:03\nHello.\nRuiz, Ana   0:09\nHi Jane.\n"
    assert turns(write(tmp_path, text)) == [("Doe, Jane", 3, "Hello."), ("Ruiz, Ana", 9, "Hi Jane.")]


@pytest.mark.parametrize("text", [
    "THERAPIST\nHow was your week?\n\nCLIENT\nFine.\nReally.\n",  # a known label alone over its words
    "Therapist\nHow was your week?\nClient\nFine. Really.\n",
    "T - How was your week?\nC - Fine. Really.\n",  # a dash or a full stop after the label
    "T.  How was your week?\nC.  Fine. Really.\n",
    "T – How was your week?\nC – Fine.\nReally.\n",
])
def test_known_labels_without_a_colon(tmp_path, text):
    assert [(s.upper()[0], t) for s, _, t in turns(write(tmp_path, text))] == [
        ("T", "How was your week?"), ("C", "Fine. Really.")]


def test_words_alone_on_a_line_are_not_labels_without_a_colon(tmp_path):
    """Only the built-in labels are read as speakers in those layouts: a name or a word alone stays text."""
    text = "T: How was your week?\nC: Fine.\nHonestly\nDr. Ruiz - not a label here\n"
    assert turns(write(tmp_path, text)) == [("T", None, "How was your week?"),
                                            ("C", None, "Fine. Honestly Dr. Ruiz - not a label here")]


def test_names_in_brackets_over_their_words(tmp_path):
    """As Zoom saves a meeting's captions, and some services export."""
    text = "[Dr Ruiz] 00:00:05\nHello, how are you today?\n\n[Client] 00:00:12\nFine, I guess.\nTired.\n"
    assert turns(write(tmp_path, text)) == [("Dr Ruiz", 5, "Hello, how are you today?"),
                                            ("Client", 12, "Fine, I guess. Tired.")]


def test_word_transcribe_speakers(tmp_path):
    text = "00:00:03 Speaker 1\nHello there.\n00:00:10 Speaker 2\nHi.\n"
    assert turns(write(tmp_path, text)) == [("Speaker 1", 3, "Hello there."), ("Speaker 2", 10, "Hi.")]


def test_a_heading_with_no_text_is_skipped_with_a_warning(tmp_path):
    parsed = read_transcript(write(tmp_path, "Speaker 1  0:03\n\nSpeaker 2  0:05\nHi.\n"))
    assert [t.speaker for t in parsed.turns] == ["Speaker 2"]
    assert any("line 1" in w and "no text" in w for w in parsed.warnings)


REFERENCE = (SAME / "colon_bare.txt").read_text(encoding="utf-8").replace(
    "not great.", "not “great”, café.")


@pytest.mark.parametrize("encode", [
    lambda s: s.encode("utf-8"),
    lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
    lambda s: s.encode("utf-16"),  # with a BOM, as Windows tools write it
    lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"),
    lambda s: s.encode("utf-16-le"),  # no BOM: told by its NUL bytes
    lambda s: s.encode("utf-16-be"),
    lambda s: s.encode("cp1252"),
    lambda s: s.replace("\n", "\r\n").encode("utf-8"),
    lambda s: s.replace("\n", "\r").encode("utf-8"),
    lambda s: s.replace("\n", "\r\n").encode("utf-16"),
], ids=["utf8", "utf8-bom", "utf16-bom", "utf16be-bom", "utf16le", "utf16be", "cp1252", "crlf", "cr",
        "utf16-crlf"])
def test_encodings_and_line_ends(tmp_path, encode):
    expected = turns(write(tmp_path, REFERENCE, "ref.txt"))
    path = tmp_path / "t.txt"
    path.write_bytes(encode(REFERENCE))
    got = read_transcript(path)
    assert [(t.speaker, t.start_s, t.text) for t in got.turns] == expected
    assert [t.line for t in got.turns] == [1, 3, 5, 6, 8, 9]
    assert "café" in got.turns[1].text and "“great”" in got.turns[1].text


def test_cp1252_csv_from_excel(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("Speaker;Text;Start (s)\r\nT;Ça va? “Bien”;3,5\r\nC;Très bien.;7\r\n".encode("cp1252"))
    parsed = read_transcript(path)
    assert [(t.speaker, t.text, t.start_s) for t in parsed.turns] == [
        ("T", "Ça va? “Bien”", 3.5), ("C", "Très bien.", 7.0)]


def test_guess_encoding():
    assert guess_encoding("T: é".encode()) == "utf-8"
    assert guess_encoding("T: é".encode("cp1252")) == "cp1252"
    assert guess_encoding("T: hi".encode("utf-16-le")) == "utf-16-le"
    assert guess_encoding("T: hi".encode("utf-16-be")) == "utf-16-be"


def test_subtitles_saved_as_txt_are_read_as_subtitles(tmp_path):
    for name in ("zoom.vtt", "session.srt"):
        path = write(tmp_path, (SAME / name).read_text(encoding="utf-8"), f"{name}.txt")
        parsed = read_transcript(path)
        assert len(parsed.turns) == 6 and parsed.turns[0].end_s == 11.5, name


@pytest.mark.parametrize("text, seconds", [
    ("00:01:02:15", 62), ("10:00:00:00", 36000), ("00:01:02:60", None), ("1:01:02:03", None), ("01:61:02:03", None),
    ("1:02:03", 3723), ("75:10", 4510), ("00:01:02,500", 62.5),
])
def test_times_and_timecodes(text, seconds):
    from pipeline.timecode import parse_time

    assert parse_time(text) == seconds


def test_a_stop_at_a_video_timecode(tmp_path):
    path = write(tmp_path, "[00:00:05] I: Let us start.\n[Video paused at 00:01:10:05]\n[00:00:30] C: I felt it.\n",
                 "D01_S1_ipr-client.txt")
    assert [(s.video_s, s.line) for s in read_transcript(path).stops] == [(70.0, 2)]
