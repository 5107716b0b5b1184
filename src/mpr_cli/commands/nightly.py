"""`mpr nightly` and `mpr runs list|show`."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from mpr_cli import db
from mpr_cli.commands.context import (
    App,
    chosen_executor,
    executor_option,
    graceful_stop,
    handles_errors,
    pass_app,
    writable_file,
)
from mpr_cli.commands.importing import inventory_choice, inventory_options
from mpr_cli.commands.reporting import LoggedProgress, deliver, log_options, start_run_log
from mpr_cli.display import visible
from mpr_cli.errors import ExitCode, UsageError
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.importer import INTERRUPTED, ImportOptions
from mpr_cli.nightly import run_nightly
from mpr_cli.phases.ingest import VerifyMode
from mpr_cli.report import RunStatus, print_summary
from mpr_cli.transcode.jobs import Job, JobStatus


class LoggedJobs(LoggedProgress):
    """Phases and transcode jobs as log lines (the nightly run is unattended)."""

    def job_started(self, job: Job) -> None:
        self.log.info("job %d started: %s -> %s (%s)", job.id, job.source_key,
                      job.output_key, job.preset)

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        pass

    def job_finished(self, job: Job, status: JobStatus, message: str) -> None:
        level = self.log.warning if status is JobStatus.FAILED else self.log.info
        level("job %d %s: %s: %s", job.id, status.value.lower(), job.source_key, message)


@click.command("nightly")
@click.option("--prefix", default="", help="Only keys under this prefix.")
@click.option("--dry-run", is_flag=True, default=None, help="Write nothing (or MPR_DRY_RUN).")
@click.option("--safe-run", is_flag=True, default=None,
              help="Any import phase-3 problem aborts the import (or MPR_SAFE_RUN).")
@click.option("--strict", is_flag=True, default=None,
              help="Known problems (reported before for the same key, ETag and reason) count "
                   "in the exit code too (or MPR_STRICT).")
@click.option("--verify", type=click.Choice([m.value for m in VerifyMode]), default="auto",
              show_default=True, help="Checksum verification of the import.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel ffmpeg processes.")
@executor_option
@click.option("--report", "report_path", metavar="PATH", callback=writable_file,
              help="JSON report (`-` for stdout).")
@click.option("--metrics-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Prometheus textfile-collector file, written atomically.")
@inventory_options
@log_options
@pass_app
@handles_errors
def nightly_command(app: App, prefix: str, dry_run: bool | None, safe_run: bool | None,
                    strict: bool | None,
                    verify: str, workers: int | None, executor: str | None,
                    report_path: str | None,
                    metrics_file: Path | None, inventory: str | None,
                    inventory_max_age: timedelta, log_format: str,
                    log_file: Path | None) -> None:
    """Import, check fixity, then transcode what is pending; one summary, one report, one
    e-mail.

    Fixity: a quick pass, then a full pass within max(MPR_FIXITY_BUDGET, the share of
    MPR_FIXITY_CYCLE). The exit code is the worst of the steps (see `mpr --help`).
    """
    settings = app.settings
    run = start_run_log(settings, log_format, log_file, always=True)
    options = ImportOptions.from_settings(settings, prefix=prefix, verify=verify,
                                          dry_run=dry_run, safe_run=safe_run,
                                          run_key=run.run_key, command="nightly", strict=strict,
                                          inventory=inventory_choice(inventory,
                                                                     inventory_max_age))
    progress = LoggedJobs()
    run.log.info("nightly run %s started", run.run_key)
    with graceful_stop() as stop:
        outcome = run_nightly(settings, app.rules(), load_presets(settings.presets_file),
                              options, workers=workers or settings.transcode_workers,
                              progress=progress, events=progress, stop=stop,
                              executor=chosen_executor(settings, executor))
    deliver(settings, outcome.report, outcome.exit_code, report_path=report_path,
            metrics_file=metrics_file)
    if not run.json:
        print_summary(outcome.import_report, Console(stderr=report_path == "-",
                                                     highlight=False))
    run.log.info("nightly run %s finished: exit code %d", run.run_key, outcome.exit_code)
    sys.exit(outcome.exit_code)


# ---------------------------------------------------------------- runs


@click.group("runs")
def runs() -> None:
    """Run history (the import_runs table)."""


INTERRUPTED_STATUS = "interrupted"


def shown_status(row: dict[str, Any]) -> str:
    """A run's status as people read it: `interrupted` for a run stopped by Ctrl-C or SIGTERM
    (exit code 130: a nightly whose import completed before its transcode step was stopped,
    or an import aborted with the interruption message), else the recorded status."""
    interrupted = row.get("exit_code") == ExitCode.INTERRUPTED or (
        row["status"] == RunStatus.ABORTED and row.get("message") == INTERRUPTED)
    return INTERRUPTED_STATUS if interrupted else str(row["status"])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: db.json_value(v) for k, v in {**row, "status": shown_status(row)}.items()}


@runs.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def runs_list(app: App, limit: int, as_json: bool) -> None:
    """The latest runs: when, mode, status (completed, aborted, failed, interrupted, running),
    counts."""
    with db.connect(app.settings, autocommit=True) as conn:
        rows = db.list_runs(conn, limit)
    if as_json:
        click.echo(json.dumps([_plain(r) for r in rows], indent=2))
        return
    for r in rows:
        c = r["counts"] or {}
        click.echo(f"{r['id']:>5} {r['started_at']:%Y-%m-%d %H:%M:%S} {r['command']:<8} "
                   f"{r['mode']:<9} {shown_status(r):<11} listed {c.get('listed', 0)}, inserted "
                   f"{c.get('inserted_files', 0)}, errors {c.get('errors', 0)}, warnings "
                   f"{c.get('warnings', 0)}")


@runs.command("show")
@click.argument("run", metavar="ID|RUN_KEY|last")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def runs_show(app: App, run: str, as_json: bool) -> None:
    """One run (by number, run key, or `last`): counts and problems."""
    with db.connect(app.settings, autocommit=True) as conn:
        row = db.get_run(conn, run)
    if row is None:
        raise UsageError(f"no run {run!r}", hint="see mpr runs list")
    if as_json:
        click.echo(json.dumps(_plain(row), indent=2))
        return
    finished = f"{row['finished_at']:%Y-%m-%d %H:%M:%S}" if row["finished_at"] else "-"
    click.echo(f"run {row['id']} ({row['run_key'] or 'no key'}): {row['command']} "
               f"{row['mode']} {shown_status(row)}, {row['started_at']:%Y-%m-%d %H:%M:%S} -> "
               f"{finished} on {row['host']}")
    for name, value in (row["counts"] or {}).items():
        click.echo(f"  {name:<16} {value}")
    problems = (row["report"] or {}).get("problems", [])
    for p in problems:
        click.echo(f"  {p['severity']:<7} {p['reason']:<26} {visible(str(p['key']))}: "
                   f"{visible(str(p['message']))}")
    if not problems:
        click.echo("  no problems")
