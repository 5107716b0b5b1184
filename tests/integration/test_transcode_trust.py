"""What a transcode may be trusted with: the attempt cap, the buckets recorded on a job, the
objects an output may (never) replace, infrastructure failures that are not the file's, and
what a dead worker leaves behind. The real script runs in subprocesses against real
PostgreSQL, SeaweedFS and ffmpeg; work that must be caught in the middle is held
(tests/integration/processes.py HeldFfmpeg), never raced.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from mpr_cli.sample import SampleArchive
from tests.integration.test_transcode import (
    VIDEO_CODE,
    build_awaiting_archive,
    completed_ids,
    master_key,
    output_key,
)
from tests.integration.test_transcode_jobs import (  # noqa: F401 (fixtures)
    cat,
    create_pending_job,
    long_master,
    popen_mpr,
    register_master,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("trust") / "bucket", 2)


@pytest.fixture()
def other_buckets(s3_admin) -> Iterator[tuple[str, str]]:
    """A second pair of buckets, for a process configured for other buckets."""
    tag = uuid.uuid4().hex[:10]
    pair = (f"in2-{tag}", f"out2-{tag}")
    for name in pair:
        s3_admin.create_bucket(Bucket=name)
    yield pair
    for name in pair:
        with contextlib.suppress(Exception):
            for obj in s3_admin.list_objects_v2(Bucket=name).get("Contents", []):
                s3_admin.delete_object(Bucket=name, Key=obj["Key"])
            s3_admin.delete_bucket(Bucket=name)


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
