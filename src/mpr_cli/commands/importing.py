"""`mpr import` and `mpr validate`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, Task, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from mpr_cli.commands.context import (
    App,
    graceful_stop,
    handles_errors,
    pass_app,
    writable_file,
)
from mpr_cli.importer import ImportOptions, ImportRun, run_validate
from mpr_cli.phases.ingest import VerifyMode
from mpr_cli.report import print_summary, to_junit, write_json
from mpr_cli.runlog import new_run_id

PHASE_LABELS = {"discover": "1 keys listed", "crossref": "2 cross-referenced",
                "ingest": "3 assets checked", "sidecars": "3 sidecars fetched",
                "verify": "3 bytes verified"}
BYTE_PHASES = {"verify"}


def _amount(phase: str, value: float | None) -> str:
    """A phase's count ("1,234"), or a size ("1.2 GB") for a phase that counts bytes."""
    if value is None:
        return "?"
    return filesize.decimal(int(value)) if phase in BYTE_PHASES else f"{value:,.0f}"


class _Count(ProgressColumn):
    """"done/total" of a phase's bar."""

    def render(self, task: Task) -> Text:
        phase = task.fields["phase"]
        return Text(f"{_amount(phase, task.completed)}/{_amount(phase, task.total)}")


class RichPhases:
    """Progress bars per phase on a terminal."""

    def __init__(self, console: Console) -> None:
        self.bars = RichProgress("{task.description}", BarColumn(), _Count(),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichPhases:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, phase: str, total: int | None = None) -> None:
        self.tasks[phase] = self.bars.add_task(PHASE_LABELS.get(phase, phase), total=total,
                                               phase=phase)

    def update(self, phase: str, completed: int) -> None:
        self.bars.update(self.tasks[phase], completed=completed)

    def finish(self, phase: str) -> None:
        task = self.bars.tasks[self.tasks[phase]]
        self.bars.update(self.tasks[phase], total=task.completed)


class LogPhases:
    """Plain log lines (cron, CI): one at the start and end of each phase."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.last: dict[str, int] = {}

    def __enter__(self) -> LogPhases:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, phase: str, total: int | None = None) -> None:
        self.last[phase] = 0
        if not self.quiet:
            self.console.print(f"{PHASE_LABELS.get(phase, phase)}: started"
                               + (f" ({_amount(phase, total)} to do)" if total else ""))

    def update(self, phase: str, completed: int) -> None:
        self.last[phase] = completed

    def finish(self, phase: str) -> None:
        if not self.quiet:
            self.console.print(f"{PHASE_LABELS.get(phase, phase)}: "
                               f"{_amount(phase, self.last.get(phase, 0))} done")


def common_options(func: Any) -> Any:
    options = [
        click.option("--prefix", default="", help="Only keys under this prefix."),
        click.option("--verify", type=click.Choice([m.value for m in VerifyMode]),
                     default="auto", show_default=True,
                     help="auto: trust a single-part MD5 ETag, else stream; full: always "
                          "stream the object through MD5; none: trust the sidecar."),
        click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False,
                     path_type=Path), help="Replacement rules file (or MPR_RULES)."),
        click.option("--report", "report_path", metavar="PATH", callback=writable_file,
                     help="Write the JSON report here (`-` for stdout)."),
        click.option("--quiet", "-q", is_flag=True, help="Only the summary line and errors."),
        click.option("--verbose", "-v", is_flag=True, help="List every problem."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _human_console(report_path: str | None) -> Console:
    """Human output goes to stderr when the JSON report takes stdout."""
    return Console(stderr=report_path == "-", highlight=False, soft_wrap=True)


def _phases(console: Console, quiet: bool) -> RichPhases | LogPhases:
    return RichPhases(console) if console.is_terminal and not quiet else LogPhases(console, quiet)


@click.command("import")
@common_options
@click.option("--dry-run", is_flag=True, default=None,
              help="Run every phase but write nothing to the database (or MPR_DRY_RUN).")
@click.option("--safe-run", is_flag=True, default=None,
              help="Any phase-3 problem aborts the run before anything is inserted "
                   "(or MPR_SAFE_RUN).")
@pass_app
@handles_errors
def import_command(app: App, prefix: str, verify: str, rules_file: Path | None,
                   report_path: str | None, quiet: bool, verbose: bool,
                   dry_run: bool | None, safe_run: bool | None) -> None:
    """Import new files from the input bucket into the catalogue.

    Phase 1 lists and validates keys, phase 2 skips what the catalogue already holds,
    phase 3 checks sidecars, checksums and containers and inserts each valid asset.
    """
    settings = app.settings
    options = ImportOptions.from_settings(settings, prefix=prefix, verify=verify,
                                          dry_run=dry_run, safe_run=safe_run,
                                          run_key=new_run_id())
    rules = app.rules(rules_file)
    console = _human_console(report_path)
    with graceful_stop() as stop, _phases(console, quiet) as progress:
        run = ImportRun(settings, rules, options, progress, stop)
        with _report_on_failure(run, report_path):
            report = run.run()
    _show(report, console, report_path, quiet, verbose)
    sys.exit(int(report.exit_code()))


@click.command("validate")
@common_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table",
              show_default=True, help="Output format on stdout.")
@pass_app
@handles_errors
def validate_command(app: App, prefix: str, verify: str, rules_file: Path | None,
                     report_path: str | None, quiet: bool, verbose: bool, fmt: str) -> None:
    """Check a delivery in the input bucket (phases 1 and 3), with no database.

    Exit 0 when clean (warnings allowed), 1 when problems were found, 2 on usage errors.
    """
    settings = app.settings
    options = ImportOptions(prefix=prefix, verify=VerifyMode(verify))
    rules = app.rules(rules_file)
    machine = fmt != "table"
    console = Console(stderr=machine or report_path == "-", highlight=False, soft_wrap=True)
    with _phases(console, quiet or machine) as progress:
        report = run_validate(settings, rules, options, progress)
    if fmt == "json":
        write_json(report, "-", sys.stdout)
    elif fmt == "junit":
        sys.stdout.write(to_junit(report) + "\n")
    _show(report, console, report_path, quiet or machine, verbose)
    sys.exit(int(report.exit_code()))


@contextmanager
def _report_on_failure(run: ImportRun, report_path: str | None) -> Iterator[None]:
    """An interrupted or failed import still writes its --report (status aborted/failed)."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        report = run.report_of(exc)
        if report_path and report is not None:
            write_json(report, report_path, sys.stdout)
        raise


def _show(report: Any, console: Console, report_path: str | None, quiet: bool,
          verbose: bool) -> None:
    if report_path:
        write_json(report, report_path, sys.stdout)
    if quiet:
        counts = report.counts
        console.print(f"{report.command} {report.status}: {counts.listed} listed, "
                      f"{counts.accepted} accepted, {counts.errors} errors, "
                      f"{counts.warnings} warnings")
    else:
        print_summary(report, console, verbose=verbose)
