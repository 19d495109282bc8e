"""Stage 5, report: what the PI reads.  ``reports/summary.docx``, every table in ``reports/tables.xlsx``.

Every number in the document comes from a table that is also written to ``tables.xlsx``, so the report can be
checked against the data and the tables pasted into a paper.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from docx import Document
from docx.shared import Pt
from openpyxl import Workbook

from .files import atomic_path
from .timecode import format_time
from .xlsx import write_table

WORDS_PER_PAGE = 350


def overview(turns: pd.DataFrame) -> pd.DataFrame:
    words = turns["text"].str.split().str.len().sum() if len(turns) else 0
    return pd.DataFrame([
        ("cases", turns["case"].nunique()),
        ("sessions", turns.loc[turns["kind"] == "session", "transcript_id"].nunique()),
        ("IPR interviews", turns.loc[turns["kind"] == "ipr", "transcript_id"].nunique()),
        ("turns", len(turns)),
        ("words", int(words)),
        ("pages (350 words)", round(words / WORDS_PER_PAGE, 1)),
    ], columns=["what", "count"])


def code_frequencies(codes: pd.DataFrame, codebook) -> pd.DataFrame:
    """Units per code for the automatic suggestions and for each coder."""
    names = {c.id: c.name for c in codebook.codes}
    per = codes.drop_duplicates(["unit_type", "unit_id", "code_id", "coder"])
    if per.empty:
        return pd.DataFrame(columns=["code_id", "name", "family"])
    table = per.pivot_table(index="code_id", columns="coder", values="unit_id", aggfunc="count", fill_value=0)
    table.columns = [f"units ({c})" for c in table.columns]
    table = table.reset_index()
    table.insert(1, "name", table["code_id"].map(names).fillna(""))
    table.insert(2, "family", table["code_id"].map(family))
    order = {c.id: i for i, c in enumerate(codebook.codes)}
    return table.sort_values("code_id", key=lambda s: s.map(order).fillna(len(order))).reset_index(drop=True)


def family(code_id: str) -> str:
    parts = code_id.split(".")
    return ".".join(parts[:2]) if parts[0] in ("rupture", "recall") else parts[0]


def exemplars(codes: pd.DataFrame, segments: pd.DataFrame, per_code: int = 2) -> pd.DataFrame:
    """For each code applied to recalls, the first segments with their session excerpt."""
    auto = codes[(codes["coder"] == "auto") & (codes["unit_type"] == "segment")].drop_duplicates(
        ["unit_id", "code_id"])
    seg = segments.set_index("segment_id")
    rows = []
    for code_id, g in auto.groupby("code_id", sort=True):
        for unit_id, evidence in list(zip(g["unit_id"], g["evidence"], strict=True))[:per_code]:
            s = seg.loc[unit_id]
            rows.append({"code_id": code_id, "case": s["case"], "participant": s["participant"],
                         "video time": format_time(s["video_s"]), "evidence": evidence,
                         "recall": s["recall_text"], "session excerpt": s["context_text"]})
    return pd.DataFrame(rows, columns=["code_id", "case", "participant", "video time", "evidence", "recall",
                                       "session excerpt"])


def _docx_table(doc, df: pd.DataFrame, font_pt: float = 8.5) -> None:
    table = doc.add_table(rows=1, cols=len(df.columns))
    table.style = "Light Grid Accent 1"
    for cell, name in zip(table.rows[0].cells, df.columns, strict=True):
        cell.text = str(name)
    for row in df.itertuples(index=False):
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    for row in table.rows:
        for cell in row.cells:
            for p in cell.paragraphs:
                for run in p.runs:
                    run.font.size = Pt(font_pt)


def build_report(study, codebook, tables: dict[str, pd.DataFrame], audit: dict) -> Path:
    turns, segments, alignment, codes = (tables[k] for k in ("turns", "segments", "alignment", "codes"))
    out = {
        "Overview": overview(turns),
        "Alignment": alignment,
        "Code frequencies": code_frequencies(codes, codebook),
        "Exemplars": exemplars(codes, segments),
        "Inputs": pd.DataFrame(audit["inputs"], columns=["file", "transcript_id", "kind", "sha256"]),
        "Warnings": pd.DataFrame({"warning": audit["warnings"]}),
    }
    doc = Document()
    doc.add_heading("IPR study: summary report", 0)
    doc.add_paragraph(f"Generated {audit['started']} by {audit['software']}.")
    doc.add_heading("Overview", 1)
    _docx_table(doc, out["Overview"])
    doc.add_heading("Alignment quality", 1)
    if alignment.empty:
        doc.add_paragraph("No IPR interviews were found, so nothing was aligned.")
    else:
        _docx_table(doc, alignment.drop(columns=["case", "session"]))
    doc.add_heading("Code frequencies", 1)
    if out["Code frequencies"].empty:
        doc.add_paragraph("No codes were applied.")
    else:
        doc.add_paragraph("Units coded with each code: by the automatic suggestions, and by each coder.")
        _docx_table(doc, out["Code frequencies"])
    doc.add_heading("Exemplars", 1)
    if out["Exemplars"].empty:
        doc.add_paragraph("No recall was coded, so there are no exemplars yet.")
    for r in out["Exemplars"].itertuples(index=False):
        doc.add_paragraph(f"{r.code_id}: case {r.case}, {r.participant}, video {r[3]}", style="Heading 3")
        doc.add_paragraph(r.recall)
        p = doc.add_paragraph(r[6])
        for run in p.runs:
            run.italic = True
    doc.add_heading("Methods and audit trail", 1)
    doc.add_paragraph(f"Software: {audit['software']}. Codebook: {audit['codebook']}.")
    doc.add_paragraph("Settings: " + "; ".join(f"{k} = {v}" for k, v in audit["settings"].items()) + ".")
    doc.add_heading("Input files", 2)
    _docx_table(doc, out["Inputs"], font_pt=7)
    doc.add_heading("Warnings of the run", 2)
    if audit["warnings"]:
        for w in audit["warnings"]:
            doc.add_paragraph(w, style="List Bullet")
    else:
        doc.add_paragraph("None.")
    study.reports.mkdir(parents=True, exist_ok=True)
    path = study.reports / "summary.docx"
    with atomic_path(path) as tmp:
        doc.save(tmp)
    wb = Workbook()
    wb.remove(wb.active)
    for name, df in out.items():
        write_table(wb.create_sheet(name[:31]), list(df.columns), df.itertuples(index=False))
    with atomic_path(study.reports / "tables.xlsx") as tmp:
        wb.save(tmp)
    return path
