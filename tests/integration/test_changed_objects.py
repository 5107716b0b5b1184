"""Catalogued objects that change or vanish in the bucket, against real PostgreSQL and SeaweedFS:
a multipart re-upload of the same bytes is recorded quietly; other bytes stay
`changed_since_import` until `mpr replace KEY` accepts them (the old values kept in
asset_file_history); a deleted object is `missing_object` once, then restored when put back
with its bytes (`checksum_mismatch` with other bytes)."""

from __future__ import annotations

import hashlib

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import (
    catalogue,
    md5_of,
    query,
    upload_multipart,
)
from tests.integration.reports import assert_contract, reasons_by_key
from tests.integration.transcoding import (
    VIDEO_CODE,
    VIDEO_MASTER,
    build_awaiting_archive,
    put_catalogued,
)

pytestmark = pytest.mark.integration

MASTER = "CD/AO-SMP-00001.wav"  # 5.8 MB: uploaded again in two parts of 5 MiB
CHECKSUMS = "CD/AO-SMP-00001.md5"
STREAM = "CD/AO-SMP-00001.mp3"


def damaged(data: bytes) -> bytes:
    """The same bytes with one flipped in the middle: same size, other MD5."""
    copy = bytearray(data)
    copy[len(copy) // 2] ^= 0xFF
    return bytes(copy)


def history(database_url: str) -> list[dict]:
    return query(database_url, "SELECT key, size, etag, md5, command, run_key, missing_since "
                               "FROM asset_file_history ORDER BY id")


def missing_since(database_url: str, key: str):
    return query(database_url, "SELECT missing_since FROM asset_files WHERE key = %s",
                 (key,))[0]["missing_since"]


@pytest.fixture()
def imported(long_audio_archive, upload, mpr_report):
    """The long audio asset uploaded and imported cleanly; its master's bytes."""
    upload(long_audio_archive.root)
    first = mpr_report("import")
    assert first.returncode == 0 and first.report["problems"] == [], first.stderr
    return (long_audio_archive.root / MASTER).read_bytes()


# -- changed objects -----------------------------------------------------------------------------


def test_a_multipart_reupload_of_the_same_bytes_is_recorded_quietly(imported, mpr_report,
                                                                   database_url, s3_admin,
                                                                   buckets):
    before = catalogue(database_url)[MASTER]
    etag = upload_multipart(s3_admin, buckets[0], MASTER, imported)
    assert etag.endswith("-2")

    out = mpr_report("import")
    assert out.returncode == 0, out.stderr
    assert_contract(out)
    assert out.report["problems"] == []  # never changed_since_import
    assert out.counts["refreshed"] == 1
    assert out.counts["bytes_verified"] == len(imported)  # the multipart object was read
    assert "recorded: 1 re-uploaded with the same bytes (new ETag)" in out.stderr  # one line
    row = catalogue(database_url)[MASTER]
    assert (row["etag"], row["size"], row["md5"]) == (etag, len(imported), before["md5"])
    assert [(h["key"], h["etag"], h["command"]) for h in history(database_url)] == [
        (MASTER, before["etag"], "import")]

    again = mpr_report("import")  # the next night: nothing to say, nothing read
    assert again.returncode == 0 and again.report["problems"] == [], again.stderr
    assert (again.counts["refreshed"], again.counts["bytes_verified"]) == (0, 0)


def _deliver_other_master(s3_admin, bucket: str, data: bytes) -> str:
    """Other bytes at the master's key (same size, multipart); returns their MD5."""
    upload_multipart(s3_admin, bucket, MASTER, damaged(data))
    return hashlib.md5(damaged(data)).hexdigest()


def test_other_bytes_warn_every_night_and_a_replace_that_breaks_a_rule_changes_nothing(
        imported, mpr_report, run_mpr, database_url, s3_admin, buckets):
    _deliver_other_master(s3_admin, buckets[0], imported)
    before = catalogue(database_url)
    for night in range(2):  # every night until a person decides
        out = mpr_report("import")
        assert out.returncode == 0, out.stderr  # a warning
        assert_contract(out)
        assert reasons_by_key(out) == {MASTER: {"changed_since_import"}}
        assert f"mpr replace {MASTER}" in out.report["problems"][0]["message"]
        assert catalogue(database_url) == before
        # its bytes are read once: the next night knows this ETag's bytes differ
        assert out.counts["bytes_verified"] == (len(imported) if night == 0 else 0)

    refused = run_mpr("replace", MASTER)  # its checksum sidecar still gives the old MD5
    assert refused.returncode == 1, refused.stderr
    assert "checksum_mismatch" in refused.stdout and MASTER in refused.stdout
    assert "not replaced, nothing changed" in refused.stdout
    assert catalogue(database_url) == before and history(database_url) == []


def test_replace_accepts_other_bytes_with_their_sidecar_and_keeps_the_history(
        imported, long_audio_archive, mpr_report, run_mpr, database_url, s3_admin, buckets):
    new_md5 = _deliver_other_master(s3_admin, buckets[0], imported)
    old_md5 = md5_of(long_audio_archive.root / MASTER)
    sidecar = (long_audio_archive.root / CHECKSUMS).read_text().replace(old_md5, new_md5)
    s3_admin.put_object(Bucket=buckets[0], Key=CHECKSUMS, Body=sidecar.encode())
    out = mpr_report("import")
    assert reasons_by_key(out) == {MASTER: {"changed_since_import"},
                                   CHECKSUMS: {"changed_since_import"}}
    before = catalogue(database_url)

    dry = run_mpr("replace", MASTER, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"replace {MASTER} (master): " in dry.stdout
    assert f"MD5 {old_md5} -> {new_md5}" in dry.stdout
    assert f"replace {CHECKSUMS} (checksum)" in dry.stdout and "nothing changed" in dry.stdout
    assert catalogue(database_url) == before and history(database_url) == []

    done = run_mpr("replace", MASTER)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 file record(s) replaced" in done.stdout
    rows = catalogue(database_url)
    assert rows[MASTER]["md5"] == new_md5 and rows[MASTER]["etag"].endswith("-2")
    assert rows[CHECKSUMS]["etag"] != before[CHECKSUMS]["etag"]
    kept = {h["key"]: h for h in history(database_url)}
    assert set(kept) == {MASTER, CHECKSUMS}
    assert (kept[MASTER]["md5"], kept[MASTER]["etag"], kept[MASTER]["command"]) == (
        old_md5, before[MASTER]["etag"], "replace")

    after = mpr_report("import")  # accepted: no longer a change
    assert after.returncode == 0 and after.report["problems"] == [], after.stderr


def test_replace_of_a_key_not_catalogued_is_one_line(imported, run_mpr):
    out = run_mpr("replace", "CD/AO-SMP-00009.wav")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "not catalogued" in out.stderr
    assert "Traceback" not in out.stderr


# -- objects that vanished -----------------------------------------------------------------------


def test_a_deleted_object_is_missing_once_then_restored(imported, long_audio_archive,
                                                       mpr_report, database_url, s3_admin,
                                                       buckets):
    s3_admin.delete_object(Bucket=buckets[0], Key=STREAM)
    first = mpr_report("import")
    assert first.returncode == 1, first.stderr
    assert_contract(first)
    assert reasons_by_key(first) == {STREAM: {"missing_object"}}
    assert first.counts["missing"] == 1
    assert missing_since(database_url, STREAM) is not None

    second = mpr_report("import")  # already recorded missing: not reported again
    assert second.returncode == 0 and second.report["problems"] == [], second.stderr

    s3_admin.put_object(Bucket=buckets[0], Key=STREAM,
                        Body=(long_audio_archive.root / STREAM).read_bytes())
    back = mpr_report("import")
    assert back.returncode == 0 and back.report["problems"] == [], back.stderr
    assert back.counts["restored"] == 1
    assert "recorded: 1 back in the bucket with the catalogued bytes" in back.stderr
    assert missing_since(database_url, STREAM) is None
    assert mpr_report("import").counts["restored"] == 0


def test_a_deleted_object_back_with_other_bytes_is_a_checksum_mismatch(imported, mpr_report,
                                                                       database_url, s3_admin,
                                                                       buckets):
    s3_admin.delete_object(Bucket=buckets[0], Key=MASTER)
    assert reasons_by_key(mpr_report("import")) == {MASTER: {"missing_object"}}
    s3_admin.put_object(Bucket=buckets[0], Key=MASTER, Body=damaged(imported))

    out = mpr_report("import")
    assert out.returncode == 1, out.stderr
    assert reasons_by_key(out) == {MASTER: {"checksum_mismatch"}}
    assert missing_since(database_url, MASTER) is not None  # until it is put right
    assert catalogue(database_url)[MASTER]["md5"] == hashlib.md5(imported).hexdigest()


def test_a_prefix_run_reports_missing_only_under_its_prefix(imported, mpr_report,
                                                            database_url, s3_admin, buckets):
    s3_admin.delete_object(Bucket=buckets[0], Key=STREAM)
    narrow = mpr_report("import", "--prefix", MASTER)
    assert narrow.returncode == 0 and narrow.report["problems"] == [], narrow.stderr
    assert missing_since(database_url, STREAM) is None

    whole = mpr_report("import", "--prefix", "CD/")
    assert reasons_by_key(whole) == {STREAM: {"missing_object"}}


def test_a_dry_run_reports_a_missing_object_and_records_nothing(imported, mpr_report,
                                                                database_url, s3_admin,
                                                                buckets):
    s3_admin.delete_object(Bucket=buckets[0], Key=STREAM)
    for _ in range(2):
        out = mpr_report("import", "--dry-run")
        assert reasons_by_key(out) == {STREAM: {"missing_object"}}
    assert missing_since(database_url, STREAM) is None


@pytest.fixture(scope="module")
def awaiting(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("awaiting") / "bucket", 1)


def test_a_master_missing_from_the_bucket_gets_no_transcode_job(awaiting, cat, run_mpr,
                                                                mpr_report):
    put_catalogued(run_mpr, cat, awaiting, [VIDEO_CODE])
    cat.s3.delete_object(Bucket=cat.bucket_in, Key=VIDEO_MASTER)
    assert reasons_by_key(mpr_report("import")) == {VIDEO_MASTER: {"missing_object"}}

    done = run_mpr("transcode", "--pending")

    assert done.returncode == 0, done.stdout + done.stderr
    assert cat.jobs() == []  # no job that could only fail on a master that is not there
