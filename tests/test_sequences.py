"""Rupture → repair sequences on small hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline import sequences as sq


def turns_table(rows, tid="D01_S1_session", case="D01", session="S1"):
    """rows: (seq, role, start_s, text)"""
    return pd.DataFrame([{"transcript_id": tid, "case": case, "session": session, "kind": "session",
                          "participant": None, "turn_id": f"{tid}#{s}", "seq": s, "speaker": role[0].upper(),
                          "role": role, "start_s": t, "end_s": np.nan, "text": x, "source_file": "x",
                          "source_line": s} for s, role, t, x in rows])


def codes_table(rows, coder="auto"):
    """rows: (unit_id, code_id)"""
    return pd.DataFrame([{"unit_type": "turn", "unit_id": u, "code_id": c, "coder": coder, "rule_id": "r",
                          "evidence": "", "start_char": 0, "end_char": 0} for u, c in rows])


T = "D01_S1_session#"
TURNS = turns_table([
    (1, "client", 10.0, "Fine."),
    (2, "therapist", 30.0, "That makes sense."),
    (3, "client", 100.0, "You never listen."),
    (4, "client", 120.0, "Whatever."),
    (5, "therapist", 500.0, "Let me explain."),  # 400 s after turn 3: outside a 300 s window
    (6, "client", 610.0, "I guess."),
    (7, "therapist", 700.0, "I may have pushed too hard."),
])
CODES = codes_table([
    (T + "1", "rupture.withdrawal.minimal_response"),
    (T + "1", "rupture.withdrawal.denial"),
    (T + "2", "resolution.validate"),
    (T + "3", "rupture.confrontation.complaint_therapist"),
    (T + "4", "rupture.withdrawal.minimal_response"),
    (T + "4", "rupture.confrontation.complaint_activities"),
    (T + "5", "resolution.rationale"),
    (T + "6", "rupture.withdrawal.minimal_response"),
    (T + "7", "resolution.acknowledge"),
    (T + "7", "rupture.withdrawal.denial"),  # a rupture code on a therapist turn is not a client rupture
    (T + "2", "recall.rupture.unheard"),  # another family: ignored
])


def test_rupture_markers_are_client_turns_with_their_codes_and_type():
    r = sq.rupture_markers(CODES, TURNS)
    assert list(r["turn_id"]) == [T + "1", T + "3", T + "4", T + "6"]
    assert r.iloc[0]["codes"] == "rupture.withdrawal.denial;rupture.withdrawal.minimal_response"
    assert list(r["type"]) == ["withdrawal", "confrontation", "withdrawal+confrontation", "withdrawal"]
    res = sq.resolution_markers(CODES, TURNS)
    assert list(res["turn_id"]) == [T + "2", T + "5", T + "7"]


def test_first_resolution_within_the_window_repairs():
    r, res = sq.rupture_markers(CODES, TURNS), sq.resolution_markers(CODES, TURNS)
    s = sq.repair_sequences(r, res, window_s=300)
    assert list(s["status"]) == ["repaired", "unrepaired", "unrepaired", "repaired"]
    assert list(s["repair_turn_id"]) == [T + "2", None, None, T + "7"]
    assert s.iloc[0]["time_to_repair_s"] == 20.0 and s.iloc[3]["time_to_repair_s"] == 90.0
    assert math.isnan(s.iloc[1]["time_to_repair_s"])
    # a longer window reaches the rationale at 500 s, for both ruptures before it (a shared repair)
    s = sq.repair_sequences(r, res, window_s=400)
    assert list(s["repair_turn_id"]) == [T + "2", T + "5", T + "5", T + "7"]
    assert list(s["time_to_repair_s"]) == [20.0, 400.0, 380.0, 90.0]


def test_a_resolution_before_the_rupture_does_not_repair_it():
    turns = turns_table([(1, "therapist", 0.0, "I hear you."), (2, "client", 5.0, "Fine.")])
    codes = codes_table([(T + "1", "resolution.validate"), (T + "2", "rupture.withdrawal.minimal_response")])
    s = sq.repair_sequences(sq.rupture_markers(codes, turns), sq.resolution_markers(codes, turns))
    assert list(s["status"]) == ["unrepaired"]


def test_resolutions_in_another_session_do_not_count():
    other = turns_table([(1, "therapist", 20.0, "I hear you.")], tid="D01_S2_session", session="S2")
    turns = pd.concat([turns_table([(1, "client", 10.0, "Fine.")]), other])
    codes = codes_table([(T + "1", "rupture.withdrawal.minimal_response"),
                         ("D01_S2_session#1", "resolution.validate")])
    s = sq.repair_sequences(sq.rupture_markers(codes, turns), sq.resolution_markers(codes, turns))
    assert list(s["status"]) == ["unrepaired"]


def test_missing_times_are_interpolated_and_no_times_at_all_says_so():
    turns = turns_table([(1, "client", 0.0, "Fine."), (2, "therapist", np.nan, "Okay."), (3, "client", 60.0, "x")])
    codes = codes_table([(T + "1", "rupture.withdrawal.minimal_response"), (T + "2", "resolution.validate")])
    s = sq.repair_sequences(sq.rupture_markers(codes, turns), sq.resolution_markers(codes, turns))
    assert s.iloc[0]["repair_s"] == 30.0 and s.iloc[0]["time_to_repair_s"] == 30.0
    untimed = turns.assign(start_s=np.nan)
    s = sq.repair_sequences(sq.rupture_markers(codes, untimed), sq.resolution_markers(codes, untimed))
    assert list(s["status"]) == ["no_time"]
    summary = sq.resolution_summary(s)
    assert summary.iloc[0]["ruptures"] == 1 and math.isnan(summary.iloc[0]["resolution_rate"])
    assert sq.ruptures_per_segment(sq.rupture_markers(codes, untimed), sq.resolution_markers(codes, untimed), s,
                                   untimed).empty


def test_resolution_summary_per_session_and_overall():
    other = turns_table([(1, "client", 10.0, "No."), (2, "therapist", 50.0, "Let me explain.")],
                        tid="D02_S1_session", case="D02")
    turns = pd.concat([TURNS, other], ignore_index=True)
    codes = pd.concat([CODES, codes_table([("D02_S1_session#1", "rupture.withdrawal.denial"),
                                           ("D02_S1_session#2", "resolution.rationale")])])
    r, res = sq.rupture_markers(codes, turns), sq.resolution_markers(codes, turns)
    s = sq.repair_sequences(r, res, 300)
    summary = sq.resolution_summary(s, res).set_index("case")
    d1 = summary.loc["D01"]
    assert (d1["ruptures"], d1["withdrawal"], d1["confrontation"], d1["resolutions"], d1["repaired"]) == (4, 3, 2,
                                                                                                         3, 2)
    assert d1["resolution_rate"] == 0.5 and d1["median_time_to_repair_s"] == 55.0
    assert d1["mean_time_to_repair_s"] == 55.0
    total = summary.loc[sq.ALL]
    assert (total["ruptures"], total["repaired"], total["resolution_rate"]) == (5, 3, 0.6)
    assert total["median_time_to_repair_s"] == 40.0


def test_ruptures_counted_per_five_minute_segment():
    r, res = sq.rupture_markers(CODES, TURNS), sq.resolution_markers(CODES, TURNS)
    s = sq.repair_sequences(r, res, 300)
    per = sq.ruptures_per_segment(r, res, s, TURNS)
    assert list(per["segment"]) == [1, 2, 3]
    assert list(per["from_s"]) == [0, 300, 600] and list(per["to_s"]) == [300, 600, 700]
    assert list(per["ruptures"]) == [3, 0, 1]
    assert list(per["withdrawal"]) == [2, 0, 1] and list(per["confrontation"]) == [2, 0, 0]
    assert list(per["resolutions"]) == [1, 1, 1]
    assert list(per["repaired"]) == [1, 0, 1]
    assert list(per["turns"]) == [4, 1, 2]
    assert sq.segment_label(300, 600) == "0:05:00–0:10:00"


def test_a_segment_not_transcribed_has_no_session_turns():
    """Teams sometimes transcribe only the stretches of session around the IPR stops: the segments between have
    no turns, so their zeros say nothing (the report says so)."""
    partial = TURNS[TURNS["seq"] != 5]
    r, res = sq.rupture_markers(CODES, partial), sq.resolution_markers(CODES, partial)
    per = sq.ruptures_per_segment(r, res, sq.repair_sequences(r, res, 300), partial)
    assert list(per["turns"]) == [4, 0, 2] and list(per["ruptures"]) == [3, 0, 1]


def test_empty_inputs_give_empty_tables_with_their_columns():
    empty = CODES.iloc[0:0]
    r, res = sq.rupture_markers(empty, TURNS), sq.resolution_markers(empty, TURNS)
    assert r.empty and list(r.columns) == sq.MARKER_COLUMNS
    s = sq.repair_sequences(r, res)
    assert s.empty and list(s.columns) == sq.SEQUENCE_COLUMNS
    assert sq.resolution_summary(s, res).empty
    summary = sq.resolution_summary(s, res, sq.session_durations(TURNS))
    assert summary[["case", "session", "ruptures", "repaired"]].values.tolist() == [["D01", "S1", 0, 0]]
    assert math.isnan(summary.iloc[0]["resolution_rate"])
    per = sq.ruptures_per_segment(r, res, s, TURNS)
    assert per["ruptures"].sum() == 0 and len(per) == 3
    no_turns = TURNS.iloc[0:0]
    assert sq.rupture_markers(CODES, no_turns).empty
    assert sq.session_durations(no_turns).empty
