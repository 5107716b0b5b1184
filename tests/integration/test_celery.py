"""The celery executor with a real Redis, real `mpr worker` subprocesses and the real services.

Workers run with a 4 s job lease (a dead worker's job runs again 4 s after its last heartbeat);
a test that must act mid-encode holds the worker's ffmpeg with SIGSTOP (processes.HeldFfmpeg),
so nothing here depends on how fast the machine encodes.
"""

from __future__ import annotations

import json
import re

import pytest
import redis

from mpr_cli import db
from mpr_cli.dev import devservices
from mpr_cli.transcode import broker
from mpr_cli.transcode.dispatch import requeue_dead
from tests.integration.archive import keys_of, upload_tree
from tests.integration.processes import HeldFfmpeg, descendants, wait_for
from tests.integration.transcoding import (
    LONG_KEY,
    PENDING_CODES,
    build_awaiting_archive,
    create_pending_job,
    leftover_workdirs,
    put_catalogued,
)
from tests.integration.workers import FAST_LEASE, running_workers, wait_ready

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    return build_awaiting_archive(tmp_path_factory.mktemp("celery") / "bucket",
                                  len(PENDING_CODES))


@pytest.fixture()
def env(service_env: dict[str, str]) -> dict[str, str]:
    """What the dispatching `mpr` runs with: the workers' short lease too."""
    return {**service_env, **FAST_LEASE}


def one_streaming_copy_each(cat, codes: list[str]) -> None:
    assert cat.streaming_per_asset() == dict.fromkeys(codes, 1)


def no_partial_uploads(cat) -> None:
    uploads = cat.s3.list_multipart_uploads(Bucket=cat.bucket_out).get("Uploads", [])
    assert uploads == []


def test_two_workers_share_six_jobs_and_each_completes_once(archive, run_mpr, cat, env,
                                                            tmp_path):
    put_catalogued(run_mpr, cat, archive, PENDING_CODES)
    with running_workers(env, tmp_path / "w", "wa@test", "wb@test") as workers:
        wait_ready(run_mpr, env, *workers)

        done = run_mpr("transcode", "--pending", "--executor", "celery", env=env)

        assert done.returncode == 0, done.stdout + done.stderr
        assert f"transcode: {len(PENDING_CODES)} completed, 0 failed, 0 cancelled" in done.stdout
        jobs = cat.jobs()
        assert [(j["status"], j["attempts"]) for j in jobs] == [("COMPLETED", 1)] * 6
        # both workers took jobs (prefetch 1: neither reserves a job it cannot start)
        assert {j["worker"].split(":")[0] for j in jobs} == {"wa@test", "wb@test"}
        assert all(j["task_id"] and j["dispatched_at"] for j in jobs)
        one_streaming_copy_each(cat, PENDING_CODES)
        listed = run_mpr("jobs", "list", env=env).stdout
        assert "wa@test" in listed and "wb@test" in listed  # the worker host of each job

        again = run_mpr("transcode", "--pending", "--executor", "celery", env=env)
        assert again.returncode == 0 and "0 completed" in again.stdout  # nothing left to do
    assert leftover_workdirs(env) == []


def held_job(cat, worker, key: str = LONG_KEY) -> tuple[dict, HeldFfmpeg]:
    """The worker's ffmpeg held (SIGSTOP) once its job shows progress in the catalogue."""
    held = HeldFfmpeg(worker.proc, find=worker.tree).catch()

    def progressing():
        rows = cat.rows("SELECT * FROM transcode_jobs WHERE source_key = %s "
                        "AND status = 'PROCESSING' AND progress > 0", (key,))
        return rows[0] if rows else None

    return held.advance_until(progressing, "the job to show progress", look_s=3), held


def test_a_worker_killed_mid_encode_loses_nothing(long_master, run_mpr, cat, env, tmp_path):
    cat.s3.upload_file(str(long_master), cat.bucket_in, LONG_KEY)
    with running_workers(env, tmp_path / "w", "wa@test") as (first,):
        wait_ready(run_mpr, env, first)
        sent = run_mpr("transcode", LONG_KEY, "--executor", "celery", "--no-wait", "--json",
                       env=env)
        assert sent.returncode == 0, sent.stderr
        (job_id,) = json.loads(sent.stdout)["queued"]
        job, held = held_job(cat, first)
        assert job["id"] == job_id and job["worker"].startswith("wa@test:")

        with running_workers(env, tmp_path / "w", "wb@test") as (second,):
            wait_ready(run_mpr, env, second)
            first.kill()  # SIGKILL: the worker, its pool process and its ffmpeg

            row = wait_for(lambda: (r := cat.job(job_id))["status"] == "COMPLETED" and r,
                           240, "the job to complete on the other worker")
    assert row["attempts"] == 2 and row["worker"].startswith("wb@test:")
    one_streaming_copy_each(cat, ["VO-LNG-00001"])
    assert "wb@test" in second.text() and f"job {job_id} completed" in second.text()
    no_partial_uploads(cat)
    assert leftover_workdirs(env) == []  # the dead worker's temp folder removed too


def test_cancel_of_a_running_job_stops_its_ffmpeg(long_master, run_mpr, cat, env, tmp_path):
    cat.s3.upload_file(str(long_master), cat.bucket_in, LONG_KEY)
    with running_workers(env, tmp_path / "w", "wa@test") as (worker,):
        wait_ready(run_mpr, env, worker)
        sent = run_mpr("transcode", LONG_KEY, "--executor", "celery", "--no-wait", env=env)
        assert sent.returncode == 0 and "1 jobs queued" in sent.stdout, sent.stdout
        job, held = held_job(cat, worker)

        cancelled = run_mpr("jobs", "cancel", str(job["id"]), env=env)

        assert cancelled.returncode == 0, cancelled.stderr
        held.resume_once_signalled()  # the worker's lease keeper saw it: SIGTERM to ffmpeg
        wait_for(lambda: "ffmpeg" not in worker.tree().values(), 60, "ffmpeg to stop")
        wait_for(lambda: f"job {job['id']} cancelled" in worker.text(), 60,
                 "the worker to settle the job")
        assert worker.proc.poll() is None  # the worker goes on
    row = cat.job(job["id"])
    assert (row["status"], row["error"]) == ("CANCELLED", "cancelled by a user")
    assert cat.output_keys() == set()
    no_partial_uploads(cat)


def test_broker_down_is_exit_4_naming_the_setting_with_its_password_masked(
        archive, run_mpr, cat, env, tmp_path):
    put_catalogued(run_mpr, cat, archive, PENDING_CODES[:2])
    down = {**env, "CELERY_BROKER_URL": "redis://:s3cr3t-pw@127.0.0.1:1/0"}

    done = run_mpr("transcode", "--pending", "--executor", "celery", env=down)
    worker = run_mpr("worker", env=down)

    for run in (done, worker):
        assert run.returncode == 4, run.stdout + run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "CELERY_BROKER_URL" in lines[0], run.stderr
        assert "redis://:****@127.0.0.1:1/0" in lines[0]
        assert "s3cr3t-pw" not in run.stdout + run.stderr
    assert cat.jobs() == []  # checked before any job was created: none left PROCESSING
    unset = run_mpr("transcode", "--pending", "--executor", "celery",
                    env={k: v for k, v in env.items() if k != "CELERY_BROKER_URL"})
    assert unset.returncode == 2 and "CELERY_BROKER_URL is not set" in unset.stderr


def test_a_dead_workers_job_is_sent_again_or_failed_once_out_of_attempts(settings, cat,
                                                                         broker_url):
    fast = settings.model_copy(update={"job_lease_seconds": 4, "job_heartbeat_seconds": 1})
    again = create_pending_job(fast, "VO-NEW-00001", "FILE/VO-NEW-00001.mov", None)
    spent = create_pending_job(fast, "VO-NEW-00003", "FILE/VO-NEW-00003.mov", None)
    cat.rows("""UPDATE transcode_jobs SET status = 'PROCESSING', worker = 'gone@host:1:0',
                started_at = now() - interval '1 hour', heartbeat_at = now() - interval '1 hour',
                attempts = CASE WHEN id = %s THEN 1 ELSE max_attempts END,
                task_id = 'old', dispatched_at = now() - interval '1 hour'
                WHERE true RETURNING id""", (again,))
    app = broker.make_app(fast)

    with db.connect(fast, autocommit=True) as conn:
        sent = requeue_dead(conn, app, fast, fast.job_lease_seconds)

    assert sent == [again]
    retried, failed = cat.job(again), cat.job(spent)
    assert (retried["status"], retried["attempts"], retried["worker"]) == ("PENDING", 1, None)
    assert "gone@host" in retried["error"] and retried["task_id"] != "old"
    assert failed["status"] == "FAILED" and "died" in failed["error"]
    with redis.Redis.from_url(broker_url) as client:
        queued = [json.loads(m)["headers"] for m in client.lrange(broker.QUEUE, 0, -1)]
    assert [(h["task"], h["id"]) for h in queued] == [(broker.TASK_NAME, retried["task_id"])]


def test_nightly_with_the_celery_executor_reports_the_workers_jobs(archive, run_mpr, cat, env,
                                                                   tmp_path):
    codes = PENDING_CODES[:2]
    upload_tree(cat.s3, cat.bucket_in, archive.root, keys_of(archive, codes))
    report, metrics = tmp_path / "night.json", tmp_path / "night.prom"
    with running_workers(env, tmp_path / "w", "wa@test") as (worker,):
        wait_ready(run_mpr, env, worker)

        done = run_mpr("nightly", "--executor", "celery", "--report", str(report),
                       "--metrics-file", str(metrics), env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    night = json.loads(report.read_text())
    assert night["transcode"]["jobs"] == {"COMPLETED": 2}
    assert night["transcode"]["left_running"] == []
    assert re.search(r'^mpr_transcode_jobs\{status="COMPLETED"\} 2(\.0)?$', metrics.read_text(),
                     re.MULTILINE)
    assert all(j["worker"].startswith("wa@test:") for j in cat.jobs())
    one_streaming_copy_each(cat, codes)


def test_workers_lists_the_live_workers_and_their_running_job(long_master, run_mpr, cat, env,
                                                              tmp_path):
    cat.s3.upload_file(str(long_master), cat.bucket_in, LONG_KEY)
    with running_workers(env, tmp_path / "w", "wa@test") as (worker,):
        wait_ready(run_mpr, env, worker)
        run_mpr("transcode", LONG_KEY, "--executor", "celery", "--no-wait", env=env)
        job, held = held_job(cat, worker)

        listed = run_mpr("workers", env=env)

        assert listed.returncode == 0, listed.stderr
        assert re.search(rf"^wa@test concurrency 1: #{job['id']} \(broker and job table",
                         listed.stdout, re.MULTILINE), listed.stdout
        held.resume()
    assert "ffmpeg" not in descendants(worker.proc.pid).values()


def test_no_wait_needs_the_celery_executor(run_mpr, env):
    done = run_mpr("transcode", "--pending", "--no-wait", env=env)
    assert done.returncode == 2 and "--no-wait and --json need --executor celery" in done.stderr


def test_a_worker_that_cannot_reach_s3_puts_its_job_back_for_another(archive, run_mpr, cat,
                                                                     env, tmp_path):
    put_catalogued(run_mpr, cat, archive, PENDING_CODES[:1])
    blind = {**env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{devservices.free_port()}"}
    with running_workers(blind, tmp_path / "w", "blind@test") as (bad,):
        wait_ready(run_mpr, env, bad)
        sent = run_mpr("transcode", "--pending", "--executor", "celery", "--no-wait", env=env)
        assert sent.returncode == 0, sent.stderr

        wait_for(lambda: "trying again later" in bad.text(), 240, "the blind worker to fail")
        row = cat.jobs()[0]
        assert row["status"] in ("PENDING", "PROCESSING")  # never FAILED
        assert row["status"] == "PROCESSING" or row["error"].startswith("pending again")
        with running_workers(env, tmp_path / "w", "good@test") as (good,):
            done = wait_for(lambda: (r := cat.jobs()[0])["status"] == "COMPLETED" and r, 240,
                            "the job to complete on the worker that reaches S3")
    assert done["worker"].startswith("good@test:") and done["attempts"] == 1
    one_streaming_copy_each(cat, PENDING_CODES[:1])


def test_transcode_key_with_the_broker_down_creates_no_job(archive, run_mpr, cat, env):
    put_catalogued(run_mpr, cat, archive, PENDING_CODES[:1])
    down = {**env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{devservices.free_port()}/0"}

    done = run_mpr("transcode", "FILE/VO-NEW-00001.mov", "--executor", "celery", env=down)

    assert done.returncode == 4 and "CELERY_BROKER_URL" in done.stderr, done.stderr
    assert cat.jobs() == []
    json_only = run_mpr("transcode", "--pending", "--executor", "celery", "--json", env=env)
    assert json_only.returncode == 2 and "--json needs --no-wait" in json_only.stderr
