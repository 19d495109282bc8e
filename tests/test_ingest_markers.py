"""Stop markers, transcription conventions and speaker roles: the small grammars every reader relies on."""

import pytest

from pipeline.conventions import find_annotations
from pipeline.errors import InputError
from pipeline.ingest.roles import assign_role, unknown_label_warning
from pipeline.ingest.stops import find_stop, is_play_marker, match_stop


@pytest.mark.parametrize("line, seconds", [
    ("[Video paused at 00:04:12]", 252),
    ("[STOP 3 | 00:23:41]", 1421),
    ("(tape stopped at 12:34)", 754),
    ("[Pause – 4:12]", 252),
    ("[Pause - 4:12]", 252),
    ("*** Recording stopped at 04:12 ***", 252),
    ("[Paused 00:04:12]", 252),
    ("STOP 2 - 00:12:03", 723),
    ("Stop 4: 00:10:00", 600),
    ("[Video stopped: 4:12.5]", 252.5),
    ("<<paused at 4:12>>", 252),
    ("--- video halted at 1:02:03 ---", 3723),
    ("== Tape stopped 0:45 ==", 45),
    ("# Stop 1 @ 00:02:10 #", 130),
    ("[STOP 1 at 00:01:30 - client]", 90),
    ("(Video paused 4:12)", 252),
    ("Stop 1 (04:12)", 252),  # the time in brackets of its own
    ("*Tape paused (4:12)*", 252),
    ("[Stop 2 (00:04:12)]", 252),
    ("  [PAUSE 00:04:12]  ", 252),
    ("[video paused at 00:04:12", 252),  # the closing bracket forgotten at the end of the line
    ("{Playback stopped at 0:04:12}", 252),
])
def test_stop_markers(line, seconds):
    assert find_stop(line) == pytest.approx(seconds)


@pytest.mark.parametrize("line", [
    "T: We stopped the video at 4:12 last time.",
    "The video paused at 4:12",
    "I stopped at 4:12 and went home",
    "Stopped at 4:12 she left",  # no bracket: the marker must be the whole line
    "(2.0)",
    "(pause)",
    "[pause]",
    "[inaudible 00:12:31]",
    "[crosstalk 00:01:02]",
    "[00:04:12] I: and then I paused",
    "Speaker 1  0:03",
    "00:00:03 Speaker 1",
    "(Video paused 4:12] and more",  # brackets that do not match
    "we stopped (4:12) there",
    "[Video resumed at 00:03:07]",  # the video playing again: not a stop
    "[Video plays from 00:02:50]",
    "[Tape restarted 3:07]",
    "[inaudible (00:12:31)]",
    "Stop 1 (04:12] more",
    "",
])
def test_not_stop_markers(line):
    assert find_stop(line) is None


@pytest.mark.parametrize("line, plays", [
    ("[Video playing]", True), ("(video plays)", True), ("[Video resumed at 00:03:07]", True),
    ("*** Video continues ***", True), ("Video resumed", True), ("[Playing the video from 2:50]", True),
    ("[Video paused at 00:04:12]", False), ("[Replay]", False), ("The video plays a big role here.", False),
    ("[crosstalk]", False), ("C: the video started to play", False), ("[Video playing", False),
    ("[Notes on the video]", False),
])
def test_markers_of_the_video_playing_again(line, plays):
    assert is_play_marker(line) is plays


def test_stop_marker_followed_by_a_turn_keeps_the_rest():
    line = "[Video paused at 00:04:12] I: What was going on for you?"
    seconds, end = match_stop(line)
    assert seconds == 252 and line[end:] == "I: What was going on for you?"


def test_study_stop_patterns_come_first():
    assert find_stop("[CUE 4:12]", [r"^\[CUE (?P<time>[0-9:.]+)\]$"]) == 252
    assert find_stop("[CUE 4:12]") is None
    with pytest.raises(InputError, match="study.toml.*no group named time"):
        find_stop("x", [r"^\[CUE\]$"])
    with pytest.raises(InputError, match="not a valid regular expression"):
        find_stop("x", [r"(?P<time>"])


def spans(text):
    return [(name, text[a:b]) for name, a, b in find_annotations(text)]


def test_conventions_are_named_with_their_spans():
    text = "I [inaudible 00:12:31] then [crosstalk] (laughs) [laughs] (laughter) (.) (2.0) (1.5) -- well… so..."
    assert spans(text) == [
        ("inaudible", "[inaudible 00:12:31]"), ("crosstalk", "[crosstalk]"), ("laughs", "(laughs)"),
        ("laughs", "[laughs]"), ("laughs", "(laughter)"), ("pause", "(.)"), ("pause", "(2.0)"),
        ("pause", "(1.5)"), ("interruption", "--"), ("trailing_off", "…"), ("trailing_off", "..."),
    ]
    assert spans("(sighs) (crying) [unclear] (pause) [long pause] (coughs) [phone rings] ((nods))") == [
        ("sighs", "(sighs)"), ("crying", "(crying)"), ("unclear", "[unclear]"), ("pause", "(pause)"),
        ("pause", "[long pause]"), ("coughs", "(coughs)"), ("note", "[phone rings]"), ("note", "((nods))"),
    ]


def test_words_in_parentheses_are_not_conventions():
    assert spans("It was (I mean) fine, a (small) thing.") == []
    assert spans("I was going to—") == [("interruption", "—")]
    assert spans("a well-known — dash") == []


@pytest.mark.parametrize("label, role", [
    ("T", "therapist"), ("Th.", "therapist"), ("ther:", "therapist"), ("THERAPIST", "therapist"),
    ("Counsellor", "therapist"), ("Counselor", "therapist"), ("C", "client"), ("Cl", "client"),
    ("client", "client"), ("P", "client"), ("Pt.", "client"), ("Patient", "client"), ("I", "interviewer"),
    ("Int", "interviewer"), ("R", "interviewer"), ("Res", "interviewer"), ("Interviewer", "interviewer"),
    ("Researcher", "interviewer"), ("Participant", "participant"), ("Speaker 1", "unknown"), ("", "unknown"),
])
def test_built_in_roles_in_a_session(label, role):
    assert assign_role(label, "session", None, {}) == role


@pytest.mark.parametrize("label, role", [
    ("T1", "therapist"), ("C12", "client"), ("C 3", "client"), ("Th.4", "therapist"), ("T-2", "therapist"),
    ("Client #4", "client"), ("P1", "client"), ("I3", "interviewer"),
    ("Speaker 1", "unknown"), ("X1", "unknown"), ("12", "unknown"),
])
def test_labels_numbered_by_turn_are_their_labels_role(label, role):
    """Process transcripts often number the turns in the labels: T1, C1, T2, C2 ..."""
    assert assign_role(label, "session", None, {}) == role


def test_a_transcript_numbered_by_turn_reads_as_turns_with_roles(tmp_path):
    from pipeline.ingest.readers import read_transcript

    path = tmp_path / "t.txt"
    path.write_text("T1: How was your week?\nC1: Fine.\nT2: Fine?\nC2: I don't know.\n", encoding="utf-8")
    turns = read_transcript(path).turns
    assert [(t.speaker, assign_role(t.speaker, "session", None, {})) for t in turns] == [
        ("T1", "therapist"), ("C1", "client"), ("T2", "therapist"), ("C2", "client")]


def test_study_speakers_table_wins_and_ignores_case():
    speakers = {"Speaker 1": "therapist", "dr. ruiz": "Therapist", "C": "interviewer"}
    assert assign_role("speaker 1", "session", None, speakers) == "therapist"
    assert assign_role("Dr. Ruiz", "session", None, speakers) == "therapist"
    assert assign_role("C", "session", None, speakers) == "interviewer"
    assert assign_role("Speaker 2", "session", None, speakers) == "unknown"


@pytest.mark.parametrize("label, participant, role", [
    ("C", "client", "client"), ("Client", "client", "client"), ("P", "client", "client"),
    ("Participant", "client", "client"), ("Interviewee", "therapist", "therapist"),
    ("T", "therapist", "therapist"), ("Therapist", "therapist", "therapist"),
    ("I", "client", "interviewer"), ("R", "therapist", "interviewer"), ("Interviewer", "client", "interviewer"),
    ("Researcher", "therapist", "interviewer"), ("Participant", None, "participant"),
    ("Speaker 3", "client", "unknown"),
    # the other one's labels: the session replayed on the video ("P" may be either one, the interviewed)
    ("T", "client", "therapist"), ("Th2", "client", "therapist"), ("C", "therapist", "client"),
    ("Client", "therapist", "client"), ("P", "therapist", "therapist"), ("T", None, "participant"),
])
def test_roles_in_an_ipr_interview(label, participant, role):
    assert assign_role(label, "ipr", participant, {}) == role


def test_speakers_table_participant_in_an_ipr_interview():
    assert assign_role("Speaker 2", "ipr", "client", {"Speaker 2": "participant"}) == "client"
    assert assign_role("Speaker 1", "ipr", "client", {"Speaker 1": "interviewer"}) == "interviewer"


def test_unknown_label_warning_says_how_to_map_it():
    text = unknown_label_warning("Speaker 1", "data/raw/D01_S1_session.txt")
    assert "data/raw/D01_S1_session.txt" in text and "[speakers]" in text and "study.toml" in text
    assert '"Speaker 1" = "therapist"' in text
