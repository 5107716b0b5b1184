"""The local pool: claimed transcode jobs run on `workers` ffmpeg processes at a time.

The pool is a pipeline (`_Pipeline`): jobs are claimed and prepared ahead, encoded in `workers`
ffmpeg slots and finished (checked, uploaded, recorded) beside them. The job lifecycle is the
job store's (transcode/jobs.py); what one job goes through is transcode/jobrunner.py.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg

from mpr_cli import db
from mpr_cli.errors import InternalError, MprError
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.transcode import jobs
from mpr_cli.transcode.create import create_pending
from mpr_cli.transcode.jobrunner import Claimed, JobRunner, worker_name
from mpr_cli.transcode.jobs import ClaimScope, Connection, Job, JobStatus
from mpr_cli.transcode.leases import Leases


class JobEvents(Protocol):
    def job_started(self, job: Job) -> None: ...
    def job_progress(self, job_id: int, update: ProgressUpdate) -> None: ...
    def job_finished(self, job: Job, status: JobStatus, message: str) -> None: ...


class NoEvents:
    def job_started(self, job: Job) -> None:
        pass

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        pass

    def job_finished(self, job: Job, status: JobStatus, message: str) -> None:
        pass


@dataclass
class PoolResult:
    """What a pool did: the settled jobs by status (with each one's message and its `Job`),
    the jobs released unstarted, the failure that stopped it (the catalogue lost, or an
    exception in the pool's own threads)."""

    created: int = 0
    finished: dict[JobStatus, list[int]] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)  # every finished job, by id
    errors: list[Exception] = field(default_factory=list)  # what stopped it, the first raised
    released: list[int] = field(default_factory=list)  # claimed ahead, PENDING again on a stop
    cleaned: int = 0  # temp folders and unfinished uploads of dead workers removed
    left_running: list[int] = field(default_factory=list)  # celery: not settled when it stopped

    def count(self, status: JobStatus) -> int:
        return len(self.finished.get(status, []))

    def source_key(self, job_id: int) -> str:
        """The master of a finished job ("" for a job this pool did not finish)."""
        job = self.jobs.get(job_id)
        return job.source_key if job is not None else ""


class _Pipeline:
    """Prefetch, encode, finish, so that the `workers` ffmpeg slots never wait on downloads,
    probes, uploads or the catalogue.

    `workers` preparer threads claim jobs ahead and prepare them (download + probe of the
    master); at most `workers` claimed jobs wait for a slot. `workers` encoder threads run one
    ffmpeg each and hand the encoded job to one finisher thread, which checks, uploads and
    records it (or writes why not) and removes its temp folder while the slot encodes the next
    job. On a stop (Ctrl-C, SIGTERM, a database failure) the running and finishing jobs are
    cancelled and the prepared ones that never started are PENDING again.
    """

    def __init__(self, runner: JobRunner, workers: int, stop_all: threading.Event,
                 events: JobEvents, scope: ClaimScope) -> None:
        self.runner, self.workers, self.stop_all = runner, workers, stop_all
        self.events, self.scope = events, scope
        self.result = PoolResult()
        self.lock = threading.Lock()
        self.ahead = threading.Semaphore(workers)
        self.ready: queue.Queue[Claimed | None] = queue.Queue()
        self.encoded: queue.Queue[Claimed | None] = queue.Queue(maxsize=workers)
        self.encoders_left = workers
        self.leases = Leases(runner.settings, runner.options.heartbeat_s, stop_all, self.fail)
        self.done = threading.Event()

    def fail(self, exc: Exception) -> None:
        """The catalogue went away, or one of the pool's threads raised: stop every thread;
        `run` raises the first such exception in the caller (no thread dies silently)."""
        with self.lock:
            self.result.errors.append(exc)
        self.stop_all.set()

    def run(self) -> PoolResult:
        self.leases.start()
        loops = ([(self._prepare_loop, f"prepare-{n}", (n,)) for n in range(self.workers)]
                 + [(self._encode_loop, f"transcode-{n}", ()) for n in range(self.workers)]
                 + [(self._finish_loop, "finish", ())])
        for target, name, args in loops:
            threading.Thread(target=target, args=args, name=name, daemon=True).start()
        # Wait on an event, not Thread.join: a KeyboardInterrupt inside join() can mark a
        # running thread as stopped (CPython gh-90882) and the process would exit under a job.
        try:
            while not self.done.wait(0.2):
                pass
        except KeyboardInterrupt:
            self.stop_all.set()
            self.done.wait()
            raise
        if self.result.errors:
            raise self.result.errors[0]
        return self.result

    # -- preparers ------------------------------------------------------------------------

    def _prepare_loop(self, n: int) -> None:
        worker = worker_name(n, self.runner.options.host)
        try:
            with db.connect(self.runner.settings, autocommit=True) as conn:
                while self._wait_turn():
                    job = jobs.claim(conn, worker, self.runner.options.lease_s, self.scope)
                    if job is None:
                        self.ahead.release()
                        return
                    self.ready.put(self._prepare(job, worker))
        except Exception as exc:  # the catalogue lost, or a bug: the caller gets it
            self.fail(exc)
        finally:
            self.ready.put(None)  # one end mark per preparer, one per encoder

    def _wait_turn(self) -> bool:
        """Block until fewer than `workers` claimed jobs wait to start; False on a stop."""
        while not self.ahead.acquire(timeout=0.2):
            if self.stop_all.is_set():
                return False
        if self.stop_all.is_set():
            self.ahead.release()
            return False
        return True

    def _prepare(self, job: Job, worker: str) -> Claimed:
        claimed = Claimed(job, self.leases.hold(job.id, worker))
        try:
            claimed.prepared = self.runner.prepare(job)
        except MprError as exc:  # a missing or unreadable master fails its own job
            claimed.error = exc
        except Exception as exc:  # so does what no rule foresaw, and the pool goes on
            claimed.error = InternalError(exc)
        return claimed

    # -- encoders -------------------------------------------------------------------------

    def _encode_loop(self) -> None:
        try:
            while (claimed := self.ready.get()) is not None:
                self.ahead.release()
                try:
                    self._encode(claimed)
                except Exception as exc:  # the pool's own code (e.g. the progress display)
                    self.fail(exc)
                finally:
                    self.encoded.put(claimed)  # settled (and its temp folder removed) anyway
        finally:
            self.encoded.put(None)

    def _encode(self, claimed: Claimed) -> None:
        lease, prepared = claimed.lease, claimed.prepared
        if prepared is None or self.stop_all.is_set() or lease.cancel.is_set():
            return
        self.events.job_started(claimed.job)
        claimed.started = True

        def progress(update: ProgressUpdate) -> None:
            lease.progress = min(100.0, max(0.0, update.percent or 0.0))
            self.events.job_progress(claimed.id, update)

        try:
            self.runner.transcoder.encode(prepared, on_progress=progress, cancel=lease.cancel)
        except MprError as exc:
            claimed.error = exc
        except Exception as exc:  # not the pool's failure: this job's
            claimed.error = InternalError(exc)

    # -- the finisher ---------------------------------------------------------------------

    def _finish_loop(self) -> None:
        try:
            with db.connect(self.runner.settings, autocommit=True) as conn:
                self._drain(conn)
        except Exception as exc:  # the catalogue lost, or a bug: stop, and hand it back
            self.fail(exc)
            self._drain(None)  # only remove the temp folders (each job's lease runs out)
        finally:
            self.leases.close()
            self.done.set()

    def _drain(self, conn: Connection | None) -> None:
        while self.encoders_left:
            claimed = self.encoded.get()
            if claimed is None:
                self.encoders_left -= 1
                continue
            try:
                if conn is not None:
                    self._settle(conn, claimed)
            except (psycopg.Error, MprError):
                raise  # the catalogue lost: the rest are drained without it
            except Exception as exc:  # the pool's own code: stop; the rest are still settled
                self.fail(exc)
            finally:
                claimed.discard()
                self.leases.drop(claimed.id)

    def _settle(self, conn: Connection, claimed: Claimed) -> None:
        with self.lock:
            first = self.result.errors[0] if self.result.errors else None
        halted = None if first is None else first if isinstance(first, MprError) else \
            InternalError(first)
        status, message = self.runner.settle(conn, claimed, stopping=self.stop_all.is_set(),
                                             halted=halted)
        if claimed.infrastructure is not None:  # the next jobs would fail the same way: stop
            self.fail(claimed.infrastructure)
        with self.lock:
            if status is None:
                self.result.released.append(claimed.id)
                return
            self.result.finished.setdefault(status, []).append(claimed.id)
            self.result.messages[claimed.id] = message
            self.result.jobs[claimed.id] = claimed.job
        if not claimed.started:
            self.events.job_started(claimed.job)
        self.events.job_finished(claimed.job, status, message)


def run_pool(runner: JobRunner, workers: int, stop_all: threading.Event, events: JobEvents,
             only_ids: list[int] | None = None, prefix: str = "",
             clean_up: bool = True) -> PoolResult:
    """Claim and run jobs of this process's buckets (S3_BUCKET_IN -> S3_BUCKET_OUT) with
    `workers` ffmpeg processes at a time until none is left; first (`clean_up`) remove what
    dead workers left (a Celery worker does that in its reaper instead, not per task)."""
    scope = ClaimScope(runner.settings.s3_bucket_in, runner.settings.s3_bucket_out,
                          only_ids, prefix)
    cleaned = 0
    if clean_up:
        with db.connect(runner.settings, autocommit=True) as conn:
            cleaned = runner.clean_up(conn)
    result = _Pipeline(runner, workers, stop_all, events, scope).run()
    result.cleaned = cleaned
    return result


def run_pending(runner: JobRunner, *, workers: int, prefix: str = "", limit: int | None = None,
                preset_name: str | None = None, events: JobEvents | None = None,
                stop_all: threading.Event | None = None,
                on_created: Callable[[int], None] | None = None) -> PoolResult:
    """Create PENDING jobs for catalogued masters without a streaming copy, then run every
    claimable job of its buckets: only the new ones with --limit, those under the prefix (new
    or retried) with --prefix."""
    with db.connect(runner.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        ids = create_pending(conn, runner, prefix, limit, preset_name)
        only = ids if limit else None  # --prefix also takes the PENDING (retried) jobs under it
        scope = ClaimScope(runner.settings.s3_bucket_in, runner.settings.s3_bucket_out,
                              only, prefix)
        total = jobs.count_pending(conn, runner.options.lease_s, scope)
    if on_created is not None:
        on_created(total)
    result = run_pool(runner, max(1, min(workers, total)), stop_all or threading.Event(),
                      events or NoEvents(), only_ids=only, prefix=prefix)
    result.created = len(ids)
    return result
