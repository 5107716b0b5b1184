"""`mpr import` and `mpr validate`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
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
    rules_source,
    writable_file,
)
from mpr_cli.commands.reporting import (
    LoggedProgress,
    RunLog,
    deliver,
    log_options,
    start_run_log,
)
from mpr_cli.config import Settings
from mpr_cli.errors import ExitCode, ImportInterrupted, MprError
from mpr_cli.importer import ImportOptions, ImportRun, run_validate
from mpr_cli.phases.ingest import VerifyMode
from mpr_cli.phases.sources import InventoryChoice
from mpr_cli.report import Report, print_summary, to_junit, write_json
from mpr_cli.s3inventory import parse_duration

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


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def inventory_choice(uri: str | None, max_age: timedelta) -> InventoryChoice | None:
    """--inventory and --inventory-max-age as the run's choice (None: list the bucket)."""
    return None if uri is None else InventoryChoice(uri, max_age)


def common_options(func: Any) -> Any:
    options = [
        click.option("--prefix", default="", help="Only keys under this prefix."),
        click.option("--verify", type=click.Choice([m.value for m in VerifyMode]),
                     default="auto", show_default=True,
                     help="auto: trust a single-part MD5 ETag, else stream; full: always "
                          "stream the object through MD5; none: trust the sidecar."),
        click.option("--rules", "rules_file", metavar="FILE|PROFILE", callback=rules_source,
                     help="Replacement rules file, or a shipped profile by name such as "
                          "extended (or MPR_RULES)."),
        click.option("--report", "report_path", metavar="PATH", callback=writable_file,
                     help="Write the JSON report here (`-` for stdout)."),
        click.option("--quiet", "-q", is_flag=True, help="Only the summary line and errors."),
        click.option("--verbose", "-v", is_flag=True, help="List every problem."),
    ]
    for option in reversed(options):
        func = option(func)
    return inventory_options(func)


def inventory_options(func: Any) -> Any:
    """--inventory and --inventory-max-age (import, validate, nightly)."""
    func = click.option("--inventory-max-age", metavar="AGE", default="48h", show_default=True,
                        callback=_duration,
                        help="Refuse an inventory older than this (e.g. 36h, 3d).")(func)
    return click.option("--inventory", metavar="URI",
                        help="Read the objects from this S3 Inventory report instead of "
                             "listing the bucket: its manifest.json (s3://bucket/key or a "
                             "local path), or its folder s3://bucket/prefix/ for the newest "
                             "report there.")(func)


def _human_console(report_path: str | None) -> Console:
    """Human output goes to stderr when the JSON report takes stdout."""
    return Console(stderr=report_path == "-", highlight=False, soft_wrap=True)


def _phases(console: Console, quiet: bool,
            run_log: RunLog) -> RichPhases | LogPhases | LoggedProgress:
    """Log lines for a logged run (`--log-format json`, `--log-file`), else bars on a terminal,
    else plain lines."""
    if run_log.logged:
        return LoggedProgress()
    return RichPhases(console) if console.is_terminal and not quiet else LogPhases(console, quiet)


@click.command("import")
@common_options
@click.option("--dry-run", is_flag=True, default=None,
              help="Run every phase but write nothing to the database (or MPR_DRY_RUN).")
@click.option("--safe-run", is_flag=True, default=None,
              help="Any phase-3 problem aborts the run before anything is inserted "
                   "(or MPR_SAFE_RUN).")
@click.option("--strict", is_flag=True, default=None,
              help="Known problems (reported before for the same key, ETag and reason) count "
                   "in the exit code too (or MPR_STRICT).")
@log_options
@pass_app
@handles_errors
def import_command(app: App, prefix: str, verify: str, rules_file: Path | str | None,
                   strict: bool | None,
                   report_path: str | None, quiet: bool, verbose: bool,
                   inventory: str | None, inventory_max_age: timedelta,
                   dry_run: bool | None, safe_run: bool | None, log_format: str,
                   log_file: Path | None) -> None:
    """Import new files from the input bucket into the catalogue.

    Phase 1 lists and validates keys, phase 2 skips what the catalogue already holds,
    phase 3 checks sidecars, checksums and containers and inserts each valid asset.
    """
    settings = app.settings
    run_log = start_run_log(settings, log_format, log_file)
    options = ImportOptions.from_settings(settings, prefix=prefix, verify=verify,
                                          dry_run=dry_run, safe_run=safe_run, strict=strict,
                                          run_key=run_log.run_key,
                                          inventory=inventory_choice(inventory,
                                                                     inventory_max_age))
    rules = app.rules(rules_file)
    console = _human_console(report_path)
    run_log.log.info("import run %s started", run_log.run_key)
    with graceful_stop() as stop, _phases(console, quiet, run_log) as progress:
        run = ImportRun(settings, rules, options, progress, stop)
        with _report_on_failure(run, report_path, settings, run_log):
            report = run.run()
    _show(report, console, report_path, quiet, verbose, summary=not run_log.json)
    _finish(settings, report, run_log)
    sys.exit(int(report.exit_code()))


@click.command("validate")
@common_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table",
              show_default=True, help="Output format on stdout.")
@log_options
@pass_app
@handles_errors
def validate_command(app: App, prefix: str, verify: str, rules_file: Path | str | None,
                     report_path: str | None, quiet: bool, verbose: bool,
                     inventory: str | None, inventory_max_age: timedelta, fmt: str,
                     log_format: str, log_file: Path | None) -> None:
    """Check a delivery in the input bucket (phases 1 and 3), with no database.

    Exit 0 when clean (warnings allowed), 1 when problems were found, 2 on usage errors.
    """
    settings = app.settings
    run_log = start_run_log(settings, log_format, log_file)
    options = ImportOptions(prefix=prefix, verify=VerifyMode(verify), run_key=run_log.run_key,
                            inventory=inventory_choice(inventory, inventory_max_age))
    rules = app.rules(rules_file)
    machine = fmt != "table"
    console = Console(stderr=machine or report_path == "-", highlight=False, soft_wrap=True)
    run_log.log.info("validate run %s started", run_log.run_key)
    with _phases(console, quiet or machine, run_log) as progress:
        report = run_validate(settings, rules, options, progress)
    if fmt == "json":
        write_json(report, "-", sys.stdout)
    elif fmt == "junit":
        sys.stdout.write(to_junit(report) + "\n")
    _show(report, console, report_path, quiet or machine, verbose, summary=not run_log.json)
    _finish(settings, report, run_log)
    sys.exit(int(report.exit_code()))


@contextmanager
def _report_on_failure(run: ImportRun, report_path: str | None, settings: Settings,
                       run_log: RunLog) -> Iterator[None]:
    """An interrupted or failed import still writes its --report (status aborted/failed),
    sends its digest and, when logged, ends its log with how it ended."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        code = int(exit_code_of(exc))
        report = run.report_of(exc)
        if report is not None:
            deliver(settings, report.to_dict(), code, report_path=report_path)
        if run_log.logged:
            ended = exc.one_line() if isinstance(exc, MprError) else type(exc).__name__
            run_log.log.error("import run %s ended: %s: exit code %d", run_log.run_key,
                              ended, code)
        raise


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit code `handles_errors` gives a run that raised `exc`."""
    if isinstance(exc, (KeyboardInterrupt, ImportInterrupted)):
        return ExitCode.INTERRUPTED
    return exc.exit_code if isinstance(exc, MprError) else ExitCode.INFRASTRUCTURE


def _finish(settings: Settings, report: Report, run_log: RunLog) -> None:
    """The digest e-mail of a finished run, and its last log line."""
    code = int(report.exit_code())
    deliver(settings, report.to_dict(), code)
    counts = report.counts
    run_log.log.info("%s run %s finished: %s, %d listed, %d accepted, %d inserted, %d errors, "
                     "%d warnings: exit code %d", report.command, run_log.run_key, report.status,
                     counts.listed, counts.accepted, counts.inserted_files, counts.errors,
                     counts.warnings, code)


def _show(report: Any, console: Console, report_path: str | None, quiet: bool,
          verbose: bool, *, summary: bool = True) -> None:
    """The --report, and the summary for people (none with JSON logs: the last log line
    carries the counts)."""
    if report_path:
        write_json(report, report_path, sys.stdout)
    if not summary:
        return
    if quiet:
        counts = report.counts
        console.print(f"{report.command} {report.status}: {counts.listed} listed, "
                      f"{counts.accepted} accepted, {counts.errors} errors, "
                      f"{counts.warnings} warnings")
    else:
        print_summary(report, console, verbose=verbose)
