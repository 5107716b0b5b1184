"""The job store: the only module that reads and writes the `transcode_jobs` table.

A job's life, one function per state change (each a named query of queries.sql):

PENDING -> PROCESSING (`claim`) -> COMPLETED (`complete`) | FAILED (`fail`);
PENDING | PROCESSING -> CANCELLED (`cancel`); FAILED -> PENDING (`retry`, `reuse_failed`, while
attempts < max_attempts); PROCESSING -> PENDING (`release`: a job claimed ahead that never
started when its run stops, or one failed by S3, the catalogue or the temp folder, the attempt
given back). A PROCESSING job whose heartbeat (`heartbeat`) is older than the lease (its
process died) can be claimed again; `claim` first FAILs such jobs that have no attempt left.

Each state change returns True when the row changed: False means the job is no longer this
worker's (cancelled by `mpr jobs cancel`, its lease taken over) and nothing was written.
Rows leave this module as `Job` records, never as dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from mpr_cli import db

Connection = psycopg.Connection[Any]


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Job:
    """One `transcode_jobs` row; the fields in the table's column order (which `to_json` keeps).
    `master_provisional` is only known from `list_recent` (None otherwise): the job's master was
    registered by `mpr transcode KEY` and not yet checked by an import."""

    id: int
    asset_id: int | None
    source_bucket: str
    source_key: str
    preset: str
    output_bucket: str
    output_key: str
    status: JobStatus
    attempts: int
    max_attempts: int
    error: str | None
    stderr_tail: str | None
    progress: float
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    inventory_code: str
    media_type: str
    task_id: str | None = None  # the last Celery task sent for it (sql/011)
    dispatched_at: datetime | None = None
    master_provisional: bool | None = None

    @property
    def host(self) -> str:
        """The machine (or Celery node) of the worker that holds or last held it ("")."""
        return (self.worker or "").split(":", 1)[0]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """The job of a `SELECT j.*` row (columns this record does not know are ignored)."""
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["status"] = JobStatus(values["status"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The job as `mpr jobs list --json` prints it: every column but the stderr tail,
        times in ISO 8601."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "stderr_tail" or (f.name == "master_provisional" and value is None):
                continue
            out[f.name] = db.json_value(value)
        return out


@dataclass(frozen=True)
class ClaimScope:
    """Which jobs a process may claim: those of its own buckets, optionally only some ids or
    only sources under a prefix."""

    source_bucket: str
    output_bucket: str
    only_ids: list[int] | None = None
    prefix: str = ""

    def params(self, lease_s: float) -> dict[str, Any]:
        """The parameters of the claim predicate that `claim_job` and `count_claimable` share."""
        return {"lease": lease_s, "source_bucket": self.source_bucket,
                "output_bucket": self.output_bucket, "only_ids": self.only_ids,
                "prefix": like_prefix(self.prefix)}


@dataclass(frozen=True)
class Unstreamed:
    """A catalogued master in the input bucket with no streaming copy and no job to make one."""

    asset_id: int
    key: str


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching the keys that start with `prefix` (its wildcards escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _changed(conn: Connection, name: str, params: dict[str, Any]) -> bool:
    return conn.execute(db.query(name), params).rowcount > 0


# ---------------------------------------------------------------- state changes


def create(conn: Connection, *, asset_id: int | None, inventory_code: str, media_type: str,
           source_bucket: str, source_key: str, preset: str, output_bucket: str,
           output_key: str, max_attempts: int) -> int | None:
    """A PENDING job; None when a live job for the same source and preset exists."""
    params = {"asset_id": asset_id, "inventory_code": inventory_code, "media_type": media_type,
              "source_bucket": source_bucket, "source_key": source_key, "preset": preset,
              "output_bucket": output_bucket, "output_key": output_key,
              "max_attempts": max_attempts}
    row = conn.execute(db.query("create_job"), params).fetchone()
    return None if row is None else int(row["id"])


def claim(conn: Connection, worker: str, lease_s: float, scope: ClaimScope) -> Job | None:
    """One job claimed for `worker` (PROCESSING, one more attempt); first, stale jobs without
    an attempt left are FAILED. SKIP LOCKED: concurrent claimers never share a job."""
    params = scope.params(lease_s) | {"worker": worker}
    conn.execute(db.query("fail_exhausted_jobs"), params)
    row = conn.execute(db.query("claim_job"), params).fetchone()
    return None if row is None else Job.from_row(row)


def heartbeat(conn: Connection, job_id: int, worker: str, progress: float) -> bool:
    """The lease renewed with the job's progress; False: the job is no longer this worker's."""
    return _changed(conn, "heartbeat_job", {"id": job_id, "worker": worker,
                                            "progress": progress})


def complete(conn: Connection, job_id: int, worker: str, asset_id: int) -> bool:
    return _changed(conn, "complete_job", {"id": job_id, "worker": worker,
                                           "asset_id": asset_id})


def fail(conn: Connection, job_id: int, worker: str, error: str,
         stderr_tail: str | None) -> bool:
    return _changed(conn, "fail_job", {"id": job_id, "worker": worker, "error": error,
                                       "stderr_tail": stderr_tail})


def cancel(conn: Connection, job_id: int, reason: str | None) -> bool:
    """A PENDING or PROCESSING job CANCELLED (`reason`, when given, replaces its error)."""
    return _changed(conn, "cancel_job", {"id": job_id, "reason": reason})


def release(conn: Connection, job_id: int, worker: str, reason: str | None) -> bool:
    """This worker's PROCESSING job PENDING again, its attempt given back (reason: why)."""
    return _changed(conn, "release_job", {"id": job_id, "worker": worker, "reason": reason})


def retry(conn: Connection, job_id: int) -> bool:
    """A FAILED job PENDING again while it has an attempt left (`mpr jobs retry`)."""
    return _changed(conn, "retry_job", {"id": job_id})


def reuse_failed(conn: Connection, job_id: int, output_key: str) -> bool:
    """A FAILED job PENDING again, to `output_key`, while it has an attempt left
    (`mpr transcode KEY` after a failure: the attempt cap holds across runs)."""
    return _changed(conn, "reuse_failed_job", {"id": job_id, "output_key": output_key})


# ---------------------------------------------------------------- reads


def count_pending(conn: Connection, lease_s: float, scope: ClaimScope) -> int:
    """How many jobs `claim` would give this process now (the total of the progress bar)."""
    row = conn.execute(db.query("count_claimable"), scope.params(lease_s)).fetchone()
    return 0 if row is None else int(row["n"])


def get(conn: Connection, job_id: int) -> Job | None:
    row = conn.execute(db.query("get_job"), {"id": job_id}).fetchone()
    return None if row is None else Job.from_row(row)


def list_recent(conn: Connection, status: str | None, limit: int) -> list[Job]:
    """The newest jobs first, of one status or all, with `master_provisional` known."""
    rows = conn.execute(db.query("list_jobs"), {"status": status, "limit": limit}).fetchall()
    return [Job.from_row(row) for row in rows]


def newest_for(conn: Connection, source_bucket: str, source_key: str,
               preset: str) -> Job | None:
    """The newest job of a source and preset, whatever its status."""
    params = {"source_bucket": source_bucket, "source_key": source_key, "preset": preset}
    row = conn.execute(db.query("newest_job_for"), params).fetchone()
    return None if row is None else Job.from_row(row)


def abandoned_output_keys(conn: Connection, bucket: str, keys: list[str],
                          lease_s: float) -> set[str]:
    """Of these keys of an output bucket, those a job writes and no running job writes now."""
    params = {"bucket": bucket, "keys": keys, "lease": lease_s}
    return {r["output_key"] for r in conn.execute(db.query("abandoned_output_keys"), params)}


def unstreamed_masters(conn: Connection, bucket: str, prefix: str,
                       limit: int | None) -> list[Unstreamed]:
    """Masters under `prefix` that need a job: no streaming copy, no live and no FAILED job."""
    params = {"bucket": bucket, "prefix": like_prefix(prefix), "limit": limit}
    rows = conn.execute(db.query("assets_needing_streaming"), params).fetchall()
    return [Unstreamed(int(r["asset_id"]), r["key"]) for r in rows]


# ---------------------------------------------------------------- Celery dispatch (sql/011)


@dataclass(frozen=True)
class Claimable:
    """A job a claim would take now, and whether it needs a task sent to the broker."""

    id: int
    needs_task: bool


def claimable(conn: Connection, lease_s: float, visibility_s: float,
              scope: ClaimScope) -> list[Claimable]:
    """The jobs `claim` would give in this scope, oldest first (what a dispatch waits on)."""
    params = scope.params(lease_s) | {"visibility": visibility_s}
    return [Claimable(int(r["id"]), bool(r["needs_task"]))
            for r in conn.execute(db.query("claimable_jobs"), params)]


def mark_dispatched(conn: Connection, job_id: int, task_id: str, sent_at: datetime) -> bool:
    return _changed(conn, "mark_dispatched", {"id": job_id, "task_id": task_id,
                                              "sent_at": sent_at})


def requeue_stale(conn: Connection, lease_s: float, scope: ClaimScope) -> tuple[list[int],
                                                                                list[int]]:
    """Celery jobs of this scope whose worker died: those with an attempt left PENDING again
    (to be sent again), those without FAILED. Returns (requeued ids, failed ids)."""
    params = scope.params(lease_s)
    failed = [int(r["id"]) for r in conn.execute(db.query("fail_exhausted_jobs"), params)]
    requeued = [int(r["id"]) for r in conn.execute(db.query("requeue_stale_jobs"), params)]
    return requeued, failed


def by_ids(conn: Connection, ids: list[int]) -> list[Job]:
    return [Job.from_row(r) for r in conn.execute(db.query("jobs_by_ids"), {"ids": ids})]


@dataclass(frozen=True)
class WorkerJobs:
    """A live worker as the job table sees it: its running jobs and its last heartbeat."""

    worker: str
    job_ids: list[int]
    last_heartbeat: datetime


def running_by_worker(conn: Connection, lease_s: float) -> list[WorkerJobs]:
    rows = conn.execute(db.query("running_by_worker"), {"lease": lease_s})
    return [WorkerJobs(r["worker"], list(r["job_ids"]), r["last_heartbeat"]) for r in rows]
