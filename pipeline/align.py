"""Stage 2, align: every IPR stop becomes a segment, the participant's recall beside the session moment it recalls.

The link runs through time: the stop's video time, plus the manifest's offset, is a time on the session
transcript's clock; the turns on screen just before it are the session context of the recall.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .timecode import format_time

SEGMENT_COLUMNS = ["segment_id", "transcript_id", "case", "session", "participant", "stop_no", "video_s",
                   "session_s", "session_transcript_id", "window_start_s", "window_end_s", "session_turn_ids",
                   "context_text", "recall_text", "status", "note", "recall_turn_ids", "recall_dialogue",
                   "linked_segment_ids"]
SUMMARY_COLUMNS = ["transcript_id", "case", "session", "participant", "stops", "aligned", "not_aligned", "notes"]
STATUSES = ("aligned", "no_session_transcript", "time_out_of_range", "no_turns_in_window", "no_time")

# How long past the last session turn's start a stop may fall and still be on that turn, when the turn's end is
# not known.
LAST_TURN_GRACE_S = 30.0


@dataclass
class Aligned:
    segments: pd.DataFrame
    summary: pd.DataFrame
    warnings: list[str]
    warnings_of: dict[str, list[str]] = field(default_factory=dict)  # by interview (for a re-run that reuses some)


@dataclass
class _Columns:
    """A transcript's turns as plain arrays and lists: selecting rows of a wide frame costs far more than this
    stage's own work, once per stop."""

    transcript_id: str
    seq: np.ndarray
    turn_id: list[str]
    speaker: list[str]
    role: list[str]
    text: list[str]
    end_s: np.ndarray

    @classmethod
    def of(cls, turns: pd.DataFrame) -> _Columns:
        return cls(turns["transcript_id"].iat[0], turns["seq"].to_numpy(), turns["turn_id"].tolist(),
                   turns["speaker"].tolist(),
                   turns["role"].tolist(), turns["text"].tolist(), turns["end_s"].to_numpy(dtype=float))

    def lines(self, idx, times=None) -> str:
        if times is None:
            return "\n".join(f"{label(self.speaker[i], self.role[i])}: {self.text[i]}" for i in idx)
        return "\n".join(f"[{format_time(times[i])}] {label(self.speaker[i], self.role[i])}: {self.text[i]}"
                         for i in idx)


def session_times(session: pd.DataFrame) -> np.ndarray:
    """Start times for every turn of a session, in order: turns without a time (some transcripts stamp only every
    few turns) take times interpolated from their neighbours.  All NaN when the session has no times at all."""
    start = session["start_s"].to_numpy(dtype=float)
    known = ~np.isnan(start)
    if not known.any():
        return start
    idx = np.arange(len(start))
    return np.interp(idx, idx[known], start[known])


def label(line_speaker: str, role: str) -> str:
    return line_speaker or role


def segment_ids(transcript_id: str, video_times: list[float]) -> list[str]:
    """IDs from the stop's video time, which stays put when a stop is added elsewhere in the interview."""
    seen: dict[str, int] = {}
    out = []
    for v in video_times:
        base = f"{transcript_id}@{format_time(v)}"
        seen[base] = seen.get(base, 0) + 1
        out.append(base + (f".{seen[base]}" if seen[base] > 1 else ""))
    return out


def align(turns: pd.DataFrame, stops: pd.DataFrame, window_s: float = 60.0) -> Aligned:
    segments: list[dict] = []
    summary: list[dict] = []
    warnings: list[str] = []
    sessions = {key: g.sort_values("seq") for key, g in turns[turns["kind"] == "session"].groupby(
        ["case", "session"], sort=False)}
    interviews = turns[turns["kind"] == "ipr"]
    stops_of = {tid: g.sort_values("stop_no") for tid, g in stops.groupby("transcript_id", sort=False)}
    empty_stops = stops.iloc[:0]
    warnings_of: dict[str, list[str]] = {}
    for tid, ipr in interviews.groupby("transcript_id", sort=True):
        said_before = len(warnings)
        ipr = ipr.sort_values("seq")
        first = ipr.iloc[0]
        case, session, participant = first["case"], first["session"], first["participant"]
        file = f"data/raw/{first['source_file']}"
        its_stops = stops_of.get(tid, empty_stops)
        session_turns = sessions.get((case, session))
        notes: list[str] = []
        if its_stops.empty:
            w = (f"{file}: no stop markers found, so no recall can be aligned "
                 "(mark stops like [Video paused at 00:04:12])")
            warnings.append(w)
            notes.append("no stop markers")
        times = session_times(session_turns) if session_turns is not None else None
        if session_turns is not None and np.isnan(times).all():
            warnings.append(f"data/raw/{session_turns.iloc[0]['source_file']}: the session transcript has no "
                            f"times, so the stops of {tid} cannot be aligned (use a form with timestamps)")
        if session_turns is None and not its_stops.empty:
            warnings.append(f"{file}: no session transcript for case {case}, session {session}; its recalls are "
                            "kept without session context (add the session transcript to data/raw/)")
        seg_ids = segment_ids(tid, its_stops["video_s"].tolist())
        prev_s = None
        after = its_stops["after_seq"].tolist() + [int(ipr["seq"].max())]
        cols = _Columns.of(ipr)
        sess = _Columns.of(session_turns) if session_turns is not None else None
        for k, (stop, seg_id) in enumerate(zip(its_stops.itertuples(index=False), seg_ids, strict=True)):
            lo, hi = np.searchsorted(cols.seq, [after[k], after[k + 1]], side="right")
            recall = range(lo, hi)
            row = {
                "segment_id": seg_id, "transcript_id": tid, "case": case, "session": session,
                "participant": participant, "stop_no": int(stop.stop_no), "video_s": float(stop.video_s),
                "session_s": float(stop.session_s), "session_transcript_id": None, "window_start_s": np.nan,
                "window_end_s": np.nan, "session_turn_ids": "", "context_text": "",
                "recall_text": "\n".join(cols.text[i] for i in recall if cols.role[i] == participant),
                "recall_turn_ids": ";".join(cols.turn_id[i] for i in recall),
                "recall_dialogue": cols.lines(recall),
                "linked_segment_ids": "", "note": "",
            }
            at = float(stop.session_s)
            where = f"{file}, line {stop.source_line}"
            if prev_s is not None and at < prev_s:
                row["note"] = f"rewind: earlier than stop {k}"
                warnings.append(f"{where}: stop {k + 1} ({format_time(stop.video_s)}) is earlier than the stop "
                                "before it (a rewind); its window ignores the earlier stop")
            elif prev_s is not None and at == prev_s:
                row["note"] = f"same time as stop {k}"
                warnings.append(f"{where}: stop {k + 1} is at the same time as the stop before it")
            lower = prev_s if prev_s is not None and prev_s < at else -np.inf
            prev_s = at
            if session_turns is None:
                row["status"] = "no_session_transcript"
            else:
                row["session_transcript_id"] = sess.transcript_id
                row.update(_window(sess, times, at, max(lower, at - window_s)))
                if row["status"] == "time_out_of_range":
                    warnings.append(f"{where}: stop {k + 1} at {format_time(stop.video_s)} (session time "
                                    f"{format_time(at)}) is outside the session transcript; check the time or "
                                    "the manifest's offset_s")
            segments.append(row)
        mine = segments[len(segments) - len(its_stops):]
        counts = Counter(s["status"] for s in mine)
        summary.append({
            "transcript_id": tid, "case": case, "session": session, "participant": participant,
            "stops": len(its_stops), "aligned": counts.pop("aligned", 0),
            "not_aligned": ", ".join(f"{n} {s}" for s, n in counts.most_common()),
            "notes": "; ".join(notes + sorted({s["note"].split(":")[0] for s in mine if s["note"]})),
        })
        warnings_of[tid] = warnings[said_before:]
    seg = pd.DataFrame(segments, columns=SEGMENT_COLUMNS)
    seg = seg.astype({"stop_no": "int64", "video_s": "float64", "session_s": "float64",
                      "window_start_s": "float64", "window_end_s": "float64"})
    seg["linked_segment_ids"] = link_participants(seg)
    return Aligned(seg, pd.DataFrame(summary, columns=SUMMARY_COLUMNS), warnings, warnings_of)


def _window(session: _Columns, times: np.ndarray, at: float, start: float) -> dict:
    """The session turns on screen before the stop: those starting in [start, at], and always the turn under way."""
    if np.isnan(times).all():
        return {"status": "no_time"}
    end_of_session = np.nanmax(session.end_s, initial=times[-1] + LAST_TURN_GRACE_S)
    if at < 0 or at > end_of_session:
        return {"status": "time_out_of_range"}
    under_way = np.flatnonzero(times <= at)
    if not len(under_way):
        return {"status": "no_turns_in_window", "window_start_s": start, "window_end_s": at}
    last = under_way[-1]
    mask = (times >= start) & (times <= at)
    mask[last] = True
    picked = np.flatnonzero(mask)
    return {
        "status": "aligned",
        "window_start_s": min(max(start, 0.0), float(times[picked[0]])),
        "window_end_s": at,
        "session_turn_ids": ";".join(session.turn_id[i] for i in picked),
        "context_text": session.lines(picked, times),
    }


def link_participants(seg: pd.DataFrame) -> list[str]:
    """For each segment, the segments of the other participant about the same stretch of the same session."""
    links = [""] * len(seg)
    ok = seg[seg["status"] == "aligned"]
    for _, group in ok.groupby(["case", "session"]):
        rows = list(group.itertuples())
        for a in rows:
            other = sorted((abs(b.session_s - a.session_s), b.segment_id) for b in rows
                           if b.participant != a.participant
                           and max(a.window_start_s, b.window_start_s) <= min(a.window_end_s, b.window_end_s))
            links[seg.index.get_loc(a.Index)] = ";".join(sid for _, sid in other)  # the nearest stop first
    return links


def summary_lines(summary: pd.DataFrame) -> list[str]:
    """What `ipr align` prints: one line per interview."""
    out = []
    for r in summary.itertuples(index=False):
        line = f"{r.transcript_id}: {r.stops} stop{'' if r.stops == 1 else 's'}, {r.aligned} aligned"
        if r.not_aligned:
            line += f"; not aligned: {r.not_aligned}"
        if r.notes:
            line += f" ({r.notes})"
        out.append(line)
    return out
