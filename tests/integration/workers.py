"""`mpr worker` processes as the Celery tests run them: started in a session of their own
with a short job lease, their log in a file, found and killed with all their descendants."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.archive import mpr_argv, mpr_env
from tests.integration.processes import descendants, wait_for

# a dead worker's job runs again after LEASE_S; the reapers look every LEASE_S / 4
FAST_LEASE = {"MPR_JOB_LEASE_SECONDS": "4", "MPR_JOB_HEARTBEAT_SECONDS": "1"}


@dataclass
class Worker:
    """One `mpr worker` subprocess (concurrency 1 unless told) and its log file."""

    node: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tree(self) -> dict[int, str]:
        """Its pool processes and their ffmpeg."""
        return descendants(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL for the worker and everything it started (a machine lost)."""
        pids = [self.proc.pid, *self.tree()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_worker(service_env: dict[str, str], folder: Path, node: str,
                 concurrency: int = 1, **env: str) -> Worker:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{node.split('@')[0]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(mpr_argv("worker", "--concurrency", str(concurrency),
                                         "--hostname", node),
                                env=mpr_env(service_env, **FAST_LEASE, **env), cwd=folder,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Worker(node, proc, log)


def wait_ready(run_mpr: Any, env: dict[str, str], *workers: Worker) -> None:
    """Until `mpr workers` lists every one of them as answering the broker."""
    def answering() -> bool:
        done = run_mpr("workers", "--json", env=env)
        nodes = {row["node"] for row in json.loads(done.stdout or "[]")
                 if "broker" in row["seen_by"]}
        for worker in workers:
            assert worker.proc.poll() is None, f"{worker.node} ended:\n{worker.text()}"
        return {w.node for w in workers} <= nodes

    wait_for(answering, 120, "the workers to answer the broker")


@contextlib.contextmanager
def running_workers(service_env: dict[str, str], folder: Path,
                    *nodes: str) -> Iterator[list[Worker]]:
    """Workers that never outlive the test."""
    started = [start_worker(service_env, folder, node) for node in nodes]
    try:
        yield started
    finally:
        for worker in started:
            if worker.proc.poll() is None:
                worker.kill()
