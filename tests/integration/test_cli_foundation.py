"""The foundation commands against the real services, run as a user runs them: the real
`mpr` script in a subprocess. What needs no server (help, usage and configuration errors, the
masked config) is in tests/unit/test_cli.py."""

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from mpr_cli.dev.devservices import free_port

pytestmark = pytest.mark.integration


def test_db_migrate_and_status_via_cli(run_mpr, service_env, empty_database_url):
    env = {**service_env, "DATABASE_URL": empty_database_url}
    status = run_mpr("db", "status", env=env)
    assert "pending  001_initial" in status.stdout
    first = run_mpr("db", "migrate", env=env)
    assert first.returncode == 0 and "applied 001_initial" in first.stdout
    second = run_mpr("db", "migrate", env=env)
    assert second.returncode == 0 and "up to date" in second.stdout
    assert "applied  001_initial" in run_mpr("db", "status", env=env).stdout


def test_doctor_passes_against_the_local_services(run_mpr):
    result = run_mpr("doctor")
    assert result.returncode == 0, result.stdout
    lines = result.stdout.strip().splitlines()
    assert all(line.startswith("✓") for line in lines)
    assert {line.split(":")[0][2:] for line in lines} == {
        "settings", "S3", "database", "broker", "ffmpeg", "mediainfo"}  # a broker configured
    s3_line = next(line for line in lines if line.startswith("✓ S3:"))
    # the test services are SeaweedFS, told by its Server header; path-style, as documented
    assert "; provider SeaweedFS (Server header 'SeaweedFS" in s3_line, s3_line
    assert s3_line.endswith("; addressing path, checksums when_required"), s3_line


def test_doctor_shows_s3_down_with_a_hint(run_mpr, service_env):
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_mpr("doctor", env={**service_env, "S3_ENDPOINT_URL": closed})
    assert result.returncode != 0
    s3_line = next(line for line in result.stdout.splitlines() if line.startswith("✗ S3"))
    assert closed in s3_line and "→" in s3_line
    assert any(line.startswith("✓ database") for line in result.stdout.splitlines())


def test_doctor_shows_the_broker_down_with_its_password_masked(run_mpr, service_env):
    closed = f"redis://:hunter22@127.0.0.1:{free_port()}/0"
    result = run_mpr("doctor", env={**service_env, "CELERY_BROKER_URL": closed})
    assert result.returncode != 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("✗ broker"))
    assert "CELERY_BROKER_URL" in line and "redis://:****@127.0.0.1" in line, line
    assert "hunter22" not in result.stdout + result.stderr
    local = {k: v for k, v in service_env.items() if k != "CELERY_BROKER_URL"}
    assert "broker" not in run_mpr("doctor", env=local).stdout  # the local pool needs none


def test_doctor_shows_unmigrated_database(run_mpr, service_env, empty_database_url):
    result = run_mpr("doctor", env={**service_env, "DATABASE_URL": empty_database_url})
    assert result.returncode != 0
    assert "✗ database" in result.stdout and "mpr db migrate" in result.stdout


def test_dev_up_is_idempotent_and_down_stops(run_mpr, service_env):
    home = Path(tempfile.mkdtemp(prefix="mpr-dev-test-"))
    env_file = home / "generated.env"
    try:
        first = run_mpr("dev", "up", "--home", str(home), "--env-out", str(env_file))
        assert first.returncode == 0, first.stderr
        second = run_mpr("dev", "up", "--home", str(home), "--env-out", str(env_file))
        assert second.returncode == 0 and second.stdout == first.stdout
        written = env_file.read_text()
        assert "DATABASE_URL=postgresql://" in written
        assert "S3_ENDPOINT_URL=http://127.0.0.1:" in written
        assert run_mpr("dev", "status", "--home", str(home)).returncode == 0
        run_mpr("--env-file", str(env_file), "db", "migrate", env={})
        doctor = run_mpr("--env-file", str(env_file), "doctor", env={})
        assert doctor.returncode == 0, doctor.stdout
    finally:
        run_mpr("dev", "down", "--home", str(home))
        stopped = run_mpr("dev", "status", "--home", str(home))
        shutil.rmtree(home, ignore_errors=True)
    assert stopped.returncode == 1
    assert "postgresql  stopped" in stopped.stdout and "s3          stopped" in stopped.stdout


def test_dev_up_moves_seaweedfs_to_new_ports_when_one_is_taken(run_mpr):
    """A port of the saved state is taken by another process when the services start again:
    SeaweedFS gets new ports instead of failing, and the state file says which."""
    home = Path(tempfile.mkdtemp(prefix="mpr-dev-test-"))
    try:
        assert run_mpr("dev", "up", "--home", str(home)).returncode == 0
        assert run_mpr("dev", "down", "--home", str(home)).returncode == 0
        before = json.loads((home / "services.json").read_text())["s3_ports"]
        with socket.create_server(("127.0.0.1", before["s3.port"])):  # someone else's now
            again = run_mpr("dev", "up", "--home", str(home))
        after = json.loads((home / "services.json").read_text())["s3_ports"]
        status = run_mpr("dev", "status", "--home", str(home))
    finally:
        run_mpr("dev", "down", "--home", str(home))
        shutil.rmtree(home, ignore_errors=True)

    assert again.returncode == 0, again.stderr
    assert after["s3.port"] != before["s3.port"]
    assert status.returncode == 0 and "s3          running" in status.stdout, status.stdout
