"""The quick ways of writing the report give what the plain ways give: a run's text appended in pieces, a table
copied from one built once, pictures placed at save, IDs matched with a set, timelines drawn into a reused
frame, and figures drawn by forked workers."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from docx import Document
from docx.shared import Cm
from lxml import etree
from PIL import Image

from pipeline.figures import Figures, code_frequency_figure, drawn_once, timeline_figure
from pipeline.files import member
from pipeline.word import WordDoc, _add_text, borders, set_widths

TEXTS = ["plain", " leading and trailing ", "a\tb", "line\nbreak", "crlf\r\nend", "\t", "\n\n", "", "“é😀”"]


def xml(element) -> bytes:
    return etree.tostring(element)


def test_text_added_a_piece_at_a_time_makes_the_runs_python_docx_makes():
    doc = Document()
    for text in TEXTS:
        slow, quick = doc.add_paragraph().add_run(), doc.add_paragraph().add_run()
        slow.text = text
        _add_text(quick._r, text)
        assert xml(quick._r) == xml(slow._r), repr(text)


def test_a_copied_table_is_the_table_built_cell_by_cell():
    d = WordDoc()
    texts = [["head 1", "head 2"], ["a\nb", " c "], ["", "d\te"]]

    def build(values):
        t = d.doc.add_table(rows=len(values), cols=2)
        borders(t)
        set_widths(t, [d.width_cm / 2] * 2)
        for row, line in zip(t.rows, values, strict=True):
            for cell, text in zip(row.cells, line, strict=True):
                cell.text = text
                cell.paragraphs[0].runs[0].bold = True
        return t

    slow = build(texts)
    for _ in range(2):  # the second one is copied from the first
        quick = d.copy_table(("test",), lambda: build([[""] * 2] * 3), [t for line in texts for t in line])
        assert xml(quick._tbl) == xml(slow._tbl)


def test_pictures_placed_at_save_are_those_add_picture_places(tmp_path):
    paths = []
    for i, n in enumerate((2, 40)):  # a short chart and one taller than a page
        paths.append(code_frequency_figure(pd.DataFrame({"label": [f"c{k}" for k in range(n)], "auto": range(n)}),
                                           ["auto"], tmp_path / f"f{i}.png"))
    paths.append(paths[0])  # the same picture again: stored once
    d = WordDoc()
    for path in paths:
        d.figure(path, "A figure")
    d.save(tmp_path / "quick.docx")
    quick = Document(tmp_path / "quick.docx").inline_shapes
    plain = Document()
    widths = []
    for path in paths:
        width = 16.0
        with Image.open(path) as im:
            if width * im.height / im.width > 21.0:
                width = 21.0 * im.width / im.height
        widths.append(plain.add_picture(str(path), width=Cm(width)))
    assert [(s.width, s.height) for s in quick] == [(s.width, s.height) for s in widths]
    ids = [s._inline.docPr.id for s in quick]
    assert ids == [s._inline.docPr.id for s in widths] == sorted(set(ids))
    plain.save(tmp_path / "plain.docx")
    media = [sorted(n for n in zipfile.ZipFile(tmp_path / f"{name}.docx").namelist() if n.startswith("word/media/"))
             for name in ("quick", "plain")]
    assert media[0] == media[1] == ["word/media/image1.png", "word/media/image2.png"]
    rel_ids = [s._inline.graphic.graphicData.pic.blipFill.blip.embed for s in quick]
    assert rel_ids[0] == rel_ids[2] != rel_ids[1]


def test_member_is_isin():
    column = pd.Series(["a", "b", None, "c", "a"], dtype="str")
    for values in (["a", "c"], pd.Series(["b"]), pd.Index(["x"]), {"a": 1}, []):
        assert member(column, values).tolist() == column.isin(list(values)).tolist()


def _timeline(tmp_path, name, n, duration):
    rng = np.random.default_rng(n)
    times = np.sort(rng.uniform(0, duration, n))
    ruptures = pd.DataFrame({"transcript_id": "t", "turn_id": [f"u{i}" for i in range(n)], "time_s": times,
                             "type": rng.choice(["withdrawal", "confrontation", "withdrawal+confrontation"], n)})
    resolutions = pd.DataFrame({"transcript_id": "t", "time_s": times + 20})
    sequences = pd.DataFrame({"transcript_id": "t", "rupture_turn_id": ruptures["turn_id"], "rupture_s": times,
                              "repair_s": times + 20, "status": rng.choice(["repaired", "unrepaired"], n)})
    stops = pd.DataFrame({"case": "c", "session": "s", "participant": ["client", "therapist"] * 2,
                          "session_s": [10.0, 20.0, duration / 2, duration - 5]})
    return (f"Case c, session {name}", duration, ruptures, resolutions, sequences, stops, tmp_path / f"{name}.png")


def test_a_timeline_drawn_after_others_is_the_one_drawn_first(tmp_path):
    first = _timeline(tmp_path / "first", "one", 12, 3000.0)
    (tmp_path / "first").mkdir()
    (tmp_path / "again").mkdir()
    timeline_figure(*first)
    timeline_figure(*_timeline(tmp_path / "first", "two", 40, 900.0))  # other data in the same frame
    timeline_figure(*_timeline(tmp_path / "first", "three", 0, 100.0))
    again = _timeline(tmp_path / "again", "one", 12, 3000.0)
    timeline_figure(*again)
    assert first[-1].read_bytes() == again[-1].read_bytes()


def _has_colour(image: Image.Image, colour: str, box: tuple[int, int, int, int]) -> bool:
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    pixels = np.asarray(image.convert("RGB").crop(box))
    return bool((np.abs(pixels.astype(int) - rgb).sum(axis=2) < 30).any())


def test_a_timeline_draws_the_session_over_its_frame(tmp_path):
    """Only the frame is kept between timelines: each session's markers, links and title are drawn on it."""
    from pipeline.figures import COLORS

    empty = _timeline(tmp_path, "empty", 0, 3000.0)
    timeline_figure(*empty)
    full = _timeline(tmp_path, "full", 12, 3000.0)
    timeline_figure(*full)
    with Image.open(full[-1]) as drawn, Image.open(empty[-1]) as bare:
        assert drawn.size == bare.size == (1040, 384)
        whole = (0, 0, *drawn.size)
        for colour in (COLORS["withdrawal"], COLORS["confrontation"], COLORS["resolution"]):
            assert _has_colour(drawn, colour, whole) and not _has_colour(bare, colour, whole)
        for who in ("client", "therapist"):  # the stops are in both
            assert _has_colour(drawn, COLORS[who], whole) and _has_colour(bare, COLORS[who], whole)
        title = (0, 0, drawn.size[0], 40)
        assert np.asarray(drawn.convert("L").crop(title)).min() < 100  # its title, in black
        assert np.asarray(drawn.convert("L").crop(title)).tolist() != np.asarray(bare.convert("L").crop(title)).tolist()


def test_a_timeline_leaves_its_clock_blank_after_the_session_and_marks_the_end(tmp_path):
    """Sessions of about the same length share a frame whose clock runs to the next 5-minute mark: after the
    session's end the shaded band is covered, and a dashed line marks the end.  A longer session in the same
    frame shows the band whole."""
    short = _timeline(tmp_path, "short", 0, 660.0)  # 11 minutes: the frame runs to 15:00, bands 0-5 and 10-15
    long = _timeline(tmp_path, "long", 0, 890.0)
    timeline_figure(*short)
    timeline_figure(*long)

    def x(seconds: float) -> int:  # the frame's axes: 20% to 98% of the width, the clock from -1% to 102% of 15:00
        left, right = 0.2 * 1040, 0.98 * 1040
        return round(left + (seconds + 9) / (918 + 9) * (right - left))

    band = "#f2f2f2"
    with Image.open(short[-1]) as s, Image.open(long[-1]) as g:
        rows = (0, 200)  # above the lowest lanes, below the title
        for when, in_short, in_long in ((630, True, True), (760, False, True), (850, False, True)):
            box = (x(when) - 2, rows[0] + 60, x(when) + 2, rows[1])
            assert _has_colour(s, band, box) == in_short, when
            assert _has_colour(g, band, box) == in_long, when
        end = (x(660) - 3, 60, x(660) + 3, 200)  # a grey line there, in the short one only
        assert np.asarray(s.convert("L").crop(end)).min() < 215 <= np.asarray(g.convert("L").crop(end)).min()


def test_figures_drawn_by_workers_are_those_drawn_here(tmp_path):
    for folder in ("here", "workers"):
        (tmp_path / folder).mkdir()
    jobs = [_timeline(tmp_path / "here", f"s{i}", 5 + i, 600.0 * (i + 1)) for i in range(4)]
    for job in jobs:
        timeline_figure(*job)
    with Figures(tmp_path / "workers") as figures:
        paths = [figures.draw(timeline_figure, *job[:-1], tmp_path / "workers" / job[-1].name) for job in jobs]
        figures.wait()
    assert figures.paths == paths
    for job, path in zip(jobs, paths, strict=True):
        assert path.read_bytes() == job[-1].read_bytes()


@drawn_once
def _failing_figure(path, n: int = 0):
    raise ValueError(f"figure {n} cannot be drawn")


def test_an_error_of_a_worker_is_raised_by_wait(tmp_path):
    with pytest.raises(ValueError, match="cannot be drawn"), Figures(tmp_path) as figures:
        for n in range(3):
            figures.draw(_failing_figure, tmp_path / f"{n}.png", n)
        figures.wait()


def test_without_a_second_core_the_figures_are_drawn_here(tmp_path, monkeypatch):
    import pipeline.parallel

    monkeypatch.setattr(pipeline.parallel, "can_fork", lambda: False)
    jobs = [_timeline(tmp_path, f"s{i}", 3, 600.0) for i in range(3)]
    with Figures(tmp_path) as figures:
        for job in jobs:
            figures.draw(timeline_figure, *job)
        assert not any(job[-1].exists() for job in jobs)  # queued until wait
        figures.wait()
    assert figures._pool is None and all(job[-1].exists() for job in jobs)


def test_runs_made_as_xml_are_those_python_docx_makes():
    """``add_runs`` writes the runs as XML text, for speed: the same XML as python-docx's own run API."""
    from docx.shared import Pt, RGBColor

    from pipeline.word import add_runs

    runs = [("plain", {}), ("  spaced  ", {"bold": True}), ("a\ttab\nand a break", {"italic": True, "size": 9.5}),
            ("x < y & \"z\"\x07", {"bold": False, "italic": False, "size": 8, "color": "595959"}), ("", {"bold": True})]
    document = Document()
    ours, theirs = document.add_paragraph(), document.add_paragraph()
    add_runs(ours, runs)
    for text, style in runs:
        if not text:
            continue
        run = theirs.add_run(text.replace("\x07", ""))  # (python-docx refuses a character XML cannot hold)
        if "bold" in style:
            run.bold = style["bold"]
        if "italic" in style:
            run.italic = style["italic"]
        if "size" in style:
            run.font.size = Pt(style["size"])
        if "color" in style:
            run.font.color.rgb = RGBColor.from_string(style["color"])
    assert ours._p.xml == theirs._p.xml
    assert [r.text for r in ours.runs] == ["plain", "  spaced  ", "a\ttab\nand a break", 'x < y & "z"']
