"""The local services every benchmark runs on: PostgreSQL, SeaweedFS and Redis started by
mpr_cli.dev.devservices under a temporary folder, a scratch folder beside it, both removed and
the services stopped however the benchmark ends."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mpr_cli.dev import devservices


@dataclass(frozen=True)
class LocalServices:
    home: Path  # the services' data and logs
    work: Path  # the benchmark's scratch folder
    state: devservices.ServiceState
    up_s: float  # how long starting them took


@contextmanager
def local_services(log: Callable[[str], None], *,
                   prefix: str = "mpr-bench") -> Iterator[LocalServices]:
    """Started services and a scratch folder; stopped and removed at the end, even on failure."""
    home = Path(tempfile.mkdtemp(prefix=f"{prefix}-services-"))
    home.chmod(0o755)  # PostgreSQL runs as another user and must reach its folder
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-work-"))
    try:
        log(f"starting PostgreSQL, SeaweedFS and Redis under {home}")
        started = time.perf_counter()
        state = devservices.up(home)
        yield LocalServices(home, work, state, round(time.perf_counter() - started, 3))
    finally:
        log("stopping the services")
        devservices.down(home)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
