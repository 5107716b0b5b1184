"""What a transcode may be trusted with: the attempt cap, the buckets recorded on a job, the
objects an output may (never) replace, infrastructure failures that are not the file's, and
what a dead worker leaves behind. The real script runs in subprocesses against real
PostgreSQL, SeaweedFS and ffmpeg; work that must be caught in the middle is held
(tests/integration/processes.py HeldFfmpeg), never raced.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import psycopg
import pytest

from mpr_cli import db
from mpr_cli.dev.sample import SampleArchive
from mpr_cli.transcode import jobs
from tests.integration.archive import mpr_argv, mpr_env
from tests.integration.processes import HeldFfmpeg, group_members, reaped, wait_for
from tests.integration.proxy import forwarder
from tests.integration.transcoding import (
    AUDIO_CODE,
    LONG_CODE,
    LONG_KEY,
    VIDEO_CODE,
    build_awaiting_archive,
    completed_ids,
    create_pending_job,
    leftover_workdirs,
    master_key,
    output_key,
    register_master,
    start_long_job,
)

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("trust") / "bucket", 2)


@pytest.fixture()
def other_buckets(bucket_pairs) -> tuple[str, str]:
    """A second pair of buckets, for a process configured for other buckets."""
    return bucket_pairs("in2", "out2")


def keys_in(s3, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def sample_master(cat, archive: SampleArchive, code: str = VIDEO_CODE) -> int:
    key = master_key(code)
    return register_master(cat, code, key, (archive.root / key).read_bytes())


# -- 1. the attempt cap holds for a worker that died ---------------------------------------------


def test_stale_job_that_used_every_attempt_is_failed_not_claimed_again(archive, run_mpr, cat,
                                                                       settings):
    asset_id = sample_master(cat, archive)
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)
    with psycopg.connect(cat.url, autocommit=True) as conn:  # its third worker died
        conn.execute("""UPDATE transcode_jobs SET status = 'PROCESSING', attempts = 3,
                        worker = 'gone:4242:0', started_at = now(),
                        heartbeat_at = now() - interval '1 hour', progress = 37
                        WHERE id = %s""", (job_id,))

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 completed, 0 failed, 0 cancelled" in done.stdout
    job = cat.job(job_id)
    assert (job["status"], job["attempts"]) == ("FAILED", 3)
    assert job["error"] == "its worker (gone:4242:0) died during attempt 3 of 3"
    assert job["finished_at"] is not None
    assert [j["id"] for j in cat.jobs()] == [job_id]  # and no new job for its master
    assert cat.output_keys() == set() and cat.files(VIDEO_CODE, "streaming") == []
    refused = run_mpr("jobs", "retry", str(job_id))
    assert refused.returncode == 2 and "all 3 attempts" in " ".join(refused.stderr.split())


# -- 2. a job runs with the buckets recorded on it -----------------------------------------------


def test_a_process_claims_only_the_jobs_of_its_own_buckets(archive, run_mpr, cat, settings,
                                                           service_env, other_buckets):
    asset_id = sample_master(cat, archive)
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)
    other_in, other_out = other_buckets
    cat.s3.put_object(Bucket=other_in, Key=master_key(VIDEO_CODE), Body=b"not this master")
    elsewhere = {**service_env, "S3_BUCKET_IN": other_in, "S3_BUCKET_OUT": other_out}

    other = run_mpr("transcode", "--pending", env=elsewhere)

    assert other.returncode == 0, other.stdout + other.stderr
    assert "0 completed, 0 failed, 0 cancelled" in other.stdout
    job = cat.job(job_id)
    assert (job["status"], job["attempts"]) == ("PENDING", 0)
    assert keys_in(cat.s3, other_out) == set()

    own = run_mpr("transcode", "--pending")

    assert own.returncode == 0, own.stdout + own.stderr
    assert completed_ids(own.stdout) == [job_id]
    out_key = output_key(VIDEO_CODE)
    assert cat.output_keys() == {out_key, out_key + ".md5", out_key + ".json"}
    [row] = cat.files(VIDEO_CODE, "streaming")
    assert (row["bucket"], row["key"]) == (cat.bucket_out, out_key)
    assert keys_in(cat.s3, other_out) == set()


# -- 3. outputs never overwrite what they must not -----------------------------------------------

OTHER_CODE = "VO-NEW-00003"  # a second video asset, made of the first one's master


def one_line(done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return " ".join(done.stderr.split())


@pytest.mark.parametrize(("out_key", "why"), [
    ("/FILE/VO-NEW-00001.mp4", "must not start with '/'"),
    ("FILE/../VO-NEW-00001.mp4", "'..'"),
    ("FILE/VO-NEW-00001.mov", "must end in .mp4"),
    ("FILE/VO-NEW-00003.mp4", "must name the asset"),  # another asset's streaming copy
])
def test_output_key_is_checked_like_any_key(out_key, why, archive, run_mpr, cat):
    sample_master(cat, archive)

    done = run_mpr("transcode", master_key(VIDEO_CODE), "--output-key", out_key)

    assert done.returncode == 2, done.stdout + done.stderr
    assert why in one_line(done) and f"--output-key {out_key!r}" in one_line(done)
    assert cat.jobs() == [] and cat.output_keys() == set()


def test_an_output_never_replaces_an_object_of_the_input_bucket(archive, run_mpr, cat,
                                                                 service_env, settings):
    sample_master(cat, archive)
    key, out_key = master_key(VIDEO_CODE), output_key(VIDEO_CODE)
    cat.s3.put_object(Bucket=cat.bucket_in, Key=out_key, Body=b"an archive file, not ours")
    same = {**service_env, "S3_BUCKET_OUT": cat.bucket_in}

    refused = run_mpr("transcode", key, env=same)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (f"s3://{cat.bucket_in}/{out_key} is an object of the input bucket that mpr did not "
            "make") in one_line(refused)
    assert cat.jobs() == []

    # a job written before these checks (or by hand) whose output is the master itself
    with db.connect(settings, autocommit=True) as conn:
        job_id = jobs.create(conn, asset_id=None, inventory_code=VIDEO_CODE,
                             media_type="video", source_bucket=cat.bucket_in, source_key=key,
                             preset="web-720p", output_bucket=cat.bucket_in, output_key=key,
                             max_attempts=3)
    master_before = cat.s3.head_object(Bucket=cat.bucket_in, Key=key)["ETag"]

    done = run_mpr("transcode", "--pending", env=same)

    assert done.returncode == 1, done.stdout + done.stderr
    job = cat.job(job_id)
    assert job["status"] == "FAILED" and "is the master itself" in job["error"]
    assert cat.s3.head_object(Bucket=cat.bucket_in, Key=key)["ETag"] == master_before
    assert keys_in(cat.s3, cat.bucket_in) == {key, out_key}
    assert cat.files(VIDEO_CODE, "streaming") == []


def test_a_job_never_replaces_another_assets_file(archive, run_mpr, cat, settings):
    sample_master(cat, archive)
    assert run_mpr("transcode", master_key(VIDEO_CODE)).returncode == 0
    theirs = output_key(VIDEO_CODE)
    before = (cat.head_out(theirs)["ETag"], cat.files(VIDEO_CODE))
    other_id = register_master(cat, OTHER_CODE, master_key(OTHER_CODE),
                               (archive.root / master_key(VIDEO_CODE)).read_bytes())
    with db.connect(settings, autocommit=True) as conn:  # a job made before --output-key checks
        job_id = jobs.create(conn, asset_id=other_id, inventory_code=OTHER_CODE,
                             media_type="video", source_bucket=cat.bucket_in,
                             source_key=master_key(OTHER_CODE), preset="web-720p",
                             output_bucket=cat.bucket_out, output_key=theirs, max_attempts=3)

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 1, done.stdout + done.stderr
    job = cat.job(job_id)
    assert job["status"] == "FAILED"
    assert f"is catalogued as the streaming file of {VIDEO_CODE}" in job["error"]
    assert (cat.head_out(theirs)["ETag"], cat.files(VIDEO_CODE)) == before
    assert cat.files(OTHER_CODE, "streaming") == []


def test_a_delivered_streaming_copy_is_kept_unless_forced_then_replaced_not_doubled(
        archive, run_mpr, cat):
    asset_id = sample_master(cat, archive)
    delivered = output_key(VIDEO_CODE)
    cat.s3.put_object(Bucket=cat.bucket_in, Key=delivered, Body=b"a delivered copy")
    etag = cat.s3.head_object(Bucket=cat.bucket_in, Key=delivered)["ETag"].strip('"')
    with psycopg.connect(cat.url, autocommit=True) as conn:
        conn.execute("""INSERT INTO asset_files (asset_id, bucket, key, role, size, etag)
                        VALUES (%s, %s, %s, 'streaming', 16, %s)""",
                     (asset_id, cat.bucket_in, delivered, etag))

    kept = run_mpr("transcode", master_key(VIDEO_CODE))

    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert (f"already has a delivered streaming copy: s3://{cat.bucket_in}/{delivered}; nothing "
            "to do (use --force to replace it)") in " ".join(kept.stdout.split())
    assert cat.jobs() == [] and cat.output_keys() == set()

    forced = run_mpr("transcode", master_key(VIDEO_CODE), "--force")

    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert len(completed_ids(forced.stdout)) == 1
    [row] = cat.files(VIDEO_CODE, "streaming")
    assert (row["bucket"], row["key"], row["preset"]) == (cat.bucket_out, delivered, "web-720p")
    assert row["etag"] == cat.head_out(delivered)["ETag"].strip('"')
    assert cat.s3.get_object(Bucket=cat.bucket_in, Key=delivered)["Body"].read() == (
        b"a delivered copy")

    again = run_mpr("transcode", master_key(VIDEO_CODE), "--force")

    assert again.returncode == 0, again.stdout + again.stderr
    assert len(cat.files(VIDEO_CODE, "streaming")) == 1
    with psycopg.connect(cat.url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("""INSERT INTO asset_files (asset_id, bucket, key, role, size)
                        VALUES (%s, %s, 'FILE/x.mp4', 'streaming', 1)""",
                     (asset_id, cat.bucket_out))


# -- 4. infrastructure failures are not file failures --------------------------------------------


def test_an_unusable_temp_folder_is_exit_2_before_any_job(archive, run_mpr, cat, settings,
                                                          service_env, tmp_path):
    asset_id = sample_master(cat, archive)
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)
    (tmp_path / "a-file").write_text("not a folder")
    broken = {**service_env, "MPR_TEMP_DIR": str(tmp_path / "a-file" / "tmp")}

    for args in (("--pending",), (master_key(VIDEO_CODE), "--force")):
        done = run_mpr("transcode", *args, env=broken)

        assert done.returncode == 2, done.stdout + done.stderr
        assert "cannot make a temp folder in" in one_line(done)
        assert "MPR_TEMP_DIR" in one_line(done)
        assert [(j["id"], j["status"], j["attempts"]) for j in cat.jobs()] == [
            (job_id, "PENDING", 0)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_job_that_s3_fails_is_pending_again_with_the_reason(archive, run_mpr, cat, settings,
                                                              service_env):
    asset_id = sample_master(cat, archive)
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)
    s3_down = {**service_env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}

    done = run_mpr("transcode", "--pending", env=s3_down)

    assert done.returncode == 4, done.stdout + done.stderr
    assert "S3 unreachable" in one_line(done)
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["worker"]) == ("PENDING", 0, None)
    assert job["error"].startswith("pending again: S3 unreachable at")
    assert leftover_workdirs(service_env) == []

    again = run_mpr("transcode", "--pending")

    assert again.returncode == 0, again.stdout + again.stderr
    assert completed_ids(again.stdout) == [job_id]
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("COMPLETED", 1, None)


def test_a_master_missing_from_its_bucket_fails_its_own_job(run_mpr, cat, settings):
    with psycopg.connect(cat.url, autocommit=True) as conn:  # catalogued, then removed
        asset_id = conn.execute("INSERT INTO assets (inventory_code, media_type) "
                                "VALUES (%s, 'video') RETURNING id", (VIDEO_CODE,)).fetchone()[0]
    job_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE), asset_id)

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 1, done.stdout + done.stderr
    job = cat.job(job_id)
    assert (job["status"], job["attempts"]) == ("FAILED", 1)
    assert f"s3://{cat.bucket_in}/{master_key(VIDEO_CODE)} does not exist" in job["error"]


# -- 5. nothing left behind by a dead worker -----------------------------------------------------


def test_kill_9_of_mpr_takes_its_ffmpeg_along_and_the_next_run_removes_its_temp_folder(
        long_master, cat, popen_mpr, run_mpr, service_env):
    proc, job, held = start_long_job(long_master, cat, popen_mpr)
    [work] = leftover_workdirs(service_env)

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    wait_for(lambda: group_members(proc.pid) == [], 10, "ffmpeg to die with mpr")
    assert leftover_workdirs(service_env) == [work]  # what the dead process left

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 left by dead workers removed" in done.stdout
    assert leftover_workdirs(service_env) == []
    assert cat.job(job["id"])["status"] == "PROCESSING"  # its lease has not run out yet


def uploads_in(s3, bucket: str) -> set[str]:
    return {u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}


def test_unfinished_uploads_of_jobs_that_no_longer_run_are_aborted(archive, run_mpr, cat,
                                                                   settings):
    dead_id = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE),
                                 sample_master(cat, archive))
    live_id = create_pending_job(settings, OTHER_CODE, master_key(OTHER_CODE), None)
    with psycopg.connect(cat.url, autocommit=True) as conn:
        conn.execute("""UPDATE transcode_jobs SET status = 'PROCESSING', attempts = 3,
                        worker = 'gone:4242:0', started_at = now(),
                        heartbeat_at = now() - interval '1 hour' WHERE id = %s""", (dead_id,))
        conn.execute("""UPDATE transcode_jobs SET status = 'PROCESSING', attempts = 1,
                        worker = 'elsewhere:77:0', started_at = now(), heartbeat_at = now()
                        WHERE id = %s""", (live_id,))
    for key in (output_key(VIDEO_CODE), output_key(OTHER_CODE), "FILE/not-a-job.mp4"):
        cat.s3.create_multipart_upload(Bucket=cat.bucket_out, Key=key)

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 left by dead workers removed" in done.stdout
    assert uploads_in(cat.s3, cat.bucket_out) == {output_key(OTHER_CODE), "FILE/not-a-job.mp4"}
    assert cat.job(dead_id)["status"] == "FAILED" and cat.job(live_id)["status"] == "PROCESSING"


# -- 6. retried jobs and the attempt cap ---------------------------------------------------------


def test_pending_with_a_prefix_also_runs_the_pending_jobs_under_it(archive, run_mpr, cat,
                                                                    settings):
    video = create_pending_job(settings, VIDEO_CODE, master_key(VIDEO_CODE),
                               sample_master(cat, archive))
    audio_key = master_key(AUDIO_CODE)
    cat.s3.put_object(Bucket=cat.bucket_in, Key=audio_key,
                      Body=(archive.root / audio_key).read_bytes())
    with db.connect(settings, autocommit=True) as conn:  # e.g. `mpr jobs retry`, outside FILE/
        audio = jobs.create(conn, asset_id=None, inventory_code=AUDIO_CODE, media_type="audio",
                            source_bucket=cat.bucket_in, source_key=audio_key,
                            preset="audio-mp3-192", output_bucket=cat.bucket_out,
                            output_key=output_key(AUDIO_CODE), max_attempts=3)

    done = run_mpr("transcode", "--pending", "--prefix", "FILE/")

    assert done.returncode == 0, done.stdout + done.stderr
    assert completed_ids(done.stdout) == [video]
    assert (cat.job(audio)["status"], cat.job(audio)["attempts"]) == ("PENDING", 0)


def test_transcode_key_after_a_failure_reuses_the_failed_job_up_to_its_last_attempt(run_mpr,
                                                                                   cat):
    key = "FILE/VO-CRP-00001.mov"
    cat.s3.put_object(Bucket=cat.bucket_in, Key=key, Body=os.urandom(50_000))

    for attempt in (1, 2, 3):
        done = run_mpr("transcode", key)

        assert done.returncode == 1, done.stdout + done.stderr
        [job] = cat.jobs()
        assert (job["status"], job["attempts"]) == ("FAILED", attempt)

    refused = run_mpr("transcode", key)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"{key} failed all 3 attempts with web-720p (job {job['id']}:" in one_line(refused)
    assert [(j["id"], j["status"], j["attempts"]) for j in cat.jobs()] == [
        (job["id"], "FAILED", 3)]


def test_s3_lost_while_ffmpeg_encodes_puts_the_job_back_to_pending(long_master, cat, settings,
                                                                   service_env, services,
                                                                   run_mpr, tmp_path):
    """S3 goes away mid-job: the master is downloaded and ffmpeg encodes (held with SIGSTOP
    while the test cuts the S3 forwarder, then let go). The upload fails after its retries:
    the job is PENDING again with the reason, the run exits 4, nothing is left, and the next
    run completes the job."""
    data = long_master.read_bytes()
    asset_id = register_master(cat, LONG_CODE, LONG_KEY, data)
    job_id = create_pending_job(settings, LONG_CODE, LONG_KEY, asset_id)
    with forwarder(services.s3_endpoint) as s3:
        through = {**service_env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}"}
        proc = subprocess.Popen(mpr_argv("transcode", "--pending"), env=mpr_env(through),
                                cwd=tmp_path, text=True, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with reaped(proc):
            held = HeldFfmpeg(proc).catch()  # the master is in the temp folder: S3 goes away
            s3.cut()
            held.resume()
            out, err = proc.communicate(timeout=600)

    assert proc.returncode == 4, out + err
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["worker"]) == ("PENDING", 0, None)
    assert job["error"].startswith("pending again: S3 unreachable"), job["error"]
    assert leftover_workdirs(service_env) == [] and group_members(proc.pid) == []
    assert cat.output_keys() == set()

    again = run_mpr("transcode", "--pending")

    assert again.returncode == 0, again.stdout + again.stderr
    assert completed_ids(again.stdout) == [job_id]
    assert cat.streaming_per_asset() == {LONG_CODE: 1}
