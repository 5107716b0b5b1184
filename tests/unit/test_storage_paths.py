"""safe_local_path: an S3 key never becomes a path outside the folder it is written under;
and S3 timestamps parse to the right instant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mpr_cli import storage
from mpr_cli.errors import StorageError, UnsafeKeyError
from mpr_cli.storage import ObjectInfo, safe_local_path

HOSTILE_KEYS = [
    "",
    "../../etc/passwd",
    "a/../../b.mov",
    "/etc/passwd",
    "//etc/passwd",
    "..",
    "../",
    "a/./../..",
    "a/../b.mov",  # stays inside, but would alias the key "b.mov": refused too
    "BRD/..",
    "./..",
    "BRD/clip\x00.mov",
    "\x00",
    "BRD/",  # a folder marker, not a file
    ".",
    "./",
]

NORMAL_KEYS = [
    ("BRD/VO-UMT-14387.mov", "BRD/VO-UMT-14387.mov"),
    ("VO-UMT-14387.mov", "VO-UMT-14387.mov"),
    ("BRD/sub/deeper/clip.mxf", "BRD/sub/deeper/clip.mxf"),
    ("BRD/./clip.mov", "BRD/clip.mov"),
    ("BRD//clip.mov", "BRD/clip.mov"),
    ("..clip.mov", "..clip.mov"),
    ("BRD/...", "BRD/..."),
    ("spaces and ünïcode/ä b.mov", "spaces and ünïcode/ä b.mov"),
    ("back\\slash.mov", "back\\slash.mov"),
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnsafeKeyError) as caught:
        safe_local_path(root, key)
    assert repr(key) in caught.value.one_line()
    assert caught.value.key == key
    assert isinstance(caught.value, StorageError)


@pytest.mark.parametrize(("key", "expected"), NORMAL_KEYS)
def test_normal_keys_map_inside_root(tmp_path: Path, key: str, expected: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = safe_local_path(root, key)
    assert path == root / expected
    assert path.resolve().is_relative_to(root.resolve())
    assert not path.exists()  # mapping a key creates nothing


def test_root_need_not_exist_yet(tmp_path: Path) -> None:
    assert safe_local_path(tmp_path / "later", "a/b.mov") == tmp_path / "later" / "a" / "b.mov"


def test_symlinked_folder_leading_out_of_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "BRD").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        safe_local_path(root, "BRD/clip.mov")


def test_symlinked_file_leading_out_of_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "clip.mov").symlink_to(tmp_path / "elsewhere.mov")
    with pytest.raises(UnsafeKeyError):
        safe_local_path(root, "clip.mov")


def test_symlink_staying_inside_root_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_local_path(root, "alias/clip.mov") == root / "alias" / "clip.mov"


def test_root_reached_through_a_symlink_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert safe_local_path(tmp_path / "link", "a.mov") == tmp_path / "link" / "a.mov"


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        ("9E107D9D372BB6826BD81D3542A419D6", "9e107d9d372bb6826bd81d3542a419d6"),
        ("9e107d9d372bb6826bd81d3542a419d6", "9e107d9d372bb6826bd81d3542a419d6"),
        ("9e107d9d372bb6826bd81d3542a419d6-3", None),
        ("9e107d9d372bb6826bd81d3542a419d", None),
        ("zz107d9d372bb6826bd81d3542a419d6", None),
        ("", None),
    ],
)
def test_single_part_md5(etag: str, expected: str | None) -> None:
    info = ObjectInfo(key="k", size=1, etag=etag, last_modified=datetime.now(UTC))
    assert info.single_part_md5 == expected


@pytest.mark.parametrize("text", [
    "2026-11-23T08:43:00.000Z",        # ListObjectsV2
    "2026-11-23T08:43:00+00:00",
    "Mon, 23 Nov 2026 08:43:00 GMT",  # Last-Modified of a GET or HEAD
    "2026-11-23 08:43:00",            # no zone: UTC
    "1795423380",                     # epoch seconds (botocore's own parser)
])
def test_s3_timestamps_parse_to_the_same_utc_instant(text: str) -> None:
    parsed = storage._parse_timestamp(text)
    assert parsed == datetime(2026, 11, 23, 8, 43, tzinfo=UTC)
