"""The big-bucket benchmark's data set: tiny objects named like real assets, the catalogue rows
an import would have written for them, and an S3 Inventory report of them.

Asset i (0, 1, 2, ...) lives in carrier folder FOLDERS[i % 5] and has 6 keys, named like the
shipped rules expect (`<code>.mov|.wav` master, `.mp4|.mp3` streaming copy, `<code>.json`,
`<code>.<stream ext>.json`, `<code>.md5`, `<code>_qc.pdf`). Each body is the key itself (a few
dozen bytes), so size and MD5 (= the single-part ETag) follow from the name and the catalogue
and the inventory can be written for objects that were never put.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg

KEYS_PER_ASSET = 6
# carrier folder -> media type of the assets placed in it (src/mpr_cli/rules.toml [folders])
FOLDERS = (("BRD", "video"), ("DVD", "video"), ("FILE", "video"), ("CD", "audio"),
           ("DAT", "audio"))
_SUFFIXES = {  # name after the code -> role
    "video": ((".mov", "master"), (".mp4", "streaming"), (".json", "metadata"),
              (".mp4.json", "metadata"), (".md5", "checksum"), ("_qc.pdf", "qc_report")),
    "audio": ((".wav", "master"), (".mp3", "streaming"), (".json", "metadata"),
              (".mp3.json", "metadata"), (".md5", "checksum"), ("_qc.pdf", "qc_report")),
}
_MIME = {".mov": "video/quicktime", ".wav": "audio/wav", ".mp4": "video/mp4",
         ".mp3": "audio/mpeg", ".json": "application/json", ".md5": "text/plain",
         ".pdf": "application/pdf"}
INVENTORY_SCHEMA = "Bucket, Key, Size, LastModifiedDate, ETag, IsMultipartUploaded"
INVENTORY_CONFIG_ID = "bench-daily"


@dataclass(frozen=True)
class SeedObject:
    """One key of the data set, with what its listing and its catalogue row say."""

    asset: int  # the asset's index; its catalogue id is asset + 1
    key: str
    role: str

    @property
    def body(self) -> bytes:
        return self.key.encode()

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()

    @property
    def mime(self) -> str:
        return _MIME["." + self.key.rsplit(".", 1)[-1]]


def asset_code(index: int) -> tuple[str, str, str]:
    """(inventory code, media type, carrier folder) of asset `index`."""
    folder, media = FOLDERS[index % len(FOLDERS)]
    group, number = divmod(index, 100_000)  # VO-B00-00000, AO-A00-00003, ...
    kind = "VO-B" if media == "video" else "AO-A"
    return f"{kind}{group:02d}-{number:05d}", media, folder


def objects(first: int, end: int) -> Iterator[SeedObject]:
    """The keys of assets first..end-1, asset by asset."""
    for index in range(first, end):
        code, media, folder = asset_code(index)
        for suffix, role in _SUFFIXES[media]:
            yield SeedObject(index, f"{folder}/{code}{suffix}", role)


def put_objects(client: Any, bucket: str, first: int, end: int, workers: int) -> int:
    """put_object every key of assets first..end-1 on `workers` threads; returns the count."""
    def put(item: SeedObject) -> None:
        client.put_object(Bucket=bucket, Key=item.key, Body=item.body)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(1 for _ in pool.map(put, objects(first, end), chunksize=64))


def catalogue(database_url: str, bucket: str, first: int, end: int) -> int:
    """Write the rows an import would have left for assets first..end-1 (assets and
    asset_files: role, in_bucket, size, ETag, MD5, MIME type) with COPY; returns the files."""
    files = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY assets (id, inventory_code, media_type) FROM STDIN") as copy:
                for index in range(first, end):
                    code, media, _ = asset_code(index)
                    copy.write_row((index + 1, code, media))
            with cur.copy("COPY asset_files (asset_id, bucket, key, role, in_bucket, size, "
                          "etag, md5, mime_type) FROM STDIN") as copy:
                for item in objects(first, end):
                    copy.write_row((item.asset + 1, bucket, item.key, item.role, True,
                                    len(item.body), item.md5, item.md5, item.mime))
                    files += 1
            cur.execute("SELECT setval(pg_get_serial_sequence('assets', 'id'), "
                        "(SELECT max(id) FROM assets))")
        conn.execute("ANALYZE assets")
        conn.execute("ANALYZE asset_files")
    return files


@dataclass(frozen=True)
class Inventory:
    uri: str  # s3://<bucket>/<...>/manifest.json
    keys: int
    files: int
    csv_gz_bytes: int


def _csv_gz(rows: list[SeedObject], bucket: str, modified: str) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for item in rows:
        # Key is URL-encoded in AWS's CSV; these keys have nothing to encode but "/", kept.
        writer.writerow((bucket, item.key, len(item.body), modified, item.md5, "false"))
    return gzip.compress(text.getvalue().encode(), compresslevel=6)


def write_inventory(client: Any, inventory_bucket: str, source_bucket: str, assets: int,
                    files: int) -> Inventory:
    """An S3 Inventory report (AWS's layout and manifest fields, CSV, gzip) of assets 0..assets-1
    in `source_bucket`, split into `files` data files, written to `inventory_bucket`."""
    now = dt.datetime.now(dt.UTC)
    modified = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    base = f"{source_bucket}/{INVENTORY_CONFIG_ID}"
    per_file = -(-assets // files)
    entries, total_bytes = [], 0
    for start in range(0, assets, per_file):
        body = _csv_gz(list(objects(start, min(assets, start + per_file))), source_bucket,
                       modified)
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        client.put_object(Bucket=inventory_bucket, Key=key, Body=body)
        entries.append({"key": key, "size": len(body),
                        "MD5checksum": hashlib.md5(body, usedforsecurity=False).hexdigest()})
        total_bytes += len(body)
    manifest = json.dumps({
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{inventory_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(now.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": INVENTORY_SCHEMA,
        "files": entries,
    }, indent=2).encode()
    folder = f"{base}/{now.strftime('%Y-%m-%dT%H-%MZ')}"
    client.put_object(Bucket=inventory_bucket, Key=f"{folder}/manifest.json", Body=manifest)
    client.put_object(Bucket=inventory_bucket, Key=f"{folder}/manifest.checksum",
                      Body=hashlib.md5(manifest, usedforsecurity=False).hexdigest().encode())
    return Inventory(f"s3://{inventory_bucket}/{folder}/manifest.json",
                     assets * KEYS_PER_ASSET, len(entries), total_bytes)
