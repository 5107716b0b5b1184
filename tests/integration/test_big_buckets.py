"""Buckets of any size (issue 16), against real SeaweedFS and PostgreSQL: the import streamed
beside the catalogue, an asset whose files lie in several folders, an S3 Inventory read instead
of a listing, and a listing cut off mid-way.

The memory figures (flat while the key count grows tenfold) are measured in
bench/bench_bigbucket.py, not asserted here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mpr_cli.dev.sample import SampleArchive, build_sample_archive
from tests.integration.archive import (
    assert_rows_match_files,
    catalogue,
    expected_keys,
    query,
    row_counts,
    runs,
    tree_keys,
)
from tests.integration.inventories import bucket_objects, local_manifest, write_inventory
from tests.integration.proxy import forwarder

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def inventory_of(s3_admin, bucket: str, dest: str, *, created: datetime = NOW,
                 drop: tuple[str, ...] = ()) -> str:
    """The S3 Inventory of the bucket as it is now (3 gzip CSV files, shuffled), in `dest`."""
    objects = [o for o in bucket_objects(s3_admin, bucket) if o[0] not in drop]
    return write_inventory(s3_admin, source_bucket=bucket, dest_bucket=dest, objects=objects,
                           files=3, created=created, shuffle=True)


def comparable(report: dict) -> dict:
    """A report without what differs between two runs of the same work."""
    return {"counts": report["counts"], "status": report["status"],
            "problems": sorted((p["key"], p["reason"], p["severity"])
                               for p in report["problems"])}


@pytest.fixture()
def inventory_bucket(bucket_pairs) -> str:
    return bucket_pairs("inv", "unused")[0]


def test_an_import_from_an_inventory_equals_one_from_the_listing(
        sample_archive, upload, mpr_report, database_url, s3_admin, buckets,
        inventory_bucket):
    upload(sample_archive.root)
    uri = inventory_of(s3_admin, buckets[0], inventory_bucket)

    listed = mpr_report("import", "--dry-run")
    from_inventory = mpr_report("import", "--dry-run", "--inventory", uri)
    assert comparable(from_inventory.report) == comparable(listed.report)
    assert from_inventory.returncode == listed.returncode == 1  # the archive's bad files
    assert from_inventory.report["inventory"]["manifest"] == uri
    assert from_inventory.report["inventory"]["files"] == 3

    imported = mpr_report("import", "--inventory", uri)
    assert imported.returncode == 1, imported.stderr
    assert comparable(imported.report) == comparable(listed.report) | {
        "counts": imported.counts}
    assert imported.counts["inserted_files"] == listed.counts["inserted_files"] > 0
    codes = set(sample_archive.assets_ok)
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)
    assert_rows_match_files(database_url, sample_archive, codes)
    again = mpr_report("import")  # the listing finds what the inventory catalogued
    assert again.counts["inserted_files"] == 0
    assert again.counts["skipped"] == row_counts(database_url)["asset_files"] - sum(
        1 for r in catalogue(database_url).values() if not r["in_bucket"])


def test_a_local_manifest_is_read_like_one_in_a_bucket(
        tmp_path, sample_archive, upload, mpr_report, s3_admin, buckets, inventory_bucket):
    upload(sample_archive.root)
    path = local_manifest(s3_admin, tmp_path / "inventory", source_bucket=buckets[0],
                          dest_bucket=inventory_bucket,
                          objects=bucket_objects(s3_admin, buckets[0]), created=NOW)
    listed = mpr_report("validate")
    from_file = mpr_report("validate", "--inventory", str(path))
    assert comparable(from_file.report) == comparable(listed.report)


def test_a_stale_inventory_is_refused_with_one_line(sample_archive, upload, run_mpr,
                                                    database_url, s3_admin, buckets,
                                                    inventory_bucket):
    upload(sample_archive.root)
    uri = inventory_of(s3_admin, buckets[0], inventory_bucket,
                       created=NOW - timedelta(days=3, hours=2))

    result = run_mpr("import", "--inventory", uri)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert uri in line and "3 days 2 hours old" in line and "--inventory-max-age 48h" in line
    assert runs(database_url) == [] and row_counts(database_url)["asset_files"] == 0
    assert run_mpr("import", "--inventory", uri, "--inventory-max-age", "4d",
                   "--dry-run").returncode == 1  # the archive's bad files, nothing refused
    wrong = run_mpr("import", "--inventory", uri, "--inventory-max-age", "soon")
    assert wrong.returncode == 2 and "--inventory-max-age" in wrong.stderr


def test_an_inventory_of_another_bucket_is_refused(upload, sample_archive, run_mpr,
                                                   s3_admin, bucket_pairs, inventory_bucket):
    other = bucket_pairs("other", "x")[0]
    s3_admin.put_object(Bucket=other, Key="BRD/VO-SMP-00001.mov", Body=b"x")
    uri = inventory_of(s3_admin, other, inventory_bucket)
    result = run_mpr("import", "--inventory", uri)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"lists bucket {other}" in line and "S3_BUCKET_IN" in line


def test_an_inventory_is_checked_against_the_bucket_where_it_may_be_old(
        big_archive, upload, mpr_report, database_url, s3_admin, buckets, inventory_bucket):
    """Made before some files came (a catalogued file it does not name is HEADed, not called
    missing) and before some left (a new file it names that is gone is missing_object, the
    asset left out, the run goes on)."""
    codes = sorted(big_archive.assets_ok)
    early, late = codes[:4], codes[4:]
    keys = tree_keys(big_archive.root)
    early_keys = [k for k in keys if any(code in k for code in early)]
    upload(big_archive.root, early_keys)
    assert mpr_report("import").returncode == 0
    upload(big_archive.root, [k for k in keys if k not in early_keys])
    gone_asset = late[0]
    gone = next(k for k in keys if gone_asset in k and k.endswith(".md5"))
    vanished = early_keys[0]
    uri = inventory_of(s3_admin, buckets[0], inventory_bucket, drop=tuple(early_keys))
    for key in (gone, vanished):
        s3_admin.delete_object(Bucket=buckets[0], Key=key)

    run = mpr_report("import", "--inventory", uri)

    assert run.returncode == 1, run.stderr
    assert run.reasons() == {gone: "missing_object", vanished: "missing_object"}
    assert run.counts["missing"] == 1
    done = {r["inventory_code"] for r in catalogue(database_url).values()}
    assert done == set(codes) - {gone_asset}
    [row] = query(database_url, "SELECT key FROM asset_files WHERE missing_since IS NOT NULL")
    assert row["key"] == vanished


def two_folder_archive(root: Path) -> tuple[SampleArchive, dict[str, str]]:
    """Two good video assets; the first one's sidecars moved from BRD/ to FILE/2019/ (its master
    and streaming copy stay): key in the archive -> key in the bucket."""
    archive = build_sample_archive(root, assets_video=2, assets_audio=0, bad=False,
                                   tape_master=False, duration=0.4)
    first = sorted(archive.assets_ok)[0]
    moved = {}
    for key in tree_keys(root):
        name = key.rsplit("/", 1)[-1]
        sidecar = name.endswith((".json", ".md5", ".pdf"))
        moved[key] = f"FILE/2019/{name}" if first in name and sidecar else key
    return archive, moved


def test_an_asset_whose_files_lie_in_two_folders_is_one_asset(tmp_path, s3_admin, buckets,
                                                              mpr_report, database_url):
    archive, moved = two_folder_archive(tmp_path / "two")
    for key, target in moved.items():
        s3_admin.put_object(Bucket=buckets[0], Key=target,
                            Body=(archive.root / key).read_bytes())
    first = sorted(archive.assets_ok)[0]
    assert any(k.startswith("FILE/2019/") for k in moved.values())
    assert any(k.startswith("BRD/") and first in k for k in moved.values())

    run = mpr_report("import")

    assert run.returncode == 0, run.report["problems"]
    assert run.report["problems"] == []
    rows = catalogue(database_url)
    assert set(rows) == set(moved.values())
    assert {r["inventory_code"] for r in rows.values()} == set(archive.assets_ok)
    assert run.counts["inserted_assets"] == 2


def test_a_listing_cut_off_mid_way_is_exit_4_and_inserts_nothing(
        big_archive, upload, service_env, run_mpr, database_url, services):
    """S3 goes away at the third listing request (the folders are listed after the bucket's
    first level, so the cut always falls inside the listing): one line, exit 4, nothing
    inserted and no catalogued file called missing."""
    keys = tree_keys(big_archive.root)
    half = [k for k in keys if any(c in k for c in sorted(big_archive.assets_ok)[:4])]
    upload(big_archive.root, half)
    assert run_mpr("import").returncode == 0
    upload(big_archive.root, [k for k in keys if k not in half])
    before = row_counts(database_url) | {"import_runs": 2}  # and the run that failed
    requests = []

    def third_listing(data: bytes) -> bool:
        requests.extend(re.findall(rb"[?&]list-type=2", data))
        return len(requests) >= 3

    with forwarder(services.s3_endpoint, watch=third_listing) as s3:
        env = service_env | {"S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
                             "MPR_LIST_CONCURRENCY": "2"}
        result = run_mpr("import", env=env)

    assert result.returncode == 4, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "S3" in line and "list" in line and "Traceback" not in result.stderr
    assert row_counts(database_url) == before
    assert query(database_url, "SELECT key FROM asset_files WHERE missing_since IS NOT NULL") == []
    assert [r["status"] for r in runs(database_url)] == ["completed", "failed"]


def test_an_inventory_folder_means_its_newest_report(sample_archive, upload, mpr_report,
                                                     run_mpr, s3_admin, buckets,
                                                     inventory_bucket):
    """What a nightly cron line gives: the report's folder, whose manifest changes daily."""
    upload(sample_archive.root)
    older = inventory_of(s3_admin, buckets[0], inventory_bucket, created=NOW - timedelta(days=1))
    newer = inventory_of(s3_admin, buckets[0], inventory_bucket)
    folder = older.rsplit("/", 2)[0] + "/"
    assert newer.startswith(folder) and newer != older

    run = mpr_report("validate", "--inventory", folder)

    assert run.report["inventory"]["manifest"] == newer
    empty = run_mpr("validate", "--inventory", f"s3://{inventory_bucket}/nothing/")
    assert empty.returncode == 2, empty.stderr
    [line] = empty.stderr.strip().splitlines()
    assert "no manifest.json under" in line
