"""`make bench`: time `ipr analyze` on a synthetic study of a given size, beside baselines measured in the same run.

The machine is shared and noisy, so the figures that matter are ratios: the pipeline against the floor (the bare
spaCy tokenizer over the same text, plus writing the same number of rows with openpyxl in write-only mode) and
against a naive coder (one regular expression per code).  The cold run and the floor are timed three times,
each re-run five times, the middle one counting.  Nothing here is a test: no time is asserted anywhere.

    python tests/benchmark.py --pages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS_PER_PAGE = 350

# Synthetic talk: ordinary lines with the occasional rupture or repair, so the coder has work to do.
ORDINARY = [
    "I went to work on Monday and it was a long day, the meeting ran late again.",
    "We talked about the weekend plans and my sister might come over with the kids.",
    "Can you say more about what happened after you got home that evening?",
    "It was okay, I mean the train was delayed but I got there in the end.",
    "What did you notice in your body when that was happening?",
    "I suppose I felt a bit tired, I had not slept well for a few nights.",
    "That sounds like a lot to carry on your own, with everything at work.",
    "My manager asked me to take on the new project and I said yes straight away.",
    "How did that feel, saying yes before you had thought about it?",
    "I think I was worried about letting people down, that's how it always goes.",
]
CHARGED = [
    "I don't know. Maybe. I guess.",
    "You're not listening to me, I already told you that.",
    "I don't see the point of these sessions, we keep going in circles.",
    "I'm fine, honestly, it doesn't bother me at all.",
    "Just tell me what to do, you're the expert.",
    "I think I pushed you too hard there, I'm sorry.",
    "What is it like for you, talking with me about this right now?",
    "It makes sense that you would want to keep this at a distance.",
]
RECALL = [
    "I felt like she wasn't really hearing me, I just shut down.",
    "I was annoyed but I didn't want to say anything.",
    "When he said sorry I felt understood again, it was a relief.",
    "I didn't notice it at the time, only now watching it back.",
    "I could feel him pulling away and I pushed harder.",
    "I felt judged, like a kid being told off.",
]


def stamp(s: float) -> str:
    s = int(s)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def session_lines(rng: random.Random, words: int) -> list[tuple[float, str, str]]:
    out, t, n, who = [], 5.0, 0, "T"
    while n < words:
        text = " ".join(rng.choice(CHARGED if rng.random() < 0.12 else ORDINARY) for _ in range(rng.randint(1, 3)))
        out.append((t, who, text))
        n += len(text.split())
        t += len(text.split()) * 0.4 + rng.uniform(1, 4)
        who = "C" if who == "T" else "T"
    return out


def write_study(root: Path, pages: int, seed: int = 7) -> int:
    """A study of about ``pages`` pages: per case one session and two IPR interviews, in mixed forms."""
    from docx import Document

    rng = random.Random(seed)
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copytree(REPO / "codebooks", root / "codebooks")
    (root / "study.toml").write_text('coders = ["coder_a", "coder_b"]\n')
    target = pages * WORDS_PER_PAGE
    words = case = 0
    while words < target:
        case += 1
        cid = f"B{case:03d}"
        session = session_lines(rng, 6000)
        words += sum(len(x.split()) for _, _, x in session)
        form = ("docx", "vtt", "txt")[case % 3]
        path = raw / f"{cid}_S1_session.{form}"
        if form == "docx":
            doc = Document()
            for t, who, text in session:
                doc.add_paragraph(f"[{stamp(t)}] {who}: {text}")
            doc.save(path)
        elif form == "vtt":
            cues = [f"{i}\n{stamp(t)}.000 --> {stamp(t + 3)}.500\n{'Therapist' if who == 'T' else 'Client'}: {text}\n"
                    for i, (t, who, text) in enumerate(session, 1)]
            path.write_text("WEBVTT\n\n" + "\n".join(cues), encoding="utf-8")
        else:
            path.write_text("\n".join(f"[{stamp(t)}] {who}: {text}" for t, who, text in session) + "\n")
        end = session[-1][0]
        for who in ("client", "therapist"):
            lines, n = [], 0
            label = "C" if who == "client" else "T"
            for stop in sorted(rng.uniform(30, end) for _ in range(12)):
                lines.append(f"[Video paused at {stamp(stop)}]")
                for _ in range(rng.randint(3, 6)):
                    q = rng.choice(["What was going on for you there?", "What did you feel then?",
                                    "Can you say more about that?"])
                    a = " ".join(rng.choice(RECALL + ORDINARY) for _ in range(rng.randint(2, 5)))
                    lines += [f"I: {q}", f"{label}: {a}"]
                    n += len((q + " " + a).split())
            words += n
            ext = "docx" if (case + len(who)) % 2 else "txt"
            path = raw / f"{cid}_S1_ipr-{who}.{ext}"
            if ext == "docx":
                doc = Document()
                for line in lines:
                    doc.add_paragraph(line)
                doc.save(path)
            else:
                path.write_text("\n".join(lines) + "\n")
    return words


def all_texts(root: Path) -> list[str]:
    import pandas as pd

    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    return turns["text"].tolist()


def floor(texts: list[str], rows: int, tmp: Path, workbooks: int = 1) -> float:
    """The bare minimum any tool must do: tokenize the text and write the rows (into ``workbooks`` plain
    workbooks, the rows shared out between them)."""
    import spacy
    from openpyxl import Workbook

    start = time.perf_counter()
    nlp = spacy.blank("en")
    for _ in nlp.tokenizer.pipe(texts, batch_size=1000):
        pass
    for w in range(workbooks):
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("rows")
        for i in range(rows * w // workbooks, rows * (w + 1) // workbooks):
            ws.append([f"u{i}", i, "00:00:00", "T", "therapist", texts[i % len(texts)], "", "", None, None, None,
                       None])
        wb.save(tmp / "floor.xlsx")
    return time.perf_counter() - start


def naive_coder(texts: list[str]) -> float:
    """One regular expression per code, from the codebook's phrases, the way a script would do it."""
    import yaml

    book = yaml.safe_load((REPO / "codebooks" / "rupture_repair.yaml").read_text())
    patterns = []
    for code in book["codes"]:
        phrases = [p for rule in code.get("rules") or [] for p in rule.get("phrases") or []]
        if phrases:
            patterns.append(re.compile(r"\b(" + "|".join(map(re.escape, phrases)) + r")\b", re.I))
    start = time.perf_counter()
    hits = 0
    for text in texts:
        for rx in patterns:
            hits += bool(rx.search(text))
    return time.perf_counter() - start


def analyze(root: Path) -> tuple[float, float, dict]:
    """Wall time, peak memory (MB) and per-stage seconds of one `ipr analyze` in a fresh process.

    The disk is synced first, so that no run pays for writing out what the run before it wrote."""
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "analyze", "--study", str(root)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"ipr analyze failed:\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = json.loads((root / "data" / "interim" / "run.json").read_text())
    # processor time of the run and every process it started (each waited for, so counted here)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, max(after.ru_maxrss, before.ru_maxrss) / 1024, {**run.get("timings", {}), CPU: cpu}


COLD, REPEAT = 3, 5
CPU = "(processor)"  # not a stage: the seconds of processor time the run took, on all cores


def add_last_turn(path: Path) -> None:
    """A therapist turn ten seconds after the session's last one: the edit a team makes when a transcript is
    finished (a turn at a far later time would lengthen the session, and with it its timeline and tables)."""
    text = path.read_text()
    h, m, s = map(int, re.findall(r"^\[(\d\d):(\d\d):(\d\d)\]", text, re.M)[-1])
    t = h * 3600 + m * 60 + s + 10
    path.write_text(text + f"[{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}] T: One more thing before we "
                    "stop today.\n")


def middle(runs: list[tuple[float, float, dict]]) -> tuple[float, dict]:
    """The median run's wall time and stages."""
    wall, _, stages = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    return wall, stages


def spread(runs) -> str:
    walls = sorted(r[0] for r in runs)
    return f"the middle of {len(walls)} runs: " + ", ".join(f"{w:.2f}" for w in walls)


def workbook_rows(root: Path) -> int:
    import pandas as pd

    turns = pd.read_parquet(root / "data" / "interim" / "turns.parquet")
    segs = pd.read_parquet(root / "data" / "interim" / "segments.parquet")
    return (int((turns["kind"] == "session").sum()) + len(segs)) * 2  # two coders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=REPO / ".bench")
    args = ap.parse_args()
    root = args.dir / f"study-{args.pages}"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    words = write_study(root, args.pages)
    print(f"synthetic study: {args.pages} pages, {words:,} words, "
          f"{len(list((root / 'data' / 'raw').iterdir()))} files (made in {time.perf_counter() - t:.1f} s)")

    # The machine is shared, and its disk and neighbours come and go: the cold run and the floor are timed
    # COLD times and each re-run REPEAT times, the middle one counting.
    colds = []
    for _ in range(COLD):
        for made in ("data/interim", "data/coded", "reports"):
            shutil.rmtree(root / made, ignore_errors=True)
        colds.append(analyze(root))
    cold, stages = middle(colds)
    peak = max(r[1] for r in colds)
    texts = all_texts(root)
    rows = workbook_rows(root)
    base = sorted(floor(texts, rows, args.dir) for _ in range(COLD))[COLD // 2]
    books = len([p for p in (root / "data" / "coded").rglob("*.xlsx") if ".backup" not in p.parts])
    base_books = sorted(floor(texts, rows, args.dir, books) for _ in range(COLD))[COLD // 2]
    naive = naive_coder(texts)
    agains = [analyze(root) for _ in range(REPEAT)]
    again, again_stages = middle(agains)
    # one transcript changed: a turn added at the end of a session (a different one each time)
    changes = []
    for changed in sorted((root / "data" / "raw").glob("*_session.txt"))[:REPEAT]:
        add_last_turn(changed)
        changes.append(analyze(root))
    one, one_stages = middle(changes)

    print(f"\ncold `ipr analyze`: {cold:.2f} s ({spread(colds)}), {words / cold:,.0f} words/s, "
          f"{stages[CPU]:.1f} s of processor time, peak memory {peak:.0f} MB")
    print(f"  {'stage':<11} {'cold':>7} {'re-run':>7} {'1 changed':>10}")
    runs, walls = (stages, again_stages, one_stages), (cold, again, one)
    for stage in [s for s in stages if s not in ("elapsed", CPU)]:
        a, b, c = (r.get(stage, 0) for r in runs)
        print(f"  {stage:<11} {a:7.2f} {b:7.2f} {c:10.2f}")
    a, b, c = (wall - r["elapsed"] for wall, r in zip(walls, runs, strict=True))
    print(f"  {'(start-up)':<11} {a:7.2f} {b:7.2f} {c:10.2f}")
    a, b, c = (r[CPU] for r in runs)
    print(f"  {CPU:<11} {a:7.2f} {b:7.2f} {c:10.2f}  (seconds of processor time, on all cores)")
    print("  (export and report run side by side, so a run takes less than the sum of its stages)")
    print(f"floor (spaCy tokenizer + {rows:,} rows write-only): {base:.2f} s  -> ratio {cold / base:.2f}x "
          "(target <= 2x)")
    print(f"  the same, the rows in {books} plain workbooks as the run writes: {base_books:.2f} s  -> ratio "
          f"{cold / base_books:.2f}x (for comparison only)")
    code_s = stages.get("code", float("nan"))
    print(f"naive coder (one regex per code): {naive:.2f} s  -> code stage / naive {code_s / naive:.2f}x")
    # The re-runs' targets are in seconds; against the floor they can be compared across a busy and a quiet hour.
    print(f"re-run, nothing changed: {again:.2f} s = {again / base:.2f}x the floor (target <= 2 s; {spread(agains)})")
    print(f"re-run, one transcript changed: {one:.2f} s = {one / base:.2f}x the floor (target <= 3 s; "
          f"{spread(changes)})")
    print(f"peak memory {peak:.0f} MB (target <= 1024 MB)")
    try:
        import pandas as pd

        from pipeline.codebook import load_codebook
        from pipeline.coding import evaluate

        labelled = pd.read_csv(REPO / "tests" / "data" / "labelled_sentences.csv", keep_default_na=False)
        scores = evaluate(load_codebook(REPO / "codebooks" / "rupture_repair.yaml"), labelled)
        print("\ndefault codebook on the labelled test set (target F1 >= 0.7 per family):")
        print(scores.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    except (ImportError, FileNotFoundError) as e:
        print(f"\n(labelled evaluation skipped: {e})")


if __name__ == "__main__":
    main()
