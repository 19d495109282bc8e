"""Stage 2, align: every IPR stop becomes a segment, the participant's recall beside the session moment it recalls.

The link runs through time: the stop's video time, plus the manifest's offset, is a time on the session
transcript's clock; the turns on screen just before it are the session context of the recall.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .files import grouped
from .timecode import format_time

SEGMENT_COLUMNS = ["segment_id", "transcript_id", "case", "session", "participant", "stop_no", "video_s",
                   "session_s", "session_transcript_id", "window_start_s", "window_end_s", "session_turn_ids",
                   "context_text", "recall_text", "status", "note", "recall_turn_ids", "recall_dialogue",
                   "linked_segment_ids"]
SUMMARY_COLUMNS = ["transcript_id", "case", "session", "participant", "stops", "aligned", "not_aligned", "notes"]
# A segment's note, when it has one (a coder's text in the workbook's column 'note' is told apart by it)
NOTE_FORM = re.compile(r"(rewind: earlier than|same time as) stop \d+")
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
    start_s: np.ndarray
    first: dict  # the first turn's other fields (case, session, participant, source_file)

    @classmethod
    def of(cls, rows: dict[str, list]) -> _Columns:
        """From a transcript's rows (column -> values, in ``seq`` order)."""
        return cls(rows["transcript_id"][0], np.asarray(rows["seq"]), rows["turn_id"], rows["speaker"],
                   rows["role"], rows["text"], np.asarray(rows["end_s"], dtype=float),
                   np.asarray(rows["start_s"], dtype=float),
                   {c: rows[c][0] for c in ("case", "session", "participant", "source_file")})

    def lines(self, idx, times=None) -> str:
        if times is None:
            return "\n".join(f"{label(self.speaker[i], self.role[i])}: {self.text[i]}" for i in idx)
        return "\n".join(f"[{format_time(times[i])}] {label(self.speaker[i], self.role[i])}: {self.text[i]}"
                         for i in idx)


TURN_FIELDS = ("transcript_id", "case", "session", "participant", "source_file", "seq", "turn_id", "speaker",
               "role", "text", "start_s", "end_s")
STOP_FIELDS = ("stop_no", "video_s", "session_s", "after_seq", "source_line", "recall_end_seq")


def session_times(session: pd.DataFrame) -> np.ndarray:
    """Start times for every turn of a session, in order: turns without a time (some transcripts stamp only every
    few turns) take times interpolated from their neighbours.  All NaN when the session has no times at all."""
    return _interpolated(session["start_s"].to_numpy(dtype=float))


def _interpolated(start: np.ndarray) -> np.ndarray:
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
    sessions = grouped(turns[turns["kind"] == "session"], ["case", "session"], "seq", TURN_FIELDS)
    interviews = grouped(turns[turns["kind"] == "ipr"], ["transcript_id"], "seq", TURN_FIELDS)
    if "recall_end_seq" not in stops:  # (a table of stops made by hand, or by an older version)
        stops = stops.assign(recall_end_seq=-1)
    stops_of = grouped(stops, ["transcript_id"], "stop_no", STOP_FIELDS)
    no_stops = dict.fromkeys(STOP_FIELDS, [])
    warnings_of: dict[str, list[str]] = {}
    for (tid,), rows in sorted(interviews.items()):
        said_before = len(warnings)
        cols = _Columns.of(rows)
        case, session, participant = cols.first["case"], cols.first["session"], cols.first["participant"]
        file = f"data/raw/{cols.first['source_file']}"
        its_stops = stops_of.get((tid,), no_stops)
        n_stops = len(its_stops["stop_no"])
        sess = _Columns.of(sessions[case, session]) if (case, session) in sessions else None
        notes: list[str] = []
        if not n_stops:
            w = (f"{file}: no stop markers found, so no recall can be aligned "
                 "(mark stops like [Video paused at 00:04:12])")
            warnings.append(w)
            notes.append("no stop markers")
        times = _interpolated(sess.start_s) if sess is not None else None
        if sess is not None and np.isnan(times).all():
            warnings.append(f"data/raw/{sess.first['source_file']}: the session transcript has no "
                            f"times, so the stops of {tid} cannot be aligned (use a form with timestamps)")
        if sess is None and n_stops:
            warnings.append(f"{file}: no session transcript for case {case}, session {session}; its recalls are "
                            "kept without session context (add the session transcript to data/raw/)")
        seg_ids = segment_ids(tid, its_stops["video_s"])
        prev_s = None
        after = its_stops["after_seq"] + [int(cols.seq.max())]
        stop_rows = zip(*(its_stops[c] for c in STOP_FIELDS), strict=True)
        for k, ((stop_no, video_s, session_s, _, source_line, recall_end), seg_id) in enumerate(
                zip(stop_rows, seg_ids, strict=True)):
            # the recall runs to the next stop, or to where the video plays again ("[Video resumed]")
            end = after[k + 1] if recall_end < 0 else min(after[k + 1], recall_end)
            lo, hi = np.searchsorted(cols.seq, [after[k], end], side="right")
            recall = range(lo, hi)
            row = {
                "segment_id": seg_id, "transcript_id": tid, "case": case, "session": session,
                "participant": participant, "stop_no": int(stop_no), "video_s": float(video_s),
                "session_s": float(session_s), "session_transcript_id": None, "window_start_s": np.nan,
                "window_end_s": np.nan, "session_turn_ids": "", "context_text": "",
                "recall_text": "\n".join(cols.text[i] for i in recall if cols.role[i] == participant),
                "recall_turn_ids": ";".join(cols.turn_id[i] for i in recall),
                "recall_dialogue": cols.lines(recall),
                "linked_segment_ids": "", "note": "",
            }
            at = float(session_s)
            where = f"{file}, line {source_line}"
            if prev_s is not None and at < prev_s:
                row["note"] = f"rewind: earlier than stop {k}"
                warnings.append(f"{where}: stop {k + 1} ({format_time(video_s)}) is earlier than the stop "
                                "before it (a rewind); its window ignores the earlier stop")
            elif prev_s is not None and at == prev_s:
                row["note"] = f"same time as stop {k}"
                warnings.append(f"{where}: stop {k + 1} is at the same time as the stop before it")
            lower = prev_s if prev_s is not None and prev_s < at else -np.inf
            prev_s = at
            if sess is None:
                row["status"] = "no_session_transcript"
            else:
                row["session_transcript_id"] = sess.transcript_id
                row.update(_window(sess, times, at, max(lower, at - window_s)))
                if row["status"] == "time_out_of_range":
                    warnings.append(f"{where}: stop {k + 1} at {format_time(video_s)} (session time "
                                    f"{format_time(at)}) is outside the session transcript; check the time or "
                                    "the manifest's offset_s")
            segments.append(row)
        mine = segments[len(segments) - n_stops:]
        counts = Counter(s["status"] for s in mine)
        summary.append({
            "transcript_id": tid, "case": case, "session": session, "participant": participant,
            "stops": n_stops, "aligned": counts.pop("aligned", 0),
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
    c = {k: seg[k].tolist() for k in ("status", "case", "session", "participant", "session_s", "window_start_s",
                                      "window_end_s", "segment_id")}
    sessions: dict[tuple, list[int]] = {}
    for i, (status, case, session) in enumerate(zip(c["status"], c["case"], c["session"], strict=True)):
        if status == "aligned" and isinstance(case, str) and isinstance(session, str):
            sessions.setdefault((case, session), []).append(i)
    at, start, end, who = c["session_s"], c["window_start_s"], c["window_end_s"], c["participant"]
    links = [""] * len(seg)
    for rows in sessions.values():
        for a in rows:
            other = sorted((abs(at[b] - at[a]), c["segment_id"][b]) for b in rows
                           if who[b] != who[a] and max(start[a], start[b]) <= min(end[a], end[b]))
            links[a] = ";".join(sid for _, sid in other)  # the nearest stop first
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
