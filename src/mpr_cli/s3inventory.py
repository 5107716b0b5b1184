"""S3 Inventory manifests: the object list of a bucket without listing it (`--inventory URI`).

What is taken from where (AWS S3 User Guide):

- `storage-inventory-location.md` ("Inventory manifest"): `manifest.json` holds `sourceBucket`,
  `destinationBucket` (an ARN, `arn:aws:s3:::name`), `version`, `creationTimestamp` (the
  start of the bucket scan, milliseconds since the epoch, as a string), `fileFormat` (`CSV`,
  `ORC` or `Parquet`), `fileSchema` (for CSV the comma-separated column names, e.g.
  `Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, ...`) and
  `files`, a list of `{key, size, MD5checksum}` naming the data files in the destination
  bucket; `manifest.checksum` beside it is the MD5 of `manifest.json` (not checked here: the
  MD5checksum of every data file is).
- `storage-inventory.md` ("Amazon S3 inventory list"): a CSV data file is compressed with GZIP;
  in it "the key name is URL-encoded and must be decoded"; VersionId and IsLatest are there
  only when all versions are listed, IsDeleteMarker too (`true` for a delete marker).
  The files have no header row: the columns are the manifest's fileSchema, in its order.

The docs do not say which URL encoding: AWS writes the form encoding (a space is `+`, a plus
`%2B`; cloud-custodian/cloud-custodian#1997 and #1998 decode it with `unquote_plus`), so a
Key is decoded with `urllib.parse.unquote_plus` as strict UTF-8 (`%2F` and `/` both give `/`).

Decisions where the docs are silent: a bare bucket name is accepted for `destinationBucket`
(hand-written manifests); a schema without LastModifiedDate gives every object the manifest's
creation time; rows of another Bucket, delete markers, versions that are not the latest and
keys ending in "/" (folder markers, as `Storage.list_objects` skips them) are skipped; the data
file's size is checked as well as its MD5checksum.

`manifest_objects` yields the objects in key order (Python's str order, which is the UTF-8 byte
order S3 lists in) whatever order the files and rows come in: `mpr_cli.extsort`, an external
merge sort whose sorted runs of at most `RUN_ROWS` rows go to temp files under `scratch` (none
when everything fits in one run), merged with `heapq.merge`. Memory holds one run, never the
inventory. The data files are streamed (gzip over the S3 body, chunk by chunk).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from mpr_cli.errors import InventoryError, InventoryStale, S3Unavailable, StorageError
from mpr_cli.extsort import RUN_ROWS, sorted_rows
from mpr_cli.fixity.budget import parse_duration as _seconds_of
from mpr_cli.storage import ObjectInfo, Storage

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
REQUIRED_COLUMNS = ("Key", "Size", "ETag")
_ARN = re.compile(r"arn:aws[a-z-]*:s3:::([^/]+)")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DIGITS = re.compile(r"[0-9]+")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_FIX = "use the manifest.json of an S3 Inventory in CSV format"
_DAMAGED = "the inventory is damaged or incomplete: use another one"

Row = tuple[str, int, str, datetime]  # key, size, etag, last modified: what a run holds


@dataclass(frozen=True)
class ManifestFile:
    """One data file the manifest names (in the destination bucket)."""

    key: str
    size: int
    md5: str | None


@dataclass(frozen=True)
class Manifest:
    """A parsed `manifest.json`: `location` is what the user gave, for messages."""

    location: str
    source_bucket: str
    destination_bucket: str
    created: datetime
    columns: tuple[str, ...]
    files: tuple[ManifestFile, ...]

    def age(self, now: datetime) -> timedelta:
        return now - self.created


# -- the manifest ---------------------------------------------------------------------------


def read_manifest(uri: str, storage: Storage) -> Manifest:
    """The manifest at `s3://bucket/key`, `file:///path` or a local path. InventoryError (one
    line naming the manifest and the fix) when it is missing or unusable; S3Unavailable when
    S3 itself fails."""
    data = _manifest_bytes(uri, storage)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryError(f"inventory manifest {uri} is not JSON ({exc})", hint=_FIX) from None
    if not isinstance(document, dict):
        raise InventoryError(f"inventory manifest {uri} is not a JSON object", hint=_FIX)
    return _parse_manifest(uri, document)


def _manifest_bytes(uri: str, storage: Storage) -> bytes:
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not bucket or not key:
            raise InventoryError(f"inventory {uri} names no object",
                                 hint="write s3://BUCKET/path/manifest.json")
        try:
            return storage.read_bytes(bucket, key, MAX_MANIFEST_BYTES)
        except S3Unavailable:
            raise
        except StorageError as exc:
            raise InventoryError(f"cannot read inventory manifest {uri}: {exc.message}",
                                 hint=exc.hint or "check the --inventory URI") from None
    path = Path(unquote(urlsplit(uri).path)) if uri.startswith("file://") else Path(uri)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise InventoryError(f"cannot read inventory manifest {uri}: {exc.strerror or exc}",
                             hint="check the --inventory path") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise InventoryError(f"inventory manifest {uri} is larger than {MAX_MANIFEST_BYTES} "
                             "bytes", hint=_FIX)
    return data


def _parse_manifest(uri: str, document: dict[str, Any]) -> Manifest:
    def field(name: str) -> Any:
        if name not in document:
            raise InventoryError(f"inventory manifest {uri} has no {name}", hint=_FIX)
        return document[name]

    fmt = field("fileFormat")
    if not isinstance(fmt, str) or fmt.upper() != "CSV":
        raise InventoryError(f"inventory manifest {uri} is in {fmt} format; mpr reads CSV "
                             "inventories only", hint="configure the inventory's output "
                             "format as CSV and use its next manifest")
    return Manifest(
        location=uri,
        source_bucket=_bucket_name(uri, "sourceBucket", field("sourceBucket"), arn=False),
        destination_bucket=_bucket_name(uri, "destinationBucket", field("destinationBucket"),
                                        arn=True),
        created=_created(uri, field("creationTimestamp")),
        columns=_columns(uri, field("fileSchema")),
        files=_files(uri, field("files")))


def _invalid(uri: str, name: str, value: Any, expected: str) -> InventoryError:
    shown = json.dumps(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return InventoryError(f"inventory manifest {uri} has an invalid {name} {shown}: expected "
                          f"{expected}", hint=_FIX)


def _bucket_name(uri: str, name: str, value: Any, *, arn: bool) -> str:
    text = value if isinstance(value, str) else ""
    match = _ARN.fullmatch(text) if arn else None
    bucket = match.group(1) if match else text
    if not _BUCKET.fullmatch(bucket):
        expected = "arn:aws:s3:::BUCKET or a bucket name" if arn else "a bucket name"
        raise _invalid(uri, name, value, expected)
    return bucket


def _created(uri: str, value: Any) -> datetime:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not _DIGITS.fullmatch(text):
        raise _invalid(uri, "creationTimestamp", value, "milliseconds since 1970 as a string")
    try:
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid(uri, "creationTimestamp", value, "a time in milliseconds") from None


def _columns(uri: str, value: Any) -> tuple[str, ...]:
    columns = tuple(part.strip() for part in value.split(",")) if isinstance(value, str) else ()
    if not columns or "" in columns or len(set(columns)) != len(columns):
        raise _invalid(uri, "fileSchema", value, "comma-separated column names")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InventoryError(f"inventory manifest {uri} has no {', '.join(missing)} column in "
                             "its fileSchema", hint="include Size and ETag (the Key is always "
                             "there) in the inventory configuration's fields")
    return columns


def _files(uri: str, value: Any) -> tuple[ManifestFile, ...]:
    if not isinstance(value, list):
        raise _invalid(uri, "files", value, "a list of {key, size, MD5checksum}")
    return tuple(_file(uri, item) for item in value)


def _file(uri: str, item: Any) -> ManifestFile:
    entry = item if isinstance(item, dict) else {}
    key, size, md5 = entry.get("key"), entry.get("size"), entry.get("MD5checksum")
    if not isinstance(key, str) or not key or isinstance(size, bool) or \
            not isinstance(size, int) or size < 0:
        raise _invalid(uri, "entry in files", item, "{key, size, MD5checksum}")
    if md5 is not None and not (isinstance(md5, str) and _MD5.fullmatch(md5)):
        raise _invalid(uri, "MD5checksum", md5, "32 hexadecimal digits")
    return ManifestFile(key=key, size=size, md5=md5.lower() if md5 else None)


# -- age ------------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`--inventory-max-age`: `48h`, `2d`, `90m`, `3600s`, `1h30m` (mpr's one duration syntax,
    `mpr_cli.fixity.budget.parse_duration`); ValueError saying what is accepted otherwise."""
    return timedelta(seconds=_seconds_of(text))


def check_fresh(manifest: Manifest, max_age: timedelta, now: datetime) -> None:
    """InventoryStale when the inventory was made more than `max_age` before `now`."""
    age = manifest.age(now)
    if age <= max_age:
        return
    made = manifest.created.strftime("%Y-%m-%d %H:%M UTC")
    raise InventoryStale(
        f"inventory {manifest.location} is {describe_age(age)} old (made {made}), more than "
        f"--inventory-max-age {_short(max_age)}",
        hint="use a newer inventory or raise --inventory-max-age")


def describe_age(age: timedelta) -> str:
    """An age in its two largest units: `3 days 2 hours`, `5 hours 10 minutes`, `40 seconds`."""
    seconds = max(0, int(age.total_seconds()))
    parts = [(seconds // 86_400, "day"), (seconds // 3600 % 24, "hour"),
             (seconds // 60 % 60, "minute"), (seconds % 60, "second")]
    first = next((i for i, (count, _) in enumerate(parts) if count), len(parts) - 1)
    shown = [f"{count} {unit}{'' if count == 1 else 's'}"
             for count, unit in parts[first:first + 2] if count or first == len(parts) - 1]
    return " ".join(shown)


def _short(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for size, unit in ((3600, "h"), (60, "m")):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- the objects ----------------------------------------------------------------------------


def manifest_objects(manifest: Manifest, storage: Storage, *, scratch: Path,
                     run_rows: int = RUN_ROWS) -> Iterator[ObjectInfo]:
    """Every current object of the inventory, in key order (see the module docstring); a key
    listed twice is yielded once. InventoryError names the data file (and row) that is
    missing, damaged or malformed; every file is read before the first object is yielded."""
    last = None
    rows = sorted_rows(_all_rows(manifest, storage), itemgetter(0), scratch=scratch,
                       run_rows=run_rows)
    for key, size, etag, modified in rows:
        if key != last:
            yield ObjectInfo(key=key, size=size, etag=etag, last_modified=modified)
        last = key


def _all_rows(manifest: Manifest, storage: Storage) -> Iterator[Row]:
    parse = _row_parser(manifest)
    for entry in manifest.files:
        yield from _file_rows(manifest, storage, entry, parse)


class _Body(io.RawIOBase):
    """A file over a stream of chunks (an S3 body), counting and hashing what goes by."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self.chunks, self.pending = chunks, memoryview(b"")
        self.digest, self.size = hashlib.md5(usedforsecurity=False), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.digest.update(chunk)
            self.size += len(chunk)
            self.pending = memoryview(chunk)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def drain(self) -> None:
        while self.readinto(bytearray(64 * 1024)):
            pass

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)  # the S3 body, when stopped half-way
        if close is not None:
            close()
        super().close()


def _file_rows(manifest: Manifest, storage: Storage, entry: ManifestFile,
               parse: Callable[[list[str]], Row | None]) -> Iterator[Row]:
    where = f"data file s3://{manifest.destination_bucket}/{entry.key} of inventory " \
            f"{manifest.location}"
    number = 0
    with _Body(storage.iter_chunks(manifest.destination_bucket, entry.key)) as body:
        try:
            with gzip.GzipFile(fileobj=body, mode="rb") as unzipped, \
                    io.TextIOWrapper(unzipped, encoding="utf-8", newline="") as text:
                for number, fields in enumerate(csv.reader(text, strict=True), 1):  # noqa: B007
                    row = parse(fields)
                    if row is not None:
                        yield row
            body.drain()
        except S3Unavailable:
            raise
        except StorageError as exc:
            raise InventoryError(f"cannot read {where}: {exc.message}", hint=_DAMAGED) from None
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
            raise InventoryError(f"{where} is not a readable gzip CSV after row {number} "
                                 f"({type(exc).__name__}: {exc})", hint=_DAMAGED) from None
        except ValueError as exc:  # the row parser's: a malformed row
            raise InventoryError(f"{where}, row {number}: {exc}", hint=_DAMAGED) from None
        _check_body(body, entry, where)


def _check_body(body: _Body, entry: ManifestFile, where: str) -> None:
    """The file read is the one the manifest names: its MD5checksum (when given), its size."""
    if entry.md5 is not None and body.digest.hexdigest() != entry.md5:
        raise InventoryError(f"{where} does not match its MD5checksum {entry.md5} (read "
                             f"{body.digest.hexdigest()})", hint=_DAMAGED)
    if body.size != entry.size:
        raise InventoryError(f"{where} has {body.size} bytes, the manifest says {entry.size}",
                             hint=_DAMAGED)


def _row_parser(manifest: Manifest) -> Callable[[list[str]], Row | None]:
    """A row parser for the manifest's fileSchema: a row as (key, size, etag, last modified),
    None for a row that is not a current object of the source bucket; ValueError saying what
    is wrong with a malformed row. (A closure: this runs once per object.)"""
    index = {name: i for i, name in enumerate(manifest.columns)}
    width, source, created = len(manifest.columns), manifest.source_bucket, manifest.created
    key_at, size_at, etag_at = index["Key"], index["Size"], index["ETag"]
    modified_at, bucket_at = index.get("LastModifiedDate"), index.get("Bucket")
    latest_at, marker_at = index.get("IsLatest"), index.get("IsDeleteMarker")

    def parse(fields: list[str]) -> Row | None:
        if len(fields) != width:
            raise ValueError(f"{len(fields)} fields where the fileSchema names {width}")
        if bucket_at is not None and fields[bucket_at] != source:
            return None
        if marker_at is not None and _flag(fields[marker_at], "IsDeleteMarker"):
            return None
        if latest_at is not None and not _flag(fields[latest_at], "IsLatest"):
            return None
        key = _decoded_key(fields[key_at])
        if key[-1] == "/":
            return None
        size = fields[size_at]
        if not (size.isascii() and size.isdigit()):
            raise ValueError(f"Size {size!r} is not a number of bytes")
        modified = created if modified_at is None else _timestamp(fields[modified_at])
        return key, int(size), fields[etag_at].strip('"'), modified

    return parse


def _decoded_key(encoded: str) -> str:
    if "%" in encoded or "+" in encoded:
        try:
            key = unquote_plus(encoded, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"Key {encoded!r} is not URL-encoded UTF-8") from None
    else:
        key = encoded
    if not key:
        raise ValueError("the Key is empty")
    return key


def _flag(value: str, column: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{column} {value!r} is neither true nor false")
    return lowered == "true"


def _timestamp(value: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"LastModifiedDate {value!r} is not an ISO 8601 time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


__all__ = ["Manifest", "ManifestFile", "check_fresh", "describe_age", "manifest_objects",
           "parse_duration", "read_manifest"]
