"""Alignment through real files: every stop form, interview clocks, offsets, rewinds, stops past the end,
missing sessions; each stop's window holds the session turn on screen at the stop and no turn after it."""

import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.cli import main

SESSION = """\
[00:00:05] T: Welcome back. Where would you like to start today?
[00:00:40] C: I don't know. Wherever.
[00:01:30] T: Last week you mentioned your sister.
[00:02:10] C: You're not listening to me, I said it was my brother.
[00:03:00] T: I'm sorry, I got that wrong. Tell me about your brother.
[00:04:05] C: He never calls. (laughs) It's fine.
[00:05:20] T: It sounds like it matters more than you let on.
[00:06:30] C: Maybe.
"""

# (marker as written, its video time in seconds): every form transcribers use.
FORMS = [
    ("[Video paused at 00:02:15]", 135),
    ("[STOP 2 | 00:03:05]", 185),
    ("(tape stopped at 4:10)", 250),
    ("[Pause – 5:25.5]", 325.5),
    ("*** Recording stopped at 06:31 ***", 391),
    ("[CUE 0:00:45]", 45),  # the study's own form, from study.toml
]


def interview(markers: list[str], clock: bool = True) -> str:
    lines = []
    for n, marker in enumerate(markers):
        lines.append(marker)
        stamp = f"[00:{10 + n:02d}:00] " if clock else ""  # interview time: never video time
        lines.append(f"{stamp}I: What was going on for you there?")
        lines.append(f"C: Recall number {n + 1}, I felt unheard.")
    return "\n".join(lines) + "\n"


@pytest.fixture
def study(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (tmp_path / "study.toml").write_text("[align]\nwindow_s = 60\nstop_patterns = ['^\\[CUE (?P<time>[0-9:.]+)\\]$']\n")
    (raw / "D1_S1_session.txt").write_text(SESSION)
    return tmp_path


def run(root):
    runner = CliRunner()
    said = ""
    for command in ("ingest", "align"):
        result = runner.invoke(main, [command, "--study", str(root)])
        assert result.exit_code == 0, result.output
        said += result.output
    interim = root / "data" / "interim"
    return pd.read_parquet(interim / "turns.parquet"), pd.read_parquet(interim / "segments.parquet"), said


def on_screen(turns, at):
    session = turns[turns["kind"] == "session"]
    return session[session["start_s"] <= at].sort_values("start_s").iloc[-1]


def test_every_stop_form_aligns_with_the_turn_on_screen(study):
    (study / "data" / "raw" / "D1_S1_ipr-client.txt").write_text(
        interview([m for m, _ in sorted(FORMS, key=lambda f: f[1])]))
    turns, segs, output = run(study)
    assert list(segs["video_s"]) == sorted(v for _, v in FORMS)
    assert (segs["status"] == "aligned").all()
    start = dict(zip(turns["turn_id"], turns["start_s"], strict=True))
    for seg in segs.itertuples():
        ids = seg.session_turn_ids.split(";")
        assert ids[-1] == on_screen(turns, seg.session_s)["turn_id"]
        assert all(start[t] <= seg.session_s for t in ids)
        assert seg.recall_text.startswith(f"Recall number {seg.stop_no},")
    assert "D1_S1_ipr-client: 6 stops, 6 aligned" in output


def test_offset_from_the_manifest(study):
    raw = study / "data" / "raw"
    (raw / "ipr.txt").write_text(interview(["[Video paused at 00:02:00]"]))
    (raw / "manifest.csv").write_text("file,case,session,kind,participant,offset_s\n"
                                      "D1_S1_session.txt,D1,S1,session,,\nipr.txt,D1,S1,ipr,therapist,75\n")
    turns, segs, _ = run(study)
    seg = segs.iloc[0]
    assert seg["video_s"] == 120 and seg["session_s"] == 195
    assert turns.set_index("turn_id").loc[seg["session_turn_ids"].split(";")[-1], "text"].startswith(
        "I'm sorry, I got that wrong")


def test_hard_cases_each_have_their_status(study):
    raw = study / "data" / "raw"
    (raw / "D1_S1_ipr-client.txt").write_text(interview(
        ["[Video paused at 00:04:10]", "[Video paused at 00:02:15]", "[Video paused at 00:02:15]",
         "[Video paused at 01:30:00]", "[Video paused at 00:00:02]"]))
    (raw / "D2_S1_ipr-client.txt").write_text(interview(["[Video paused at 00:01:00]"]))
    (raw / "D1_S1_ipr-therapist.txt").write_text("I: Shall we watch it?\nT: Sure.\n")
    turns, segs, output = run(study)
    d1 = segs[segs["transcript_id"] == "D1_S1_ipr-client"]
    assert list(d1["status"]) == ["aligned", "aligned", "aligned", "time_out_of_range", "no_turns_in_window"]
    assert d1.iloc[1]["note"].startswith("rewind") and d1.iloc[2]["note"].startswith("same time")
    assert segs[segs["transcript_id"] == "D2_S1_ipr-client"]["status"].tolist() == ["no_session_transcript"]
    assert "D1_S1_ipr-therapist: 0 stops, 0 aligned" in output
    assert "D1_S1_ipr-client: 5 stops, 3 aligned; not aligned: 1 time_out_of_range, 1 no_turns_in_window" in output


def test_interview_clock_is_never_taken_for_video_time(study):
    (study / "data" / "raw" / "D1_S1_ipr-client.txt").write_text(interview(["[Video paused at 00:02:15]"]))
    turns, segs, _ = run(study)
    ipr = turns[turns["kind"] == "ipr"]
    assert ipr["start_s"].dropna().tolist() == [600.0]  # the interviewer's [00:10:00] is the interview's own
    assert segs["video_s"].tolist() == [135.0]


@pytest.mark.parametrize("participant, other, theirs", [("client", "T", "C"), ("therapist", "C", "T")])
def test_the_session_replayed_in_an_interview_is_not_the_recall(study, participant, other, theirs):
    """Transcribers often write down the stretch of session the video plays: the other one's turns are read as
    that (not as the interviewed person's recall), and the run says so."""
    (study / "data" / "raw" / f"D1_S1_ipr-{participant}.txt").write_text(
        f"I: Let's watch.\n{other}: Last week you mentioned your sister.\n[Video paused at 00:02:15]\n"
        f"{other}: Your sister, yes.\nI: What was going on for you there?\n{theirs}: I felt unheard.\n"
        f"{other}: I said it was my brother.\n{theirs}: Sorry, your brother.\n"
        f"[Video paused at 00:03:05]\nI: And here?\n{theirs}: Relieved.\n")
    turns, segs, output = run(study)
    interview = turns[turns["kind"] == "ipr"]
    role = {"C": "client", "T": "therapist"}[other]
    assert list(interview.loc[interview["speaker"] == other, "role"]) == [role] * 3
    # the replay after the recall ends it: the interviewed person's own words replayed there are not the recall
    # (the other one's line written just after the stop, before the recall, does not end it)
    assert list(segs["recall_text"]) == ["I felt unheard.", "Relieved."]
    assert "I said it was my brother" not in segs["recall_dialogue"].iloc[0]
    assert f"{other}: Your sister, yes." in segs["recall_dialogue"].iloc[0]
    assert (f"D1_S1_ipr-{participant}.txt: 3 turns labelled as the {role} "
            f"({other}) are read as the session replayed on the video, not as the {participant}'s recall") in output


@pytest.mark.parametrize("name, text", [
    ("D1_S1_ipr-client.txt",
     "I: Let's watch.\n[Video playing]\nC: I don't know. Wherever.\n[Video paused at 00:02:15]\n"
     "I: What was going on for you there?\nC: I felt unheard.\n[Video resumed at 00:02:15]\n"
     "C: Maybe.\n[Video paused at 00:03:05]\nI: And here?\nC: Relieved.\n"),
    ("D1_S1_ipr-client.csv",
     "speaker,text\nI,Let's watch.\n,[Video playing]\nC,I don't know. Wherever.\n,[Video paused at 00:02:15]\n"
     "I,What was going on for you there?\nC,I felt unheard.\nI,[Video resumed at 00:02:15]\n"
     "C,Maybe.\n,[Video paused at 00:03:05]\nI,And here?\nC,Relieved.\n"),
])
def test_the_video_playing_again_ends_the_recall(study, name, text):
    """The session replayed between stops is often written down in the interview, after a note that the video
    plays again: the client's words there are the session's, not the recall, and the note is not a stop."""
    (study / "data" / "raw" / name).write_text(text)
    turns, segs, _ = run(study)
    assert list(segs["video_s"]) == [135, 185]
    assert list(segs["recall_text"]) == ["I felt unheard.", "Relieved."]
    assert "Maybe." not in segs["recall_dialogue"].iloc[0]


def test_a_session_timed_only_by_stamps_inside_its_turns_aligns(study):
    """Services that stamp the time every minute or two write it inside the turn under way: the turn takes that
    time (the turns between are interpolated), where before the session had no times and no stop aligned.  Times
    in an interview's words are never taken (they may be video times the participant mentions)."""
    untimed = "".join(line.split("] ", 1)[1] + "\n" for line in SESSION.splitlines())
    lines = untimed.splitlines()
    lines[2] = lines[2].replace("your sister.", "your [00:01:40] sister.")
    lines[5] = lines[5].replace("(laughs)", "[inaudible 00:04:20] (laughs)")
    (study / "data" / "raw" / "D1_S1_session.txt").write_text("\n".join(lines) + "\n")
    (study / "data" / "raw" / "D1_S1_ipr-client.txt").write_text(
        "[Video paused at 00:02:15]\nI: What was going on?\nC: At [00:02:00] I felt unheard.\n")
    turns, segs, output = run(study)
    session = turns[turns["kind"] == "session"]
    assert session["start_s"].tolist()[2] == 100.0 and session["start_s"].tolist()[5] == 260.0
    assert session["start_s"].isna().sum() == 6
    assert turns.loc[turns["kind"] == "ipr", "start_s"].isna().all()
    assert segs["status"].tolist() == ["aligned"]
    window = segs["session_turn_ids"].iloc[0].split(";")
    assert session.loc[session["turn_id"] == window[-1], "text"].item().startswith("Last week")  # stamped 1:40
    assert ("data/raw/D1_S1_session.txt: 2 turn(s) without a time of their own took the time written in their "
            "words") in output


def test_one_time_in_the_words_alone_times_nothing():
    """With one time in a whole untimed session every turn would take it: the session stays without times."""
    from pipeline.ingest import times_within

    texts = ["Hello.", "It was [inaudible 00:07:06] loud.", "Yes."]
    assert times_within([None, None, None], texts) == ([None, None, None], 0)
    assert times_within([5.0, None, None], texts) == ([5.0, 426.0, None], 1)
