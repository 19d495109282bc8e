"""Stage 5, report: what the PI reads.  ``reports/summary.docx``, every table in ``reports/tables.xlsx``, the
figures in ``reports/figures/``.

Every number in the document comes from a table that is also written to ``tables.xlsx`` (one sheet per table,
named as the table's caption), so the report can be checked against the data and the tables pasted into a paper.
``summaries.report_tables`` computes them all, ``word`` knows how to set a table in Word, and this module writes
the sections.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from docx.shared import Cm, Pt

from . import sequences as seq
from .figures import Figures, code_frequency_figure, timeline_figure
from .parallel import beside
from .summaries import (
    AUTO,
    CONSENSUS,
    EXEMPLARS_PER_CODE,
    WORDS_PER_PAGE,
    Counted,
    ReportData,
    code_names,
    count_codes,
    percent,
    report_tables,
    sequence_runs,
)
from .timecode import format_time
from .word import (
    DOCX_MAX_MOMENTS,
    HEADER_FILL,
    WordDoc,
    bold_evidence,
    borders,
    cell_text,
    plural,
    repeat_header,
    safe_name,
    set_widths,
    shade,
)

# --- the sections -------------------------------------------------------------------------------------------

def build_report(study, codebook, tables: dict[str, pd.DataFrame], audit: dict, now: str | None = None) -> Path:
    """Write summary.docx, tables.xlsx and the figures; ``now`` (UTC, ISO) only for tests.  While this process
    writes the document, a second one writes tables.xlsx and worker processes draw the figures that changed."""
    study.reports.mkdir(parents=True, exist_ok=True)
    path = study.reports / "summary.docx"
    with Figures(study.reports / "figures") as figures:
        # the figures first: those that changed are drawn while the tables and the text are made
        counted = count_codes(tables, codebook)
        runs = sequence_runs(study, tables, counted.codes)
        timelines = _timelines(runs, tables["turns"], tables["segments"], figures)
        charts = _code_charts(counted, figures)
        data = report_tables(study, codebook, tables, audit, now, runs, counted)
        with beside(write_tables_xlsx, study.reports / "tables.xlsx", data.tables):
            d = _document(study, codebook, tables, audit, data, charts, timelines)
            figures.wait()
            d.save(path)
    _remove_stale_figures(figures.folder, figures.paths)
    return path


def write_tables_xlsx(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Every table as a sheet of tables.xlsx, named as the table (written as rows of XML text by
    ``stream_table``: cell by cell, openpyxl took longer than the rest of the report)."""
    from openpyxl import Workbook
    from pandas.api.types import is_string_dtype

    from .xlsx import save, stream_table

    wb = Workbook(write_only=True)
    for name, df in tables.items():
        long_text = [c for c in df.columns if is_string_dtype(df[c]) and df[c].astype(str).str.len().max() > 60]
        widths = {c: 50 for c in long_text}
        stream_table(wb.create_sheet(name[:31]), list(df.columns), list(df.itertuples(index=False, name=None)),
                     widths, wrap=long_text)
    save(wb, path)


def _document(study, codebook, tables: dict[str, pd.DataFrame], audit: dict, data: ReportData,
              charts: list[tuple[Path, str]], timelines: list[tuple]) -> WordDoc:
    """The document, section by section (its figures may still be being drawn)."""
    out = data.tables
    d = WordDoc()
    turns, segments = tables["turns"], tables["segments"]
    names = code_names(codebook)
    coders = [s for s in data.sources if s not in (AUTO, CONSENSUS)]
    now = data.notes["now"]

    d.heading("IPR study: summary report", 0)
    d.para(f"Study folder: {study.root.name}. Report written {now} (UTC); pipeline run started "
           f"{audit['started']}. {audit['software']}.", size=9, color="595959")
    d.para("Every table of this report is also a sheet of reports/tables.xlsx (named in each caption), and every "
           "figure a PNG file in reports/figures/.", size=9, color="595959")

    # The body stays a summary whatever the study's size; what grows with it (a row per rupture, a figure per
    # session, a table per moment) is in appendices after the audit trail.
    appendices = _appendices(d, out, turns, timelines)
    letters = {key: chr(ord("A") + i) for i, (key, *_) in enumerate(appendices)}
    _at_a_glance(d, data, segments)
    _section_overview(d, out, turns)
    _section_alignment(d, out, segments)
    _section_codes(d, data, codebook, coders, charts)
    _section_sequences(d, data, study, turns, letters)
    _section_both_sides(d, out, letters)
    _section_exemplars(d, out, names)
    _section_agreement(d, out, coders)
    _section_methods(d, out, study, audit, coders, now)
    for key, title, landscape, write in appendices:
        new_section = d.landscape != landscape
        d.orientation(landscape)
        heading = d.heading(f"Appendix {letters[key]}. {title}", 1)
        if not new_section:  # (a new section starts a new page of its own)
            heading.paragraph_format.page_break_before = True
        write(d)
    d.orientation(False)
    return d


def _appendices(d: WordDoc, out: dict[str, pd.DataFrame], turns: pd.DataFrame, timelines: list[tuple]) -> list:
    """(key, title, landscape, writer of its content) of each appendix the study has, in order."""
    found = []
    if len(out["Rupture sequences"]):  # the sequences need the width of a landscape page
        found.append(("sequences", "Each rupture marker and its repair", True, lambda d: _appendix_sequences(d, out)))
    if (turns["kind"] == "session").any():
        found.append(("segments", "Ruptures per 5-minute segment",
                      not d.fits_portrait(out["Ruptures per 5 minutes"], "Ruptures per 5 minutes"),
                      lambda d: _appendix_segments(d, out)))
    if timelines:
        found.append(("timelines", "Timelines", False, lambda d: _appendix_timelines(d, timelines)))
    if len(out["Both sides"]):
        found.append(("moments", "Both sides of each moment", False, lambda d: _appendix_moments(d, out)))
    return found


def _see(letters: dict[str, str], what: dict[str, str]) -> str:
    """Where in the appendices each of ``what`` (appendix key -> what it holds) is; empty when none is."""
    parts = [f"{text} (Appendix {letters[key]})" for key, text in what.items() if key in letters]
    if not parts:
        return ""
    return "In the appendices: " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]) + "."


def report_figures(figures_dir: Path) -> list[Path]:
    """The PNG files in ``figures_dir`` that reports draw (a researcher's own figures there are left alone)."""
    if not figures_dir.is_dir():
        return []
    return sorted(p for p in figures_dir.glob("*.png") if p.name.startswith(("timeline_", "code_frequencies")))


def _remove_stale_figures(figures_dir: Path, written: list[Path]) -> None:
    keep = {p.resolve() for p in written}
    for p in report_figures(figures_dir):
        if p.resolve() not in keep:
            p.unlink()


def _at_a_glance(d: WordDoc, data: ReportData, segments: pd.DataFrame) -> None:
    out = data.tables
    d.heading("At a glance", 1)
    ov = dict(zip(out["Overview"]["what"], out["Overview"]["count"], strict=True))
    d.bullet(f"{plural(int(ov['cases']), 'case')}, {plural(int(ov['sessions']), 'session')} and "
             f"{plural(int(ov['IPR interviews']), 'IPR interview')}: {int(ov['words']):,} words in "
             f"{int(ov['turns']):,} turns (about {ov[f'pages ({WORDS_PER_PAGE} words a page)']:g} pages).")
    n_seg = len(segments)
    n_ok = int((segments["status"] == "aligned").sum()) if n_seg else 0
    if n_seg:
        d.bullet(f"{n_ok} of {plural(n_seg, 'IPR stop')} ({percent(n_ok / n_seg)}) were aligned with the session "
                 "moment they recall.")
    else:
        d.bullet("No IPR stop was found, so no recall could be aligned with the session.")
    auto_units = data.units[data.units["coder"] == AUTO]
    d.bullet(f"The codebook's rules suggested {plural(len(auto_units), 'code')} on "
             f"{plural(auto_units['unit_id'].nunique(), 'unit')}." if len(auto_units)
             else "The codebook's rules suggested no code.")
    coders = [s for s in data.sources if s not in (AUTO, CONSENSUS)]
    progress = out.get("Coding progress by coder")
    done = {} if progress is None else dict(zip(progress["coder"], progress["% coded"], strict=True))
    named = [f"{c} ({done[c]} of the units coded)" if c in done else c for c in coders]
    d.bullet(f"Human coding: {', '.join(named) or 'only the consensus coder'}"
             + (f"; the consensus is {data.notes['consensus']}." if CONSENSUS in data.sources else ".")
             if coders or CONSENSUS in data.sources
             else "No coder has coded yet; every code in this report is an automatic suggestion.")
    for r in data.runs:
        s = r.summary
        if s.empty or not len(r.sequences):
            if r.source == AUTO:
                d.bullet("No rupture marker was found in the sessions (automatic suggestions).")
            continue
        total = s.iloc[-1] if len(s) > 1 else s.iloc[0]
        whose = "automatic suggestions" if r.source == AUTO else "coders' consensus"
        d.bullet(f"{plural(int(total['ruptures']), 'rupture marker')} ({whose}); "
                 f"{int(total['repaired'])} followed by a resolution strategy within the window "
                 f"({percent(total['resolution_rate'])})"
                 + (f", after a median of {format_time(total['median_time_to_repair_s'])}."
                    if total["repaired"] else "."))
    both = out["Both sides"]
    if len(both):
        n_both = int((both["both noticed"] == "yes").sum())
        d.bullet(f"{plural(len(both), 'moment')} recalled by both client and therapist; in {n_both} both "
                 "described a rupture.")


def _section_overview(d: WordDoc, out, turns) -> None:
    d.heading("Overview", 1)
    if turns.empty:
        d.para("No transcript was read: data/raw/ has no transcripts yet.")
    d.table("Overview", out["Overview"], "What was analysed", widths={"what": 6.0, "count": 3.0})
    if len(out["Transcripts"]):
        d.table("Transcripts", out["Transcripts"], "The transcripts (duration: the last time stamp)")


def _section_alignment(d: WordDoc, out, segments) -> None:
    d.heading("Alignment quality", 1)
    al = out["Alignment"]
    if al.empty:
        d.para("No IPR interviews were found, so nothing was aligned.")
        return
    n_seg, n_ok = len(segments), int((segments["status"] == "aligned").sum())
    d.para(f"Each stop of an IPR interview is linked to the session turns on screen just before it. {n_ok} of "
           f"{plural(n_seg, 'stop')} were aligned. A stop that is not aligned keeps its recall, but has no "
           "session excerpt: no session transcript for it, a time outside the session, no turns in its window, "
           "or no times in the session transcript.")
    if n_seg and n_ok == 0:
        d.para("Nothing was aligned: the recalls are reported without their session context. Check that every "
               "interview has its session transcript, with times, and the manifest's offset_s.", bold=True)
    d.table("Alignment", al, "Alignment quality per IPR interview")


def _section_codes(d: WordDoc, data: ReportData, codebook, coders, charts: list[tuple[Path, str]]) -> None:
    out = data.tables
    d.heading("Code frequencies", 1)
    if data.units.empty:
        d.para("No codes were applied: neither the codebook's rules nor any coder coded a unit. The tables below "
               "are empty.")
        return
    srcs = data.sources
    who = "the automatic suggestions (auto)"
    if coders:
        who += ", each coder (" + ", ".join(coders) + ")"
    if CONSENSUS in srcs:
        who += f", and the consensus ({data.notes['consensus']})"
    else:
        who += "; no coding by two coders yet, so no consensus"
    d.para(f"Units (session turns and IPR recalls) with each code, counted for {who}. A unit counts once per "
           "code, however many times the code's rules matched in it.")
    d.table("Codes by family", out["Codes by family"], "Coded units by code family")
    by_code = out["Codes by code"]
    d.table("Codes by code", by_code, "Coded units by code")
    unused = [c.id for c in codebook.codes if c.id not in set(by_code["code_id"]) and c.rules]
    if unused:
        d.para(f"Codes of the codebook with rules that no unit received: {', '.join(unused)}.", size=8.5,
               color="595959")
    for path, caption in charts:
        d.figure(path, caption)
    d.table("Codes by role", out["Codes by role"],
            "Coded units by family and role (turns: session turns by speaker; recalls: IPR segments by "
            "participant)")
    d.table("Codes by case and session", out["Codes by case and session"],
            "Coded units by case, session and family")
    d.para("Counts for every code by role, case and session are in the sheet 'Code counts (long)' of "
           "reports/tables.xlsx.", size=8.5, color="595959")


def _section_sequences(d: WordDoc, data: ReportData, study, turns, letters: dict[str, str]) -> None:
    out = data.tables
    window = float(getattr(study.settings, "repair_window_s", 300.0) or 300.0)
    d.orientation(not d.fits_portrait(out["Repair summary"], "Repair summary"))
    d.heading("Rupture → repair sequences", 1)
    d.para(f"A rupture marker is a client turn with a rupture code (rupture.withdrawal.* or "
           f"rupture.confrontation.*); it counts as repaired when a therapist turn with a resolution strategy "
           f"(resolution.*) follows it in the same session within {format_time(window)} (repair_window_s = "
           f"{window:g} s). The time to repair runs from the start of the rupture turn to the start of the first "
           "such resolution; consecutive ruptures may share a repair. Counted "
           + ("for the automatic suggestions and for the coders' consensus." if len(data.runs) > 1
              else "for the automatic suggestions (no coders' consensus yet)."))
    if (turns["kind"] == "session").sum() == 0:
        d.para("There are no session transcripts, so there are no sequences to report.")
        d.orientation(False)
        return
    if out["Rupture sequences"].empty:
        d.para("No rupture marker was found in any session, so there are no sequences.")
    d.table("Repair summary", out["Repair summary"],
            "Ruptures, repairs and the resolution rate per session (rate: repaired of the ruptures with a time)")
    d.para(_see(letters, {"sequences": "each rupture marker with the resolution strategy that followed it",
                          "segments": "the ruptures of each session per 5-minute segment, as the 3RS counts them",
                          "timelines": "a timeline of each session"}))
    d.orientation(False)


def _appendix_sequences(d: WordDoc, out) -> None:
    d.para("One row per rupture marker counted in the section 'Rupture → repair sequences'.")
    d.table("Rupture sequences", out["Rupture sequences"],
            "Each rupture marker and the first resolution strategy that follows it within the window (code "
            "IDs in tables.xlsx)", font_pt=7.5,
            widths={"coded by": 1.6, "case": 1.1, "session": 1.5, "rupture at": 1.7, "type": 2.3,
                    "rupture markers": 4.2, "repair at": 1.5, "resolution strategy": 4.2,
                    "time to repair": 1.5, "outcome": 2.0})


def _appendix_segments(d: WordDoc, out) -> None:
    d.para("As the 3RS does, each session is divided into 5-minute segments; the table counts, per segment, the "
           "client turns with a withdrawal or confrontation marker (a turn with both counts in both columns), the "
           "turns with a resolution strategy, and the ruptures that were repaired. A segment without session "
           "turns was not transcribed: its zeros say nothing.")
    d.table("Ruptures per 5 minutes", out["Ruptures per 5 minutes"], "Rupture markers per 5-minute segment")


def _appendix_timelines(d: WordDoc, timelines: list[tuple]) -> None:
    for case, session, path in timelines:
        if path is None:
            d.para(f"Case {case}, session {session}: no times in the transcript, so no timeline.")
            continue
        d.figure(path, f"Case {case}, session {session}: rupture markers, resolution strategies (lines: "
                       "rupture to its repair) and the IPR stops, from the automatic suggestions")


# --- the figures ---------------------------------------------------------------------------------------------

def _code_charts(counted: Counted, figures: Figures) -> list[tuple[Path, str]]:
    """The bar charts of coded units per code, one per top level of the codebook (so each stays readable on a
    page), with their captions; none when nothing was coded."""
    if counted.units.empty:
        return []
    srcs, by_code = counted.sources, counted.by_code
    groups = {"rupture": "rupture markers (session turns)", "resolution": "resolution strategies (session turns)",
              "recall": "recall themes (IPR recalls)"}
    whose = ", by source" if len(srcs) > 1 else " (automatic suggestions)"
    top = by_code["code_id"].str.split(".").str[0]
    charts = []
    for key in list(dict.fromkeys(top)):
        part = by_code[top == key]
        labels = [f"{n}\n{c}" if n else c for c, n in zip(part["code_id"], part["name"], strict=True)]
        path = figures.draw(code_frequency_figure, part.assign(label=labels), srcs,
                            figures.folder / f"code_frequencies_{safe_name(key)}.png", families=list(part["family"]))
        charts.append((path, f"Coded units per code: {groups.get(key, key)}{whose}"))
    return charts


def _timelines(runs: list, turns: pd.DataFrame, segments: pd.DataFrame, figures: Figures) -> list[tuple]:
    """Per session transcript: (case, session, its timeline, from the automatic suggestions), the timeline None
    when it has no times (the automatic suggestions cover every session; coders may code a part)."""
    primary = next((r for r in runs if r.source == AUTO), runs[0])
    aligned = segments[segments["status"] == "aligned"]
    # each session's rows, split once; only the columns a timeline draws (its cache key hashes what it gets)
    rup = _by(primary.ruptures[["transcript_id", "turn_id", "time_s", "type"]], ["transcript_id"])
    res = _by(primary.resolutions[["transcript_id", "time_s"]], ["transcript_id"])
    sqs = _by(primary.sequences[["transcript_id", "rupture_turn_id", "rupture_s", "repair_s", "status"]],
              ["transcript_id"])
    stops = _by(aligned[["case", "session", "participant", "session_s"]], ["case", "session"])
    timelines = []
    for dur in seq.session_durations(turns).itertuples(index=False):
        path = None
        if dur.duration_s == dur.duration_s:
            path = figures.draw(timeline_figure, f"Case {dur.case}, session {dur.session}", dur.duration_s,
                                rup(dur.transcript_id), res(dur.transcript_id), sqs(dur.transcript_id),
                                stops(dur.case, dur.session),
                                figures.folder / f"timeline_{safe_name(dur.case)}_{safe_name(dur.session)}.png")
        timelines.append((dur.case, dur.session, path))
    return timelines


def _by(df: pd.DataFrame, keys: list[str]):
    """``pick(*key)``: the rows of ``df`` with that key (in their order), the table split once."""
    groups = {k if len(keys) > 1 else (k,): g for k, g in df.groupby(
        keys if len(keys) > 1 else keys[0], sort=False)} if len(df) else {}
    empty = df.iloc[0:0]
    return lambda *key: groups.get(key, empty)


def _section_both_sides(d: WordDoc, out, letters: dict[str, str]) -> None:
    both = out["Both sides"]
    d.heading("Both sides of a moment", 1)
    if both.empty:
        d.para("No stretch of session was recalled by both the client and the therapist (no client and therapist "
               "stops with overlapping session windows), so there are no moments to compare.")
        return
    d.para("Where the client and the therapist stopped the video at the same stretch of session, their recalls "
           "side by side. A participant 'noticed' a rupture when the recall has a recall.rupture.* code, or (for "
           "the therapist) a recall.awareness.* code other than not noticing it. The codes are the coders' "
           "consensus (as in 'Code frequencies') where coders coded the recall, otherwise the automatic "
           "suggestions.")
    d.table("Both sides", both, "Moments recalled by both participants, and whether each noticed a rupture")
    d.para(_see(letters, {"moments": "the two recalls of each moment side by side, with the session excerpt"}))


def _appendix_moments(d: WordDoc, out) -> None:
    both = out["Both sides"]
    for i, r in enumerate(both.to_dict("records"), 1):
        if i > DOCX_MAX_MOMENTS:
            d.para(f"The first {DOCX_MAX_MOMENTS} of {len(both)} moments are shown side by side; every moment, with "
                   "both recalls, is in the sheet 'Both sides' of reports/tables.xlsx.", size=8.5, color="595959")
            break
        d.heading(f"Moment {i}: case {r['case']}, session {r['session']}, {r['moment']}", 3)
        if r["session excerpt"]:
            p = d.para()
            bold_evidence(p, cell_text(r["session excerpt"], 900), "", size=8, italic=True)
        pair_table(d, r)
        d.para()


def pair_rows(r: dict) -> list[tuple[str, str]]:
    """The two-column table of one moment: client beside therapist."""
    return [(f"Client (video {r['client stop']})", f"Therapist (video {r['therapist stop']})"),
            (cell_text(r["client recall"], 1500), cell_text(r["therapist recall"], 1500)),
            (f"Codes ({r['client codes by']}): {r['client codes'] or 'none'}",
             f"Codes ({r['therapist codes by']}): {r['therapist codes'] or 'none'}"),
            (f"Noticed a rupture: {r['client noticed']}", f"Noticed a rupture: {r['therapist noticed']}")]


def pair_table(d: WordDoc, r: dict):
    rows = pair_rows(r)
    return d.copy_table(("pair", len(rows)), lambda: _pair_table(d, len(rows)), [t for row in rows for t in row])


def _pair_table(d: WordDoc, n_rows: int):
    """The two-column table of a moment, without its texts: a shaded bold header, borders, half the page each."""
    t = d.doc.add_table(rows=n_rows, cols=2)
    t.autofit = False
    borders(t)
    set_widths(t, [d.width_cm / 2] * 2)
    for k, row in enumerate(t.rows):
        for cell in row.cells:
            cell.text = ""
            for p in cell.paragraphs:
                p.paragraph_format.space_after = Pt(0)
                for run in p.runs:
                    run.font.size = Pt(8.5)
                    run.bold = k == 0
            if k == 0:
                shade(cell, HEADER_FILL)
    repeat_header(t.rows[0])
    return t


def _section_exemplars(d: WordDoc, out, names) -> None:
    ex = out["Exemplars"]
    d.heading("Exemplars", 1)
    if ex.empty:
        d.para("No unit was coded, so there are no exemplars yet.")
        return
    d.para(f"For each code, up to {EXEMPLARS_PER_CODE} coded units: the coders' consensus first, then a coder's "
           "codes, then the automatic suggestions. A recall is shown with the session excerpt that was on screen "
           "before the stop; a session turn with what the participant recalled about it. The words that matched "
           "the code's rule are in bold.")
    for code_id, g in ex.groupby("code_id", sort=False):
        d.heading(f"{names.get(code_id) or code_id} ({code_id})", 3)
        for r in g.to_dict("records"):
            d.para(exemplar_line(r), size=8, color="595959", bold=True)
            if r["unit"].endswith("recall"):
                p = d.para()
                bold_evidence(p, cell_text(r["recall"], 1200), r["evidence"], size=9.5)
                if r["session excerpt"]:
                    p = d.para()
                    bold_evidence(p, cell_text(r["session excerpt"], 900), "", size=8, italic=True)
                    p.paragraph_format.left_indent = Cm(0.8)
            else:
                p = d.para()
                bold_evidence(p, cell_text(r["session excerpt"], 900), r["evidence"], size=9.5)
                if r["recall"]:
                    p = d.para(f"What the {r['participant']} recalled (video {r['video time']}): ", italic=True,
                               size=8)
                    bold_evidence(p, cell_text(r["recall"], 900), "", size=8, italic=True)
                    p.paragraph_format.left_indent = Cm(0.8)


def exemplar_line(r: dict) -> str:
    """The line above an exemplar: where it is and who coded it."""
    where = f"Case {r['case']}, session {r['session']}, {r['unit']}"
    if r["video time"]:
        where += f", video {r['video time']}"
    if r["session time"]:
        where += f", session {r['session time']}"
    where += f"; coded by {r['coded by']}"
    if r["evidence"]:
        where += f"; matched “{r['evidence']}”"
    return where


def _section_agreement(d: WordDoc, out, coders) -> None:
    wide = bool(coders) and "Agreement" in out and not d.fits_portrait(out["Agreement"], "Agreement")
    d.orientation(wide)
    d.heading("Agreement between coders", 1)
    if "Coding progress by coder" in out:
        d.para("How far each coder has got: the units (session turns and IPR segments) each coded, with a code or a "
               "memo. Per transcript in the sheet 'Coding progress' of reports/tables.xlsx.")
        d.table("Coding progress by coder", out["Coding progress by coder"], "Coding so far")
    if not coders:
        d.para("No coder has coded yet, so there is no agreement to report. Coders code in data/coded/<coder>/; "
               "`ipr agreement` then computes their agreement.")
    elif "Agreement" in out:
        ag = out["Agreement"]
        if ag.empty:
            d.para("The agreement table is empty: no unit was coded by two or more coders.")
        else:
            d.para("Per code, over the units that two or more coders coded (from `ipr agreement`; also "
                   "reports/agreement.csv). Cohen's kappa where exactly two coders coded the units; the "
                   "'(all codes)' row pools the codes. Kappa and alpha fall with a code's rarity even where the "
                   "coders agree on nearly every unit (rupture markers are rare); Gwet's AC1 does not, and positive "
                   "agreement counts only the units where a coder gave the code.")
            d.table("Agreement", ag, "Intercoder agreement per code")
            pairs = out.get("Agreement by pair")
            if pairs is not None and len(pairs) > 1:
                d.para("Each pair of coders, over the units both coded, every code pooled: which coder codes apart "
                       "from the others.")
                d.table("Agreement by pair", pairs, "Agreement between each pair of coders")
            _disagreements(d, out)
    else:
        d.para("Coders have coded, but agreement has not been computed yet (data/interim/agreement.parquet is "
               "missing): run `ipr agreement`, then `ipr report`.")
    if coders and "Suggestions vs coders, all" in out:
        d.heading("How far to trust the suggestions", 2)
        d.para("The automatic suggestions against each coder, over the units the coder coded, taking the coder as "
               "right: precision (of the suggestions, how many the coder also gave) and recall (of the coder's "
               "codes, how many were suggested). Per code in the sheet 'Suggestions vs coders' of "
               "reports/tables.xlsx.")
        d.table("Suggestions vs coders, all", out["Suggestions vs coders, all"],
                "The suggestions against each coder, all codes pooled")
    d.orientation(False)


def _disagreements(d: WordDoc, out) -> None:
    """Where the coders' disagreements are listed (the list itself grows with the study: it is for the meeting)."""
    apart = out.get("Disagreements")
    if apart is None:
        return
    if apart.empty:
        d.para("The coders made every decision alike on the units they coded together.")
        return
    units = apart["unit_id"].nunique()
    left = int((apart["consensus"] == "").sum())
    decided = (f" The consensus coder has decided {len(apart) - left} of them; {left} are still open." if left < len(
        apart) else "")
    d.para(f"The coders decided {len(apart)} code{'s' * (len(apart) != 1)} differently (one coder gave it, another "
           f"did not) on {units} unit{'s' * (units != 1)}. Each is listed, with the unit's words and who gave the "
           "code, in the sheet 'Disagreements' of reports/tables.xlsx and in reports/disagreements.csv: the list "
           f"for a consensus meeting.{decided}")


def _section_methods(d: WordDoc, out, study, audit, coders, now) -> None:
    d.heading("Methods and audit trail", 1)
    s = audit["settings"]
    d.para("Transcripts in data/raw/ were read into turns (speaker, role, times, text). Every stop of an IPR "
           "interview was linked to the session turns on screen before it, through the video time plus the "
           f"manifest's offset, looking back to the previous stop and at most {float(s.get('window_s', 60)):g} s. The "
           "codebook's rules (phrases on lemmas, token patterns, regular expressions and structural rules, with "
           "negation and speaker-role scope) suggested codes for session turns and IPR recalls; these automatic "
           "suggestions are for coders to review, not ratings. Coders' codes are read from their workbooks in "
           "data/coded/. Pages are counted at 350 words a page.")
    d.heading("Software, codebook and run", 2)
    d.table("Run", out["Run"], "Software, codebook and run", widths={"what": 4.5})
    d.table("Settings", out["Settings"], "Settings (study.toml, with defaults)", widths={"setting": 5.0})
    d.heading("Input files", 2)
    if out["Inputs"].empty:
        d.para("The input files of the run are not recorded (run `ipr analyze` to record them with their "
               "SHA-256).")
    else:
        d.table("Inputs", out["Inputs"], "Every input file with its SHA-256", font_pt=7, mono=("sha256",))
    d.heading("Warnings of the run", 2)
    if out["Warnings"].empty:
        d.para("None.")
    for w in out["Warnings"]["warning"]:
        p = d.bullet(w)
        for run_ in p.runs:
            run_.font.size = Pt(8.5)

