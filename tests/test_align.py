"""Alignment: each stop's window holds the session turn on screen at the stop and no turn after it."""

import numpy as np
import pandas as pd
import pytest

from pipeline.align import align, session_times
from pipeline.ingest import STOP_COLUMNS, TURN_COLUMNS


def turn(tid, kind, seq, speaker, role, start, text, participant=None, case="D1", session="S1", end=np.nan):
    return {"transcript_id": tid, "case": case, "session": session, "kind": kind, "participant": participant,
            "turn_id": f"{tid}:{seq}", "seq": seq, "speaker": speaker, "role": role, "start_s": start,
            "end_s": end, "text": text, "source_file": f"{tid}.txt", "source_line": seq, "annotations": ""}


SESSION = [("T", "therapist", 0.0, "Hello."), ("C", "client", 20.0, "Hi."), ("T", "therapist", 50.0, "How was it?"),
           ("C", "client", 100.0, "I don't know."), ("T", "therapist", 130.0, "Let's look at that."),
           ("C", "client", 200.0, "You're not listening."), ("T", "therapist", 260.0, "I'm sorry.")]


def session_rows(case="D1", session="S1", times=None):
    tid = f"{case}_{session}_session"
    rows = []
    for i, (sp, role, start, text) in enumerate(SESSION, 1):
        start = times[i - 1] if times is not None else start
        rows.append(turn(tid, "session", i, sp, role, start, text, case=case, session=session))
    return rows


def interview(stop_times, participant="client", case="D1", session="S1", offset=0.0):
    """An interview: a question and an answer after each stop."""
    tid = f"{case}_{session}_ipr-{participant}"
    rows, stops = [], []
    seq = 0
    for n, v in enumerate(stop_times, 1):
        stops.append({"transcript_id": tid, "stop_no": n, "video_s": v, "session_s": v + offset,
                      "source_line": n * 10, "after_seq": seq})
        seq += 1
        rows.append(turn(tid, "ipr", seq, "I", "interviewer", np.nan, f"What happened at stop {n}?",
                         participant, case, session))
        seq += 1
        rows.append(turn(tid, "ipr", seq, "C", participant, np.nan, f"Recall {n}.", participant, case, session))
    return rows, stops


def run(turn_rows, stop_rows, window_s=60.0):
    turns = pd.DataFrame(turn_rows, columns=TURN_COLUMNS)
    stops = pd.DataFrame(stop_rows, columns=STOP_COLUMNS)
    return align(turns, stops, window_s)


def texts(seg_row, turns_by_id):
    return [turns_by_id[t] for t in seg_row["session_turn_ids"].split(";") if t]


def test_window_holds_the_turn_on_screen_and_nothing_after():
    ipr, stops = interview([105.0, 215.0])
    session = session_rows()
    result = run(session + ipr, stops)
    by_id = {r["turn_id"]: r["text"] for r in session}
    first, second = result.segments.to_dict("records")
    assert first["status"] == second["status"] == "aligned"
    # stop 1 at 105 s: window 45..105 holds "How was it?" (50) and "I don't know." (100) on screen
    assert texts(first, by_id) == ["How was it?", "I don't know."]
    # stop 2 at 215 s: the window starts at the previous stop (105) but still the last 60 s: 155..215
    assert texts(second, by_id) == ["You're not listening."]
    assert second["window_end_s"] == 215.0
    assert first["recall_text"] == "Recall 1."
    assert second["recall_text"] == "Recall 2."
    assert "I: What happened at stop 2?" in second["recall_dialogue"]


def test_turn_under_way_is_included_even_before_the_window():
    ipr, stops = interview([190.0])  # window 130..190; "Let's look at that." started at 130, on screen
    result = run(session_rows() + ipr, stops, window_s=30.0)  # window 160..190: no turn starts in it
    seg = result.segments.iloc[0]
    assert seg["status"] == "aligned"
    assert seg["session_turn_ids"] == "D1_S1_session:5"
    assert seg["window_start_s"] == 130.0


def test_offset_moves_the_stop_onto_the_session_clock():
    ipr, stops = interview([90.0], offset=12.0)  # session time 102: "I don't know." is on screen
    seg = run(session_rows() + ipr, stops).segments.iloc[0]
    assert seg["session_s"] == 102.0
    assert seg["session_turn_ids"].split(";")[-1] == "D1_S1_session:4"


def test_previous_stop_bounds_the_window():
    ipr, stops = interview([101.0, 135.0])
    seg = run(session_rows() + ipr, stops).segments.iloc[1]
    assert seg["window_start_s"] == 101.0
    assert seg["session_turn_ids"] == "D1_S1_session:5"


def test_rewind_and_same_time_are_aligned_with_a_note_and_a_warning():
    ipr, stops = interview([210.0, 105.0, 105.0])
    result = run(session_rows() + ipr, stops)
    segs = result.segments
    assert list(segs["status"]) == ["aligned", "aligned", "aligned"]
    assert segs.iloc[1]["note"].startswith("rewind")
    assert "D1_S1_session:4" in segs.iloc[1]["session_turn_ids"]  # the rewind ignores the later stop as a bound
    assert segs.iloc[2]["note"].startswith("same time")
    assert any("rewind" in w for w in result.warnings)
    assert any("same time" in w for w in result.warnings)
    assert segs["segment_id"].is_unique


def test_stop_past_the_end_of_the_session():
    ipr, stops = interview([105.0, 3600.0])
    result = run(session_rows() + ipr, stops)
    assert list(result.segments["status"]) == ["aligned", "time_out_of_range"]
    assert any("outside the session" in w for w in result.warnings)


def test_stop_before_the_first_turn():
    session = session_rows(times=[30.0, 40, 50, 100, 130, 200, 260])
    ipr, stops = interview([10.0])
    assert run(session + ipr, stops).segments.iloc[0]["status"] == "no_turns_in_window"


def test_missing_session_transcript():
    ipr, stops = interview([105.0])
    result = run(ipr, stops)
    seg = result.segments.iloc[0]
    assert seg["status"] == "no_session_transcript"
    assert seg["recall_text"] == "Recall 1."
    assert any("no session transcript" in w for w in result.warnings)


def test_session_without_times():
    ipr, stops = interview([105.0])
    session = session_rows(times=[np.nan] * 7)
    result = run(session + ipr, stops)
    assert result.segments.iloc[0]["status"] == "no_time"
    assert any("no times" in w for w in result.warnings)


def test_interview_without_stops():
    ipr, _ = interview([105.0])
    result = run(session_rows() + ipr, [])
    assert result.segments.empty
    assert result.summary.iloc[0]["stops"] == 0
    assert any("no stop markers" in w for w in result.warnings)


def test_untimed_turns_take_interpolated_times():
    session = pd.DataFrame({"start_s": [0.0, np.nan, np.nan, 90.0, np.nan]})
    assert list(session_times(session)) == [0.0, 30.0, 60.0, 90.0, 90.0]


def test_both_participants_about_the_same_moment_are_linked():
    c_rows, c_stops = interview([105.0, 215.0], participant="client")
    t_rows, t_stops = interview([110.0], participant="therapist")
    segs = run(session_rows() + c_rows + t_rows, c_stops + t_stops).segments.set_index("segment_id")
    assert segs.loc["D1_S1_ipr-client@0:01:45", "linked_segment_ids"] == "D1_S1_ipr-therapist@0:01:50"
    assert segs.loc["D1_S1_ipr-therapist@0:01:50", "linked_segment_ids"] == "D1_S1_ipr-client@0:01:45"
    assert segs.loc["D1_S1_ipr-client@0:03:35", "linked_segment_ids"] == ""


@pytest.mark.parametrize("window", [10.0, 60.0, 600.0])
def test_no_window_ever_holds_a_turn_after_the_stop(window):
    session = session_rows()
    ipr, stops = interview([25.0, 51.0, 99.0, 131.0, 250.0])
    segs = run(session + ipr, stops, window).segments
    start = {r["turn_id"]: r["start_s"] for r in session}
    for seg in segs.itertuples():
        ids = seg.session_turn_ids.split(";")
        assert all(start[t] <= seg.session_s for t in ids)
        on_screen = max((r for r in session if r["start_s"] <= seg.session_s), key=lambda r: r["start_s"])
        assert on_screen["turn_id"] == ids[-1]
