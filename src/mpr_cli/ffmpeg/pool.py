"""Transcode jobs: creating, claiming (FOR UPDATE SKIP LOCKED), running on a local pool of
ffmpeg processes, heartbeats, cancel and the job lifecycle in the catalogue.

PENDING -> PROCESSING -> COMPLETED | FAILED; PENDING | PROCESSING -> CANCELLED;
FAILED -> PENDING (`mpr jobs retry`, while attempts < max_attempts). A PROCESSING job whose
heartbeat is older than the lease (its process died) can be claimed again.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.db import JobStatus
from mpr_cli.errors import MprError, UsageError
from mpr_cli.ffmpeg.command import threads_per_job
from mpr_cli.ffmpeg.presets import Preset, PresetBook
from mpr_cli.ffmpeg.runner import ProgressUpdate, TranscodeCancelled
from mpr_cli.rules import Rules
from mpr_cli.storage import Storage
from mpr_cli.transcode import (
    Source,
    Transcoder,
    default_output_key,
    parse_source,
    record_output,
    register_master,
)


class JobEvents(Protocol):
    def job_started(self, job: dict[str, Any]) -> None: ...
    def job_progress(self, job_id: int, update: ProgressUpdate) -> None: ...
    def job_finished(self, job: dict[str, Any], status: JobStatus, message: str) -> None: ...


class NoEvents:
    def job_started(self, job: dict[str, Any]) -> None:
        pass

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        pass

    def job_finished(self, job: dict[str, Any], status: JobStatus, message: str) -> None:
        pass


@dataclass
class PoolResult:
    created: int = 0
    finished: dict[JobStatus, list[int]] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)
    errors: list[MprError] = field(default_factory=list)

    def count(self, status: JobStatus) -> int:
        return len(self.finished.get(status, []))


@dataclass(frozen=True)
class JobSettings:
    lease_s: float = 120.0
    heartbeat_s: float = 5.0
    max_attempts: int = 3
    full_verify: bool = False


def worker_name(n: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{n}"


class _Heartbeat(threading.Thread):
    """Keeps the job's lease alive and notices a cancel (global or `mpr jobs cancel`)."""

    def __init__(self, settings: Settings, job_id: int, worker: str, every: float,
                 stop_all: threading.Event, cancel: threading.Event) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.settings, self.job_id, self.worker, self.every = settings, job_id, worker, every
        self.stop_all, self.cancel = stop_all, cancel
        self.done = threading.Event()
        self.progress = 0.0

    def run(self) -> None:
        with db.connect(self.settings, autocommit=True) as conn:
            waited = 0.0
            while not self.done.wait(0.2):
                if self.stop_all.is_set():
                    self.cancel.set()
                waited += 0.2
                if waited >= self.every:
                    waited = 0.0
                    alive = db.job_update(conn, "heartbeat_job", id=self.job_id,
                                          worker=self.worker, progress=self.progress)
                    if not alive:
                        self.cancel.set()


class JobRunner:
    """Executes claimed jobs; one instance per process, shared by the worker threads."""

    def __init__(self, settings: Settings, rules: Rules, presets: PresetBook, *,
                 workers: int = 1, options: JobSettings | None = None) -> None:
        self.settings, self.rules, self.presets = settings, rules, presets
        self.options = options or JobSettings()
        self.storage = Storage(settings)
        self.transcoder = Transcoder(settings, self.storage, threads=threads_per_job(workers),
                                     full_verify=self.options.full_verify)

    # -- one job ------------------------------------------------------------------------

    def execute(self, conn: Any, job: dict[str, Any], worker: str, stop_all: threading.Event,
                events: JobEvents) -> tuple[JobStatus, str]:
        cancel = threading.Event()
        beat = _Heartbeat(self.settings, job["id"], worker, self.options.heartbeat_s,
                          stop_all, cancel)
        beat.start()
        events.job_started(job)

        def progress(update: ProgressUpdate) -> None:
            beat.progress = min(100.0, max(0.0, update.percent or 0.0))
            events.job_progress(job["id"], update)

        try:
            status, message = self._transcode(conn, job, worker, cancel, progress)
        finally:
            beat.done.set()
            beat.join()
        events.job_finished(job, status, message)
        return status, message

    def _transcode(self, conn: Any, job: dict[str, Any], worker: str, cancel: threading.Event,
                   progress: Callable[[ProgressUpdate], None]) -> tuple[JobStatus, str]:
        try:
            preset = self.presets.get(job["preset"])
            source = parse_source(job["source_key"], self.rules)
            _, record = self.transcoder.run(source, preset, job["output_key"],
                                            on_progress=progress, cancel=cancel)
        except (TranscodeCancelled, KeyboardInterrupt):
            db.job_update(conn, "cancel_job", id=job["id"], reason="cancelled while running")
            return JobStatus.CANCELLED, "cancelled"
        except MprError as exc:
            tail = getattr(exc, "stderr_tail", "") or None
            db.job_update(conn, "fail_job", id=job["id"], worker=worker,
                          error=exc.one_line(), stderr_tail=tail)
            return JobStatus.FAILED, exc.one_line()
        if not self._record(conn, job, worker, source, preset, record):
            self.transcoder.remove_outputs([record["key"]] + [o.key for o, _ in
                                                               record["sidecars"]])
            return JobStatus.CANCELLED, "cancelled before it was recorded; output removed"
        return JobStatus.COMPLETED, record["key"]

    def _record(self, conn: Any, job: dict[str, Any], worker: str, source: Source,
                preset: Preset, record: dict[str, Any]) -> bool:
        try:
            with conn.transaction():
                asset_id = job["asset_id"] or self._register(conn, source, record)
                record_output(conn, asset_id, preset, record, self.settings.s3_bucket_out)
                if not db.job_update(conn, "complete_job", id=job["id"], worker=worker,
                                     asset_id=asset_id):
                    raise _Rollback
        except _Rollback:
            return False
        return True

    def _register(self, conn: Any, source: Source, record: dict[str, Any]) -> int:
        download, info = record["master"]
        head = self.storage.head(self.settings.s3_bucket_in, source.key)
        etag = head.etag if head is not None else None
        return register_master(conn, source, self.settings.s3_bucket_in, download, info, etag)

    # -- job creation ---------------------------------------------------------------------

    def create_job(self, conn: Any, source: Source, preset: Preset, output_key: str,
                   asset_id: int | None) -> int | None:
        if preset.media != source.media_type:
            raise UsageError(f"preset {preset.name} makes {preset.media} copies but "
                             f"{source.inventory_code} is a {source.media_type} asset",
                             hint="choose a preset for its media type (mpr presets list)")
        return db.create_job(conn, asset_id=asset_id, inventory_code=source.inventory_code,
                             media_type=source.media_type.value,
                             source_bucket=self.settings.s3_bucket_in, source_key=source.key,
                             preset=preset.name, output_bucket=self.settings.s3_bucket_out,
                             output_key=output_key, max_attempts=self.options.max_attempts)

    def create_pending(self, conn: Any, prefix: str, limit: int | None,
                       preset_name: str | None) -> list[int]:
        created = []
        rows = db.assets_needing_streaming(conn, self.settings.s3_bucket_in, prefix, limit)
        for row in rows:
            source = parse_source(row["key"], self.rules)
            preset = (self.presets.get(preset_name) if preset_name
                      else self.presets.default_for(source.media_type))
            job_id = self.create_job(conn, source, preset, default_output_key(source, preset),
                                     row["asset_id"])
            if job_id is not None:
                created.append(job_id)
        return created


class _Rollback(Exception):
    pass


def run_pool(runner: JobRunner, workers: int, stop_all: threading.Event, events: JobEvents,
             only_ids: list[int] | None = None) -> PoolResult:
    """Claim and run jobs on `workers` threads (each drives one ffmpeg) until none is left."""
    result = PoolResult()
    lock = threading.Lock()

    finished = [threading.Event() for _ in range(workers)]

    def work(n: int) -> None:
        worker = worker_name(n)
        try:
            with db.connect(runner.settings, autocommit=True) as conn:
                while not stop_all.is_set():
                    job = db.claim_job(conn, worker, runner.options.lease_s, only_ids)
                    if job is None:
                        return
                    status, message = runner.execute(conn, job, worker, stop_all, events)
                    with lock:
                        result.finished.setdefault(status, []).append(job["id"])
                        result.messages[job["id"]] = message
        except MprError as exc:  # the catalogue went away: stop every worker, report it
            with lock:
                result.errors.append(exc)
            stop_all.set()
        finally:
            finished[n].set()

    threads = [threading.Thread(target=work, args=(n,), name=f"transcode-{n}", daemon=True)
               for n in range(workers)]
    for thread in threads:
        thread.start()
    # Wait on events, not Thread.join: a KeyboardInterrupt inside join() can mark a running
    # thread as stopped (CPython gh-90882) and the process would exit under a working job.
    try:
        for done in finished:
            while not done.wait(0.2):
                pass
    except KeyboardInterrupt:
        stop_all.set()
        for done in finished:
            done.wait()
        raise
    if result.errors:
        raise result.errors[0]
    return result


def require_no_live_job(job_id: int | None, source: Source, preset: Preset) -> int:
    if job_id is None:
        raise UsageError(f"a job for {source.key} with preset {preset.name} is already pending "
                         "or running", hint="see `mpr jobs list`, or cancel it first")
    return job_id


def run_pending(runner: JobRunner, *, workers: int, prefix: str = "", limit: int | None = None,
                preset_name: str | None = None, events: JobEvents | None = None,
                stop_all: threading.Event | None = None,
                on_created: Callable[[int], None] | None = None) -> PoolResult:
    """Create PENDING jobs for catalogued masters without a streaming copy, then run every
    claimable job (only the new ones when --prefix or --limit narrows the selection)."""
    with db.connect(runner.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        ids = runner.create_pending(conn, prefix, limit, preset_name)
        only = ids if (limit or prefix) else None
        total = len(ids) if only else len(db.list_jobs(conn, JobStatus.PENDING.value, 100_000))
    if on_created is not None:
        on_created(total)
    result = run_pool(runner, max(1, min(workers, total)), stop_all or threading.Event(),
                      events or NoEvents(), only_ids=only)
    result.created = len(ids)
    return result
