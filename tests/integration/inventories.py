"""Helpers that WRITE S3 Inventory manifests in AWS's format (for the tests of
mpr_cli.s3inventory and of `mpr import --inventory`).

The layout and the format follow the AWS S3 User Guide (storage-inventory.md,
storage-inventory-location.md): gzip CSV data files without a header, every field quoted, the
Key URL-encoded (form encoding: a space is "+", a plus "%2B"), under
`prefix/source-bucket/config-ID/data/`; `manifest.json` and `manifest.checksum` (the MD5 of
manifest.json) under `prefix/source-bucket/config-ID/YYYY-MM-DDTHH-MMZ/`.

Anything with boto3's `put_object(Bucket=, Key=, Body=)` can be the client (the unit tests pass
an in-memory one).
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

CURRENT_SCHEMA = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass",
                  "IsMultipartUploaded", "ReplicationStatus", "EncryptionStatus")
VERSIONED_SCHEMA = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size",
                    "LastModifiedDate", "ETag", "StorageClass", "IsMultipartUploaded")
CONFIG_ID = "mpr-daily"
_SAFE = re.compile(r"[A-Za-z0-9_./-]*")  # what quote_plus leaves as it is

InventoryObject = tuple[str, int, str, datetime]  # key, size, etag, last modified


def encode_key(key: str) -> str:
    """A key as AWS writes it in a CSV inventory (URL form encoding, "/" kept)."""
    return key if _SAFE.fullmatch(key) else quote_plus(key, safe="/")


@functools.lru_cache(maxsize=1024)
def stamp(moment: datetime) -> str:
    """LastModifiedDate as AWS writes it: 2026-11-28T14:00:00.000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def object_fields(obj: InventoryObject, source_bucket: str,
                  columns: Sequence[str] = CURRENT_SCHEMA, **extra: str) -> list[str]:
    """One CSV row of `columns` for an object; `extra` sets (or overrides) other columns,
    e.g. IsLatest="false", VersionId="v2", Key="raw%ZZ"."""
    key, size, etag, modified = obj
    values = {"Bucket": source_bucket, "Key": encode_key(key), "Size": str(size),
              "LastModifiedDate": stamp(modified), "ETag": etag, "StorageClass": "STANDARD",
              "IsMultipartUploaded": "true" if "-" in etag else "false",
              "ReplicationStatus": "", "EncryptionStatus": "SSE-S3", "VersionId": "",
              "IsLatest": "true", "IsDeleteMarker": "false"}
    values.update(extra)
    return [values[name] for name in columns]


def csv_gz(rows: Iterable[Sequence[str]]) -> bytes:
    """A data file: rows as CSV, every field quoted, no header, gzip."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode("utf-8"), compresslevel=1, mtime=0)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest_document(*, source_bucket: str, dest_bucket: str, created: datetime,
                      files: Sequence[tuple[str, bytes]],
                      columns: Sequence[str] = CURRENT_SCHEMA, file_format: str = "CSV",
                      ) -> dict[str, Any]:
    """manifest.json as AWS writes it, for data files given as (key, content)."""
    return {"sourceBucket": source_bucket, "destinationBucket": f"arn:aws:s3:::{dest_bucket}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(created.timestamp() * 1000)),
            "fileFormat": file_format, "fileSchema": ", ".join(columns),
            "files": [{"key": key, "size": len(data), "MD5checksum": md5_hex(data)}
                      for key, data in files]}


def data_files(objects: Sequence[InventoryObject], *, source_bucket: str, files: int,
               prefix: str, shuffle: bool, columns: Sequence[str] = CURRENT_SCHEMA,
               seed: int = 16) -> list[tuple[str, bytes]]:
    """The objects' rows dealt out over `files` data files (shuffled first if asked):
    (key in the destination bucket, gzip CSV content)."""
    rows = [object_fields(obj, source_bucket, columns) for obj in objects]
    if shuffle:
        random.Random(seed).shuffle(rows)
    count = max(1, files)
    folder = f"{prefix}/{source_bucket}/{CONFIG_ID}/data"
    return [(f"{folder}/{number:04d}-{md5_hex(str(number).encode())}.csv.gz",
             csv_gz(rows[number::count])) for number in range(count)]


def put_inventory(s3_client: Any, *, source_bucket: str, dest_bucket: str, created: datetime,
                  files: Sequence[tuple[str, bytes]], prefix: str = "inv",
                  document: dict[str, Any] | None = None) -> str:
    """Put data files, manifest.json and manifest.checksum into `dest_bucket`; the manifest's
    s3:// URI. `document` replaces the manifest AWS would write (to test a broken one)."""
    for key, data in files:
        s3_client.put_object(Bucket=dest_bucket, Key=key, Body=data)
    document = document if document is not None else manifest_document(
        source_bucket=source_bucket, dest_bucket=dest_bucket, created=created, files=files)
    body = json.dumps(document, indent=2).encode()
    folder = f"{prefix}/{source_bucket}/{CONFIG_ID}/{created.strftime('%Y-%m-%dT%H-%MZ')}"
    s3_client.put_object(Bucket=dest_bucket, Key=f"{folder}/manifest.json", Body=body)
    s3_client.put_object(Bucket=dest_bucket, Key=f"{folder}/manifest.checksum",
                         Body=md5_hex(body).encode())
    return f"s3://{dest_bucket}/{folder}/manifest.json"


def write_inventory(s3_client: Any, *, source_bucket: str, dest_bucket: str,
                    objects: Sequence[InventoryObject], files: int = 3, created: datetime,
                    prefix: str = "inv", shuffle: bool = False) -> str:
    """The inventory of `objects` (of `source_bucket`) in AWS's layout in `dest_bucket`: the
    s3:// URI of its manifest.json."""
    written = data_files(objects, source_bucket=source_bucket, files=files, prefix=prefix,
                         shuffle=shuffle)
    return put_inventory(s3_client, source_bucket=source_bucket, dest_bucket=dest_bucket,
                         created=created, files=written, prefix=prefix)


def local_manifest(s3_client: Any, folder: Path, *, source_bucket: str, dest_bucket: str,
                   objects: Sequence[InventoryObject], files: int = 3, created: datetime,
                   prefix: str = "inv", shuffle: bool = False) -> Path:
    """Like write_inventory, but manifest.json (and manifest.checksum) in a local `folder`;
    the data files are still in `dest_bucket`, where the manifest says they are."""
    written = data_files(objects, source_bucket=source_bucket, files=files, prefix=prefix,
                         shuffle=shuffle)
    for key, data in written:
        s3_client.put_object(Bucket=dest_bucket, Key=key, Body=data)
    body = json.dumps(manifest_document(source_bucket=source_bucket, dest_bucket=dest_bucket,
                                        created=created, files=written), indent=2).encode()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.checksum").write_text(md5_hex(body))
    path = folder / "manifest.json"
    path.write_bytes(body)
    return path


def bucket_objects(s3_client: Any, bucket: str, prefix: str = "") -> list[InventoryObject]:
    """The real listing of a bucket as inventory objects (ETag unquoted), in key order: "the
    inventory of this bucket"."""
    found: list[InventoryObject] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                    Prefix=prefix):
        for item in page.get("Contents", ()):
            found.append((item["Key"], int(item["Size"]), item["ETag"].strip('"'),
                          item["LastModified"]))
    return found
