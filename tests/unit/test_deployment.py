"""Deployment files: scripts/install.sh, run for real into a staging folder (`--root DIR`: no
user is created and no owner changed) and as a dry run (the layout the cron and systemd files
expect, idempotent, a settings file never overwritten); docker-compose.yml, the Dockerfile and
.dockerignore read as text (no Docker engine here, and PyYAML is not a dependency)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install.sh"
CRON = REPO / "cron"

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@needs_bash
def test_the_layout_is_what_the_cron_and_systemd_files_expect(tmp_path: Path) -> None:
    result = install("--root", str(tmp_path))

    assert result.returncode == 0, result.stderr
    env_file = tmp_path / "etc/mpr/mpr.env"
    assert env_file.read_text() == (REPO / ".env.example").read_text()
    assert mode(env_file) == 0o600 and mode(env_file.parent) == 0o750
    assert mode(tmp_path / "var/log/mpr") == 0o750
    metrics = tmp_path / "var/lib/prometheus/node-exporter"
    assert mode(metrics) & 0o070 == 0o070  # the group mpr writes mpr.prom there
    # the paths the shipped cron and systemd files name are the ones created
    expected = ("/etc/mpr/mpr.env", "/var/log/mpr", "/var/lib/prometheus/node-exporter/mpr.prom")
    for unit in ("crontab.example", "mpr-nightly.service"):
        text = (CRON / unit).read_text()
        assert all(path in text for path in expected), unit


@needs_bash
def test_a_second_run_keeps_the_edited_settings_and_repairs_the_modes(tmp_path: Path) -> None:
    assert install("--root", str(tmp_path)).returncode == 0
    env_file = tmp_path / "etc/mpr/mpr.env"
    env_file.write_text("DB_PASSWORD=edited\n")
    env_file.chmod(0o644)

    again = install("--root", str(tmp_path))

    assert again.returncode == 0, again.stderr
    assert env_file.read_text() == "DB_PASSWORD=edited\n"
    assert mode(env_file) == 0o600
    assert "created" not in again.stdout


@needs_bash
def test_a_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    result = install("--dry-run", "--root", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert f"would run: cp {REPO}/.env.example {tmp_path}/etc/mpr/mpr.env" in result.stdout
    assert f"would run: chmod 0600 {tmp_path}/etc/mpr/mpr.env" in result.stdout


@needs_bash
@pytest.mark.parametrize(("args", "message"), [
    (("--root", "relative/dir"), "error: --root relative/dir: give an absolute path"),
    (("--root", "/no/such/folder"), "error: --root /no/such/folder: no such folder"),
    (("--frobnicate",), "error: unknown option --frobnicate (see scripts/install.sh --help)"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message) -> None:
    result = install(*args)

    assert result.returncode == 2
    assert result.stderr.strip() == message


# -- Docker ---------------------------------------------------------------------------------------


def compose_service(name: str) -> str:
    """The text of one service of docker-compose.yml (its indented block)."""
    text = (REPO / "docker-compose.yml").read_text()
    found = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n)+)", text, re.MULTILINE)
    assert found, f"no service {name} in docker-compose.yml"
    return found.group(1)


def test_every_image_is_pinned_to_a_release() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    images = re.findall(r"^\s*image:\s*(\S+)", compose, re.MULTILINE)
    froms = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert len(images) >= 3 and froms
    for image in images + froms:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{image} is not pinned to a release"
        assert re.search(r"\d", tag), f"{image}: a tag with a version, not a moving name"


def test_the_mpr_service_reads_the_settings_file_and_points_at_the_stack() -> None:
    mpr = compose_service("mpr")
    assert re.search(r"^    env_file:\n      - \.env$", mpr, re.MULTILINE), mpr
    for setting in ("S3_ENDPOINT_URL: http://minio:9000", "DB_HOST: postgres",
                    'DATABASE_URL: ""'):
        assert f"      {setting}\n" in mpr


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".mpr/", ".env", ".venv/", ".git/"} <= ignored


def block(service: str, key: str) -> str:
    """The lines of one key of a service block (the key line and the deeper ones below it)."""
    found = re.search(rf"^    {key}:.*\n(?:      .*\n)*", service, re.MULTILINE)
    assert found, f"no {key} in\n{service}"
    return found.group(0)


def test_redis_is_pinned_unpublished_password_protected_and_keeps_its_queue() -> None:
    redis = compose_service("redis")

    image = re.search(r"^    image: (\S+)$", redis, re.MULTILINE)
    assert image and re.fullmatch(r"redis:\d+\.\d+\.\d+-\w+", image.group(1)), redis
    assert "ports:" not in redis  # only the stack's containers reach it
    assert '"--requirepass", "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"' in redis
    assert '"--appendonly", "yes"' in redis and "      - redis-data:/data\n" in redis
    volumes = (REPO / "docker-compose.yml").read_text().split("\nvolumes:\n", 1)[1]
    assert "  redis-data:\n" in volumes


def test_the_worker_service_runs_mpr_worker_with_the_settings_and_services_of_mpr() -> None:
    worker, mpr = compose_service("worker"), compose_service("mpr")

    assert '    command: ["worker"]\n' in worker
    assert 'ENTRYPOINT ["mpr"]' in (REPO / "Dockerfile").read_text()
    assert "    build: .\n" in worker and "    build: .\n" in mpr  # the same image
    for key in ("env_file", "depends_on", "environment"):
        assert block(worker, key) == block(mpr, key), key
    assert "      redis:\n        condition: service_healthy\n" in block(worker, "depends_on")
    # `docker compose up --scale worker=4`: no fixed container name, no host port
    assert "container_name:" not in worker and "ports:" not in worker


def test_mpr_and_the_workers_reach_the_broker_with_its_password() -> None:
    url = "      CELERY_BROKER_URL: redis://:${REDIS_PASSWORD}@redis:6379/0\n"
    assert url in compose_service("mpr") and url in compose_service("worker")
    assert "REDIS_PASSWORD=" in (REPO / ".env.example").read_text().splitlines()


# -- scripts/bootstrap.sh --------------------------------------------------------------------------


def fake_checkout(tmp_path: Path) -> Path:
    """A copy of bootstrap.sh in a checkout whose .venv is already installed (no pip runs)."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap.sh", root / "scripts" / "bootstrap.sh")
    (root / "pyproject.toml").write_text("")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(shutil.which("python3") or "/bin/false")
    stamp = root / ".venv" / ".mpr-installed"
    stamp.touch()
    os.utime(root / "pyproject.toml", (1, 1))  # older than the stamp
    return root


def path_with_fake_apt(tmp_path: Path, *, redis_server: bool,
                       left_out: tuple[str, ...] = ()) -> str:
    """A PATH of the system's commands (redis-server left out when asked, and `left_out`)
    where apt-get and sudo are fakes: apt-get writes its arguments into apt.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "apt.log"}\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for fake in ("apt-get", "sudo"):
        (bin_dir / fake).chmod(0o755)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for command in Path(folder).glob("*") if Path(folder).is_dir() else ():
            target = bin_dir / command.name
            wanted = (command.name != "redis-server" or redis_server) \
                and command.name not in left_out
            if wanted and not target.exists() and not target.is_symlink():
                target.symlink_to(command)
    return str(bin_dir)


@needs_bash
@pytest.mark.parametrize("present", [False, True])
def test_bootstrap_installs_redis_server_only_when_it_is_missing(tmp_path: Path,
                                                                 present: bool) -> None:
    root = fake_checkout(tmp_path)
    env = {**os.environ, "PATH": path_with_fake_apt(tmp_path, redis_server=present)}

    result = subprocess.run(["bash", str(root / "scripts" / "bootstrap.sh")], env=env,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    log = tmp_path / "apt.log"
    installs = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    asked = {word for line in installs if "install" in line for word in line}
    assert ("redis-server" in asked) is not present, installs


@needs_bash
@pytest.mark.parametrize("for_tests", [False, True])
def test_bootstrap_installs_the_browser_only_for_the_tests(tmp_path: Path,
                                                          for_tests: bool) -> None:
    """The demo does not need chromium: only `bootstrap.sh --tests` (scripts/test.sh) asks
    for it and its driver when they are missing."""
    root = fake_checkout(tmp_path)
    env = {**os.environ, "PATH": path_with_fake_apt(tmp_path, redis_server=True,
                                                    left_out=("chromium", "chromedriver"))}

    result = subprocess.run(["bash", str(root / "scripts" / "bootstrap.sh"),
                             *(["--tests"] if for_tests else [])], env=env,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    log = tmp_path / "apt.log"
    asked = {word for line in (log.read_text().splitlines() if log.exists() else [])
             if "install" in line for word in line.split()}
    assert ({"chromium", "chromium-driver"} <= asked) is for_tests, asked
