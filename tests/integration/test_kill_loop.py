"""kill -9 at random points, then a re-run: nothing lost, nothing doubled, nothing left behind.

`mpr import` and `mpr transcode --pending` are started and killed with SIGKILL after a delay
drawn from a seeded random generator (the same points on every run of the suite), several
times in a row, each run continuing the work of the one killed before it. Whatever point a
kill lands on (listing, a batch in flight, a download, an encode, an upload, a status write),
what the test checks holds: the catalogue is consistent after each kill, and after the last
re-run the work is complete exactly once, with no temp folder, no unfinished upload and no
ffmpeg left. The checks do not depend on where the kill landed, so the test never races the
work it stops.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess

import psycopg
import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import (
    assert_rows_match_files,
    assert_whole_assets,
    duplicate_keys,
    expected_keys,
    mpr_argv,
    mpr_env,
    query,
    runs,
)
from tests.integration.processes import group_members, wait_for
from tests.integration.transcoding import (
    PENDING_CODES,
    build_awaiting_archive,
    leftover_workdirs,
    output_key,
    register_sample,
)

pytestmark = pytest.mark.integration


KILLS = 4
SEED = 20261201


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("kill") / "bucket", len(PENDING_CODES))


def kill_after(proc: subprocess.Popen[str], delay: float) -> None:
    """SIGKILL `proc` after `delay` seconds, or let it be if it ended first."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def test_import_killed_at_random_points_then_rerun_completes_once(big_archive, upload,
                                                                  service_env, database_url,
                                                                  run_mpr, tmp_path):
    upload(big_archive.root)
    rng = random.Random(SEED)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for _ in range(KILLS):
        proc = subprocess.Popen(mpr_argv("import"), cwd=cwd, text=True,
                                env=mpr_env(service_env, MPR_BATCH_ASSETS="2",
                                            MPR_IO_WORKERS="2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        kill_after(proc, rng.uniform(0.3, 4.0))
        # after any kill: only whole assets, no key twice
        assert_whole_assets(database_url, big_archive)
        assert duplicate_keys(database_url) == []

    rerun = run_mpr("import")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    codes = set(big_archive.assets_ok)
    assert assert_whole_assets(database_url, big_archive) == codes
    assert_rows_match_files(database_url, big_archive, codes)
    assert duplicate_keys(database_url) == []
    rows = query(database_url, "SELECT count(*) AS n FROM asset_files")[0]["n"]
    assert rows == len(expected_keys(big_archive, codes))
    statuses = [r["status"] for r in runs(database_url)]
    assert statuses[-1] == "completed" and "running" not in statuses, statuses


def age_leases(url: str) -> None:
    """What 120 s without a heartbeat would do: the killed run's jobs can be claimed again."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE transcode_jobs SET heartbeat_at = now() - interval '1 hour' "
                     "WHERE status = 'PROCESSING'")


def unfinished_uploads(cat) -> list[str]:
    found = cat.s3.list_multipart_uploads(Bucket=cat.bucket_out)
    return [u["Key"] for u in found.get("Uploads", [])]


def test_transcode_killed_at_random_points_then_rerun_completes_once(archive, cat, service_env,
                                                                     tmp_path, run_mpr):
    codes = PENDING_CODES[:4]
    register_sample(cat, archive, codes)
    rng = random.Random(SEED)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for _ in range(2):  # each job can die at most twice and still have an attempt left
        proc = subprocess.Popen(mpr_argv("transcode", "--pending", "--workers", "2"), cwd=cwd,
                                env=mpr_env(service_env), text=True, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        kill_after(proc, rng.uniform(0.5, 4.0))
        wait_for(lambda p=proc: not [n for n in group_members(p.pid) if n == "ffmpeg"], 30,
                 "the killed mpr's ffmpeg to die with it")
        age_leases(cat.url)

    rerun = run_mpr("transcode", "--pending", "--workers", "2")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert cat.streaming_per_asset() == dict.fromkeys(codes, 1)  # once each, never twice
    completed = [j for j in cat.jobs() if j["status"] == "COMPLETED"]
    assert sorted(j["inventory_code"] for j in completed) == sorted(codes)
    assert {j["status"] for j in cat.jobs()} == {"COMPLETED"}  # one job per master, done
    expected = {output_key(c) + suffix for c in codes for suffix in ("", ".md5", ".json")}
    assert cat.output_keys() == expected  # no partial object, nothing extra
    assert unfinished_uploads(cat) == []
    assert leftover_workdirs(service_env) == []
    for code in codes:  # each recorded copy is the object in the bucket
        [row] = cat.files(code, "streaming")
        assert row["etag"] == cat.head_out(row["key"])["ETag"].strip('"')
