"""The catalogue stays true: what mpr records about a file is what the file is.

One hostile asset among five, as in test_import_hostile.py: the four good ones are inserted,
the hostile one (VO-HST-00005, a copy of VO-SMP-00001) is a problem with its reason, the run
exits 1 and writes its report. Against real PostgreSQL, SeaweedFS and the real `mpr` script.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mpr_cli.sample import SampleArchive
from tests.integration.archive import (
    HOSTILE,
    Outcome,
    assert_four_good_inserted,
    build_four,
    hostile_copy,
    parse_run,
    query,
    upload_tree,
)

pytestmark = pytest.mark.integration

MASTER = f"BRD/{HOSTILE}.mov"


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    if not shutil.which("ffmpeg"):
        pytest.skip("needs ffmpeg")
    return build_four(tmp_path_factory.mktemp("four") / "bucket")


def hostile_problems(run: Outcome) -> list[tuple[str, str, str]]:
    return [(p["key"], p["reason"], p["message"]) for p in run.report["problems"]
            if p["inventory_code"] == HOSTILE]


def assert_only_the_hostile_asset_refused(run: Outcome, database_url: str,
                                          four: SampleArchive) -> None:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert_four_good_inserted(database_url, four)
    assert run.counts["inserted_assets"] == 4
    assert not query(database_url, "SELECT 1 FROM asset_files WHERE key LIKE %s",
                     (f"%{HOSTILE}%",))


# -- a master whose bytes are not what its metadata describes ------------------------------------


def replace_master(root: Path, data: bytes) -> None:
    """The master's bytes replaced, with its MD5 and its size in the sidecars made to agree
    (a lab that hashed what it uploaded but described the file it meant to)."""
    brd = root / "BRD"
    (brd / f"{HOSTILE}.mov").write_bytes(data)
    md5 = brd / f"{HOSTILE}.md5"
    md5.write_text(re.sub(rf"^[0-9a-f]{{32}}(  {HOSTILE}\.mov)$",
                          lambda m: hashlib.md5(data).hexdigest() + m.group(1),
                          md5.read_text(), flags=re.M))
    meta = brd / f"{HOSTILE}.json"
    meta.write_text(re.sub(r'"FileSize":"\d+"', f'"FileSize":"{len(data)}"', meta.read_text(),
                           count=1))


HLS = (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
       b"#EXTINF:10.0,\nhttps://cdn.example.com/VO-HST-00005/seg0.ts\n"
       b"#EXTINF:10.0,\nhttps://cdn.example.com/VO-HST-00005/seg1.ts\n#EXT-X-ENDLIST\n")


def random_bytes(four: SampleArchive) -> bytes:
    return hashlib.sha256(b"not a master").digest() * 20_000  # 640 KB of noise


def matroska(four: SampleArchive) -> bytes:
    return (four.root / "DVD" / "VO-SMP-00002.mkv").read_bytes()


HOSTILE_MASTERS: dict[str, tuple[Any, str]] = {  # case -> (bytes, what the message says)
    "empty": (lambda four: b"", "is empty (0 bytes)"),
    "random-bytes": (random_bytes, "bytes of no media format mediainfo recognises"),
    "hls-playlist": (lambda four: HLS, "is HLS with no audio or video streams"),
    "matroska-named-mov": (matroska, "is Matroska with video"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MASTERS))
def test_master_that_is_not_the_described_media_is_refused(
        case, four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    root = hostile_copy(four, tmp_path / "bucket")
    make, says = HOSTILE_MASTERS[case]
    replace_master(root, make(four))
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    problems = hostile_problems(run)
    assert [(key, reason) for key, reason, _ in problems] == [
        (MASTER, "container_mismatch")], problems
    message = problems[0][2]
    assert says in message, message
    assert f"{HOSTILE}.json says QuickTime (MPEG-4)" in message, message
    assert_only_the_hostile_asset_refused(run, database_url, four)
