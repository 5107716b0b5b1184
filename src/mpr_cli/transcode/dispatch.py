"""The celery executor's dispatcher: send the claimable jobs to the workers, then watch them in
the job table until each one is settled (or return at once with --no-wait).

`mpr transcode --pending --executor celery` and `mpr nightly --executor celery` create their
jobs exactly as the local pool does (transcode/create.py), then `dispatch` sends one task per
claimable job that needs one (never sent, or sent longer ago than the visibility timeout) and
`wait` feeds the same progress display (`JobEvents`) from the rows, so both executors look and
exit alike. While it waits, the dispatcher reaps too (`requeue_dead`): a job whose worker died
runs again elsewhere even when no worker is idle to notice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import Celery

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.runlog import get_logger
from mpr_cli.transcode import broker, jobs
from mpr_cli.transcode.create import create_pending
from mpr_cli.transcode.jobrunner import JobRunner
from mpr_cli.transcode.jobs import ClaimScope, Connection, Job, JobStatus
from mpr_cli.transcode.pool import JobEvents, NoEvents, PoolResult

_POLL_S = 0.5
_SETTLED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass
class Dispatched:
    """What a dispatch sent: every job it waits on (sent now or already queued), oldest first,
    and how many of them got a task now."""

    app: Celery
    scope: ClaimScope
    job_ids: list[int] = field(default_factory=list)
    sent: int = 0
    created: int = 0


def scope_of(settings: Settings, only_ids: list[int] | None, prefix: str) -> ClaimScope:
    return ClaimScope(settings.s3_bucket_in, settings.s3_bucket_out, only_ids, prefix)


def send(conn: Connection, app: Celery, settings: Settings, job_ids: list[int]) -> int:
    """A task for each job, each recorded on its row once sent (a row the broker never got
    stays unsent: the next dispatch sends it). Returns how many were sent."""
    sent = broker.send_jobs(app, settings, job_ids)
    for job_id, task_id, sent_at in sent:
        jobs.mark_dispatched(conn, job_id, task_id, sent_at)
    return len(sent)


def requeue_dead(conn: Connection, app: Celery, settings: Settings, lease_s: float) -> list[int]:
    """Jobs of dead workers (no heartbeat within the lease): PENDING again and sent again, or
    FAILED when they used every attempt. Returns the ids sent again."""
    scope = scope_of(settings, None, "")
    requeued, failed = jobs.requeue_stale(conn, lease_s, scope)
    log = get_logger()
    for job_id in failed:
        log.warning("job %d failed: its worker died during its last attempt", job_id)
    if requeued:
        log.warning("jobs %s: their worker stopped; pending again and sent again",
                    ", ".join(map(str, requeued)))
        send(conn, app, settings, requeued)
    return requeued


def dispatch(runner: JobRunner, *, only_ids: list[int] | None = None, prefix: str = "",
             create: bool = False, limit: int | None = None,
             preset_name: str | None = None) -> Dispatched:
    """Check the broker, create PENDING jobs (`create`: as --pending does), send a task for
    every claimable job of this scope that needs one. Raises BrokerUnavailable (exit 4) before
    anything is created when the broker does not answer."""
    settings = runner.settings
    app = broker.make_app(settings)
    broker.check_broker(app, settings)
    with db.connect(settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        ids = create_pending(conn, runner, prefix, limit, preset_name) if create else []
        only = ids if limit else only_ids
        scope = scope_of(settings, only, prefix)
        claimable = jobs.claimable(conn, runner.options.lease_s,
                                   settings.celery_visibility_timeout, scope)
        sent = send(conn, app, settings, [c.id for c in claimable if c.needs_task])
    return Dispatched(app, scope, [c.id for c in claimable], sent, len(ids))


def wait(runner: JobRunner, dispatched: Dispatched, *, events: JobEvents | None = None,
         stop: threading.Event | None = None,
         on_total: Callable[[int], None] | None = None) -> PoolResult:
    """Watch the dispatched jobs in the job table until each is COMPLETED, FAILED or
    CANCELLED, or until `stop` (Ctrl-C): the jobs not settled then keep running on the workers
    and are listed in `PoolResult.left_running`."""
    events, stop = events or NoEvents(), stop or threading.Event()
    if on_total is not None:
        on_total(len(dispatched.job_ids))
    watch = _Watch(events, PoolResult(created=dispatched.created))
    reap_every = max(runner.options.heartbeat_s, runner.options.lease_s / 4)
    last_reap = time.monotonic()
    pending = list(dispatched.job_ids)
    with db.connect(runner.settings, autocommit=True) as conn:
        while pending and not stop.wait(_POLL_S):
            pending = watch.update(jobs.by_ids(conn, pending))
            if time.monotonic() - last_reap >= reap_every:
                requeue_dead(conn, dispatched.app, runner.settings, runner.options.lease_s)
                last_reap = time.monotonic()
        if pending:
            pending = watch.update(jobs.by_ids(conn, pending))
    watch.result.left_running = pending
    return watch.result


class _Watch:
    """What the waiting dispatcher has seen of each job, turned into `JobEvents` calls."""

    def __init__(self, events: JobEvents, result: PoolResult) -> None:
        self.events, self.result = events, result
        self.started: set[int] = set()
        self.progress: dict[int, float] = {}

    def update(self, rows: list[Job]) -> list[int]:
        """Report what changed since the last look; returns the ids not settled yet."""
        pending = []
        for job in rows:
            if job.status is JobStatus.PROCESSING or job.status in _SETTLED:
                self._start(job)
            if job.status in _SETTLED:
                self._finish(job)
                continue
            pending.append(job.id)
            if job.status is JobStatus.PROCESSING and job.progress != self.progress.get(job.id):
                self.progress[job.id] = job.progress
                self.events.job_progress(job.id, ProgressUpdate(None, job.progress, None, None))
        return pending

    def _start(self, job: Job) -> None:
        if job.id not in self.started:
            self.started.add(job.id)
            self.events.job_started(job)

    def _finish(self, job: Job) -> None:
        message = job.output_key if job.status is JobStatus.COMPLETED else (job.error or "")
        self.result.finished.setdefault(job.status, []).append(job.id)
        self.result.messages[job.id] = message
        self.result.jobs[job.id] = job
        self.events.job_finished(job, job.status, message)
