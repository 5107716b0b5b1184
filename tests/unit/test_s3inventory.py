"""S3 Inventory manifests without servers: the manifest's fields and every way one can be
wrong, keys decoded as AWS encodes them, delete markers and versions, the age check, the key
order of shuffled rows over several files (the external merge sort) and flat memory.

The inventories are written by tests/integration/inventories.py (AWS's format) into a dict;
`MemoryStorage` reads them back with the two Storage methods the reader uses. The same reader
against real SeaweedFS is in tests/integration/test_s3inventory.py.
"""

from __future__ import annotations

import gc
import gzip
import json
import random
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest

from mpr_cli import extsort
from mpr_cli.errors import ExitCode, InventoryError, InventoryStale, S3Unavailable, StorageError
from mpr_cli.s3inventory import (
    Manifest,
    ManifestFile,
    check_fresh,
    describe_age,
    manifest_objects,
    parse_duration,
    read_manifest,
)
from mpr_cli.storage import ObjectInfo
from tests.integration.inventories import (
    VERSIONED_SCHEMA,
    csv_gz,
    local_manifest,
    manifest_document,
    object_fields,
    put_inventory,
    write_inventory,
)

SOURCE, DEST = "archive-in", "inventories"
CREATED = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
MODIFIED = datetime(2026, 11, 27, 9, 30, 15, 250000, tzinfo=UTC)
ETAG = "9e107d9d372bb6826bd81d3542a419d6"


class MemoryS3:
    """put_object into a dict (what write_inventory needs of a boto3 client)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects[(Bucket, Key)] = bytes(Body)


class MemoryStorage:
    """read_bytes and iter_chunks (small chunks, so gzip reads across them) over MemoryS3;
    `fail` raises S3Unavailable, as Storage does when S3 is unreachable."""

    def __init__(self, s3: MemoryS3, fail: bool = False) -> None:
        self.s3, self.fail = s3, fail

    def _get(self, bucket: str, key: str) -> bytes:
        if self.fail:
            raise S3Unavailable(f"S3 unreachable while trying to read s3://{bucket}/{key}")
        if (bucket, key) not in self.s3.objects:
            raise StorageError(f"s3://{bucket}/{key} does not exist", key=key,
                               hint="check the key: the object may have been moved or deleted")
        return self.s3.objects[(bucket, key)]

    def read_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return self._get(bucket, key)

    def iter_chunks(self, bucket: str, key: str, chunk_size: int = 0) -> Iterator[bytes]:
        data = self._get(bucket, key)
        for start in range(0, len(data), 777):
            yield data[start:start + 777]


@pytest.fixture()
def s3() -> MemoryS3:
    return MemoryS3()


def obj(key: str, size: int = 10, etag: str = ETAG) -> tuple[str, int, str, datetime]:
    return (key, size, etag, MODIFIED)


def listed(uri: str, s3: MemoryS3, scratch: Path, **kwargs: Any) -> list[ObjectInfo]:
    storage = MemoryStorage(s3)
    return list(manifest_objects(read_manifest(uri, storage), storage, scratch=scratch,
                                 **kwargs))


def with_document(s3: MemoryS3, document: dict[str, Any] | bytes) -> str:
    """A manifest whose content is `document` (a dict as JSON, or raw bytes)."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    s3.put_object(Bucket=DEST, Key="inv/m/manifest.json", Body=body)
    return f"s3://{DEST}/inv/m/manifest.json"


def good_document(files: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    return manifest_document(source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                             files=files or [("inv/d/a.csv.gz", csv_gz([]))])


def refused(uri: str, s3: MemoryS3, scratch: Path | None = None) -> InventoryError:
    storage = MemoryStorage(s3)
    with pytest.raises(InventoryError) as caught:
        manifest = read_manifest(uri, storage)
        list(manifest_objects(manifest, storage, scratch=scratch or Path("/nonexistent")))
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert "\n" not in error.one_line() and error.hint
    return error


# -- the manifest ---------------------------------------------------------------------------


def test_manifest_fields_in_s3_local_and_file_uri(s3: MemoryS3, tmp_path: Path) -> None:
    uri = write_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, objects=[obj("a")],
                          files=2, created=CREATED)
    path = local_manifest(s3, tmp_path / "local", source_bucket=SOURCE, dest_bucket=DEST,
                          objects=[obj("a")], files=2, created=CREATED, prefix="other")
    for location in (uri, str(path), path.as_uri()):
        manifest = read_manifest(location, MemoryStorage(s3))
        assert manifest.location == location
        assert (manifest.source_bucket, manifest.destination_bucket) == (SOURCE, DEST)
        assert manifest.created == CREATED and manifest.created.tzinfo is not None
        assert manifest.columns[:3] == ("Bucket", "Key", "Size")
        assert len(manifest.files) == 2 and all(f.md5 and f.size > 0 for f in manifest.files)
        assert manifest.age(CREATED + timedelta(hours=5)) == timedelta(hours=5)
    local = read_manifest(str(path), MemoryStorage(s3))
    assert [o.key for o in manifest_objects(local, MemoryStorage(s3), scratch=tmp_path)] == ["a"]


def test_the_documented_example_manifest_parses(s3: MemoryS3) -> None:
    """The CSV example of storage-inventory-location.md, as AWS prints it."""
    document = {
        "sourceBucket": "example-source-bucket",
        "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
        "version": "2016-11-30", "creationTimestamp": "1514944800000", "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, "
                      "LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, "
                      "ReplicationStatus, EncryptionStatus, ObjectLockRetainUntilDate, "
                      "ObjectLockMode, ObjectLockLegalHoldStatus, IntelligentTieringAccessTier, "
                      "BucketKeyStatus, ChecksumAlgorithm",
        "files": [{"key": "Inventory/example-source-bucket/2016-11-06T21-32Z/files/"
                          "939c6d46-85a9-4ba8-87bd-9db705a579ce.csv.gz",
                   "size": 2147483647, "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc"}]}
    manifest = read_manifest(with_document(s3, document), MemoryStorage(s3))
    assert manifest.destination_bucket == "example-inventory-destination-bucket"
    assert manifest.created == datetime(2018, 1, 3, 2, 0, tzinfo=UTC)
    assert len(manifest.columns) == 18 and manifest.columns[-1] == "ChecksumAlgorithm"
    assert manifest.files == (ManifestFile(document["files"][0]["key"], 2147483647,
                                           "f11166069f1990abeb9c97ace9cdfabc"),)


BROKEN = [
    ({"sourceBucket": None}, "no sourceBucket"),
    ({"destinationBucket": None}, "no destinationBucket"),
    ({"creationTimestamp": None}, "no creationTimestamp"),
    ({"fileFormat": None}, "no fileFormat"),
    ({"fileSchema": None}, "no fileSchema"),
    ({"files": None}, "no files"),
    ({"sourceBucket": ""}, "invalid sourceBucket"),
    ({"destinationBucket": "arn:aws:s3:::"}, "invalid destinationBucket"),
    ({"destinationBucket": 7}, "invalid destinationBucket"),
    ({"creationTimestamp": "2026-11-28T14:00Z"}, "invalid creationTimestamp"),
    ({"creationTimestamp": True}, "invalid creationTimestamp"),
    ({"fileSchema": ""}, "invalid fileSchema"),
    ({"fileSchema": "Bucket, Key, Key, Size, ETag"}, "invalid fileSchema"),
    ({"fileSchema": "Bucket, Key, LastModifiedDate, ETag"}, "no Size column"),
    ({"fileSchema": "Bucket, Key, Size"}, "no ETag column"),
    ({"fileSchema": "Bucket, Size, ETag"}, "no Key column"),
    ({"files": "a.csv.gz"}, "invalid files"),
    ({"files": [{"key": "a.csv.gz"}]}, "invalid entry in files"),
    ({"files": [{"key": "a.csv.gz", "size": -1}]}, "invalid entry in files"),
    ({"files": [{"key": "a.csv.gz", "size": 3, "MD5checksum": "zz"}]}, "invalid MD5checksum"),
    ({"fileFormat": "ORC"}, "is in ORC format; mpr reads CSV inventories only"),
    ({"fileFormat": "Parquet"}, "is in Parquet format; mpr reads CSV inventories only"),
]


@pytest.mark.parametrize(("change", "expected"), BROKEN)
def test_every_bad_field_is_one_line_naming_the_manifest(s3: MemoryS3, change: dict[str, Any],
                                                         expected: str) -> None:
    document = good_document()
    for name, value in change.items():
        if value is None:
            del document[name]
        else:
            document[name] = value
    uri = with_document(s3, document)
    error = refused(uri, s3)
    assert uri in error.message and expected in error.message


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "is not JSON"), (b"\xff\xfe", "is not JSON"),
    (b'["a list"]', "is not a JSON object")])
def test_a_manifest_that_is_not_a_json_object(s3: MemoryS3, body: bytes, expected: str) -> None:
    uri = with_document(s3, body)
    assert expected in refused(uri, s3).message


def test_a_missing_manifest_in_s3_or_on_disk(s3: MemoryS3, tmp_path: Path) -> None:
    error = refused(f"s3://{DEST}/nothing/manifest.json", s3)
    assert error.message == (f"cannot read inventory manifest s3://{DEST}/nothing/manifest.json"
                             f": s3://{DEST}/nothing/manifest.json does not exist")
    missing = tmp_path / "manifest.json"
    assert refused(str(missing), s3).message == (
        f"cannot read inventory manifest {missing}: No such file or directory")
    assert "names no object" in refused(f"s3://{DEST}", s3).message


def test_s3_unreachable_stays_s3_unavailable(s3: MemoryS3) -> None:
    uri = write_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, objects=[obj("a")],
                          created=CREATED)
    with pytest.raises(S3Unavailable):
        read_manifest(uri, MemoryStorage(s3, fail=True))
    manifest = read_manifest(uri, MemoryStorage(s3))
    with pytest.raises(S3Unavailable):
        list(manifest_objects(manifest, MemoryStorage(s3, fail=True), scratch=Path("/x")))


# -- rows -----------------------------------------------------------------------------------


def test_columns_in_another_order(s3: MemoryS3, tmp_path: Path) -> None:
    columns = ("ETag", "LastModifiedDate", "Size", "StorageClass", "Key", "Bucket")
    rows = [object_fields(obj("b/2.mov", 5, "abc-2"), SOURCE, columns),
            object_fields(obj("a/1.mov", 7), SOURCE, columns)]
    files = [("inv/d/x.csv.gz", csv_gz(rows))]
    document = manifest_document(source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                                 files=files, columns=columns)
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=files, document=document)
    assert listed(uri, s3, tmp_path) == [ObjectInfo("a/1.mov", 7, ETAG, MODIFIED),
                                         ObjectInfo("b/2.mov", 5, "abc-2", MODIFIED)]


HOSTILE_KEYS = [
    "plain/key.mov", "with space/and  two.mov", "plus+sign.mov", "literal%2B.mov",
    "percent%.mov", "Ärger/日本語 ファイル.wav", "emoji 🎞.mkv", "control\x01\x1f\x7f.mov",
    "new\nline\r.mov", 'quote"double".mov', "comma,separated,.mov", "semi;colon&amp.mov",
    "~tilde*star'apos'.mov", "back\\slash.mov", "a/b/c/deep.mov",
]


def test_keys_decode_exactly_as_aws_encodes_them(s3: MemoryS3, tmp_path: Path) -> None:
    uri = write_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST,
                          objects=[obj(k) for k in HOSTILE_KEYS], files=3, created=CREATED)
    assert [o.key for o in listed(uri, s3, tmp_path)] == sorted(HOSTILE_KEYS)


def test_percent_encoded_slash_and_plus_for_space(s3: MemoryS3, tmp_path: Path) -> None:
    raw = [object_fields(obj("x"), SOURCE, Key="FILE%2FVO+01%2B2.mov"),
           object_fields(obj("x"), SOURCE, Key="FILE/VO%20%C3%A9.mov")]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=[("inv/d/x.csv.gz", csv_gz(raw))])
    assert [o.key for o in listed(uri, s3, tmp_path)] == ["FILE/VO 01+2.mov", "FILE/VO é.mov"]


def test_only_current_objects_of_the_source_bucket(s3: MemoryS3, tmp_path: Path) -> None:
    schema = VERSIONED_SCHEMA
    rows = [
        object_fields(obj("a.mov", 1), SOURCE, schema, VersionId="v1", IsLatest="false"),
        object_fields(obj("a.mov", 2), SOURCE, schema, VersionId="v2", IsLatest="true"),
        object_fields(obj("gone.mov", 3), SOURCE, schema, VersionId="v1", IsLatest="false"),
        object_fields(obj("gone.mov", 0), SOURCE, schema, VersionId="v2", IsLatest="TRUE",
                      IsDeleteMarker="TRUE", Size="", ETag="", LastModifiedDate=""),
        object_fields(obj("folder/"), SOURCE, schema),
        object_fields(obj("elsewhere.mov"), "another-bucket", schema),
        object_fields(obj("null-version.mov", 4), SOURCE, schema, VersionId=""),
    ]
    files = [("inv/d/v.csv.gz", csv_gz(rows))]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=files, document=manifest_document(
                            source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                            files=files, columns=schema))
    assert [(o.key, o.size) for o in listed(uri, s3, tmp_path)] == [
        ("a.mov", 2), ("null-version.mov", 4)]


def test_without_last_modified_the_manifest_time_is_used(s3: MemoryS3, tmp_path: Path) -> None:
    columns = ("Bucket", "Key", "Size", "ETag")
    files = [("inv/d/x.csv.gz", csv_gz([object_fields(obj("k"), SOURCE, columns)]))]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=files, document=manifest_document(
                            source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                            files=files, columns=columns))
    assert listed(uri, s3, tmp_path)[0].last_modified == CREATED


MALFORMED = [
    ({"Size": "12x"}, "Size '12x' is not a number of bytes"),
    ({"Size": "-3"}, "Size '-3' is not a number of bytes"),
    ({"Key": ""}, "the Key is empty"),
    ({"Key": "bad%FFutf8"}, "Key 'bad%FFutf8' is not URL-encoded UTF-8"),
    ({"LastModifiedDate": "yesterday"}, "LastModifiedDate 'yesterday' is not an ISO 8601 time"),
]


@pytest.mark.parametrize(("change", "expected"), MALFORMED)
def test_a_malformed_row_names_the_file_and_row(s3: MemoryS3, tmp_path: Path,
                                                change: dict[str, str], expected: str) -> None:
    rows = [object_fields(obj("ok-1"), SOURCE), object_fields(obj("ok-2"), SOURCE),
            object_fields(obj("bad"), SOURCE, **change)]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=[("inv/d/m.csv.gz", csv_gz(rows))])
    error = refused(uri, s3, tmp_path)
    assert error.message == (f"data file s3://{DEST}/inv/d/m.csv.gz of inventory {uri}, "
                             f"row 3: {expected}")


def test_wrong_field_count_and_bad_flags(s3: MemoryS3, tmp_path: Path) -> None:
    short = object_fields(obj("a"), SOURCE)[:-1]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=[("inv/d/s.csv.gz", csv_gz([short]))])
    assert refused(uri, s3, tmp_path).message.endswith(
        "row 1: 8 fields where the fileSchema names 9")
    files = [("inv/d/f.csv.gz",
              csv_gz([object_fields(obj("a"), SOURCE, VERSIONED_SCHEMA, IsLatest="yes")]))]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=files, document=manifest_document(
                            source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                            files=files, columns=VERSIONED_SCHEMA))
    assert refused(uri, s3, tmp_path).message.endswith(
        "row 1: IsLatest 'yes' is neither true nor false")


def test_damaged_missing_or_changed_data_files(s3: MemoryS3, tmp_path: Path) -> None:
    good = csv_gz([object_fields(obj("a"), SOURCE)])
    cases = {
        "not gzip": (b"plain text, not gzip", "is not a readable gzip CSV after row 0"),
        "cut short": (good[:-12], "is not a readable gzip CSV"),
        "not utf-8": (gzip.compress(b'"\xff\xfe"\n'), "is not a readable gzip CSV"),
    }
    for name, (data, expected) in cases.items():
        files = [(f"inv/{name}/x.csv.gz", data)]
        uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                            files=files, prefix=name.replace(" ", "-"))
        message = refused(uri, s3, tmp_path).message
        assert message.startswith(f"data file s3://{DEST}/inv/{name}/x.csv.gz of inventory "
                                  f"{uri} ") and expected in message, name
    document = good_document([("inv/d/a.csv.gz", good)])
    uri = with_document(s3, document)  # the data file was never written
    assert refused(uri, s3, tmp_path).message == (
        f"cannot read data file s3://{DEST}/inv/d/a.csv.gz of inventory {uri}: "
        f"s3://{DEST}/inv/d/a.csv.gz does not exist")
    s3.put_object(Bucket=DEST, Key="inv/d/a.csv.gz", Body=good)
    document["files"][0]["MD5checksum"] = "0" * 32
    assert "does not match its MD5checksum 00000000" in refused(
        with_document(s3, document), s3, tmp_path).message
    document["files"][0].update(size=len(good) + 1, MD5checksum=None)
    assert f"has {len(good)} bytes, the manifest says {len(good) + 1}" in refused(
        with_document(s3, document), s3, tmp_path).message


# -- age ------------------------------------------------------------------------------------


def manifest_made(created: datetime) -> Manifest:
    return Manifest(location="s3://inv/a/manifest.json", source_bucket=SOURCE,
                    destination_bucket=DEST, created=created, columns=("Key", "Size", "ETag"),
                    files=())


def test_check_fresh_refuses_an_old_inventory_in_one_line() -> None:
    manifest = manifest_made(CREATED)
    check_fresh(manifest, timedelta(hours=48), CREATED + timedelta(hours=48))
    check_fresh(manifest, timedelta(hours=48), CREATED - timedelta(hours=1))  # clock skew
    with pytest.raises(InventoryStale) as caught:
        check_fresh(manifest, parse_duration("48h"), CREATED + timedelta(days=3, hours=2))
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.one_line() == (
        "inventory s3://inv/a/manifest.json is 3 days 2 hours old (made 2026-11-28 14:00 UTC), "
        "more than --inventory-max-age 48h (use a newer inventory or raise "
        "--inventory-max-age)")
    with pytest.raises(InventoryStale, match="5 hours 1 minute old .*-max-age 90m$"):
        check_fresh(manifest, parse_duration("90m"), CREATED + timedelta(hours=5, minutes=1))


def test_describe_age_and_parse_duration() -> None:
    assert describe_age(timedelta(days=1)) == "1 day"
    assert describe_age(timedelta(days=2, minutes=5)) == "2 days"
    assert describe_age(timedelta(minutes=40, seconds=3)) == "40 minutes 3 seconds"
    assert describe_age(timedelta(0)) == "0 seconds"
    assert parse_duration("2d") == parse_duration("48h") == timedelta(hours=48)
    assert parse_duration("3600s") == parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("90m") == timedelta(minutes=90)
    for bad in ("48", "two days", "", "5y"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


# -- order and memory -----------------------------------------------------------------------


def shuffled_keys(count: int) -> list[str]:
    keys = [f"FILE/VO-{i:05d}.mov" for i in range(count)] + \
        ["Z/é.mov", "Z/e.mov", "a/lower.mov", "Z/\u00e9\u0301.mov", "Z/😀.mov", "Z/\uffff.mov",
         "Z/ .mov", "Z/+.mov", "Z/~.mov", "Z/\x7f.mov"]
    random.Random(7).shuffle(keys)
    return keys


def test_shuffled_rows_over_several_files_come_in_byte_order(s3: MemoryS3,
                                                             tmp_path: Path) -> None:
    keys = shuffled_keys(500)
    uri = write_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                          objects=[obj(k, i) for i, k in enumerate(keys)], files=4,
                          shuffle=True)
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert sorted(keys) == expected  # Python's str order is UTF-8 byte order
    scratch = tmp_path / "scratch"
    merged = listed(uri, s3, scratch, run_rows=37)  # 14 sorted runs on disk, merged
    assert [o.key for o in merged] == expected
    assert {o.key: o.size for o in merged} == {k: i for i, k in enumerate(keys)}
    assert list(scratch.rglob("*")) == []  # the runs are removed
    one_run = tmp_path / "unused"
    assert [o.key for o in listed(uri, s3, one_run)] == expected
    assert not one_run.exists()  # everything fit in one run: no temp file


def test_memory_stays_flat_over_300000_rows(s3: MemoryS3, tmp_path: Path) -> None:
    """300,000 rows in 5 shuffled files (the CSV written directly, for speed): the peak while
    they stream through the merge sort is well under what holding them would take (measured
    on a tenth of them, times ten)."""
    count, columns = 300_000, ("Bucket", "Key", "Size", "LastModifiedDate", "ETag")
    numbers = list(range(count))
    random.Random(3).shuffle(numbers)
    files = [(f"inv/d/{part}.csv.gz", gzip.compress("".join(
        f'"{SOURCE}","FILE/VO-{i:07d}/VO-{i:07d}_master.mov","{i}",'
        f'"2026-11-27T09:30:15.250Z","{ETAG}"\n' for i in numbers[part::5]).encode(),
        compresslevel=1)) for part in range(5)]
    uri = put_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                        files=files, document=manifest_document(
                            source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                            files=files, columns=columns))
    del numbers, files
    storage = MemoryStorage(s3)
    manifest = read_manifest(uri, storage)
    gc.collect()
    tracemalloc.start()
    try:
        seen, last = 0, ""
        for info in manifest_objects(manifest, storage, scratch=tmp_path / "scratch"):
            assert info.key > last
            seen, last = seen + 1, info.key
        streaming = tracemalloc.get_traced_memory()[1]
        base = tracemalloc.get_traced_memory()[0]
        held = [ObjectInfo(f"FILE/VO-{i:07d}/VO-{i:07d}_master.mov", i, ETAG.upper().lower(),
                           datetime.fromisoformat("2026-11-27T09:30:15.250Z"))
                for i in range(count // 10)]
        holding = (tracemalloc.get_traced_memory()[0] - base) * 10
    finally:
        tracemalloc.stop()
    assert seen == count and len(held) == count // 10
    print(f"peak {streaming / 2**20:.1f} MiB streaming, {holding / 2**20:.1f} MiB held")
    assert streaming < holding / 2, (streaming, holding)


def test_the_external_sort_merges_in_passes_and_cleans_up(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """More runs than FAN_IN are merged in passes; equal keys keep their input order; the
    temp folder goes when the iteration ends and when it is stopped half-way."""
    monkeypatch.setattr(extsort, "FAN_IN", 3)
    monkeypatch.setattr(extsort, "BLOCK_ROWS", 4)
    rows = [(random.Random(n).randrange(60), n) for n in range(500)]
    scratch = tmp_path / "scratch"
    result = list(extsort.sorted_rows(iter(rows), itemgetter(0), scratch=scratch, run_rows=9))
    assert result == sorted(rows, key=itemgetter(0))  # sorted() is stable too
    assert list(scratch.iterdir()) == []
    stopped = extsort.sorted_rows(iter(rows), itemgetter(0), scratch=scratch, run_rows=9)
    assert next(stopped) == result[0]
    assert len(list(scratch.rglob("*.pickle"))) > 0
    stopped.close()
    assert list(scratch.iterdir()) == []


def test_a_key_listed_twice_is_yielded_once(s3: MemoryS3, tmp_path: Path) -> None:
    uri = write_inventory(s3, source_bucket=SOURCE, dest_bucket=DEST, created=CREATED,
                          objects=[obj("b"), obj("a", 1), obj("a", 1), obj("c")], files=2)
    assert [o.key for o in listed(uri, s3, tmp_path, run_rows=2)] == ["a", "b", "c"]
