"""`mpr nightly`: import, fixity (a quick pass, then a full one within MPR_FIXITY_BUDGET:
mpr_cli.fixity.nightly), then transcode what is pending, then one report covering them.

The exit code is the worst of the steps (0 < 1 < 3 < 4), 130 when a stop (Ctrl-C, SIGTERM)
ended it before its end. A dry run imports nothing and
transcodes nothing; an import that failed on infrastructure skips the transcode step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mpr_cli import db
from mpr_cli.config import Executor, Settings
from mpr_cli.errors import ExitCode, ImportInterrupted, MprError, describe
from mpr_cli.ffmpeg.presets import PresetBook
from mpr_cli.fixity.nightly import nightly_fixity
from mpr_cli.importer import ImportOptions, Progress, run_import
from mpr_cli.report import Report, RunStatus
from mpr_cli.rules import Rules
from mpr_cli.runlog import get_logger
from mpr_cli.transcode.jobrunner import JobRunner, JobSettings
from mpr_cli.transcode.jobs import JobStatus
from mpr_cli.transcode.pool import JobEvents, PoolResult, run_pending


@dataclass
class NightlyOutcome:
    report: dict[str, Any]
    exit_code: int
    import_report: Report
    transcode: PoolResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.exit_code == ExitCode.OK


def _import_step(settings: Settings, rules: Rules, options: ImportOptions,
                 progress: Progress, stop: threading.Event) -> tuple[Report, int]:
    log = get_logger()
    log.info("import: started (bucket %s, prefix %r%s)", settings.s3_bucket_in, options.prefix,
             ", dry run" if options.dry_run else "")
    try:
        report = run_import(settings, rules, options, progress, stop)
    except ImportInterrupted as exc:
        log.warning("import: interrupted; the batch in flight was rolled back")
        return exc.report, int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:  # a second signal before the run started
        log.warning("import: interrupted; the batch in flight was rolled back")
        report = Report(options.command, dry_run=options.dry_run, safe_run=options.safe_run,
                        prefix=options.prefix, run_key=options.run_key,
                        status=RunStatus.ABORTED)
        return report, int(ExitCode.INTERRUPTED)
    except MprError as exc:
        log.error("import: failed: %s", exc.one_line())
        report = Report(options.command, dry_run=options.dry_run, safe_run=options.safe_run,
                        prefix=options.prefix, run_key=options.run_key,
                        status=RunStatus.FAILED, message=exc.one_line())
        return report, int(exc.exit_code)
    counts = report.counts
    log.info("import: %s: %d listed, %d accepted, %d inserted, %d errors, %d warnings",
             report.status, counts.listed, counts.accepted, counts.inserted_files,
             counts.errors, counts.warnings)
    return report, int(report.exit_code())


def _transcode_step(settings: Settings, rules: Rules, presets: PresetBook, options: ImportOptions,
                    workers: int, events: JobEvents, stop: threading.Event,
                    executor: Executor) -> tuple[PoolResult | None, int, str]:
    log = get_logger()
    runner = JobRunner(settings, rules, presets, workers=workers,
                       options=JobSettings.from_settings(settings))
    try:
        if executor is Executor.CELERY:
            result = _on_workers(runner, options.prefix, events, stop)
        else:
            log.info("transcode: started (%d workers)", workers)
            result = run_pending(runner, workers=workers, prefix=options.prefix, events=events,
                                 stop_all=stop)
    except MprError as exc:
        log.error("transcode: failed: %s", exc.one_line())
        return None, int(exc.exit_code), exc.one_line()
    except Exception as exc:  # a bug in the pool (its threads hand it back): the night reports
        message = f"internal error ({describe(exc)}): report this as a bug"
        log.error("transcode: failed: %s", message)
        return None, int(ExitCode.INFRASTRUCTURE), message
    failed = result.count(JobStatus.FAILED)
    log.info("transcode: %d created, %d completed, %d failed, %d cancelled", result.created,
             result.count(JobStatus.COMPLETED), failed, result.count(JobStatus.CANCELLED))
    if result.left_running:
        return result, int(ExitCode.INTERRUPTED), "stopped waiting for the workers"
    return result, int(ExitCode.FILE_ERRORS if failed else ExitCode.OK), ""


def _on_workers(runner: JobRunner, prefix: str, events: JobEvents,
                stop: threading.Event) -> PoolResult:
    """The celery executor's step: the same jobs created, sent to `mpr worker` processes and
    waited for; stopped by Ctrl-C, the unsettled ones keep running there."""
    from mpr_cli.transcode.dispatch import dispatch, wait  # celery's import only when used

    sent = dispatch(runner, prefix=prefix, create=True)
    get_logger().info("transcode: %d jobs sent to the celery workers (%d created, %d queued "
                      "before)", len(sent.job_ids), sent.created, len(sent.job_ids) - sent.sent)
    result = wait(runner, sent, events=events, stop=stop)
    if result.left_running:
        get_logger().warning("transcode: stopped waiting; jobs %s keep running on the workers",
                             ", ".join(map(str, result.left_running)))
    return result


def _transcode_section(result: PoolResult | None, note: str) -> dict[str, Any]:
    if result is None:
        return {"created": 0, "jobs": {}, "failures": [], "message": note,
                "left_running": []}
    failures = [{"job_id": job_id, "source_key": result.source_key(job_id),
                 "error": result.messages.get(job_id, "")}
                for job_id in result.finished.get(JobStatus.FAILED, [])]
    return {"created": result.created,
            "jobs": {status.value: len(ids) for status, ids in result.finished.items()},
            "failures": failures, "message": note, "left_running": result.left_running}


def run_nightly(settings: Settings, rules: Rules, presets: PresetBook, options: ImportOptions,
                *, workers: int, progress: Progress, events: JobEvents,
                stop: threading.Event | None = None,
                executor: Executor = Executor.LOCAL) -> NightlyOutcome:
    """Both steps; never raises MprError (each step's failure is in the outcome). A set
    `stop` (Ctrl-C, SIGTERM) ends the step in progress cleanly and skips the rest."""
    stop = stop or threading.Event()
    started = time.monotonic()
    report, import_code = _import_step(settings, rules, options, progress, stop)
    fixity = nightly_fixity(settings, prefix=options.prefix, run_key=options.run_key,
                            dry_run=options.dry_run, import_code=import_code, stop=stop)
    result, transcode_code, note = None, int(ExitCode.OK), ""
    if options.dry_run:
        note = "dry run: transcoding skipped"
    elif import_code == ExitCode.INFRASTRUCTURE:
        note = "transcoding skipped: the import could not reach S3 or the database"
    elif stop.is_set():
        note = "transcoding skipped: the run was interrupted"
    else:
        began = time.monotonic()
        result, transcode_code, note = _transcode_step(settings, rules, presets, options,
                                                       workers, events, stop, executor)
        report.durations["transcode"] = time.monotonic() - began
    report.durations["total"] = time.monotonic() - started
    combined = report.to_dict()
    combined["command"] = "nightly"
    combined["transcode"] = _transcode_section(result, note)
    fixity.merge_into(combined)
    exit_code = max(import_code, transcode_code, fixity.exit_code)
    if stop.is_set() and exit_code < ExitCode.INFRASTRUCTURE:
        # stopped by Ctrl-C or SIGTERM in whichever step, even one that had finished its
        # work: the night did not run to its end (a failure that also sets `stop` is exit 4)
        exit_code = int(ExitCode.INTERRUPTED)
    combined["exit_code"] = exit_code
    if report.run_id is not None:
        _store_report(settings, report.run_id, combined)
    return NightlyOutcome(combined, exit_code, report, result)


def _store_report(settings: Settings, run_id: int, combined: dict[str, Any]) -> None:
    try:
        with db.connect(settings, autocommit=True) as conn:
            db.update_run_report(conn, run_id, combined)
    except MprError as exc:
        get_logger().warning("could not store the combined report in run %d: %s", run_id,
                             exc.one_line())
