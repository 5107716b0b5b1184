"""The broker side of distributed transcoding: the Celery app both ends build from the
settings, sending one task per job, and revoking a job's task.

The job table stays the truth (transcode/jobs.py): a task carries only its job's id, and the
worker that receives it claims the job with the same compare-and-set as the local pool. So the
app is set for at-least-once delivery and lets the job table make it exactly-once:

- `task_acks_late` + `task_reject_on_worker_lost`: a task is acknowledged when its job is
  settled; a pool process killed under it (SIGKILL, the OOM killer) gives it back to the queue.
- `worker_prefetch_multiplier = 1`: a worker reserves no job it cannot start, so a queue of
  long encodes spreads over every worker.
- the broker's `visibility_timeout` (MPR_CELERY_VISIBILITY_TIMEOUT, default a day) is longer
  than the longest job: Redis gives a task no worker acknowledged to another one only then. A
  whole worker killed leaves its job PROCESSING without heartbeats; every worker and waiting
  dispatcher puts such a job PENDING again once its lease expired and sends a new task
  (`transcode/dispatch.requeue_dead`), so nobody waits for the visibility timeout.
- no result backend: a job's outcome is its row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from mpr_cli.config import Settings
from mpr_cli.errors import ConfigError, MprError
from mpr_cli.secrets import mask_url, scrub_first_line

TASK_NAME = "mpr.transcode_job"
QUEUE = "mpr-transcode"
_CONNECT_TIMEOUT_S = 5.0


class BrokerUnavailable(MprError):
    """The broker cannot be reached (exit 4: infrastructure)."""


def broker_url(settings: Settings) -> str:
    """CELERY_BROKER_URL, or a configuration error (exit 2) naming it."""
    if settings.celery_broker_url is None:
        raise ConfigError("CELERY_BROKER_URL is not set: the celery executor and `mpr worker` "
                          "need a Redis broker",
                          hint="set CELERY_BROKER_URL=redis://HOST:6379/0 in .env "
                               "(`mpr dev up` writes a local one), or use --executor local")
    url = settings.celery_broker_url.get_secret_value()
    if not url.startswith(("redis://", "rediss://", "redis+socket://")):
        raise ConfigError(f"CELERY_BROKER_URL must be a Redis URL, not {mask_url(url)}",
                          hint="write redis://[:PASSWORD@]HOST:PORT/DB")
    return url


def make_app(settings: Settings) -> Celery:
    """The Celery app of this process (not the global default app)."""
    app = Celery("mpr", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout,
                                  "socket_connect_timeout": _CONNECT_TIMEOUT_S},
        broker_connection_timeout=_CONNECT_TIMEOUT_S,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_publish_retry=False,  # a broker that goes away mid-dispatch is exit 4 at once
        worker_send_task_events=True,  # what Flower and `celery events` show
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
    )
    return app


def unavailable(settings: Settings, exc: BaseException) -> BrokerUnavailable:
    """The one line for a broker that failed: which URL (its password masked), why, the fix."""
    url = settings.celery_broker_url.get_secret_value() if settings.celery_broker_url else ""
    why = scrub_first_line(str(exc) or type(exc).__name__, settings.secret_values())
    return BrokerUnavailable(f"cannot reach the Celery broker {mask_url(url)} "
                             f"(CELERY_BROKER_URL): {why}",
                             hint="start Redis (mpr dev up) or fix CELERY_BROKER_URL")


def check_broker(app: Celery, settings: Settings) -> None:
    """Raise BrokerUnavailable unless the broker answers now (before any job is sent)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2,
                                   timeout=_CONNECT_TIMEOUT_S)
            conn.default_channel.client.ping()
    except Exception as exc:  # kombu and redis-py raise many kinds; all mean the same here
        raise unavailable(settings, exc) from None


def send_jobs(app: Celery, settings: Settings,
              job_ids: Iterable[int]) -> list[tuple[int, str, datetime]]:
    """One task per job over one connection; returns (job id, task id, when it was sent) in
    sending order."""
    sent: list[tuple[int, str, datetime]] = []
    try:
        with app.producer_or_acquire() as producer:
            for job_id in job_ids:
                task_id = str(uuid.uuid4())
                app.send_task(TASK_NAME, args=[job_id], task_id=task_id, queue=QUEUE,
                              producer=producer)
                sent.append((job_id, task_id, datetime.now(UTC)))
    except Exception as exc:  # the broker went away mid-way: the unsent jobs stay PENDING
        raise unavailable(settings, exc) from None
    return sent


def revoke(app: Celery, task_id: str) -> bool:
    """Ask every worker to drop a task it has not started; False when the broker is away
    (the job table's cancel stands anyway: a task of a CANCELLED job does nothing)."""
    try:
        app.control.revoke(task_id)
    except Exception:  # best effort: the catalogue is the truth
        return False
    return True


def inspect_workers(app: Celery, timeout: float = 1.0) -> dict[str, dict[str, Any]]:
    """Live workers by node name, with their pool size and active task ids, from Celery's
    inspect API ({} when none answers within `timeout` or the broker is away)."""
    try:
        inspect = app.control.inspect(timeout=timeout)
        stats = inspect.stats() or {}
        active = inspect.active() or {}
    except Exception:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for node, info in stats.items():
        pool = info.get("pool", {}) if isinstance(info, dict) else {}
        tasks = active.get(node, [])
        out[node] = {"concurrency": pool.get("max-concurrency"), "pid": info.get("pid"),
                     "active": [t.get("args", [None])[0] for t in tasks]}
    return out
