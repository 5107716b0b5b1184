"""`mpr worker`: a Celery worker whose tasks run transcode jobs, one job per pool process.

A task carries its job's id only. Its pool process claims that job with the local pool's
compare-and-set (`run_pool(..., only_ids=[id])`: PENDING, or PROCESSING with an expired lease)
and runs it through the same stages, lease keeper and status writes as `mpr transcode`. A task
whose job is no longer claimable (COMPLETED, CANCELLED, FAILED, or held by a live worker) does
nothing: redelivered or duplicated tasks are harmless. A job that S3 or the catalogue failed
is PENDING again (`release`, not FAILED) and sent again a little later; a job whose worker
died is put PENDING again and sent again by the reaper thread of every worker
(`dispatch.requeue_dead`), once its lease has expired.

Stopping a worker: SIGTERM (warm shutdown) lets the running jobs finish; SIGKILL or a lost
machine leaves them to the reapers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.errors import MprError
from mpr_cli.ffmpeg.presets import PresetBook
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.rules import Rules
from mpr_cli.runlog import get_logger
from mpr_cli.secrets import scrub_first_line
from mpr_cli.transcode import broker, jobs
from mpr_cli.transcode.dispatch import requeue_dead
from mpr_cli.transcode.jobrunner import JobRunner, JobSettings
from mpr_cli.transcode.jobs import Job, JobStatus
from mpr_cli.transcode.pool import run_pool


@dataclass(frozen=True)
class WorkerConfig:
    """What every pool process of one worker shares."""

    settings: Settings
    rules: Rules
    presets: PresetBook
    concurrency: int
    node: str  # the Celery node name, e.g. mpr@host: the host part of its jobs' worker names
    threads: int | None = None  # ffmpeg threads per job (None: cores / concurrency)


def default_node() -> str:
    return f"mpr@{socket.gethostname()}"


_RUNNERS: dict[int, JobRunner] = {}  # by pid: made in each pool process, after its fork


def _runner(config: WorkerConfig) -> JobRunner:
    runner = _RUNNERS.get(os.getpid())
    if runner is None:
        options = JobSettings.from_settings(config.settings, host=config.node)
        runner = JobRunner(config.settings, config.rules, config.presets,
                           workers=config.concurrency, options=options,
                           threads=config.threads)
        _RUNNERS[os.getpid()] = runner
    return runner


class _TaskLog:
    """The job's steps as the worker's log lines (what `mpr worker` prints)."""

    def __init__(self) -> None:
        self.log = get_logger()

    def job_started(self, job: Job) -> None:
        self.log.info("job %d ffmpeg started: %s -> %s (%s, attempt %d of %d)", job.id,
                      job.source_key, job.output_key, job.preset, job.attempts,
                      job.max_attempts)

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        pass

    def job_finished(self, job: Job, status: JobStatus, message: str) -> None:
        level = self.log.warning if status is JobStatus.FAILED else self.log.info
        level("job %d %s: %s: %s", job.id, status.value.lower(), job.source_key, message)


def run_task(config: WorkerConfig, task: Any, job_id: int) -> str:
    """The body of one task: its job's status when this process settled it, "not claimable"
    when it was not this task's to run, "sent again" when S3 or the catalogue failed it."""
    runner, log = _runner(config), get_logger()
    try:
        result = run_pool(runner, 1, threading.Event(), _TaskLog(), only_ids=[job_id],
                          clean_up=False)
    except MprError as exc:
        # S3 or the catalogue failed: the job is PENDING again (or, the catalogue lost, its
        # lease runs out and the reapers take it)
        log.error("job %d: %s; trying again later", job_id, exc.one_line())
        return _send_again(task.app, runner, job_id)
    if result.released:
        return _send_again(task.app, runner, job_id)
    for status, ids in result.finished.items():
        if job_id in ids:
            return status.value
    log.info("job %d: not claimable (settled, cancelled or held by a live worker)", job_id)
    return "not claimable"


def _send_again(app: Celery, runner: JobRunner, job_id: int) -> str:
    """After a quarter lease (S3 or the catalogue may be back), a new task for the job, sent
    while this pool process is still busy, so that another worker (an idle one first) takes
    it. Not Celery's countdown retry: a worker holds a countdown task in memory, and one
    killed meanwhile would hide the job until the broker's visibility timeout."""
    time.sleep(max(1.0, runner.options.lease_s / 4))
    settings = runner.settings
    try:
        sent = broker.send_jobs(app, settings, [job_id])
        with db.connect(settings, autocommit=True) as conn:
            for sent_id, task_id, sent_at in sent:
                jobs.mark_dispatched(conn, sent_id, task_id, sent_at)
    except MprError as exc:  # the task went (or the broker is away: the dispatchers resend)
        get_logger().warning("job %d: %s", job_id, exc.one_line())
    return "sent again"


def build_app(config: WorkerConfig) -> Celery:
    """The worker's Celery app with the transcode task registered."""
    app = broker.make_app(config.settings)

    @app.task(name=broker.TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def transcode_job(task: Any, job_id: int) -> str:
        return run_task(config, task, int(job_id))

    return app


class Reaper(threading.Thread):
    """In the worker's main process: at start and every quarter lease, jobs of dead workers
    PENDING again and sent again, and what dead processes left removed (this machine's temp
    folders, unfinished uploads of jobs no longer running: `JobRunner.clean_up`)."""

    def __init__(self, app: Celery, config: WorkerConfig) -> None:
        super().__init__(daemon=True, name="mpr-reaper")
        self.app, self.config, self.settings = app, config, config.settings
        self.stopped = threading.Event()

    def run(self) -> None:
        lease = self.settings.job_lease_seconds
        every = max(self.settings.job_heartbeat_seconds, lease / 4)
        cleaner = JobRunner(self.settings, self.config.rules, self.config.presets,
                            options=JobSettings.from_settings(self.settings))
        while True:
            try:
                with db.connect(self.settings, autocommit=True) as conn:
                    cleaner.clean_up(conn)
                    requeue_dead(conn, self.app, self.settings, lease)
            except Exception as exc:  # the catalogue or the broker away: try at the next turn
                get_logger().warning("reaper: %s", scrub_first_line(
                    str(exc) or type(exc).__name__, self.settings.secret_values()))
            if self.stopped.wait(every):
                return


def run_worker(config: WorkerConfig, loglevel: str = "INFO") -> None:
    """Run the worker until it is stopped (Celery's own signal handling)."""
    app = build_app(config)
    app.conf.worker_hijack_root_logger = True  # mpr's log lines go out with Celery's
    broker.check_broker(app, config.settings)  # exit 4 with one line, not Celery's retries
    reaper = Reaper(app, config)

    def start_reaper(**_: Any) -> None:
        if not reaper.is_alive():
            reaper.start()

    def warm(**_: Any) -> None:  # each pool process makes its S3 client before its first task
        _runner(config)

    signals.worker_ready.connect(start_reaper, weak=False)
    signals.worker_process_init.connect(warm, weak=False)
    logging.getLogger("mpr").setLevel(loglevel)
    app.worker_main(["worker", f"--concurrency={config.concurrency}",
                     f"--hostname={config.node}", f"--loglevel={loglevel}",
                     f"--queues={broker.QUEUE}", "--pool=prefork"])
