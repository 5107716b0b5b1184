"""cron/mpr-nightly.sh: two launches at once, the second skipped by the flock, the first done.
The first launcher's mpr is held on a table lock the test takes, so the runs overlap on any
machine.

The launcher runs the venv's real `mpr` with a generated settings file for this test's
PostgreSQL database and SeaweedFS buckets; its own environment carries none of those settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.archive import (
    clean_keys,
    held_transaction,
    nightly_sample,
    query,
    runs,
    wait_until_waiting_on_a_lock,
)
from tests.integration.processes import reaped

pytestmark = pytest.mark.integration

LAUNCHER = Path(__file__).resolve().parents[2] / "cron" / "mpr-nightly.sh"
SETTING_PREFIXES = ("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_", "SMTP_")


def write_env_file(path: Path, settings: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in settings.items()),
                    encoding="utf-8")
    path.chmod(0o600)
    return path


def launcher_env(tmp_path: Path, env_file: Path) -> dict[str, str]:
    mpr = Path(sys.executable).parent / "mpr"
    assert mpr.is_file(), mpr
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    return {**base, "MPR_BIN": str(mpr), "MPR_ENV_FILE": str(env_file),
            "MPR_LOG_DIR": str(tmp_path / "logs"), "MPR_LOCK_FILE": str(tmp_path / "nightly.lock")}


def launch(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", str(LAUNCHER)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def logs(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("nightly-*.log")))


def test_second_launcher_skips_while_first_runs(tmp_path_factory, upload, service_env,
                                                database_url, tmp_path) -> None:
    archive = nightly_sample(tmp_path_factory)
    upload(archive.root, clean_keys(archive, awaiting=False))
    env = launcher_env(tmp_path, write_env_file(tmp_path / "mpr.env", service_env))
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    first = launch(env, cwd)
    with reaped(first):
        # the first launcher's mpr waits on the catalogue until the test lets it go on, so the
        # second launches while the first holds the flock however fast the machine is
        with held_transaction(database_url, "LOCK TABLE import_runs IN ACCESS EXCLUSIVE MODE"):
            wait_until_waiting_on_a_lock(first, database_url)
            assert f"started (pid {first.pid})" in logs(tmp_path)
            second = launch(env, cwd)
            out2, err2 = second.communicate(timeout=60)
            first_still_running = first.poll() is None
        out1, err1 = first.communicate(timeout=300)

    log = logs(tmp_path)
    assert first_still_running, "the runs did not overlap"
    assert second.returncode == 0, (out2, err2)
    assert "previous run still active" in out2 and err2 == ""
    assert first.returncode == 0, (out1, err1, log)
    assert "previous run still active" in log
    assert f"started (pid {first.pid})" in log and f"started (pid {second.pid})" not in log
    assert "mpr nightly: finished with exit code 0" in log
    assert "nightly run " in log and "finished: exit code 0" in log  # mpr's own log lines
    recorded = runs(database_url)
    assert [(r["command"], r["mode"], r["status"]) for r in recorded] == [
        ("nightly", "normal", "completed")]
    files = query(database_url, "SELECT count(*) AS n FROM asset_files")[0]["n"]
    assert recorded[0]["counts"]["inserted_files"] == files >= len(clean_keys(archive,
                                                                               awaiting=False))
