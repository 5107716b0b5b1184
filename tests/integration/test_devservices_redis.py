"""`mpr dev up|down|status` and the local Redis (the Celery broker), run as a user would.

One set of dev services per module (PostgreSQL, SeaweedFS, Redis under a temporary `.mpr`);
every test leaves them up, so the tests do not depend on their order.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from mpr_cli.dev.devservices import port_open
from tests.integration.archive import mpr_argv

pytestmark = pytest.mark.integration

SYSTEM_REDIS_PORT = 6379


@dataclass
class Dev:
    """A folder with its `.mpr` (services) and `.env`, and `mpr dev ...` run in it."""

    cwd: Path

    @property
    def env_file(self) -> Path:
        return self.cwd / ".env"

    @property
    def state_file(self) -> Path:
        return self.cwd / ".mpr" / "services.json"

    def run(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "CELERY_"))}
        if path is not None:
            env["PATH"] = path
        return subprocess.run(mpr_argv("dev", *args), cwd=self.cwd, env=env, text=True,
                              capture_output=True, timeout=180, check=False)

    def settings(self) -> dict[str, str]:
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def broker_url(self) -> str:
        return self.settings()["CELERY_BROKER_URL"]


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    # not under pytest's 0700 basetemp: the postgres user (when run as root) must reach .mpr/pg
    folder = Dev(Path(tempfile.mkdtemp(prefix="mpr-test-dev-")))
    folder.cwd.chmod(0o755)
    try:
        started = folder.run("up")
        assert started.returncode == 0, started.stderr
        yield folder
    finally:
        folder.run("down")
        shutil.rmtree(folder.cwd, ignore_errors=True)


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def redis_pid(url: str) -> int:
    return int(client(url).info("server")["process_id"])


def test_up_starts_redis_on_loopback_with_a_password_and_writes_its_url(dev: Dev) -> None:
    url = urlsplit(dev.broker_url())

    assert (url.scheme, url.hostname, url.path) == ("redis", "127.0.0.1", "/0")
    assert url.port and url.port != SYSTEM_REDIS_PORT and url.password
    assert client(dev.broker_url()).ping()
    assert client(dev.broker_url()).config_get("bind") == {"bind": "127.0.0.1"}
    with socket.socket() as other_address:  # bound to 127.0.0.1 only, not the whole 127/8
        assert other_address.connect_ex(("127.0.0.2", url.port)) != 0
    with pytest.raises(redis.AuthenticationError):
        client(f"redis://127.0.0.1:{url.port}/0").ping()
    assert mode(dev.cwd / ".mpr" / "redis" / "redis.conf") == 0o600  # the password is in it


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_second_up_keeps_the_running_redis_and_the_other_settings(dev: Dev) -> None:
    url, pid = dev.broker_url(), redis_pid(dev.broker_url())
    with dev.env_file.open("a") as env_file:
        env_file.write("MPR_EXECUTOR=celery\n")

    again = dev.run("up")

    assert again.returncode == 0, again.stderr
    assert f"Redis       127.0.0.1:{urlsplit(url).port}" in again.stdout
    assert urlsplit(url).password not in again.stdout + again.stderr
    assert dev.broker_url() == url and redis_pid(url) == pid
    assert dev.settings()["MPR_EXECUTOR"] == "celery"


def test_status_shows_redis_running(dev: Dev) -> None:
    shown = dev.run("status")

    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "redis       running" in shown.stdout.splitlines()


def test_down_stops_redis_and_queued_tasks_survive_a_restart(dev: Dev) -> None:
    url = dev.broker_url()
    port = urlsplit(url).port
    assert port
    client(url).lpush("celery", json.dumps({"job_id": 42}))  # a task waiting in Celery's queue

    assert dev.run("down").returncode == 0
    assert not port_open(port)
    stopped = dev.run("status")
    assert stopped.returncode == 1 and "redis       stopped" in stopped.stdout.splitlines()

    assert dev.run("up").returncode == 0
    assert dev.broker_url() == url
    assert client(url).lrange("celery", 0, -1) == [b'{"job_id": 42}']


def test_a_state_file_from_before_redis_starts_redis(dev: Dev) -> None:
    assert dev.run("down").returncode == 0
    state = json.loads(dev.state_file.read_text())
    old = {k: v for k, v in state.items() if not k.startswith("redis_")}
    dev.state_file.write_text(json.dumps(old))

    started = dev.run("up")

    assert started.returncode == 0, started.stderr
    assert json.loads(dev.state_file.read_text())["redis_port"] == urlsplit(dev.broker_url()).port
    assert client(dev.broker_url()).ping()
    assert dev.run("status").returncode == 0


def test_a_missing_redis_server_is_one_line_naming_the_package(dev: Dev) -> None:
    assert dev.run("down").returncode == 0
    without = os.pathsep.join(folder for folder in os.environ["PATH"].split(os.pathsep)
                              if not (Path(folder) / "redis-server").exists())

    failed = dev.run("up", path=without)

    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "error: redis-server not found (apt-get install -y redis-server)"]
    assert dev.run("up").returncode == 0  # with redis-server found again: all up
