"""Deployment files: scripts/install.sh, run for real into a staging folder (`--root DIR`: no
user is created and no owner changed) and as a dry run (the layout the cron and systemd files
expect, idempotent, a settings file never overwritten); docker-compose.yml, the Dockerfile and
.dockerignore read as text (no Docker engine here, and PyYAML is not a dependency)."""

from __future__ import annotations

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
