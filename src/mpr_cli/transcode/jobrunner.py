"""One claimed job through its stages, and its status writes: what the pool's threads call.

A claimed job is prepared (`JobRunner.prepare`), encoded by the pool in an ffmpeg slot, then
settled (`JobRunner.settle`): finished and recorded, or its failure, cancel or release
written through the job store. An output that is uploaded but not recorded is deleted again.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

import psycopg

from mpr_cli.config import Settings
from mpr_cli.errors import ConfigError, ExitCode, InternalError, MprError, StorageError
from mpr_cli.ffmpeg.command import threads_per_job
from mpr_cli.ffmpeg.presets import PresetBook
from mpr_cli.ffmpeg.runner import TranscodeCancelled
from mpr_cli.pictures import model as pictures
from mpr_cli.rules import Rules
from mpr_cli.storage import Storage
from mpr_cli.transcode import jobs
from mpr_cli.transcode.jobs import Connection, Job, JobStatus
from mpr_cli.transcode.leases import Lease
from mpr_cli.transcode.outputs import (
    OutputTarget,
    record_output,
    refuse_unsafe_output,
    register_master,
)
from mpr_cli.transcode.stages import Prepared, Transcoder, TranscodeResult, parse_source
from mpr_cli.transcode.workdirs import remove_dead_workdirs


@dataclass(frozen=True)
class JobSettings:
    """How this process runs jobs: the lease and heartbeat (MPR_JOB_LEASE_SECONDS,
    MPR_JOB_HEARTBEAT_SECONDS), the attempt cap of new jobs, whether outputs are decoded in
    full, and the host part of its worker names ("": this machine's name; a Celery worker's
    node name)."""

    lease_s: float = 120.0
    heartbeat_s: float = 5.0
    max_attempts: int = 3
    full_verify: bool = False
    host: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, *, full_verify: bool = False,
                      host: str = "") -> JobSettings:
        return cls(lease_s=settings.job_lease_seconds, heartbeat_s=settings.job_heartbeat_seconds,
                   full_verify=full_verify, host=host)


def is_infrastructure(exc: MprError) -> bool:
    """S3 or the catalogue failed (exit 4), or this process's configuration (a temp folder that
    cannot be used, an unknown preset): not the file's failure, so its job is PENDING again."""
    return exc.exit_code is ExitCode.INFRASTRUCTURE or isinstance(exc, ConfigError)


def worker_name(n: int, host: str = "") -> str:
    """`host:pid:slot`: unique among live workers; `Job.host` is its first part."""
    return f"{host or socket.gethostname()}:{os.getpid()}:{n}"


@dataclass
class Claimed:
    """A claimed job on its way through the pipeline: prepared (or the error that stopped its
    preparation), then encoded or not, then settled by the finisher."""

    job: Job
    lease: Lease
    prepared: Prepared | None = None
    error: MprError | None = None
    started: bool = False
    infrastructure: MprError | None = None  # S3, the catalogue or the temp folder failed it

    @property
    def id(self) -> int:
        return self.job.id

    def discard(self) -> None:
        if self.prepared is not None:
            self.prepared.discard()


def target_of(job: Job) -> OutputTarget:
    return OutputTarget(job.inventory_code, job.source_bucket, job.source_key,
                        job.output_bucket, job.output_key)


class _Rollback(Exception):
    pass


class JobRunner:
    """The stages of a claimed job and its status writes; one instance per process, shared by
    the pool's threads."""

    def __init__(self, settings: Settings, rules: Rules, presets: PresetBook, *,
                 workers: int = 1, options: JobSettings | None = None,
                 threads: int | None = None) -> None:
        """`threads`: ffmpeg threads per job (default this machine's cores shared out among
        `workers` jobs at a time)."""
        self.settings, self.rules, self.presets = settings, rules, presets
        self.options = options or JobSettings()
        self.storage = Storage(settings)
        self.transcoder = Transcoder(settings, self.storage,
                                     threads=threads or threads_per_job(workers),
                                     full_verify=self.options.full_verify)

    def prepare(self, job: Job) -> Prepared:
        preset = self.presets.get(job.preset)
        source = parse_source(job.source_key, self.rules)
        return self.transcoder.prepare(source, preset, job.output_key,
                                       source_bucket=job.source_bucket,
                                       output_bucket=job.output_bucket)

    def settle(self, conn: Connection, claimed: Claimed, *, stopping: bool,
               halted: MprError | None = None) -> tuple[JobStatus | None, str]:
        """The job's last step: finish and record it, or write why not. None: the job is
        PENDING again (its attempt given back), to be claimed by the next run: claimed ahead and
        never started when the pool stops, failed by S3, the catalogue or the temp folder
        (`claimed.infrastructure`), or cancelled because such a failure (`halted`) stops the
        pool."""
        if claimed.error is not None:
            return self._settle_error(conn, claimed, claimed.error, halted)
        if not claimed.started:
            if stopping and jobs.release(conn, claimed.id, claimed.lease.worker, None):
                return None, "not started; pending again"
            # no longer ours (`mpr jobs cancel` while it waited for a slot): nothing to write
            return JobStatus.CANCELLED, "cancelled before it started"
        assert claimed.prepared is not None  # started: it was prepared
        try:
            refuse_unsafe_output(conn, self.storage, target_of(claimed.job))
            result = self.transcoder.finish(claimed.prepared, cancel=claimed.lease.cancel)
            return self._complete(conn, claimed, claimed.prepared, result)
        except MprError as exc:
            return self._settle_error(conn, claimed, exc, halted)
        except psycopg.Error:
            raise  # the catalogue's failure, not this job's: it stops the pool
        except Exception as exc:  # what no rule foresaw fails this job only
            return self._settle_error(conn, claimed, InternalError(exc), halted)

    def _settle_error(self, conn: Connection, claimed: Claimed, exc: MprError,
                      halted: MprError | None) -> tuple[JobStatus | None, str]:
        if isinstance(exc, TranscodeCancelled) and halted is not None:
            # stopped because S3, the catalogue or the temp folder failed, or the pool's own
            # code did: not this job's fault, so it runs again
            message = f"pending again: {halted.one_line()}"
            jobs.release(conn, claimed.id, claimed.lease.worker, message)
            return None, message
        if isinstance(exc, TranscodeCancelled):
            jobs.cancel(conn, claimed.id, "cancelled while running")
            return JobStatus.CANCELLED, "cancelled"
        if is_infrastructure(exc):
            if exc is not halted:
                claimed.infrastructure = exc
            jobs.release(conn, claimed.id, claimed.lease.worker,
                         f"pending again: {exc.one_line()}")
            return None, f"pending again: {exc.one_line()}"
        tail = getattr(exc, "stderr_tail", "") or None
        jobs.fail(conn, claimed.id, claimed.lease.worker, exc.one_line(), tail)
        return JobStatus.FAILED, exc.one_line()

    def _complete(self, conn: Connection, claimed: Claimed, prepared: Prepared,
                  result: TranscodeResult) -> tuple[JobStatus, str]:
        """Record the uploaded output; an output that is not recorded is deleted again."""
        try:
            recorded = self._record(conn, claimed, prepared, result)
        except BaseException:
            self.transcoder.remove_outputs(result.keys, prepared.output_bucket)
            raise
        if not recorded:
            self.transcoder.remove_outputs(result.keys, prepared.output_bucket)
            return JobStatus.CANCELLED, "cancelled before it was recorded; output removed"
        return JobStatus.COMPLETED, result.output_key

    def _record(self, conn: Connection, claimed: Claimed, prepared: Prepared,
                result: TranscodeResult) -> bool:
        """The output and the job's completion in one transaction; False (nothing written)
        when the job is no longer this worker's."""
        try:
            with conn.transaction():
                asset_id = claimed.job.asset_id or self._register(conn, prepared)
                record_output(conn, asset_id, prepared.preset, result, prepared.output_bucket)
                for picture in result.pictures:
                    pictures.record(conn, asset_id, picture, prepared.source.key)
                if not jobs.complete(conn, claimed.id, claimed.lease.worker, asset_id):
                    raise _Rollback
        except _Rollback:
            return False
        return True

    def _register(self, conn: Connection, prepared: Prepared) -> int:
        """The asset of a master that was never imported, from its download and probe."""
        head = self.storage.head(prepared.source_bucket, prepared.source.key)
        etag = head.etag if head is not None else None
        return register_master(conn, prepared.source, prepared.source_bucket, prepared.download,
                               prepared.master, etag)

    def clean_up(self, conn: Connection) -> int:
        """What dead workers left (a `kill -9`, a crash): their temp folders, and unfinished
        multipart uploads to the outputs of jobs that no longer run. S3 failing here stops
        nothing: the jobs report it. Returns how many were removed."""
        removed = remove_dead_workdirs(self.settings)
        bucket = self.settings.s3_bucket_out
        with contextlib.suppress(StorageError):
            uploads = list(self.storage.list_multipart_uploads(bucket))
            keys = sorted({key for key, _ in uploads})
            dead = jobs.abandoned_output_keys(conn, bucket, keys, self.options.lease_s)
            for key, upload_id in uploads:
                if key in dead:
                    self.storage.abort_multipart_upload(bucket, key, upload_id)
                    removed += 1
        return removed
