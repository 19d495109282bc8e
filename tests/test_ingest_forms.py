"""Every transcript form gives the same turns: the same short session written in each layout people use.

Text-based forms are files under tests/data/ingest/same/; Word and Excel files are built here with python-docx
and openpyxl in the exact layouts that Word, Teams and transcription services write.
"""

import datetime as dt
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import docx
import openpyxl

from pipeline.ingest.readers import read_transcript

DATA = Path(__file__).parent / "data" / "ingest"
SAME = DATA / "same"

SESSION = [
    (5, "Therapist", "How have you been since we last met?"),
    (12, "Client", "Honestly, not great. [inaudible 00:00:15] work has been a lot."),
    (31, "Therapist", "A lot in what way? (2.0)"),
    (40, "Client", "I don't know... it's just -- everything (sighs)."),
    (62, "Therapist", "It sounds heavy."),
    (70, "Client", "Yeah. (laughs) Heavy is the word."),
]


def hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def ms(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def save_docx(path: Path, paragraphs=(), tables=()) -> Path:
    document = docx.Document()
    for text in paragraphs:
        if isinstance(text, tuple):  # a line break inside one paragraph, as Teams writes it
            paragraph = document.add_paragraph(text[0])
            for more in text[1:]:
                paragraph.add_run().add_break()
                paragraph.add_run(more)
        else:
            document.add_paragraph(text)
    for rows in tables:
        table = document.add_table(rows=0, cols=len(rows[0]))
        for row in rows:
            cells = table.add_row().cells
            for cell, value in zip(cells, row, strict=True):
                cell.text = value
    document.save(path)
    return path


ODF = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
       'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
       'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"')


def save_odt(path: Path, body: str) -> Path:
    """An .odt file as LibreOffice writes one (its mimetype first and stored), ``body`` the XML of its text."""
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF} office:version="1.3">'
               f"<office:body><office:text>{body}</office:text></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def odt_forms(tmp: Path) -> dict[str, Path]:
    """The session in LibreOffice Writer: paragraphs with styled spans, and a table with a header row."""
    paragraphs = '<text:h text:outline-level="1">Session 3</text:h>' + "".join(
        f'<text:p text:style-name="P1">[{hms(t)}]<text:s/><text:span text:style-name="T1">{who}</text:span>: '
        f"{escape(text)}</text:p>" for t, who, text in SESSION)
    rows = "".join(f"<table:table-row><table:table-cell><text:p>{hms(t)}</text:p></table:table-cell>"
                   f"<table:table-cell><text:p>{who}</text:p></table:table-cell>"
                   f"<table:table-cell><text:p>{escape(text)}</text:p></table:table-cell></table:table-row>"
                   for t, who, text in SESSION)
    table = ('<text:p>D01 session 3</text:p><table:table table:name="Table1"><table:table-column '
             'table:number-columns-repeated="3"/><table:table-header-rows><table:table-row>'
             + "".join(f"<table:table-cell><text:p>{h}</text:p></table:table-cell>"
                       for h in ("Time", "Speaker", "Text"))
             + f"</table:table-row></table:table-header-rows>{rows}</table:table>")
    return {"odt paragraphs": save_odt(tmp / "paragraphs.odt", paragraphs),
            "odt table with header": save_odt(tmp / "table.odt", table)}


def docx_forms(tmp: Path) -> dict[str, Path]:
    forms = {
        "docx paragraphs, bare time": [f"{hms(t)} {who}: {text}" for t, who, text in SESSION],
        "docx paragraphs, bracketed time": ["Session 3", ""] + [f"[{hms(t)}] {who}: {text}" for t, who, text in
                                                                SESSION],
        "docx Teams, line break": ["Transcript"] + [(f"{who}   {ms(t)}", text) for t, who, text in SESSION],
        "docx Teams, next paragraph": [p for t, who, text in SESSION for p in (f"{who}   {hms(t)}", text, "")],
    }
    paths = {name: save_docx(tmp / f"{i}.docx", paragraphs) for i, (name, paragraphs) in enumerate(forms.items())}
    header = [["Time", "Speaker", "Text"]] + [[hms(t), who, text] for t, who, text in SESSION]
    paths["docx table with header"] = save_docx(tmp / "table.docx", ["D01 session 3"], [header])
    shuffled = [[text, who, ms(t)] for t, who, text in SESSION]
    paths["docx table, no header, any order"] = save_docx(tmp / "shuffled.docx", [], [shuffled])
    return paths


def xlsx_form(tmp: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Utterance", "Who", "Start", "End"])
    for t, who, text in SESSION:
        start = dt.time(t // 3600, t % 3600 // 60, t % 60)
        sheet.append([text, who, start, None])
        sheet.append([None, None, None, None])  # rows with no text are skipped
    path = tmp / "session.xlsx"
    book.save(path)
    return path


def all_forms(tmp: Path) -> dict[str, Path]:
    forms = {path.name: path for path in sorted(SAME.iterdir())}
    forms.update(docx_forms(tmp))
    forms.update(odt_forms(tmp))
    forms["xlsx"] = xlsx_form(tmp)
    return forms


def test_there_are_forms_enough():
    assert len(list(SAME.iterdir())) >= 12


def test_the_same_session_in_every_form_gives_the_same_turns(tmp_path):
    for name, path in all_forms(tmp_path).items():
        parsed = read_transcript(path)
        got = [(round(t.start_s), t.speaker, t.text) for t in parsed.turns]
        assert got == SESSION, name
        assert all(t.line > 0 for t in parsed.turns), name
        assert [t.line for t in parsed.turns] != [0] * len(SESSION), name
        assert parsed.stops == [], name


def test_lines_point_at_where_each_turn_begins():
    lines = [t.line for t in read_transcript(SAME / "colon_bare.txt").turns]
    assert lines == [1, 3, 5, 6, 8, 9]
    assert [t.line for t in read_transcript(SAME / "otter.txt").turns] == [1, 4, 7, 10, 13, 16]
    assert [t.line for t in read_transcript(SAME / "session.csv").turns] == [2, 3, 4, 5, 7, 8]
    assert [t.line for t in read_transcript(SAME / "zoom.vtt").turns][:2] == [4, 8]  # the cue's timing line


def test_subtitle_and_table_forms_keep_end_times():
    for name in ("zoom.vtt", "teams.vtt", "session.srt", "session.eaf"):
        assert [t.end_s for t in read_transcript(SAME / name).turns][:2] == [11.5, 30.0], name
    assert read_transcript(SAME / "session.csv").turns[0].end_s == 11.0


def test_a_title_line_is_skipped_with_a_warning():
    parsed = read_transcript(SAME / "colon_bracketed.txt")
    assert len(parsed.turns) == 6
    assert any("before the first speaker label" in w and "colon_bracketed.txt" in w for w in parsed.warnings)


def test_otter_footer_is_not_a_turn():
    parsed = read_transcript(SAME / "otter.txt")
    assert "otter.ai" not in parsed.turns[-1].text


def test_docx_label_only_paragraphs_and_teams_headings_with_a_tab(tmp_path):
    path = save_docx(tmp_path / "t.docx", ["T: How are you?", "C: Fine.", "Really fine.", "", "T: Good."])
    parsed = read_transcript(path)
    assert [(t.speaker, t.text, t.start_s, t.line) for t in parsed.turns] == [
        ("T", "How are you?", None, 1), ("C", "Fine. Really fine.", None, 2), ("T", "Good.", None, 5)]
    path = save_docx(tmp_path / "teams.docx", ["Transcript", "March 1, 2024, 10:00AM", ("Ruiz, Ana\t0:03", "Hi."),
                                               ("Doe, Jane (Guest)\t1:02:03", "Hello.", "Still me.")])
    parsed = read_transcript(path)
    assert [(t.speaker, t.text, t.start_s, t.line) for t in parsed.turns] == [
        ("Ruiz, Ana", "Hi.", 3, 3), ("Doe, Jane (Guest)", "Hello. Still me.", 3723, 4)]
    assert any("2 paragraph(s) before the first speaker label" in w for w in parsed.warnings)


def test_docx_table_with_merged_cells_reads_each_cell_once(tmp_path):
    """A speaker cell merged down over two turns gives both the speaker; a cell merged across two columns is
    one cell (python-docx's rules for merged cells)."""
    document = docx.Document()
    table = document.add_table(rows=4, cols=4)
    for row, values in enumerate([["Time", "Speaker", "Text", ""], ["00:00:05", "Therapist", "How are you?", ""],
                                  ["00:00:09", "", "Take your time.", ""], ["00:00:15", "Client", "Tired.", ""]]):
        for col, value in enumerate(values):
            table.cell(row, col).text = value
    table.cell(1, 1).merge(table.cell(2, 1))
    for row in range(4):
        table.cell(row, 2).merge(table.cell(row, 3))
    document.save(tmp_path / "merged.docx")
    parsed = read_transcript(tmp_path / "merged.docx")
    assert [(t.start_s, t.speaker, t.text) for t in parsed.turns] == [
        (5, "Therapist", "How are you?"), (9, "Therapist", "Take your time."), (15, "Client", "Tired.")]


def test_a_title_row_above_a_tables_header_is_skipped_with_a_warning(tmp_path):
    header = [["Time", "Speaker", "Text"]] + [[hms(t), who, text] for t, who, text in SESSION]
    document = docx.Document()
    table = document.add_table(rows=len(header) + 1, cols=3)
    table.cell(0, 0).merge(table.cell(0, 2)).text = "D01 session 3, recorded 2024"
    for row, values in enumerate(header, 1):
        for col, value in enumerate(values):
            table.cell(row, col).text = value
    document.save(tmp_path / "titled.docx")
    book = openpyxl.Workbook()
    for row in [["Session 3"], [], *header]:
        book.active.append(row)
    book.save(tmp_path / "titled.xlsx")
    for name, where in (("titled.docx", "row 1"), ("titled.xlsx", "row 1")):
        parsed = read_transcript(tmp_path / name)
        assert [(round(t.start_s), t.speaker, t.text) for t in parsed.turns] == SESSION, name
        assert [w for w in parsed.warnings if "above the header row" in w] == [
            f"{tmp_path / name}, {where}: above the header row, so not read as turns (a title); check that no "
            "turn is missing."], name


def test_docx_main_part_is_found_by_its_relationship(tmp_path):
    """Word names the main part word/document.xml, but the package's relationships say where it is."""
    import zipfile

    plain = save_docx(tmp_path / "plain.docx", [f"{hms(t)} {who}: {text}" for t, who, text in SESSION])
    renamed = tmp_path / "renamed.docx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(renamed, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            name = item.filename.replace("document.xml", "body.xml")
            if name in ("_rels/.rels", "[Content_Types].xml"):
                data = data.replace(b"word/document.xml", b"word/body.xml")
            dst.writestr(name, data)
    got = [(round(t.start_s), t.speaker, t.text) for t in read_transcript(renamed).turns]
    assert got == SESSION
