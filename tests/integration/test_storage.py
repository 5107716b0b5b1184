"""Storage against a real SeaweedFS (started by the session fixtures in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from mpr_cli.config import Settings, load_settings
from mpr_cli.dev.devservices import free_port
from mpr_cli.errors import StorageError, UnsafeKeyError
from mpr_cli.storage import Storage, make_client, remove_download

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture()
def storage(settings: Settings) -> Storage:
    return Storage(settings)


@pytest.fixture()
def small_object(storage: Storage) -> tuple[str, bytes]:
    data = os.urandom(3 * MIB + 123)
    storage.upload_bytes(data, storage.bucket_in, "BRD/VO-UMT-14387.mov")
    return "BRD/VO-UMT-14387.mov", data


def fast_failing(settings: Settings) -> Storage:
    """A Storage that gives up at once: one attempt, one-second timeouts."""
    return Storage(settings, client=make_client(settings, connect_timeout=1, read_timeout=1,
                                                max_attempts=1))


def assert_no_secret(exc: StorageError, *secrets: str) -> None:
    shown = " ".join([exc.one_line(), str(exc), repr(exc), repr(exc.args)])
    for secret in secrets:
        assert secret not in shown


# -- listing ------------------------------------------------------------------------------------


def test_list_objects_paginates_filters_and_is_lazy(storage: Storage, s3_admin) -> None:
    put = storage.client.put_object  # its pool is sized for io_workers threads
    bucket = storage.bucket_in
    wanted = {f"BRD/{i:05d}.mov": os.urandom(i % 7) for i in range(1500)}
    wanted |= {f"UMT/sub/{i:05d}.mxf": os.urandom(i % 5) for i in range(1000)}
    with ThreadPoolExecutor(storage.settings.io_workers) as pool:
        list(pool.map(lambda kv: put(Bucket=bucket, Key=kv[0], Body=kv[1]), wanted.items()))
    for marker in ("BRD/", "UMT/sub/"):
        s3_admin.put_object(Bucket=bucket, Key=marker, Body=b"")

    expected = {k: (len(v), md5_hex(v)) for k, v in wanted.items()}
    listed = {o.key: (o.size, o.single_part_md5) for o in storage.list_objects(bucket)}
    assert listed == expected
    brd = {o.key: (o.size, o.etag) for o in storage.list_objects(bucket, prefix="BRD/")}
    assert brd == {k: v for k, v in expected.items() if k.startswith("BRD/")}
    assert len(list(storage.list_objects(bucket, prefix="UMT/"))) == 1000
    assert list(storage.list_objects(bucket, prefix="NOPE/")) == []

    calls: list[str] = []
    storage.client.meta.events.register("before-call.s3.ListObjectsV2",
                                        lambda **kw: calls.append("list"))
    lazy = storage.list_objects(bucket)
    assert inspect.isgenerator(lazy)
    assert calls == []
    first = next(lazy)
    assert calls == ["list"] and first.key == "BRD/00000.mov"
    assert first.last_modified.tzinfo is not None
    lazy.close()


def test_list_objects_of_missing_bucket_names_bucket_and_variable(settings: Settings) -> None:
    storage = Storage(settings.model_copy(update={"s3_bucket_in": "no-such-bucket-mpr"}))
    with pytest.raises(StorageError) as caught:
        list(storage.list_objects("no-such-bucket-mpr"))
    assert "no-such-bucket-mpr does not exist" in caught.value.one_line()
    assert "S3_BUCKET_IN" in caught.value.one_line()


# -- head, buckets, reading ---------------------------------------------------------------------


def test_head_and_bucket_exists(storage: Storage, small_object: tuple[str, bytes]) -> None:
    key, data = small_object
    info = storage.head(storage.bucket_in, key)
    assert info is not None
    assert (info.key, info.size, info.single_part_md5) == (key, len(data), md5_hex(data))
    assert storage.head(storage.bucket_in, "BRD/missing.mov") is None
    assert storage.bucket_exists(storage.bucket_in)
    assert storage.bucket_exists(storage.bucket_out)
    assert not storage.bucket_exists("no-such-bucket-mpr")


def test_iter_chunks_and_md5_match_hashlib(storage: Storage,
                                           small_object: tuple[str, bytes]) -> None:
    key, data = small_object
    chunks = list(storage.iter_chunks(storage.bucket_in, key, chunk_size=MIB))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= MIB and len(chunks) >= 4
    assert storage.md5_of_object(storage.bucket_in, key) == (md5_hex(data), len(data))


def test_read_bytes_enforces_limit(storage: Storage, small_object: tuple[str, bytes]) -> None:
    bucket = storage.bucket_in
    storage.upload_bytes(b'{"code": "VO-UMT-14387"}', bucket, "BRD/side.json")
    assert storage.read_bytes(bucket, "BRD/side.json", 24) == b'{"code": "VO-UMT-14387"}'
    with pytest.raises(StorageError, match="larger than 23 bytes"):
        storage.read_bytes(bucket, "BRD/side.json", 23)
    with pytest.raises(StorageError, match="larger than"):
        storage.read_bytes(bucket, small_object[0], 64 * 1024)
    with pytest.raises(StorageError, match="does not exist") as caught:
        storage.read_bytes(bucket, "BRD/missing.json", 100)
    assert caught.value.key == "BRD/missing.json"


# -- uploads and downloads ----------------------------------------------------------------------


def test_multipart_upload_and_download_round_trip(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "big.mov"
    data = os.urandom(20 * MIB)
    source.write_bytes(data)
    info = storage.upload_file(source, storage.bucket_out, "out/big.mp4",
                               content_type="video/mp4", metadata={"code": "VO-UMT-14387"})
    assert info.size == len(data)
    assert info.etag.endswith("-3") and info.single_part_md5 is None
    meta = storage.client.head_object(Bucket=storage.bucket_out, Key="out/big.mp4")
    assert meta["ContentType"] == "video/mp4" and meta["Metadata"] == {"code": "VO-UMT-14387"}

    got = storage.download_to_temp(storage.bucket_out, "out/big.mp4", md5=True)
    assert got.path.is_relative_to(storage.settings.temp_dir)
    assert got.path.name == "big.mp4" and got.size == len(data)
    assert got.md5 == md5_hex(data) == hashlib.md5(got.path.read_bytes()).hexdigest()
    remove_download(got)
    assert not got.path.exists() and list(storage.settings.temp_dir.iterdir()) == []


def test_small_upload_is_single_part(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "small.mov"
    source.write_bytes(os.urandom(100_000))
    info = storage.upload_file(source, storage.bucket_out, "out/small.mov")
    assert info.single_part_md5 == md5_hex(source.read_bytes())

    root = tmp_path / "dest"
    got = storage.download_to(storage.bucket_out, "out/small.mov", root)
    assert got.path == root / "out" / "small.mov" and got.md5 is None
    assert got.path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in got.path.parent.iterdir()) == ["small.mov"]  # no .part left


def test_delete(storage: Storage) -> None:
    storage.upload_bytes(b"x", storage.bucket_out, "gone.txt", content_type="text/plain")
    storage.delete(storage.bucket_out, "gone.txt")
    assert storage.head(storage.bucket_out, "gone.txt") is None


def test_presigned_url_serves_the_bytes(storage: Storage, small_object: tuple[str, bytes]) -> None:
    key, data = small_object
    url = storage.presigned_get_url(storage.bucket_in, key, expires=60)
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.read() == data


def test_failed_download_leaves_nothing(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        storage.download_to_temp(storage.bucket_in, "BRD/missing.mov")
    temp_dir = storage.settings.temp_dir
    assert list(temp_dir.iterdir()) == []
    with pytest.raises(StorageError):
        storage.download_to(storage.bucket_in, "BRD/missing.mov", tmp_path / "dest")
    assert list((tmp_path / "dest" / "BRD").iterdir()) == []


def test_download_broken_mid_stream_removes_partial_file(storage: Storage, tmp_path: Path,
                                                         monkeypatch) -> None:
    def broken(bucket: str, key: str, chunk_size: int = 0):  # fault injection: dies mid-stream
        yield b"first chunk"
        raise StorageError("connection dropped", key=key)

    monkeypatch.setattr(storage, "iter_chunks", broken)
    with pytest.raises(StorageError, match="connection dropped"):
        storage.download_to_temp(storage.bucket_in, "BRD/a.mov", md5=True)
    assert list(storage.settings.temp_dir.iterdir()) == []
    with pytest.raises(StorageError, match="connection dropped"):
        storage.download_to(storage.bucket_in, "BRD/a.mov", tmp_path / "dest")
    assert list((tmp_path / "dest" / "BRD").iterdir()) == []


# -- hostile keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a/../../b.mov", "../escape.mov", "a/./../../c.mov"])
def test_download_of_hostile_key_writes_nothing(storage: Storage, s3_admin, tmp_path: Path,
                                                key: str) -> None:
    # SeaweedFS refuses (InvalidRequest) or normalises such keys; AWS stores them as they are.
    with contextlib.suppress(ClientError):
        s3_admin.put_object(Bucket=storage.bucket_in, Key=key, Body=b"payload")
    root = tmp_path / "a" / "b" / "root"
    root.mkdir(parents=True)
    storage.settings.temp_dir.mkdir()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UnsafeKeyError) as caught:
        storage.download_to(storage.bucket_in, key, root)
    assert key in caught.value.one_line()
    with pytest.raises(UnsafeKeyError):
        storage.download_to_temp(storage.bucket_in, key)
    assert sorted(tmp_path.rglob("*")) == before
    assert list(storage.settings.temp_dir.iterdir()) == []


def test_download_through_symlink_out_of_root_is_refused(storage: Storage,
                                                         tmp_path: Path) -> None:
    storage.upload_bytes(b"payload", storage.bucket_in, "BRD/clip.mov")
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "BRD").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        storage.download_to(storage.bucket_in, "BRD/clip.mov", root)
    assert list(outside.iterdir()) == []


# -- failures -----------------------------------------------------------------------------------


def test_unreachable_endpoint_names_endpoint_not_secret(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    secret = "s3cr3t-" + os.urandom(8).hex()
    settings = load_settings(env_file=None, s3_endpoint_url=endpoint,
                             aws_access_key_id="mprkey", aws_secret_access_key=secret)
    storage = fast_failing(settings)
    for attempt in (lambda: storage.bucket_exists("mpr-media-in"),
                    lambda: next(storage.list_objects("mpr-media-in")),
                    lambda: storage.download_to_temp("mpr-media-in", "a.mov",
                                                     temp_dir=tmp_path)):
        with pytest.raises(StorageError) as caught:
            attempt()
        line = caught.value.one_line()
        assert f"S3 unreachable at {endpoint}" in line and "S3_ENDPOINT_URL" in line
        assert_no_secret(caught.value, secret)
    assert list(tmp_path.iterdir()) == []


def test_wrong_credentials_name_the_variables_not_the_secret(settings: Settings) -> None:
    secret = "wrong-" + os.urandom(8).hex()
    bad = settings.model_copy(update={"aws_secret_access_key": SecretStr(secret)})
    storage = fast_failing(bad)
    real_secret = settings.aws_secret_access_key.get_secret_value()
    for attempt in (lambda: storage.bucket_exists(bad.s3_bucket_in),
                    lambda: list(storage.list_objects(bad.s3_bucket_in)),
                    lambda: storage.upload_bytes(b"x", bad.s3_bucket_out, "k.txt"),
                    lambda: storage.head(bad.s3_bucket_in, "k.txt")):
        with pytest.raises(StorageError) as caught:
            attempt()
        line = caught.value.one_line()
        assert "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line
        assert_no_secret(caught.value, secret, real_secret)
