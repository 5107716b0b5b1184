"""Transcode jobs: creating, claiming (FOR UPDATE SKIP LOCKED), running on a local pool of
ffmpeg processes, heartbeats, cancel and the job lifecycle in the catalogue.

PENDING -> PROCESSING -> COMPLETED | FAILED; PENDING | PROCESSING -> CANCELLED;
FAILED -> PENDING (`mpr jobs retry`, while attempts < max_attempts); PROCESSING -> PENDING for a
job claimed ahead that never started when its run stops (`release_job`, the attempt given back).
A PROCESSING job whose heartbeat is older than the lease (its process died) can be claimed
again. The pool is a pipeline (`_Pipeline`): jobs are claimed and prepared ahead, encoded in
`workers` ffmpeg slots and finished (checked, uploaded, recorded) beside them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.db import JobStatus
from mpr_cli.errors import ConfigError, ExitCode, MprError, StorageError, UsageError
from mpr_cli.ffmpeg.command import threads_per_job
from mpr_cli.ffmpeg.leases import Lease, Leases
from mpr_cli.ffmpeg.presets import Preset, PresetBook
from mpr_cli.ffmpeg.runner import ProgressUpdate, TranscodeCancelled
from mpr_cli.rules import Rules
from mpr_cli.storage import Storage
from mpr_cli.transcode import (
    OutputTarget,
    Prepared,
    Source,
    Transcoder,
    check_output_key,
    default_output_key,
    parse_source,
    record_output,
    refuse_unsafe_output,
    register_master,
    remove_dead_workdirs,
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
    released: list[int] = field(default_factory=list)  # claimed ahead, PENDING again on a stop
    cleaned: int = 0  # temp folders and unfinished uploads of dead workers removed

    def count(self, status: JobStatus) -> int:
        return len(self.finished.get(status, []))


@dataclass(frozen=True)
class JobSettings:
    lease_s: float = 120.0
    heartbeat_s: float = 5.0
    max_attempts: int = 3
    full_verify: bool = False


def is_infrastructure(exc: MprError) -> bool:
    """S3 or the catalogue failed (exit 4), or this process's configuration (a temp folder that
    cannot be used, an unknown preset): not the file's failure, so its job is PENDING again."""
    return exc.exit_code is ExitCode.INFRASTRUCTURE or isinstance(exc, ConfigError)


def worker_name(n: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{n}"


@dataclass
class _Claimed:
    """A claimed job on its way through the pipeline: prepared (or the error that stopped its
    preparation), then encoded or not, then settled by the finisher."""

    job: dict[str, Any]
    lease: Lease
    prepared: Prepared | None = None
    error: MprError | None = None
    started: bool = False
    infrastructure: MprError | None = None  # S3, the catalogue or the temp folder failed it

    @property
    def id(self) -> int:
        return int(self.job["id"])

    def discard(self) -> None:
        if self.prepared is not None:
            self.prepared.discard()


def target_of(job: dict[str, Any]) -> OutputTarget:
    return OutputTarget(job["inventory_code"], job["source_bucket"], job["source_key"],
                        job["output_bucket"], job["output_key"])


class JobRunner:
    """The stages of a claimed job and its status writes; one instance per process, shared by
    the pool's threads."""

    def __init__(self, settings: Settings, rules: Rules, presets: PresetBook, *,
                 workers: int = 1, options: JobSettings | None = None) -> None:
        self.settings, self.rules, self.presets = settings, rules, presets
        self.options = options or JobSettings()
        self.storage = Storage(settings)
        self.transcoder = Transcoder(settings, self.storage, threads=threads_per_job(workers),
                                     full_verify=self.options.full_verify)

    # -- one job ------------------------------------------------------------------------

    def prepare(self, job: dict[str, Any]) -> Prepared:
        preset = self.presets.get(job["preset"])
        source = parse_source(job["source_key"], self.rules)
        return self.transcoder.prepare(source, preset, job["output_key"],
                                       source_bucket=job["source_bucket"],
                                       output_bucket=job["output_bucket"])

    def settle(self, conn: Any, claimed: _Claimed, *, stopping: bool,
               halted: MprError | None = None) -> tuple[JobStatus | None, str]:
        """The job's last step: finish and record it, or write why not. None: the job is
        PENDING again (its attempt given back), to be claimed by the next run: claimed ahead and
        never started when the pool stops, failed by S3, the catalogue or the temp folder
        (`claimed.infrastructure`), or cancelled because such a failure (`halted`) stops the
        pool."""
        if claimed.error is not None:
            return self._settle_error(conn, claimed, claimed.error, halted)
        if not claimed.started:
            if stopping and db.job_update(conn, "release_job", id=claimed.id,
                                          worker=claimed.lease.worker, reason=None):
                return None, "not started; pending again"
            # no longer ours (`mpr jobs cancel` while it waited for a slot): nothing to write
            return JobStatus.CANCELLED, "cancelled before it started"
        assert claimed.prepared is not None  # started: it was prepared
        try:
            refuse_unsafe_output(conn, self.storage, target_of(claimed.job))
            _, record = self.transcoder.finish(claimed.prepared, cancel=claimed.lease.cancel)
            return self._complete(conn, claimed, claimed.prepared, record)
        except MprError as exc:
            return self._settle_error(conn, claimed, exc, halted)

    def _settle_error(self, conn: Any, claimed: _Claimed, exc: MprError,
                      halted: MprError | None) -> tuple[JobStatus | None, str]:
        if isinstance(exc, TranscodeCancelled) and halted is not None:
            exc = halted  # stopped because S3, the catalogue or the temp folder failed
        elif isinstance(exc, TranscodeCancelled):
            db.job_update(conn, "cancel_job", id=claimed.id, reason="cancelled while running")
            return JobStatus.CANCELLED, "cancelled"
        if is_infrastructure(exc):
            if exc is not halted:
                claimed.infrastructure = exc
            db.job_update(conn, "release_job", id=claimed.id, worker=claimed.lease.worker,
                          reason=f"pending again: {exc.one_line()}")
            return None, f"pending again: {exc.one_line()}"
        tail = getattr(exc, "stderr_tail", "") or None
        db.job_update(conn, "fail_job", id=claimed.id, worker=claimed.lease.worker,
                      error=exc.one_line(), stderr_tail=tail)
        return JobStatus.FAILED, exc.one_line()

    def _complete(self, conn: Any, claimed: _Claimed, prepared: Prepared,
                  record: dict[str, Any]) -> tuple[JobStatus, str]:
        """Record the uploaded output; an output that is not recorded is deleted again."""
        outputs = [record["key"]] + [obj.key for obj, _ in record["sidecars"]]
        try:
            recorded = self._record(conn, claimed, prepared, record)
        except BaseException:
            self.transcoder.remove_outputs(outputs, prepared.output_bucket)
            raise
        if not recorded:
            self.transcoder.remove_outputs(outputs, prepared.output_bucket)
            return JobStatus.CANCELLED, "cancelled before it was recorded; output removed"
        return JobStatus.COMPLETED, record["key"]

    def _record(self, conn: Any, claimed: _Claimed, prepared: Prepared,
                record: dict[str, Any]) -> bool:
        try:
            with conn.transaction():
                asset_id = claimed.job["asset_id"] or self._register(conn, prepared, record)
                record_output(conn, asset_id, prepared.preset, record, prepared.output_bucket)
                if not db.job_update(conn, "complete_job", id=claimed.id,
                                     worker=claimed.lease.worker, asset_id=asset_id):
                    raise _Rollback
        except _Rollback:
            return False
        return True

    def _register(self, conn: Any, prepared: Prepared, record: dict[str, Any]) -> int:
        download, info = record["master"]
        head = self.storage.head(prepared.source_bucket, prepared.source.key)
        etag = head.etag if head is not None else None
        return register_master(conn, prepared.source, prepared.source_bucket, download, info,
                               etag)

    def clean_up(self, conn: Any) -> int:
        """What dead workers left (a `kill -9`, a crash): their temp folders, and unfinished
        multipart uploads to the outputs of jobs that no longer run. S3 failing here stops
        nothing: the jobs report it. Returns how many were removed."""
        removed = remove_dead_workdirs(self.settings)
        bucket = self.settings.s3_bucket_out
        with contextlib.suppress(StorageError):
            uploads = list(self.storage.list_multipart_uploads(bucket))
            keys = sorted({key for key, _ in uploads})
            dead = db.abandoned_output_keys(conn, bucket, keys, self.options.lease_s)
            for key, upload_id in uploads:
                if key in dead:
                    self.storage.abort_multipart_upload(bucket, key, upload_id)
                    removed += 1
        return removed

    # -- job creation ---------------------------------------------------------------------

    def create_single(self, conn: Any, key: str, preset_name: str | None,
                      output_key: str | None, force: bool) -> tuple[int | None, str]:
        """The job of `mpr transcode KEY`; (None, why) when there is nothing to do: the asset
        already has a streaming copy in its bucket (unless `force`: the new copy replaces it)."""
        source = parse_source(key, self.rules)
        preset = (self.presets.get(preset_name) if preset_name
                  else self.presets.default_for(source.media_type))
        if output_key is not None:
            check_output_key(output_key, source, preset)
        out_key = output_key or default_output_key(source, preset)
        copy = db.recorded_output(conn, source.inventory_code)
        if copy is not None and not force:
            present = self.storage.head(copy["bucket"], copy["key"])
            if present is not None and present.etag == copy["etag"]:
                how = (f"already transcoded with {copy['preset']}" if copy["preset"]
                       else "already has a delivered streaming copy")
                return None, (f"{key}: {how}: s3://{copy['bucket']}/{copy['key']}; nothing to "
                              "do (use --force to replace it)")
        bucket_in, bucket_out = self.settings.s3_bucket_in, self.settings.s3_bucket_out
        if self.storage.head(bucket_in, key) is None:
            raise UsageError(f"{key} is not in s3://{bucket_in}",
                             hint="check the key (mpr transcode takes a key of the input bucket)")
        refuse_unsafe_output(conn, self.storage, OutputTarget(source.inventory_code, bucket_in,
                                                              key, bucket_out, out_key))
        job_id = self._reuse_failed(conn, key, preset, out_key)
        if job_id is None:
            asset = db.asset_by_code(conn, source.inventory_code)
            job_id = self.create_job(conn, source, preset, out_key,
                                     asset["id"] if asset else None)
        return require_no_live_job(job_id, source, preset), ""

    def _reuse_failed(self, conn: Any, key: str, preset: Preset, out_key: str) -> int | None:
        """The newest job of this master and preset, when it FAILED: PENDING again while it has
        an attempt left, refused once it used them all (the attempt cap holds)."""
        last = db.newest_job_for(conn, self.settings.s3_bucket_in, key, preset.name)
        if last is None or last["status"] != JobStatus.FAILED.value:
            return None
        if db.job_update(conn, "reuse_failed_job", id=last["id"], output_key=out_key):
            return int(last["id"])
        raise UsageError(f"{key} failed all {last['max_attempts']} attempts with {preset.name} "
                         f"(job {last['id']}: {last['error']})",
                         hint="see `mpr jobs list --status failed`; nothing was started")

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
                 events: JobEvents, scope: db.ClaimScope) -> None:
        self.runner, self.workers, self.stop_all = runner, workers, stop_all
        self.events, self.scope = events, scope
        self.result = PoolResult()
        self.lock = threading.Lock()
        self.ahead = threading.Semaphore(workers)
        self.ready: queue.Queue[_Claimed | None] = queue.Queue()
        self.encoded: queue.Queue[_Claimed | None] = queue.Queue(maxsize=workers)
        self.encoders_left = workers
        self.leases = Leases(runner.settings, runner.options.heartbeat_s, stop_all, self.fail)
        self.done = threading.Event()

    def fail(self, exc: MprError) -> None:
        """The catalogue went away: stop every thread, report it."""
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
        worker = worker_name(n)
        try:
            with db.connect(self.runner.settings, autocommit=True) as conn:
                while self._wait_turn():
                    job = db.claim_job(conn, worker, self.runner.options.lease_s, self.scope)
                    if job is None:
                        self.ahead.release()
                        return
                    self.ready.put(self._prepare(job, worker))
        except MprError as exc:
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

    def _prepare(self, job: dict[str, Any], worker: str) -> _Claimed:
        claimed = _Claimed(job, self.leases.hold(job["id"], worker))
        try:
            claimed.prepared = self.runner.prepare(job)
        except MprError as exc:  # a missing or unreadable master fails its own job
            claimed.error = exc
        return claimed

    # -- encoders -------------------------------------------------------------------------

    def _encode_loop(self) -> None:
        try:
            while (claimed := self.ready.get()) is not None:
                self.ahead.release()
                self._encode(claimed)
                self.encoded.put(claimed)
        finally:
            self.encoded.put(None)

    def _encode(self, claimed: _Claimed) -> None:
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

    # -- the finisher ---------------------------------------------------------------------

    def _finish_loop(self) -> None:
        try:
            with db.connect(self.runner.settings, autocommit=True) as conn:
                self._drain(conn)
        except MprError as exc:
            self.fail(exc)
            self._drain(None)  # no catalogue: only remove the temp folders
        finally:
            self.leases.close()
            self.done.set()

    def _drain(self, conn: Any) -> None:
        while self.encoders_left:
            claimed = self.encoded.get()
            if claimed is None:
                self.encoders_left -= 1
                continue
            try:
                if conn is not None:
                    self._settle(conn, claimed)
            finally:
                claimed.discard()
                self.leases.drop(claimed.id)

    def _settle(self, conn: Any, claimed: _Claimed) -> None:
        with self.lock:
            halted = self.result.errors[0] if self.result.errors else None
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
        if not claimed.started:
            self.events.job_started(claimed.job)
        self.events.job_finished(claimed.job, status, message)


def run_pool(runner: JobRunner, workers: int, stop_all: threading.Event, events: JobEvents,
             only_ids: list[int] | None = None, prefix: str = "") -> PoolResult:
    """Claim and run jobs of this process's buckets (S3_BUCKET_IN -> S3_BUCKET_OUT) with
    `workers` ffmpeg processes at a time until none is left."""
    scope = db.ClaimScope(runner.settings.s3_bucket_in, runner.settings.s3_bucket_out,
                          only_ids, prefix)
    with db.connect(runner.settings, autocommit=True) as conn:
        cleaned = runner.clean_up(conn)
    result = _Pipeline(runner, workers, stop_all, events, scope).run()
    result.cleaned = cleaned
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
    claimable job of its buckets: only the new ones with --limit, those under the prefix (new
    or retried) with --prefix."""
    with db.connect(runner.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        ids = runner.create_pending(conn, prefix, limit, preset_name)
        only = ids if limit else None  # --prefix also takes the PENDING (retried) jobs under it
        scope = db.ClaimScope(runner.settings.s3_bucket_in, runner.settings.s3_bucket_out,
                              only, prefix)
        total = db.count_claimable(conn, runner.options.lease_s, scope)
    if on_created is not None:
        on_created(total)
    result = run_pool(runner, max(1, min(workers, total)), stop_all or threading.Event(),
                      events or NoEvents(), only_ids=only, prefix=prefix)
    result.created = len(ids)
    return result
