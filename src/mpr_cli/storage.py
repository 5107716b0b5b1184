"""The only module that talks to S3 (boto3).

Every botocore failure leaves this module as a `StorageError` that names the bucket or key and
says what to fix; secrets never appear in a message. Listings and downloads stream: memory stays
bounded whatever the size of the bucket or the object.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from mpr_cli.atomic import replacing
from mpr_cli.config import AddressingStyle, RequestChecksums, Settings
from mpr_cli.errors import NoSuchObject, S3Unavailable, StorageError, UnsafeKeyError
from mpr_cli.secrets import mask_url, scrub

if TYPE_CHECKING:
    from mpr_cli.s3xml import ListPage

MIB = 1024 * 1024
PAGE_SIZE = 1000
TRANSFER_CONFIG = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                                 max_concurrency=4)
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
_CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"


class ObjectInfo(NamedTuple):
    """One object as a listing or a HEAD shows it (a named tuple: a listing makes one per key,
    and a tuple costs a sixth of a frozen dataclass to build)."""

    key: str
    size: int
    etag: str
    last_modified: datetime

    @property
    def single_part_md5(self) -> str | None:
        """The ETag when it is the object's MD5 (single-part upload), else None."""
        return single_part_md5(self.etag)


def single_part_md5(etag: str) -> str | None:
    """An ETag (quoted or not) when it is a plain MD5, lower-case; None for a multipart
    upload's `<md5>-<parts>` or anything else."""
    etag = etag.strip('"')
    return etag.lower() if _MD5_HEX.fullmatch(etag) else None


@dataclass(frozen=True)
class Download:
    """A local copy of one object; `md5` is set when it was asked for.

    `temp_root` is the private temp dir made by `download_to_temp` (None for `download_to`).
    """

    path: Path
    size: int
    md5: str | None
    temp_root: Path | None = None


@dataclass(frozen=True)
class BucketProbe:
    exists: bool
    server: str  # the response's Server header, "" when it sent none


def _server_header(response: Any) -> str:
    headers = (response or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("server", ""))


def client_options(settings: Settings) -> dict[str, Any]:
    """The botocore Config options that differ between S3 services: the addressing style
    (S3_ADDRESSING_STYLE) and when checksums are sent and checked (S3_REQUEST_CHECKSUMS).
    Unset, a server named by S3_ENDPOINT_URL gets path-style URLs and checksums only where S3
    requires them (what MinIO, SeaweedFS, GCS and R2 understand); AWS gets botocore's own
    defaults (auto, when_supported)."""
    third_party = bool(settings.s3_endpoint_url)
    style = settings.s3_addressing_style or (
        AddressingStyle.PATH if third_party else AddressingStyle.AUTO)
    checksums = settings.s3_request_checksums or (
        RequestChecksums.WHEN_REQUIRED if third_party else RequestChecksums.WHEN_SUPPORTED)
    return {"s3": {"addressing_style": style.value},
            "request_checksum_calculation": checksums.value,
            "response_checksum_validation": checksums.value}


def make_client(settings: Settings, *, connect_timeout: float = 10, read_timeout: float = 60,
                max_attempts: int = 5) -> Any:
    """A thread-safe boto3 S3 client for AWS or any S3-compatible server."""
    endpoint = settings.s3_endpoint_url
    config = Config(signature_version="s3v4", connect_timeout=connect_timeout,
                    read_timeout=read_timeout, max_pool_connections=settings.io_workers + 4,
                    retries={"mode": "adaptive", "max_attempts": max_attempts},
                    **client_options(settings))
    key_id, secret = settings.aws_access_key_id, settings.aws_secret_access_key
    session = boto3.session.Session()
    parsers = session._session.get_component("response_parser_factory")  # noqa: SLF001
    parsers.set_parser_defaults(timestamp_parser=_parse_timestamp)
    return session.client(
        "s3", endpoint_url=endpoint, region_name=settings.aws_region, config=config,
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )


def _parse_timestamp(value: str) -> datetime:
    """S3's timestamps without dateutil, botocore's default parser, which was more than half
    of the CPU of listing 20,000 keys (bench/bench_import.py): ISO 8601 (listings) with the C
    parser, HTTP dates (the Last-Modified of every GET) with the e-mail one (5 us, not 46)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            from botocore.utils import parse_timestamp

            stamp: datetime = parse_timestamp(value)
            return stamp
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def safe_local_path(root: Path, key: str) -> Path:
    """Map an S3 key to a path strictly inside `root`, or raise UnsafeKeyError."""
    if not key or "\x00" in key:
        raise UnsafeKeyError(f"unsafe S3 key {key!r}: empty or contains NUL", key=key)
    pure = PurePosixPath(key)
    if pure.is_absolute() or ".." in pure.parts or key.endswith("/"):
        raise UnsafeKeyError(f"unsafe S3 key {key!r}: absolute, has '..' or names a folder",
                             key=key, hint="rename the object in the bucket")
    path = root / pure
    base = root.resolve()
    resolved = path.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise UnsafeKeyError(f"unsafe S3 key {key!r}: its local path leaves {root}", key=key,
                             hint="rename the object or remove the symlink under the folder")
    return path


def remove_download(download: Download) -> None:
    """Remove a download: its private temp dir if it has one, else just the file."""
    if download.temp_root is not None:
        shutil.rmtree(download.temp_root, ignore_errors=True)
    else:
        download.path.unlink(missing_ok=True)


def _object_info(key: str, size: int, etag: str, last_modified: datetime) -> ObjectInfo:
    return ObjectInfo(key=key, size=int(size), etag=etag.strip('"'), last_modified=last_modified)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _new_md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


class Storage:
    """S3 operations for one process; safe to share between threads."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        self.bucket_in = settings.s3_bucket_in
        self.bucket_out = settings.s3_bucket_out

    # -- errors -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint as it may be shown (credentials in it masked)."""
        return mask_url(self.settings.s3_endpoint_url or str(self.client.meta.endpoint_url))

    def _scrub(self, text: str) -> str:
        return scrub(text, self.settings.secret_values())

    def _bucket_hint(self, bucket: str) -> str:
        variable = {self.bucket_in: "S3_BUCKET_IN", self.bucket_out: "S3_BUCKET_OUT"}.get(bucket)
        return f"create it or fix {variable}" if variable else "create it or fix the bucket name"

    def _translate(self, exc: Exception, action: str, bucket: str, key: str | None) -> StorageError:
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
            exc = exc.__context__
        where = f"s3://{bucket}/{key}" if key else f"bucket {bucket}"
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return S3Unavailable(
                f"S3 unreachable at {self.endpoint} ({type(exc).__name__}) while trying to "
                f"{action} {where}", key=key,
                hint="check S3_ENDPOINT_URL and that the server is running")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return S3Unavailable(f"no S3 credentials to {action} {where}", key=key,
                                 hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        if isinstance(exc, ClientError):
            return self._translate_client_error(exc, action, bucket, key, where)
        if isinstance(exc, ParamValidationError):  # this one request was malformed
            return StorageError(f"S3 could not {action} {where}: {self._scrub(str(exc))}",
                                key=key)
        # a transfer broken off, a body cut short: the server or the network failed
        return S3Unavailable(f"S3 could not {action} {where}: {self._scrub(str(exc))}", key=key,
                             hint="check that the S3 server is running and reachable")

    def _translate_client_error(self, exc: ClientError, action: str, bucket: str,
                                key: str | None, where: str) -> StorageError:
        code, status = _error_code(exc), _status(exc)
        if code in _MISSING_BUCKET or (key is None and (code in _MISSING or status == 404)):
            return StorageError(f"bucket {bucket} does not exist", key=key,
                                hint=self._bucket_hint(bucket))
        if code in _MISSING or status == 404:
            return NoSuchObject(f"{where} does not exist", key=key,
                                hint="check the key: the object may have been moved or deleted")
        if code in _DENIED or status == 403:
            return StorageError(f"access denied ({code or status}) to {action} {where}",
                                key=key, hint=_CREDENTIALS_HINT + " and the bucket policy")
        message = self._scrub(str(exc.response.get("Error", {}).get("Message") or exc))
        failed = S3Unavailable if status >= 500 else StorageError  # 5xx after every retry
        return failed(f"S3 could not {action} {where}: {code or status} {message}", key=key)

    @contextmanager
    def _errors(self, action: str, bucket: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise self._translate(exc, action, bucket, key) from exc

    # -- reading ------------------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        return self.probe_bucket(bucket).exists

    def probe_bucket(self, bucket: str) -> BucketProbe:
        """HEAD the bucket: whether it exists, and the Server header the service answered
        with (how `mpr doctor` tells the provider); errors other than "missing" raise."""
        with self._errors("check", bucket):
            try:
                response = self.client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if _error_code(exc) in _MISSING or _status(exc) == 404:
                    return BucketProbe(False, _server_header(exc.response))
                raise
        return BucketProbe(True, _server_header(response))

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix`, page by page as S3 sends them; folder markers skipped."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix,
                                   PaginationConfig={"PageSize": PAGE_SIZE})
        with self._errors("list", bucket):
            for page in pages:
                for item in page.get("Contents", ()):
                    if not item["Key"].endswith("/"):
                        yield _object_info(item["Key"], item["Size"], item.get("ETag", ""),
                                           item["LastModified"])

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._errors("read", bucket, key):
            try:
                reply = self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING - _MISSING_BUCKET or _status(exc) == 404:
                    return None
                raise
        return _object_info(key, reply["ContentLength"], reply.get("ETag", ""),
                            reply["LastModified"])

    def read_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """A small object (a sidecar) in memory; StorageError if it is over `max_bytes`."""
        with self._errors("read", bucket, key):
            reply = self.client.get_object(Bucket=bucket, Key=key)
            too_big = int(reply.get("ContentLength", 0)) > max_bytes
            try:
                data = b"" if too_big else reply["Body"].read(max_bytes + 1)
            finally:
                reply["Body"].close()
        if too_big or len(data) > max_bytes:
            raise StorageError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes", key=key,
                               hint="a sidecar this big is not expected: check the file")
        return data

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        """The first `length` bytes of an object (one ranged GET), e.g. a file signature."""
        with self._errors("read", bucket, key):
            reply = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}")
            try:
                return bytes(reply["Body"].read(length))
            finally:
                reply["Body"].close()

    def iter_chunks(self, bucket: str, key: str, chunk_size: int = 8 * MIB) -> Iterator[bytes]:
        """The object's bytes as a stream of chunks of at most `chunk_size`."""
        with self._errors("read", bucket, key):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

    def md5_of_object(self, bucket: str, key: str,
                      on_chunk: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Hex MD5 and byte count of an object, streamed in one pass; `on_chunk` is told the
        size of each chunk (for a progress bar)."""
        digest, size = _new_md5(), 0
        for chunk in self.iter_chunks(bucket, key):
            digest.update(chunk)
            size += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        return digest.hexdigest(), size

    # -- downloading --------------------------------------------------------------------------

    def download_to_temp(self, bucket: str, key: str, *, md5: bool = False,
                         temp_dir: Path | None = None) -> Download:
        """Stream an object into a new private temp dir; free it with `remove_download`."""
        base = temp_dir or self.settings.temp_dir
        if base is not None:
            Path(base).mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="mpr-dl-", dir=base))
        try:
            got = self._fetch(bucket, key, safe_local_path(folder, key), md5=md5)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Download(path=got.path, size=got.size, md5=got.md5, temp_root=folder)

    def download_to(self, bucket: str, key: str, root: Path, *, md5: bool = False) -> Download:
        """Stream an object to `root`/key (never outside `root`)."""
        return self._fetch(bucket, key, safe_local_path(root, key), md5=md5)

    def _fetch(self, bucket: str, key: str, path: Path, *, md5: bool) -> Download:
        """Write to a hidden partial file beside `path` (private), then move it into place."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path, permissions=0o600) as (_, out):
                digest, size = self._copy_object(bucket, key, out, md5=md5)
        except OSError as exc:
            raise self._local_error(exc, path, key) from exc
        return Download(path=path, size=size, md5=digest)

    def _copy_object(self, bucket: str, key: str, out: Any, *, md5: bool) -> tuple[str | None, int]:
        digest, size = (_new_md5() if md5 else None), 0
        for chunk in self.iter_chunks(bucket, key):
            out.write(chunk)
            size += len(chunk)
            if digest is not None:
                digest.update(chunk)
        return (digest.hexdigest() if digest else None), size

    @staticmethod
    def _local_error(exc: OSError, path: Path, key: str) -> StorageError:
        return StorageError(f"cannot write {path}: {exc.strerror or exc}", key=key,
                            hint="check free space and permissions (MPR_TEMP_DIR)")

    # -- writing ------------------------------------------------------------------------------

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str | None = None,
                    metadata: dict[str, str] | None = None) -> ObjectInfo:
        """Upload a local file (multipart above 8 MiB) and return what S3 now holds."""
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = metadata
        with self._errors("upload", bucket, key):
            self.client.upload_file(str(path), bucket, key, ExtraArgs=extra or None,
                                    Config=TRANSFER_CONFIG)
        return self._head_after_write(bucket, key)

    def upload_bytes(self, data: bytes, bucket: str, key: str, *,
                     content_type: str | None = None) -> ObjectInfo:
        extra = {"ContentType": content_type} if content_type else {}
        with self._errors("upload", bucket, key):
            self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        return self._head_after_write(bucket, key)

    def _head_after_write(self, bucket: str, key: str) -> ObjectInfo:
        info = self.head(bucket, key)
        if info is None:
            raise StorageError(f"s3://{bucket}/{key} is missing right after its upload", key=key,
                               hint="the S3 server lost the write: check its logs")
        return info

    def delete(self, bucket: str, key: str) -> None:
        with self._errors("delete", bucket, key):
            self.client.delete_object(Bucket=bucket, Key=key)

    def list_multipart_uploads(self, bucket: str) -> Iterator[tuple[str, str]]:
        """(key, upload id) of every incomplete multipart upload in the bucket."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors("list the unfinished uploads of", bucket):
            for page in paginator.paginate(Bucket=bucket):
                for item in page.get("Uploads", ()):
                    yield item["Key"], item["UploadId"]

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._errors("abort an unfinished upload to", bucket, key):
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def open_ranged(self, bucket: str, key: str, size: int,
                    block: int = 256 * 1024) -> RangedObject:
        """A read-only, seekable file over the object: each read the cache cannot serve is one
        ranged GET of at least `block` bytes (for parsers that read only headers)."""
        return RangedObject(self, bucket, key, size, block)

    def read_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        """Bytes start..end (inclusive) of an object, in one GET."""
        with self._errors("read", bucket, key):
            reply = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
            try:
                return bytes(reply["Body"].read())
            finally:
                reply["Body"].close()

    def presigned_get_url(self, bucket: str, key: str, expires: int = 3600) -> str:
        with self._errors("sign a URL for", bucket, key):
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires))

    def list_page(self, bucket: str, prefix: str = "", token: str | None = None,
                  delimiter: str | None = None, *, max_keys: int = PAGE_SIZE) -> ListPage:
        """One ListObjectsV2 page (from `token`, None for the first), read by
        `s3xml.parse_list_page` instead of botocore's generic parser (a quarter of its CPU);
        records equal `list_objects`' (folder markers included: the caller skips them).
        Signing, adaptive retries (5xx, SlowDown, a 200 with an error or a cut-off body) and
        errors are botocore's and `_errors`' as for every other call; only this call, in this
        thread, skips the generic parse (see `_take_list_page`)."""
        self.client.meta.events.register("before-parse.s3.ListObjectsV2", _take_list_page,
                                         unique_id=_LIST_PAGE_HOOK)
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if token:
            params["ContinuationToken"] = token
        if delimiter:
            params["Delimiter"] = delimiter
        with self._errors("list", bucket):
            _LISTING.active = True
            try:
                reply = self.client.list_objects_v2(**params)
            except S3Unavailable as exc:  # the body itself was unreadable (s3xml)
                raise S3Unavailable(f"{exc.message} (bucket {bucket})", hint=exc.hint) from exc
            finally:
                _LISTING.active = False
        page: ListPage | None = reply.get("MprPage")
        return page if page is not None else _page_from_reply(reply)


class RangedObject(io.RawIOBase):
    """A seekable binary file over one S3 object, read with ranged GETs and a one-block cache.

    Bytes read are counted in `fetched` and GETs in `requests`, so callers can show what a
    probe cost.
    """

    def __init__(self, storage: Storage, bucket: str, key: str, size: int, block: int) -> None:
        super().__init__()
        self.storage, self.bucket, self.key, self.size = storage, bucket, key, size
        self.block = block
        self.position = 0
        self.cache_start, self.cache = 0, b""
        self.fetched = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int = -1) -> bytes:
        if self.position >= self.size:
            return b""
        wanted = self.size - self.position if size < 0 else min(size, self.size - self.position)
        offset = self.position - self.cache_start
        if not (offset >= 0 and offset + wanted <= len(self.cache)):
            end = min(self.size, self.position + max(wanted, self.block)) - 1
            self.cache = self.storage.read_range(self.bucket, self.key, self.position, end)
            self.cache_start, offset = self.position, 0
            self.fetched += len(self.cache)
            self.requests += 1
        data = self.cache[offset:offset + wanted]
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


# -- the fast listing page (Storage.list_page) ------------------------------------------------

_LIST_PAGE_HOOK = "mpr-list-page"
_LISTING = threading.local()  # .active: this thread's list_page call is in flight


def _take_list_page(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
                    **_: Any) -> None:
    """botocore's before-parse hook for ListObjectsV2 (it runs after botocore's own check for
    a 200 carrying an error or a cut-off body, which turns those into a retried 500): while a
    `list_page` call is in flight in this thread, a 2xx body becomes `MprPage`
    (s3xml.parse_list_page) and the generic parser is handed an empty body. Any other call,
    thread or status (errors, retries) is left to botocore exactly as before."""
    if not getattr(_LISTING, "active", False) or response_dict.get("status_code", 500) >= 300:
        return
    from mpr_cli.s3xml import parse_list_page

    customized_response_dict["MprPage"] = parse_list_page(bytes(response_dict["body"]))
    response_dict["body"] = b""


def _page_from_reply(reply: dict[str, Any]) -> ListPage:
    """A ListPage from botocore's own parse (a client whose responses never pass through the
    hook, e.g. one with botocore's Stubber)."""
    from mpr_cli.s3xml import ListPage

    objects = [_object_info(item["Key"], item["Size"], item.get("ETag", ""),
                            item["LastModified"]) for item in reply.get("Contents", ())]
    prefixes = [str(item["Prefix"]) for item in reply.get("CommonPrefixes", ())]
    token = reply.get("NextContinuationToken") if reply.get("IsTruncated") else None
    return ListPage(objects=objects, prefixes=prefixes, next_token=token)
