"""The leases of claimed transcode jobs: one thread, one connection for a whole pool.

A job's lease is kept alive (`jobs.heartbeat`, with its progress) from its claim to its last
status write, also while it waits prepared for a free ffmpeg slot and while it is finished. A
job the catalogue no longer gives to this worker (`mpr jobs cancel`, a lease taken over) and,
on a stop, every job gets its cancel event set; a running ffmpeg stops at that event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.transcode import jobs
from mpr_cli.transcode.jobs import Connection


@dataclass
class Lease:
    """A claimed job's lease as the keeper sees it: its cancel event and last progress."""

    worker: str
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0


class Leases(threading.Thread):
    """The lease keeper of one pool (see the module docstring)."""

    def __init__(self, settings: Settings, every: float, stop_all: threading.Event,
                 on_error: Callable[[Exception], None]) -> None:
        super().__init__(daemon=True, name="job-leases")
        self.settings, self.every, self.stop_all, self.on_error = (settings, every, stop_all,
                                                                   on_error)
        self.live: dict[int, Lease] = {}
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def hold(self, job_id: int, worker: str) -> Lease:
        lease = Lease(worker)
        with self.lock:
            self.live[job_id] = lease
        return lease

    def drop(self, job_id: int) -> None:
        with self.lock:
            self.live.pop(job_id, None)

    def close(self) -> None:
        self.closed.set()
        self.join()

    def run(self) -> None:
        try:
            with db.connect(self.settings, autocommit=True) as conn:
                self._keep(conn)
        except Exception as exc:  # stop the pool; go on cancelling its jobs without the catalogue
            self.on_error(exc)
            self._keep(None)

    def _keep(self, conn: Connection | None) -> None:
        waited = 0.0
        while not self.closed.wait(0.2):
            with self.lock:
                leases = list(self.live.items())
            if self.stop_all.is_set():
                for _, lease in leases:
                    lease.cancel.set()
            waited += 0.2
            if waited >= self.every and conn is not None:
                waited = 0.0
                for job_id, lease in leases:
                    if not jobs.heartbeat(conn, job_id, lease.worker, lease.progress):
                        lease.cancel.set()
