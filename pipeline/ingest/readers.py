"""Read one transcript file into turns and stop markers, whatever its form.

:func:`read_transcript` picks the reader by the file's extension; each reader sniffs the layout inside.  Every
problem a researcher can fix (an empty, damaged, binary or unlabelled file) becomes one InputError line that
names the file and says what to do; a library's own exception never escapes.  Stop markers are taken out of
the turns here, the same way for every form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.errors import InputError, problem
from pipeline.ingest.elan import read_eaf
from pipeline.ingest.encoding import read_text
from pipeline.ingest.model import Parsed, Stop
from pipeline.ingest.odt import read_odt
from pipeline.ingest.rtf import read_rtf
from pipeline.ingest.stops import compile_patterns, is_play_marker, match_stop
from pipeline.ingest.subtitles import read_srt, read_vtt
from pipeline.ingest.tables import read_csv, read_xlsx
from pipeline.ingest.text import read_text_file
from pipeline.ingest.word import read_docx

Reader = Callable[[Path, Sequence[str]], Parsed]
_SRT_START = re.compile(r"^\s*\d+\s*\n\s*\d[\d:,.]*\s*-->")


def _read_txt(path: Path, stop_patterns: Sequence[str]) -> Parsed:
    """Plain text, unless it is subtitles saved as .txt (a WEBVTT header, or a SubRip first cue)."""
    text = read_text(path)
    if text.lstrip().startswith("WEBVTT"):
        return read_vtt(path, text)
    if _SRT_START.match(text):
        return read_srt(path, text)
    return read_text_file(path, text, stop_patterns)


READERS: dict[str, tuple[str, Reader]] = {
    ".docx": ("a Word document", read_docx),
    ".odt": ("an OpenDocument text", read_odt),
    ".rtf": ("a Rich Text Format document", read_rtf),
    ".txt": ("plain text", _read_txt),
    ".vtt": ("WebVTT subtitles", lambda p, s: read_vtt(p, read_text(p))),
    ".srt": ("SubRip subtitles", lambda p, s: read_srt(p, read_text(p))),
    ".csv": ("a CSV table", lambda p, s: read_csv(p, read_text(p))),
    ".tsv": ("a TSV table", lambda p, s: read_csv(p, read_text(p))),
    ".xlsx": ("an Excel workbook", lambda p, s: read_xlsx(p)),
    ".eaf": ("an ELAN file", lambda p, s: read_eaf(p)),
}

#: Forms people put in data/raw/ that are not read, and what to do with them.
SAVE_AS = {
    ".doc": "open it in Word and save it as .docx",
    ".pages": "export it from Pages as .docx",
    ".pdf": "export the transcript from its source as .docx or .txt (text cannot be read reliably from a PDF)",
    ".xls": "open it in Excel and save it as .xlsx",
    ".ods": "save it as .xlsx or .csv",
    ".sbv": "convert it to .vtt or .srt",
}


def read_transcript(path: Path, stop_patterns: Sequence[str] = ()) -> Parsed:
    """The turns, stop markers and warnings of the transcript at ``path``.

    Raises InputError for a file that cannot be read as a transcript (one problem, naming the file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        hint = SAVE_AS.get(suffix, "transcripts are read from " + ", ".join(sorted(READERS)))
        raise problem(path, f"\"{suffix or 'no extension'}\" is not a transcript form that can be read", hint=hint)
    compile_patterns(tuple(stop_patterns))  # a bad study pattern is the study's problem, not this file's
    form, reader = READERS[suffix]
    try:
        parsed = reader(path, stop_patterns)
    except InputError:
        raise
    except Exception as exc:  # a library's error about a damaged file we did not foresee
        raise problem(path, f"the file cannot be read as {form} ({type(exc).__name__}: {exc})",
                      hint="open it in the program that made it and save or export it again") from None
    split_stops(parsed, stop_patterns)
    if not parsed.turns:
        raise problem(path, "no turns found (the file holds no transcript text)",
                      hint="check that this is the transcript, exported with its text")
    unlabelled = sum(not t.speaker for t in parsed.turns)
    if unlabelled:
        parsed.warnings.append(f"{path}: {unlabelled} turn(s) name no speaker, so their speaker is empty and "
                               "their role unknown; export the transcript with speaker names if the tool can.")
    return parsed


def split_stops(parsed: Parsed, stop_patterns: Sequence[str] = ()) -> None:
    """Take stop markers out of the turns' text (a table row or cue that is a marker, or begins with one).

    A marker alone is no turn; a marker followed by words leaves the words as the turn.  Stops found earlier
    keep their place among the turns that remain.
    """
    kept, before, found = [], [], []
    for turn in parsed.turns:
        before.append(len(kept))
        stop = match_stop(turn.text, stop_patterns)
        if stop:
            found.append(Stop(video_s=stop[0], line=turn.line, after_turn=len(kept)))
            turn.text = turn.text[stop[1]:].strip()
        elif is_play_marker(turn.text):
            found.append(Stop(video_s=float("nan"), line=turn.line, after_turn=len(kept), plays=True))
            turn.text = ""
        if turn.text:
            kept.append(turn)
    if not found:
        return
    before.append(len(kept))
    for stop in parsed.stops:
        stop.after_turn = before[stop.after_turn]
    parsed.stops = sorted(parsed.stops + found, key=lambda s: (s.after_turn, s.line))
    parsed.turns = kept
