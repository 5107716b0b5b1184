"""`mpr transcode`, `mpr presets ...`, `mpr jobs ...`."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from mpr_cli import db
from mpr_cli.commands.context import (
    App,
    chosen_executor,
    executor_option,
    graceful_stop,
    handles_errors,
    pass_app,
)
from mpr_cli.config import Executor
from mpr_cli.display import visible
from mpr_cli.errors import ExitCode, UsageError
from mpr_cli.ffmpeg.command import preset_command, threads_per_job
from mpr_cli.ffmpeg.presets import PresetBook, load_presets
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.transcode import jobs as job_store
from mpr_cli.transcode.create import create_for_key
from mpr_cli.transcode.jobrunner import JobRunner, JobSettings
from mpr_cli.transcode.jobs import Job, JobStatus
from mpr_cli.transcode.pool import PoolResult, run_pending, run_pool
from mpr_cli.transcode.workdirs import require_usable_temp_dir


def _presets(app: App) -> PresetBook:
    return load_presets(app.settings.presets_file)


class JobBars:
    """One overall bar plus one line per running job (terminal), or log lines (cron)."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.live = console.is_terminal
        self.bars = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console)
        self.overall = self.bars.add_task("all jobs", total=max(total, 1), info="")
        self.tasks: dict[int, Any] = {}
        self.lock = threading.Lock()

    def set_total(self, total: int) -> None:
        self.bars.update(self.overall, total=max(total, 1))

    def __enter__(self) -> JobBars:
        if self.live:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bars.stop()

    def job_started(self, job: Job) -> None:
        label = f"#{job.id} {job.inventory_code} {job.preset}"
        with self.lock:
            self.tasks[job.id] = self.bars.add_task(label, total=100, info="")
        if not self.live:
            self.console.print(f"job {job.id} started: {job.source_key} -> "
                               f"{job.output_key} ({job.preset})", markup=False)

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        speed = f"{update.speed:.1f}x" if update.speed else ""
        with self.lock:
            self.bars.update(self.tasks[job_id], completed=update.percent or 0, info=speed)

    def job_finished(self, job: Job, status: JobStatus, message: str) -> None:
        with self.lock:
            self.bars.remove_task(self.tasks.pop(job.id))
            self.bars.advance(self.overall)
        self.console.print(f"job {job.id} {status.value.lower()}: {job.source_key}: "
                           f"{message}", markup=False)


@click.command("transcode")
@click.argument("key", required=False)
@click.option("--preset", "preset_name", help="Preset name (default: per media type).")
@click.option("--output-key", help="Output key (default mirrors the input: <folder>/<code>.<ext>).")
@click.option("--force", is_flag=True, help="Transcode again even when already recorded.")
@click.option("--pending", is_flag=True, help="Every catalogued master without a streaming copy.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel ffmpeg processes.")
@click.option("--limit", type=click.IntRange(1), help="At most N new jobs (--pending).")
@click.option("--prefix", default="", help="Only masters under this prefix (--pending).")
@click.option("--verify", type=click.Choice(["quick", "full"]), default="quick",
              show_default=True, help="full: also decode the whole output with ffmpeg.")
@executor_option
@click.option("--no-wait", is_flag=True,
              help="celery: send the jobs and exit 0 at once (their ids printed).")
@click.option("--json", "as_json", is_flag=True, help="--no-wait: the queued job ids as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show ffmpeg's stderr tail on failure.")
@pass_app
@handles_errors
def transcode_command(app: App, key: str | None, preset_name: str | None,
                      output_key: str | None, force: bool, pending: bool, workers: int | None,
                      limit: int | None, prefix: str, verify: str, executor: str | None,
                      no_wait: bool, as_json: bool, verbose: bool) -> None:
    """Transcode a master (KEY) or every pending master (--pending) into streaming copies.

    With --executor celery (or MPR_EXECUTOR=celery) the jobs run on `mpr worker` processes:
    this command sends them and waits for them (or not, --no-wait).
    Exit 0 when every job completed, 1 when a job failed, 130 when cancelled.
    """
    if bool(key) == pending:
        raise UsageError("give either a master KEY or --pending", hint="see mpr transcode --help")
    settings = app.settings
    remote = chosen_executor(settings, executor) is Executor.CELERY
    if (no_wait or as_json) and not remote:
        raise UsageError("--no-wait and --json need --executor celery",
                         hint="the local pool runs the jobs itself: drop --no-wait")
    if as_json and not no_wait:
        raise UsageError("--json needs --no-wait", hint="it prints the queued job ids")
    if remote:
        _require_broker(settings)  # exit 4 before any job is created
    else:
        require_usable_temp_dir(settings)  # exit 2 before any job is created or claimed
    workers = workers or settings.transcode_workers
    runner = JobRunner(settings, app.rules(), _presets(app),
                       workers=workers if pending else 1,
                       options=JobSettings.from_settings(settings,
                                                         full_verify=verify == "full"))
    console = Console(highlight=False, soft_wrap=True)
    only: list[int] | None = None
    if not pending:
        job_id, nothing = create_for_key(runner, key or "", preset_name, output_key, force)
        if job_id is None:
            console.print(nothing, markup=False)
            return
        only = [job_id]
    if remote:
        result = _run_remote(runner, console, pending=pending, only=only, prefix=prefix,
                             limit=limit, preset_name=preset_name, no_wait=no_wait,
                             as_json=as_json, created=0 if pending else 1)
    else:
        result = _run_local(runner, console, workers=workers, only=only, prefix=prefix,
                            limit=limit, preset_name=preset_name)
    _finish(settings, result, console, verbose)


def _run_local(runner: JobRunner, console: Console, *, workers: int, only: list[int] | None,
               prefix: str, limit: int | None, preset_name: str | None) -> PoolResult:
    if only is not None:
        with graceful_stop() as stop, JobBars(console, 1) as bars:
            return run_pool(runner, 1, stop, bars, only_ids=only)
    with graceful_stop() as stop, JobBars(console, 0) as bars:
        return run_pending(runner, workers=workers, prefix=prefix, limit=limit,
                           preset_name=preset_name, events=bars, stop_all=stop,
                           on_created=bars.set_total)


def _require_broker(settings: Any) -> None:
    from mpr_cli.transcode import broker  # celery's import only when used

    broker.check_broker(broker.make_app(settings), settings)


def _run_remote(runner: JobRunner, console: Console, *, pending: bool, only: list[int] | None,
                prefix: str, limit: int | None, preset_name: str | None, no_wait: bool,
                as_json: bool, created: int) -> PoolResult:
    """Send the jobs to the workers; wait for them (the same bars) unless --no-wait, which
    prints the queued ids and exits 0."""
    from mpr_cli.transcode.dispatch import dispatch, wait  # celery's import only when used

    sent = dispatch(runner, only_ids=only, prefix=prefix, create=pending, limit=limit,
                    preset_name=preset_name)
    sent.created += created  # mpr transcode KEY made its job before the dispatch
    if no_wait:
        if as_json:
            click.echo(json.dumps({"queued": sent.job_ids, "sent": sent.sent,
                                   "created": sent.created}))
        else:
            ids = " ".join(str(i) for i in sent.job_ids) or "none"
            console.print(f"transcode: {len(sent.job_ids)} jobs queued for the workers "
                          f"({sent.created} created, {sent.sent} sent): {ids}", markup=False)
        sys.exit(int(ExitCode.OK))
    with graceful_stop() as stop, JobBars(console, len(sent.job_ids)) as bars:
        return wait(runner, sent, events=bars, stop=stop)


def _finish(settings: Any, result: PoolResult, console: Console, verbose: bool) -> None:
    failed = result.count(JobStatus.FAILED)
    released = f"; {len(result.released)} not started, pending again" if result.released else ""
    if result.cleaned:
        released += f"; {result.cleaned} left by dead workers removed"
    if result.left_running:
        released += (f"; {len(result.left_running)} still queued or running on the workers "
                     "(mpr jobs list)")
    console.print(f"transcode: {result.count(JobStatus.COMPLETED)} completed, {failed} failed, "
                  f"{result.count(JobStatus.CANCELLED)} cancelled{released}", markup=False)
    if verbose and failed:
        _print_tails(settings, result.finished[JobStatus.FAILED], console)
    if result.count(JobStatus.CANCELLED) or result.released or result.left_running:
        sys.exit(int(ExitCode.INTERRUPTED))
    sys.exit(int(ExitCode.FILE_ERRORS if failed else ExitCode.OK))


def _print_tails(settings: Any, job_ids: list[int], console: Console) -> None:
    with db.connect(settings, autocommit=True) as conn:
        for job_id in job_ids:
            job = job_store.get(conn, job_id)
            if job and job.stderr_tail:
                console.print(f"--- job {job_id} ffmpeg stderr (tail) ---", markup=False)
                console.print(job.stderr_tail, markup=False)


# ---------------------------------------------------------------- presets


@click.group("presets")
def presets() -> None:
    """Transcode presets: built-ins plus MPR_PRESETS."""


@presets.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def presets_list(app: App, as_json: bool) -> None:
    """List the presets."""
    book = _presets(app)
    if as_json:
        click.echo(json.dumps(book.to_dict(), indent=2))
        return
    for name in book.names():
        preset = book.get(name)
        click.echo(f"{name:<16} {preset.media:<6} {preset.extension:<5} {preset.description}")


@presets.command("show")
@click.argument("name")
@pass_app
@handles_errors
def presets_show(app: App, name: str) -> None:
    """Print the ffmpeg command a preset runs (INPUT and OUTPUT are placeholders)."""
    preset = _presets(app).get(name)
    click.echo(preset_command(preset, threads=threads_per_job(app.settings.transcode_workers)))


# ---------------------------------------------------------------- jobs


@click.group("jobs")
def jobs() -> None:
    """Transcode jobs in the catalogue."""


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus], case_sensitive=False))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True,
              help="At most N jobs.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def jobs_list(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    with db.connect(app.settings, autocommit=True) as conn:
        rows = job_store.list_recent(conn, status.upper() if status else None, limit)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    for r in rows:
        error = f"  {r.error}" if r.error else ""
        provisional = "  (master provisional: run mpr import)" if r.master_provisional else ""
        host = f"  on {visible(r.host)}" if r.host else ""
        click.echo(f"{r.id:>6} {r.status.value:<10} {r.progress:>5.1f}% "
                   f"{r.attempts}/{r.max_attempts} {r.preset:<14} "
                   f"{visible(r.source_key)} -> {visible(r.output_key)}{host}{provisional}"
                   f"{visible(error)}")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@pass_app
@handles_errors
def jobs_cancel(app: App, job_id: int) -> None:
    """Cancel a PENDING or PROCESSING job (a running ffmpeg stops at its next heartbeat; a
    job sent to Celery workers also has its task revoked)."""
    with db.connect(app.settings, autocommit=True) as conn:
        if not job_store.cancel(conn, job_id, "cancelled by a user"):
            raise UsageError(f"job {job_id} is not pending or processing",
                             hint="see mpr jobs list")
        job = job_store.get(conn, job_id)
    note = ""
    if job is not None and job.task_id and app.settings.celery_broker_url is not None:
        from mpr_cli.transcode import broker  # celery's import only for a dispatched job

        if not broker.revoke(broker.make_app(app.settings), job.task_id):
            note = " (the broker did not answer: its task does nothing when a worker gets it)"
    click.echo(f"job {job_id} cancelled{note}")


@jobs.command("retry")
@click.argument("job_id", type=int)
@pass_app
@handles_errors
def jobs_retry(app: App, job_id: int) -> None:
    """Put a FAILED job back to PENDING (while attempts < max attempts)."""
    with db.connect(app.settings, autocommit=True) as conn:
        if not job_store.retry(conn, job_id):
            job = job_store.get(conn, job_id)
            why = ("does not exist" if job is None else f"is {job.status.value}"
                   if job.status is not JobStatus.FAILED else
                   f"has used all {job.max_attempts} attempts")
            raise UsageError(f"job {job_id} cannot be retried: it {why}")
    click.echo(f"job {job_id} is pending again; run `mpr transcode --pending`")
