"""The S3 Inventory reader against a real SeaweedFS: an inventory (3 gzip CSV files in AWS's
layout, written by tests/integration/inventories.py) of a seeded bucket's real listing gives
exactly that listing, in byte order; a missing data file, a data file that is not the one the
manifest names and a missing manifest are one-line InventoryErrors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mpr_cli.config import Settings
from mpr_cli.errors import ExitCode, InventoryError
from mpr_cli.s3inventory import manifest_objects, read_manifest
from mpr_cli.storage import Storage
from tests.integration.inventories import (
    bucket_objects,
    csv_gz,
    local_manifest,
    object_fields,
    write_inventory,
)

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
SEEDED = [
    *(f"FILE/VO-UMT-{n:05d}.mov" for n in range(30)),
    *(f"BRD/VO-UMT-{n:05d}_{role}.{ext}" for n in range(5)
      for role, ext in (("master", "mxf"), ("sidecar", "json"))),
    "with space/and  two.mov", "plus+sign.mov", "literal%2B.mov", "Ärger/日本語.wav",
    "quote\"and,comma.mov", "tab\tand~tilde.mov", "Z/😀.mkv", "a/lower.mov",
]


@pytest.fixture()
def storage(settings: Settings) -> Storage:
    return Storage(settings)


@pytest.fixture()
def seeded(s3_admin, buckets) -> str:
    """The input bucket with the SEEDED keys (contents of different sizes) and a folder
    marker; its name."""
    bucket = buckets[0]
    for number, key in enumerate(SEEDED):
        s3_admin.put_object(Bucket=bucket, Key=key, Body=b"x" * (number * 37 + 1))
    s3_admin.put_object(Bucket=bucket, Key="empty folder/", Body=b"")
    return bucket


def inventory_of(s3_admin, seeded: str, dest: str) -> str:
    return write_inventory(s3_admin, source_bucket=seeded, dest_bucket=dest,
                           objects=bucket_objects(s3_admin, seeded), files=3, created=CREATED,
                           shuffle=True)


def test_the_inventory_of_a_bucket_gives_its_listing_in_byte_order(
        s3_admin, seeded, buckets, storage, tmp_path: Path) -> None:
    uri = inventory_of(s3_admin, seeded, buckets[1])
    manifest = read_manifest(uri, storage)
    assert len(manifest.files) == 3 and manifest.source_bucket == seeded
    got = [(o.key, o.size, o.etag) for o in manifest_objects(manifest, storage,
                                                             scratch=tmp_path)]
    listing = [(o.key, o.size, o.etag) for o in storage.list_objects(seeded)]
    assert got == listing  # the folder marker skipped by both
    assert [key for key, _, _ in got] == sorted(SEEDED, key=lambda k: k.encode())
    merged = manifest_objects(manifest, storage, scratch=tmp_path / "runs", run_rows=7)
    assert [(o.key, o.size, o.etag) for o in merged] == listing


def test_a_local_manifest_reads_its_files_from_the_destination_bucket(
        s3_admin, seeded, buckets, storage, tmp_path: Path) -> None:
    path = local_manifest(s3_admin, tmp_path / "inventory", source_bucket=seeded,
                          dest_bucket=buckets[1], objects=bucket_objects(s3_admin, seeded),
                          created=CREATED, shuffle=True)
    manifest = read_manifest(path.as_uri(), storage)
    assert [o.key for o in manifest_objects(manifest, storage, scratch=tmp_path)] == \
        [o.key for o in storage.list_objects(seeded)]


def refused(uri: str, storage: Storage, tmp_path: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        list(manifest_objects(read_manifest(uri, storage), storage, scratch=tmp_path))
    assert caught.value.exit_code == ExitCode.USAGE
    line = caught.value.one_line()
    assert "\n" not in line
    return line


def test_a_missing_data_file_is_one_line(s3_admin, seeded, buckets, storage,
                                         tmp_path: Path) -> None:
    uri = inventory_of(s3_admin, seeded, buckets[1])
    second = read_manifest(uri, storage).files[1].key
    s3_admin.delete_object(Bucket=buckets[1], Key=second)
    where = f"s3://{buckets[1]}/{second}"
    assert refused(uri, storage, tmp_path) == (
        f"cannot read data file {where} of inventory {uri}: {where} does not exist "
        "(the inventory is damaged or incomplete: use another one)")


def test_a_data_file_that_does_not_match_its_md5checksum(s3_admin, seeded, buckets, storage,
                                                          tmp_path: Path) -> None:
    uri = inventory_of(s3_admin, seeded, buckets[1])
    first = read_manifest(uri, storage).files[0].key
    other = csv_gz([object_fields(("FILE/VO-UMT-99999.mov", 5, "0" * 32, CREATED), seeded)])
    s3_admin.put_object(Bucket=buckets[1], Key=first, Body=other)
    line = refused(uri, storage, tmp_path)
    assert line.startswith(f"data file s3://{buckets[1]}/{first} of inventory {uri} does not "
                           "match its MD5checksum ")


def test_a_missing_manifest_is_one_line(buckets, storage, tmp_path: Path) -> None:
    uri = f"s3://{buckets[1]}/inv/none/manifest.json"
    assert refused(uri, storage, tmp_path).startswith(
        f"cannot read inventory manifest {uri}: {uri} does not exist")
    uri = "s3://no-such-bucket-16/inv/manifest.json"
    assert refused(uri, storage, tmp_path).startswith(
        f"cannot read inventory manifest {uri}: bucket no-such-bucket-16 does not exist")
