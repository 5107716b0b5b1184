"""Transcode jobs as a user and cron drive them: `mpr transcode --pending`, `mpr jobs ...`,
failures, retries, cancels (Ctrl-C, SIGTERM, `mpr jobs cancel` from another process), two
concurrent runs and a stale lease. The real script runs in subprocesses against real
PostgreSQL, SeaweedFS and ffmpeg.

Short masters come from the sample archive (2 s, 320x240); the cancel tests use a 60 s
640x360 master made at test time and hold its ffmpeg with SIGSTOP (tests/integration/
processes.py), so they act mid-encode however fast the machine is (the heartbeat that records
progress comes every 5 s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import upload_tree
from tests.integration.processes import HeldFfmpeg, group_members, wait_for
from tests.integration.transcoding import (
    AUDIO_CODE,
    CORRUPT_CODE,
    CORRUPT_KEY,
    HEARTBEAT_S,
    LONG_CODE,
    LONG_KEY,
    PENDING_CODES,
    VIDEO_CODE,
    Catalogue,
    build_awaiting_archive,
    completed_ids,
    create_pending_job,
    jobs_json,
    leftover_workdirs,
    master_key,
    output_key,
    put_catalogued,
    register_master,
    register_sample,
    start_long_job,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("jobs") / "bucket",
                                  len(PENDING_CODES))


# -- --pending -----------------------------------------------------------------------------------


def test_pending_transcodes_every_catalogued_master(archive, run_mpr, cat, service_env):
    put_catalogued(run_mpr, cat, archive, PENDING_CODES)

    done = run_mpr("transcode", "--pending", "--workers", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(PENDING_CODES)} completed, 0 failed, 0 cancelled" in done.stdout
    listed = jobs_json(run_mpr)
    assert sorted(j["source_key"] for j in listed) == sorted(map(master_key, PENDING_CODES))
    assert {(j["status"], j["attempts"], j["progress"]) for j in listed} == {
        ("COMPLETED", 1, 100)}
    assert sorted(completed_ids(done.stdout)) == sorted(j["id"] for j in listed)
    started = [int(n) for n in re.findall(r"^job (\d+) started", done.stdout, re.MULTILINE)]
    assert sorted(started) == sorted(j["id"] for j in listed)  # each one started exactly once
    assert {j["preset"] for j in listed if j["media_type"] == "video"} == {"web-720p"}
    assert {j["preset"] for j in listed if j["media_type"] == "audio"} == {"audio-mp3-192"}
    assert cat.streaming_per_asset() == dict.fromkeys(PENDING_CODES, 1)
    assert cat.output_keys() == {output_key(c) + suffix for c in PENDING_CODES
                                 for suffix in ("", ".md5", ".json")}
    assert leftover_workdirs(service_env) == []

    again = run_mpr("transcode", "--pending")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 completed, 0 failed, 0 cancelled" in again.stdout
    assert len(cat.jobs()) == len(PENDING_CODES)


def test_corrupt_master_fails_its_own_job_while_the_others_complete(archive, run_mpr, cat,
                                                                    service_env):
    register_sample(cat, archive, [VIDEO_CODE, AUDIO_CODE])
    register_master(cat, CORRUPT_CODE, CORRUPT_KEY, os.urandom(200_000))

    done = run_mpr("transcode", "--pending", "--workers", "2", "--verbose")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 completed, 1 failed, 0 cancelled" in done.stdout
    jobs = {j["source_key"]: j for j in cat.jobs()}
    bad = jobs.pop(CORRUPT_KEY)
    assert (bad["status"], bad["attempts"]) == ("FAILED", 1)
    assert bad["error"] and CORRUPT_CODE in bad["error"]
    assert bad["stderr_tail"] and "Invalid data" in bad["stderr_tail"]
    assert bad["finished_at"] is not None
    assert f"job {bad['id']} failed" in done.stdout
    assert {(j["status"], j["attempts"]) for j in jobs.values()} == {("COMPLETED", 1)}
    assert not [k for k in cat.output_keys() if k.startswith(f"FILE/{CORRUPT_CODE}")]
    assert cat.files(CORRUPT_CODE, "streaming") == []
    assert leftover_workdirs(service_env) == []

    # the next nightly does not try the broken master again: it waits for `mpr jobs retry`
    again = run_mpr("transcode", "--pending")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 completed, 0 failed, 0 cancelled" in again.stdout
    assert len(cat.jobs()) == 3


def test_retry_puts_a_failed_job_back_until_max_attempts(run_mpr, cat):
    register_master(cat, CORRUPT_CODE, CORRUPT_KEY, os.urandom(50_000))
    assert run_mpr("transcode", "--pending").returncode == 1
    [job] = cat.jobs()
    assert (job["status"], job["attempts"], job["max_attempts"]) == ("FAILED", 1, 3)

    for attempt in (2, 3):
        retried = run_mpr("jobs", "retry", str(job["id"]))
        assert retried.returncode == 0, retried.stderr
        back = cat.job(job["id"])
        assert (back["status"], back["attempts"]) == ("PENDING", attempt - 1)
        assert back["worker"] is None and back["finished_at"] is None

        rerun = run_mpr("transcode", "--pending")

        assert rerun.returncode == 1, rerun.stdout + rerun.stderr
        assert [j["id"] for j in cat.jobs()] == [job["id"]]  # the same job, no new one
        assert (cat.job(job["id"])["status"], cat.job(job["id"])["attempts"]) == ("FAILED",
                                                                                  attempt)

    refused = run_mpr("jobs", "retry", str(job["id"]))

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "all 3 attempts" in " ".join(refused.stderr.split())
    assert (cat.job(job["id"])["status"], cat.job(job["id"])["attempts"]) == ("FAILED", 3)


def test_cancel_a_pending_job_and_list_jobs(archive, run_mpr, cat, settings):
    upload_tree(cat.s3, cat.bucket_in, archive.root, [master_key(VIDEO_CODE)])
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), None)

    done = run_mpr("jobs", "cancel", str(job_id))

    assert done.returncode == 0, done.stderr
    assert f"job {job_id} cancelled" in done.stdout
    job = cat.job(job_id)
    assert job["status"] == "CANCELLED" and job["finished_at"] is not None
    assert (job["attempts"], job["error"]) == (0, "cancelled by a user")
    assert run_mpr("transcode", "--pending").returncode == 0  # a cancelled job is not run
    assert cat.job(job_id)["status"] == "CANCELLED" and cat.output_keys() == set()
    again = run_mpr("jobs", "cancel", str(job_id))
    assert again.returncode == 2 and "not pending or processing" in again.stderr

    second = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), None)
    every = jobs_json(run_mpr)
    pending = json.loads(run_mpr("jobs", "list", "--json", "--status", "pending").stdout)

    assert [(j["id"], j["status"]) for j in every] == [(second, "PENDING"),
                                                       (job_id, "CANCELLED")]
    assert [j["id"] for j in pending] == [second]
    assert all("stderr_tail" not in j for j in every)
    assert re.match(r"\d{4}-\d\d-\d\dT", every[0]["created_at"])


# -- cancelling a running job --------------------------------------------------------------------


def assert_nothing_left(cat: Catalogue, service_env: dict[str, str], job_id: int,
                        proc: subprocess.Popen[str]) -> None:
    """The job CANCELLED; no output, no record, no temp folder, no process left behind."""
    job = cat.job(job_id)
    out_key = output_key(LONG_CODE)
    problems = [
        f"job is {job['status']}, not CANCELLED" if job["status"] != "CANCELLED" else "",
        "job has no finished_at" if job["finished_at"] is None else "",
        f"uploaded: {sorted(cat.output_keys())}" if cat.output_keys() else "",
        f"recorded: {cat.files(LONG_CODE)}" if cat.files(LONG_CODE) else "",
        f"temp folders left: {leftover_workdirs(service_env)}"
        if leftover_workdirs(service_env) else "",
        f"still running: {group_members(proc.pid)}" if group_members(proc.pid) else "",
    ]
    assert not [p for p in problems if p], "; ".join(p for p in problems if p)
    assert not {out_key, out_key + ".md5", out_key + ".json"} & cat.output_keys()


@pytest.mark.parametrize("signum", [
    pytest.param(signal.SIGINT, id="ctrl-c-to-the-process-group"),  # as a terminal sends it
    pytest.param(signal.SIGTERM, id="sigterm-to-mpr"),  # as `kill PID` sends it
])
def test_interrupt_mid_job_cancels_it_and_leaves_nothing(signum, long_master, cat, popen_mpr,
                                                         service_env):
    proc, job, held = start_long_job(long_master, cat, popen_mpr)

    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    held.resume_once_signalled()
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, (out, err)
    assert_nothing_left(cat, service_env, job["id"], proc)


def test_jobs_cancel_from_another_process_stops_the_running_ffmpeg(long_master, cat, popen_mpr,
                                                                   run_mpr, service_env):
    proc, job, held = start_long_job(long_master, cat, popen_mpr)

    cancelled = run_mpr("jobs", "cancel", str(job["id"]))

    assert cancelled.returncode == 0, cancelled.stderr
    held.resume_once_signalled(timeout=4 * HEARTBEAT_S)  # mpr sees it at its next heartbeat
    wait_for(lambda: "ffmpeg" not in group_members(proc.pid), 4 * HEARTBEAT_S,
             "ffmpeg to stop after `mpr jobs cancel`")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    # stopped mid-encode (not finished, uploaded and then removed again)
    assert f"job {job['id']} cancelled: {LONG_KEY}: cancelled" in " ".join(out.split())
    assert cat.job(job["id"])["error"] == "cancelled by a user"
    assert_nothing_left(cat, service_env, job["id"], proc)


# -- a job claimed ahead -------------------------------------------------------------------------

AHEAD_CODES = [LONG_CODE, "VO-LNG-00002"]  # claimed in this order (created in code order)


def start_with_one_ahead(long_master: Path, cat: Catalogue, popen_mpr,
                         service_env: dict[str, str]) -> tuple[subprocess.Popen[str],
                                                                dict[str, Any], dict[str, Any],
                                                                HeldFfmpeg]:
    """`mpr transcode --pending --workers 1` over two catalogued long masters, once the first
    job encodes (PROCESSING, progress > 0; its ffmpeg held with SIGSTOP) while the second,
    claimed ahead, waits with its master downloaded into its temp folder."""
    data = long_master.read_bytes()
    for code in AHEAD_CODES:
        register_master(cat, code, f"FILE/{code}.mov", data)
    proc = popen_mpr("transcode", "--pending", "--workers", "1")
    held = HeldFfmpeg(proc).catch()

    def running() -> list[dict[str, Any]] | None:
        rows = cat.rows("SELECT * FROM transcode_jobs WHERE status = 'PROCESSING' ORDER BY id")
        return rows if len(rows) == 2 and rows[0]["progress"] > 0 else None

    first, ahead = held.advance_until(running, "one job encoding and one claimed ahead")
    temp = Path(service_env["MPR_TEMP_DIR"])
    wait_for(lambda: list(temp.glob(f"mpr-transcode-*/in/{ahead['source_key']}")), 60,
             "the job claimed ahead to have its master downloaded", proc)
    assert (first["source_key"], ahead["source_key"]) == tuple(master_key(c) for c in AHEAD_CODES)
    assert ahead["progress"] == 0 and "ffmpeg" in group_members(proc.pid)
    return proc, first, ahead, held


def test_ctrl_c_cancels_the_running_job_and_puts_the_one_claimed_ahead_back(
        long_master, cat, popen_mpr, run_mpr, service_env):
    proc, first, ahead, held = start_with_one_ahead(long_master, cat, popen_mpr, service_env)

    os.killpg(proc.pid, signal.SIGINT)
    held.resume_once_signalled()
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, (out, err)
    assert "0 completed, 0 failed, 1 cancelled; 1 not started, pending again" in " ".join(
        out.split()), out
    assert f"job {ahead['id']} " not in out  # never announced: it never started
    cancelled, back = cat.job(first["id"]), cat.job(ahead["id"])
    assert (cancelled["status"], cancelled["attempts"]) == ("CANCELLED", 1)
    assert (back["status"], back["attempts"], back["worker"], back["started_at"],
            back["heartbeat_at"], back["progress"]) == ("PENDING", 0, None, None, None, 0)
    assert cat.output_keys() == set() and leftover_workdirs(service_env) == []
    assert group_members(proc.pid) == []

    again = run_mpr("transcode", "--pending")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 completed, 0 failed, 0 cancelled" in again.stdout
    jobs = cat.jobs()
    assert [(j["id"], j["status"]) for j in jobs[:2]] == [(first["id"], "CANCELLED"),
                                                          (ahead["id"], "COMPLETED")]
    assert [(j["source_key"], j["status"], j["attempts"]) for j in jobs[2:]] == [
        (first["source_key"], "COMPLETED", 1)]  # a new job for the cancelled one's master
    assert cat.job(ahead["id"])["attempts"] == 1
    assert sorted(completed_ids(again.stdout)) == [ahead["id"], jobs[2]["id"]]
    assert cat.streaming_per_asset() == dict.fromkeys(AHEAD_CODES, 1)
    assert cat.output_keys() == {output_key(c) + suffix for c in AHEAD_CODES
                                 for suffix in ("", ".md5", ".json")}
    assert leftover_workdirs(service_env) == []


def wait_for_heartbeats_after_cancel(cat: Catalogue, running_id: int, cancelled_id: int) -> None:
    """Until the lease keeper has heartbeaten the running job twice since `cancelled_id` was
    cancelled: the keeper heartbeats every lease of the pool in turn, in one thread, so by
    then it has also found `cancelled_id` no longer its own, whatever their order."""
    [cancelled_at] = [r["finished_at"] for r in cat.rows(
        "SELECT finished_at FROM transcode_jobs WHERE id = %s", (cancelled_id,))]
    seen: list[Any] = []

    def beats() -> bool:
        [beat] = [r["heartbeat_at"] for r in cat.rows(
            "SELECT heartbeat_at FROM transcode_jobs WHERE id = %s", (running_id,))]
        if beat > cancelled_at and beat not in seen:
            seen.append(beat)
        return len(seen) >= 2

    wait_for(beats, 6 * HEARTBEAT_S, "two heartbeats after the cancel")


def test_jobs_cancel_of_the_job_claimed_ahead_while_the_other_completes(
        long_master, cat, popen_mpr, run_mpr, service_env):
    proc, first, ahead, held = start_with_one_ahead(long_master, cat, popen_mpr, service_env)

    cancelled = run_mpr("jobs", "cancel", str(ahead["id"]))
    wait_for_heartbeats_after_cancel(cat, first["id"], ahead["id"])
    held.resume()
    out, err = proc.communicate(timeout=240)

    assert cancelled.returncode == 0, cancelled.stderr
    assert proc.returncode == 130, (out, err)
    assert "1 completed, 0 failed, 1 cancelled" in out, out
    assert completed_ids(out) == [first["id"]]
    job = cat.job(ahead["id"])
    assert (job["status"], job["error"]) == ("CANCELLED", "cancelled by a user")
    assert cat.output_keys() == {output_key(LONG_CODE) + suffix
                                 for suffix in ("", ".md5", ".json")}
    assert cat.streaming_per_asset() == {LONG_CODE: 1, AHEAD_CODES[1]: 0}
    assert leftover_workdirs(service_env) == [] and group_members(proc.pid) == []


def test_lost_database_stops_every_worker_leaving_no_temp_folder_or_output(
        long_master, cat, popen_mpr, service_env):
    proc, first, ahead, held = start_with_one_ahead(long_master, cat, popen_mpr, service_env)

    with psycopg.connect(cat.url, autocommit=True) as conn:  # the catalogue goes away
        conn.execute("""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                        WHERE datname = current_database() AND application_name = 'mpr'""")
    held.resume_once_signalled()
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 4, (out, err)
    assert "database connection lost" in " ".join(err.split()), err
    assert len(err.strip().splitlines()) == 1, err
    assert cat.output_keys() == set() and leftover_workdirs(service_env) == []
    assert group_members(proc.pid) == []
    # nothing could be written: both stay PROCESSING until their lease runs out, then the
    # next run takes them again (test_processing_job_with_a_stale_heartbeat_is_claimed_again)
    assert {j["status"] for j in cat.jobs()} == {"PROCESSING"}


# -- concurrency and leases ----------------------------------------------------------------------


def test_two_concurrent_pending_runs_never_share_a_job(archive, cat, popen_mpr):
    register_sample(cat, archive, PENDING_CODES)

    procs = [popen_mpr("transcode", "--pending", "--workers", "2") for _ in range(2)]
    outputs = [proc.communicate(timeout=240) for proc in procs]

    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out, err)
    done = [completed_ids(out) for out, _ in outputs]
    union = done[0] + done[1]
    assert len(union) == len(set(union)), f"a job completed twice: {done}"
    jobs = cat.jobs()
    assert sorted(union) == [j["id"] for j in jobs]
    assert {(j["status"], j["attempts"]) for j in jobs} == {("COMPLETED", 1)}
    assert sorted(j["inventory_code"] for j in jobs) == sorted(PENDING_CODES)  # one per asset
    assert cat.streaming_per_asset() == dict.fromkeys(PENDING_CODES, 1)


def test_processing_job_with_a_stale_heartbeat_is_claimed_again(archive, run_mpr, cat,
                                                                settings):
    asset_id = register_master(cat, VIDEO_CODE, master_key(VIDEO_CODE),
                               (archive.root / master_key(VIDEO_CODE)).read_bytes())
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)
    with psycopg.connect(cat.url, autocommit=True) as conn:  # a worker took it, then died
        conn.execute("""UPDATE transcode_jobs SET status = 'PROCESSING', attempts = 1,
                        worker = 'gone:4242:0', started_at = now(), heartbeat_at = now(),
                        progress = 37 WHERE id = %s""", (job_id,))

    fresh = run_mpr("transcode", "--pending")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "0 completed" in fresh.stdout
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["worker"]) == ("PROCESSING", 1, "gone:4242:0")
    assert [j["id"] for j in cat.jobs()] == [job_id]

    with psycopg.connect(cat.url, autocommit=True) as conn:
        conn.execute("UPDATE transcode_jobs SET heartbeat_at = now() - interval '1 hour' "
                     "WHERE id = %s", (job_id,))

    stale = run_mpr("transcode", "--pending")

    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert completed_ids(stale.stdout) == [job_id]
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["progress"]) == ("COMPLETED", 2, 100)
    assert job["worker"] != "gone:4242:0"
    assert [j["id"] for j in cat.jobs()] == [job_id]
    assert cat.streaming_per_asset() == {VIDEO_CODE: 1}

