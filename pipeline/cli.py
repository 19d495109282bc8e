"""The command line: a thin layer over the stages.  Exit 0 on success, 1 on wrong input, 2 on wrong usage.

Heavy libraries (spaCy, pandas) are imported inside the commands that need them, so `ipr --help` and
`ipr codebook validate` start at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import click

from . import __version__
from .errors import InputError

STUDY_OPTION = click.option("--study", "study_dir", default=".", show_default=True,
                            type=click.Path(file_okay=False, path_type=Path), help="The study folder.")
KEEP_GOING = click.option("--keep-going", is_flag=True,
                          help="Skip bad transcripts with a warning instead of stopping.")


class Group(click.Group):
    """Turns every error into the one-line messages a researcher can act on, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            for p in e.problems:
                click.echo(f"error: {p}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:  # whoever read the output went away (`ipr … | head`): nothing more to say
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: the outputs of earlier runs are as they were", err=True)
            ctx.exit(130)
        except Exception as e:  # a bug: say so plainly, keep the traceback for whoever fixes it
            if os.environ.get("IPR_DEBUG"):
                raise
            click.echo(f"internal error: {type(e).__name__}: {e} (this is a bug in ipr, not in your data; "
                       "run again with IPR_DEBUG=1 and report what it prints)", err=True)
            ctx.exit(1)


@contextlib.contextmanager
def _progress():
    """Progress of the long stages on a terminal (None in a pipe or a log), its last line ended before anything
    else is said: an error, a warning, the summary."""
    from .progress import for_terminal

    progress = for_terminal()
    try:
        yield progress
    finally:
        if progress is not None:
            progress.end()


def _study(study_dir: Path):
    from .study import load_study

    return load_study(study_dir)


def _warnings(items) -> None:
    for w in items:
        click.echo(f"warning: {w}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipr")
def main():
    """Analyse IPR interviews and therapy session transcripts: ingest, align, code, export, report.

    Run `ipr analyze` in a study folder (see `ipr init`).
    """


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path):
    """Create an empty study folder DIRECTORY with the default codebook."""
    from .study import DEFAULT_CODEBOOK

    if (directory / "data" / "raw").exists() or (directory / "study.toml").exists():
        raise click.UsageError(f"{directory} already holds a study")
    for sub in ("codebooks", "data/raw", "data/interim", "data/coded", "reports"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(default_codebook(), directory / DEFAULT_CODEBOOK)
    (directory / "study.toml").write_text(STUDY_TEMPLATE, encoding="utf-8")
    click.echo(f"created {directory}: put transcripts in {directory / 'data' / 'raw'} and run "
               f"`ipr analyze --study {directory}`")


def default_codebook() -> Path:
    return Path(__file__).resolve().parent.parent / "codebooks" / "rupture_repair.yaml"


STUDY_TEMPLATE = """\
# Settings of this study; every one is optional (see the README).
codebook = "codebooks/rupture_repair.yaml"
# coders = ["alice", "bob"]

[speakers]
# "Speaker 1" = "therapist"

[align]
window_s = 60
"""


@main.command()
@STUDY_OPTION
@KEEP_GOING
def analyze(study_dir: Path, keep_going: bool):
    """Run every stage: ingest, align, code, export, agreement, report (a re-run redoes only what changed)."""
    from .parallel import by_name, warm

    study = _study(study_dir)
    # spaCy takes a second to load: a second process loads it (and compiles the codebook) from the start, while
    # this one imports the tables' libraries and reads and aligns the transcripts; it then codes whatever
    # changed, or is ended.
    with warm(by_name("pipeline.coding", "get_ready"), study.codebook_path) as coder, _progress() as progress:
        from .stages import run_all

        log = run_all(study, keep_going=keep_going, progress=progress, coder=coder)
    _warnings(log.warnings)
    click.echo(f"done: {len(log.inputs)} transcripts; workbooks in data/coded/, report in reports/summary.docx")


@main.command()
@STUDY_OPTION
@KEEP_GOING
def ingest(study_dir: Path, keep_going: bool):
    """Read every transcript in data/raw/ into the turns and stops tables."""
    from .stages import RunLog, run_ingest

    log = RunLog()
    with _progress() as progress:
        result = run_ingest(_study(study_dir), log, keep_going=keep_going, progress=progress)
    _warnings(log.warnings)
    click.echo(f"{len(result.sources)} transcripts, {len(result.turns)} turns, {len(result.stops)} stops")


@main.command()
@STUDY_OPTION
def align(study_dir: Path):
    """Link every IPR stop with the session turns it recalls."""
    from .align import summary_lines
    from .stages import RunLog, run_align

    log = RunLog()
    result = run_align(_study(study_dir), log)
    _warnings(log.warnings)
    for line in summary_lines(result.summary):
        click.echo(line)


@main.command()
@STUDY_OPTION
def code(study_dir: Path):
    """Apply the codebook's rules to session turns and IPR segments."""
    from .stages import RunLog, run_code

    with _progress() as progress:
        codes = run_code(_study(study_dir), RunLog(), progress=progress)
    auto = codes[codes["coder"] == "auto"]
    click.echo(f"{len(auto)} automatic codes on {auto['unit_id'].nunique()} units")


@main.command()
@STUDY_OPTION
def export(study_dir: Path):
    """Write or refresh the coders' workbooks in data/coded/."""
    from .stages import RunLog, run_export

    with _progress() as progress:
        written = run_export(_study(study_dir), RunLog(), progress=progress)
    click.echo(f"{len(written)} workbooks written" if written else "workbooks up to date")


@main.command()
@STUDY_OPTION
def report(study_dir: Path):
    """Write reports/summary.docx, reports/tables.xlsx and the figures."""
    from .stages import RunLog, run_report

    study = _study(study_dir)
    with _progress() as progress:
        if progress:
            progress.stage("making the report")
        path = run_report(study, RunLog())
    click.echo(f"wrote {path}")


@main.command()
@STUDY_OPTION
def agreement(study_dir: Path):
    """Intercoder agreement from the coders' workbooks: reports/agreement.csv, disagreements.csv, tables.xlsx."""
    from .agreement import progress_by_coder, summary_lines
    from .stages import RunLog, run_agreement

    log = RunLog()
    table, pairs, versus, apart, progress = run_agreement(_study(study_dir), log)
    _warnings(log.warnings)
    for r in progress_by_coder(progress).itertuples(index=False):
        click.echo(f"{r.coder} has coded {r.coded:,} of {r.units:,} units ({r.coded / r.units:.0%}); "
                   f"{r.begun} of {r.transcripts} transcripts begun")
    for line in summary_lines(table):
        click.echo(line)
    if len(pairs) > 1:
        for r in pairs.itertuples(index=False):
            kappa = "" if r.cohen_kappa != r.cohen_kappa else f", kappa {r.cohen_kappa:.2f}"
            click.echo(f"{r.coder_1} and {r.coder_2}: {r.percent_agreement:.1f}% agreement{kappa} over {r.units} "
                       "units")
    pooled = versus[versus["code_id"] == "(all codes)"]
    for r in pooled.itertuples(index=False):
        p = "" if r.precision != r.precision else f"{r.precision:.2f}"
        rc = "" if r.recall != r.recall else f"{r.recall:.2f}"
        click.echo(f"suggestions against {r.coder}: precision {p or 'n/a'}, recall {rc or 'n/a'} over {r.units} "
                   "units")
    if len(apart):
        click.echo(f"the coders decided {len(apart)} code{'s' * (len(apart) != 1)} differently on "
                   f"{apart['unit_id'].nunique()} unit{'s' * (apart['unit_id'].nunique() != 1)}: each is listed in "
                   "reports/disagreements.csv, for a consensus meeting")
    click.echo("wrote reports/agreement.csv, agreement_by_pair.csv, suggestions_vs_coders.csv, disagreements.csv, "
               "coding_progress.csv and tables.xlsx")


@main.group()
def qdpx():
    """The study as a REFI-QDA project, to and from NVivo, ATLAS.ti, MAXQDA or QualCoder."""


@qdpx.command("export")
@STUDY_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write (default: reports/study.qdpx).")
def qdpx_export(study_dir: Path, out: Path | None):
    """Write the study as a REFI-QDA project (.qdpx).

    The transcripts, the codebook, each coder's codes and memos, the consensus, the suggestions, and each recall
    linked to the session moment it recalls: as the last `ipr analyze` left them."""
    from .stages import run_qdpx

    study = _study(study_dir)
    path, made = run_qdpx(study, out)
    click.echo(f"wrote {study.relative(path)}: {made['sources']} transcripts, {made['codings']:,} codes on "
               f"{made['selections']:,} selections, {made['links']:,} recalls linked to their session moments")


@qdpx.command("import")
@STUDY_OPTION
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--coder", required=True, help="The coder whose workbooks receive the codes (one who has not coded).")
@click.option("--user", default=None, help="Whose codings in FILE to import (default: the one new user there).")
def qdpx_import(study_dir: Path, file: Path, coder: str, user: str | None):
    """Read a coder's work done in another program into their workbooks.

    FILE is a project `ipr qdpx export` wrote, coded in NVivo, ATLAS.ti, MAXQDA or QualCoder and exported from it
    as REFI-QDA: each selection codes the units whose lines it touches.  Then run `ipr analyze`."""
    from .stages import RunLog, run_qdpx_import

    log = RunLog()
    imported, entries = run_qdpx_import(_study(study_dir), file, coder, user, log)
    _warnings(log.warnings)
    codes = sum(len([c for c in e.split(";") if c]) for e in entries["codes"])
    click.echo(f"imported {imported.user}'s {codes:,} codes on {len(entries):,} units ({imported.selections:,} "
               f"selections) into data/coded/{coder}/, {entries['transcript_id'].nunique()} workbooks; run "
               "`ipr analyze` to count them")


@main.command()
@STUDY_OPTION
def doctor(study_dir: Path):
    """Check the study folder (settings, transcripts and manifest, codebook, workbooks, key) and say what to fix.

    Runs no stage and writes nothing.  Exit status 1 when anything is wrong."""
    from .doctor import diagnose

    result = diagnose(study_dir)
    for line in result.lines():
        click.echo(line)
    if not result.ok:
        click.get_current_context().exit(1)


@main.group()
def codebook():
    """Check and convert codebooks."""


@codebook.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def codebook_validate(file: Path):
    """Check FILE and report every problem with its line."""
    from .codebook import validate_codebook

    problems = validate_codebook(file)
    if problems:
        raise InputError(problems)
    click.echo(f"{file}: no problems found")


@codebook.command("convert")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(["yaml", "xlsx", "docx", "qdc"]),
              help="The form to write.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write (default: beside FILE, with the new extension).")
def codebook_convert(file: Path, to: str, out: Path | None):
    """Convert a codebook FILE (yaml, qdc, xlsx or csv) to another form."""
    from .codebook_convert import convert

    click.echo(f"wrote {convert(file, to, out)}")


def run() -> None:
    """The `ipr` command: ``main`` in a process of its own, which ends without tearing Python down.  By then every
    output is closed and renamed into place and every worker has ended; freeing the tables of a large study
    object by object (and stopping the threads of the Parquet reader) took a quarter of a second of each run."""
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)
