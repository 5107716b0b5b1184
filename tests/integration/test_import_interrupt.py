"""An import stopped mid-way (SIGTERM, or killed outright) leaves a consistent
catalogue, records the run as aborted, and a re-run completes the work without duplicates.

The archive is larger (32 small assets) and the import inserts every 2 assets
(MPR_BATCH_ASSETS) on 2 workers. The test holds one asset in the middle of the archive in an
open transaction (`held_asset`), so the import waits there with its earlier batches committed
and its later assets not inserted, however fast the machine is, until the test acts.
"""

from __future__ import annotations

import json
import signal

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import (
    assert_rows_match_files,
    assert_whole_assets,
    duplicate_keys,
    expected_keys,
    held_asset,
    middle_code,
    parse_run,
    row_counts,
    runs,
    start_import,
    wait_until_waiting_on_a_lock,
)
from tests.integration.processes import reaped
from tests.integration.proxy import forwarder

pytestmark = pytest.mark.integration


def assert_complete(database_url: str, archive: SampleArchive) -> None:
    codes = set(archive.assets_ok)
    assert assert_whole_assets(database_url, archive) == codes
    assert_rows_match_files(database_url, archive, codes)
    assert duplicate_keys(database_url) == []
    assert row_counts(database_url)["asset_files"] == len(expected_keys(archive, codes))


def test_terminated_import_rolls_back_its_batch_and_a_rerun_completes(
        big_archive, upload, service_env, database_url, run_mpr, tmp_path):
    upload(big_archive.root)
    proc = start_import(service_env, tmp_path / "cwd")
    with reaped(proc):
        with held_asset(database_url, middle_code(big_archive)):
            wait_until_waiting_on_a_lock(proc, database_url)
            proc.send_signal(signal.SIGTERM)  # what cron, systemd and kill send
        # released: the batch waiting on the held asset ends, then the import stops
        stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    written = json.loads(stdout)  # --report - is written even for an interrupted run
    assert (written["status"], written["command"]) == ("aborted", "import")
    [run] = runs(database_url)
    assert written["run_id"] == run["id"]
    assert (run["status"], run["mode"]) == ("aborted", "normal")
    assert run["finished_at"] is not None
    assert run["report"]["message"].startswith("interrupted")
    done = assert_whole_assets(database_url, big_archive)
    assert 0 < len(done) < len(big_archive.assets_ok)
    counts = row_counts(database_url)
    assert (run["counts"]["inserted_assets"], run["counts"]["inserted_files"]) == (
        counts["assets"], counts["asset_files"])  # the rolled-back batch is not counted

    rerun = parse_run(run_mpr("import", "--report", "-"))
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.report["problems"] == []
    assert rerun.counts["skipped"] == counts["asset_files"]
    assert rerun.counts["inserted_assets"] == len(big_archive.assets_ok) - len(done)
    assert_complete(database_url, big_archive)
    assert [r["status"] for r in runs(database_url)] == ["aborted", "completed"]


def test_killed_import_is_marked_aborted_by_the_next_run(big_archive, upload, service_env,
                                                         database_url, run_mpr, tmp_path):
    upload(big_archive.root)
    proc = start_import(service_env, tmp_path / "cwd")
    with reaped(proc), held_asset(database_url, middle_code(big_archive)):
        wait_until_waiting_on_a_lock(proc, database_url)
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [r["status"] for r in runs(database_url)] == ["running"]
    done = assert_whole_assets(database_url, big_archive)
    assert 0 < len(done) < len(big_archive.assets_ok)

    rerun = parse_run(run_mpr("import", "--report", "-"))
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.counts["inserted_assets"] == len(big_archive.assets_ok) - len(done)
    assert_complete(database_url, big_archive)
    killed, completed = runs(database_url)
    assert (killed["status"], completed["status"]) == ("aborted", "completed")
    assert killed["finished_at"] is not None
    assert "without recording" in killed["report"]["message"]


def test_s3_lost_mid_import_is_exit_4_and_the_run_failed(big_archive, upload, service_env,
                                                         services, database_url, run_mpr,
                                                         tmp_path):
    """S3 goes away while phase 3 runs (held on the middle asset, then its forwarder cut):
    after retries the import stops with exit 4 and its run recorded failed, never a pile of
    per-file errors; the batches already in stay whole and a re-run completes the work."""
    upload(big_archive.root)
    with forwarder(services.s3_endpoint) as s3:
        through = {**service_env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}"}
        proc = start_import(through, tmp_path / "cwd")
        with reaped(proc):
            with held_asset(database_url, middle_code(big_archive)):
                wait_until_waiting_on_a_lock(proc, database_url)
                s3.cut()
            stdout, stderr = proc.communicate(timeout=300)

    assert proc.returncode == 4, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0] == stderr.strip().splitlines()[-1], stderr
    assert errors[0].startswith("error: S3 unreachable at http://127.0.0.1:"), stderr
    written = json.loads(stdout)
    assert written["status"] == "failed"
    assert [p for p in written["problems"] if p["reason"] == "fetch_failed"] == []
    [run] = runs(database_url)
    assert run["status"] == "failed" and run["report"]["message"].startswith("S3 unreachable")
    done = assert_whole_assets(database_url, big_archive)
    assert 0 < len(done) < len(big_archive.assets_ok)

    rerun = parse_run(run_mpr("import", "--report", "-"))
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(database_url, big_archive)
