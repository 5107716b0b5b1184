"""The local Redis (the Celery broker) of `mpr dev up` and the tests: redis-server on loopback.

Debian's redis-server (`apt-get install redis-server`), started by devservices.py as a detached
child on a free port, with a password. Its config file (mode 0600: the password is in it, never
on a command line other users can read) and its data live in `<home>/redis`. The data survive a
restart of the dev services: the append-only file (fsync every second, and in full at the
SIGTERM of `mpr dev down`) keeps the queued tasks; no RDB snapshots are taken. It never listens
on 6379 or beyond 127.0.0.1, so a system Redis (Debian starts one on 6379 when the package is
installed on a machine with systemd) is neither used nor disturbed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from mpr_cli.errors import ConfigError, MprError

REDIS_DB = 0
READY_SECONDS = 30
# what redis-server logs when its port is in use (it exits then)
_PORT_TAKEN = ("Address already in use",)


class PortTaken(MprError):
    """A port found free was taken before the server (Redis or SeaweedFS) could bind it."""


def binary() -> str:
    """The redis-server binary, or a one-line ConfigError naming the package to install."""
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError("redis-server not found", hint="apt-get install -y redis-server")
    return found


def broker_url(port: int, password: str) -> str:
    """CELERY_BROKER_URL for the local Redis (mpr masks the password wherever it shows it)."""
    return f"redis://:{password}@127.0.0.1:{port}/{REDIS_DB}"


def redis_dir(home: Path) -> Path:
    return home / "redis"


def _quoted(value: str) -> str:
    """A redis.conf argument in double quotes (paths may hold spaces)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(home: Path, port: int, password: str) -> Path:
    """Write `<home>/redis/redis.conf` (0600) for this port and password; return its path."""
    folder = redis_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    lines = [
        "bind 127.0.0.1", "protected-mode yes", f"port {port}", "daemonize no",
        "supervised no", f"dir {_quoted(str(folder))}", 'logfile ""',
        "appendonly yes", "appendfsync everysec", 'save ""',
        f"requirepass {_quoted(password)}",
    ]
    path = folder / "redis.conf"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


def argv(home: Path, port: int, password: str) -> list[str]:
    """The command line of the local Redis (its config written first)."""
    return [binary(), str(write_config(home, port, password))]


def answers(url: str) -> bool:
    """True when the Redis at ``url`` answers PING (with the password in the URL)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        with contextlib.suppress(redis.RedisError):
            client.close()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the Redis started as ``proc`` answers PING. Raises PortTaken when its port
    was in use, MprError when it exited for another reason or is not ready in 30 s."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-20_000:] if log.exists() else ""
            taken = any(sign in tail for sign in _PORT_TAKEN)
            raise (PortTaken if taken else MprError)("Redis exited at start", hint=f"see {log}")
        if answers(url):
            return
        time.sleep(0.01)
    raise MprError(f"Redis did not become ready in {READY_SECONDS} s", hint=f"see {log}")
