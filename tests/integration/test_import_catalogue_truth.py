"""The catalogue stays true: what mpr records about a file is what the file is.

One hostile asset among five, as in test_import_hostile.py: the four good ones are inserted,
the hostile one (VO-HST-00005, a copy of VO-SMP-00001) is a problem with its reason, the run
exits 1 and writes its report. Against real PostgreSQL, SeaweedFS and the real `mpr` script.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mpr_cli.dev.sample import SampleArchive
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


# -- checksum sidecars that disagree -------------------------------------------------------------

WRONG_MD5 = "0123456789abcdef0123456789abcdef"


def md5_line(root: Path, name: str) -> str:
    """The MD5 that <code>.md5 gives `name`."""
    text = (root / "BRD" / f"{HOSTILE}.md5").read_text()
    return re.search(rf"^([0-9a-f]{{32}})  {re.escape(name)}$", text, flags=re.M).group(1)


def bare_code_md5_wrong(root: Path) -> tuple[str, str]:
    """<code>.md5 a bare (wrong) hash for the master; each file its own right <file>.md5."""
    brd = root / "BRD"
    for name in (f"{HOSTILE}.mov", f"{HOSTILE}.mp4"):
        (brd / f"{name}.md5").write_text(md5_line(root, name) + "\n")
    right = md5_line(root, f"{HOSTILE}.mov")
    (brd / f"{HOSTILE}.md5").write_text(WRONG_MD5 + "\n")
    return WRONG_MD5, right


def master_md5_wrong(root: Path) -> tuple[str, str]:
    """<code>.md5 right for the master (md5sum lines); <master>.md5 another hash."""
    (root / "BRD" / f"{HOSTILE}.mov.md5").write_text(f"{WRONG_MD5}  {HOSTILE}.mov\n")
    return md5_line(root, f"{HOSTILE}.mov"), WRONG_MD5


@pytest.mark.parametrize("make", [master_md5_wrong, bare_code_md5_wrong],
                         ids=["master-md5-differs", "bare-code-md5-differs"])
def test_two_checksum_files_disagreeing_about_the_master_are_refused(
        make, four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    root = hostile_copy(four, tmp_path / "bucket")
    first, second = make(root)
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    problems = hostile_problems(run)
    assert [(key, reason) for key, reason, _ in problems] == [
        (f"BRD/{HOSTILE}.mov.md5", "conflicting_checksums")], problems
    message = problems[0][2]
    assert (f"{HOSTILE}.md5 gives {HOSTILE}.mov MD5 {first} but {HOSTILE}.mov.md5 gives "
            f"{second}") in message, message
    assert_only_the_hostile_asset_refused(run, database_url, four)


@pytest.mark.parametrize("late_md5", ["right", "wrong"])
def test_checksum_file_delivered_after_the_master_is_checked_against_the_catalogue(
        late_md5, four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    """VO-HST-00005 is imported alone; the next delivery brings the four good assets and a
    VO-HST-00005.mov.md5 for the master already catalogued."""
    root = hostile_copy(four, tmp_path / "bucket")
    hostile_keys = [k for k in (p.relative_to(root).as_posix() for p in root.rglob("*"))
                    if HOSTILE in k]
    upload_tree(s3_admin, buckets[0], root, hostile_keys)
    assert run_mpr("import").returncode == 0
    catalogued = md5_line(root, f"{HOSTILE}.mov")
    md5 = catalogued if late_md5 == "right" else WRONG_MD5
    late = root / "BRD" / f"{HOSTILE}.mov.md5"
    late.write_text(f"{md5}  {HOSTILE}.mov\n")
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    codes = {r["inventory_code"] for r in query(database_url, "SELECT inventory_code FROM assets")}
    assert codes == {*four.assets_ok, HOSTILE}
    late_rows = query(database_url, "SELECT 1 FROM asset_files WHERE key = %s",
                      (f"BRD/{late.name}",))
    if late_md5 == "right":
        assert run.returncode == 0, run.report["problems"]
        assert len(late_rows) == 1
        return
    assert run.returncode == 1, run.stderr
    problems = hostile_problems(run)
    assert [(key, reason) for key, reason, _ in problems] == [
        (f"BRD/{late.name}", "checksum_mismatch")], problems
    assert (f"gives {HOSTILE}.mov MD5 {WRONG_MD5}, but the catalogue records {catalogued}"
            in problems[0][2]), problems
    assert not late_rows
    assert run.counts["inserted_assets"] == 4


# -- checksum and metadata files as labs write them ----------------------------------------------


def test_checksum_files_from_certutil_and_rhash_are_imported(
        four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    """<code>.md5 replaced by certutil's output for the master (Windows, CRLF, byte pairs)
    and rhash's BSD line for the streaming copy."""
    root = hostile_copy(four, tmp_path / "bucket")
    brd = root / "BRD"
    mov, mp4 = md5_line(root, f"{HOSTILE}.mov"), md5_line(root, f"{HOSTILE}.mp4")
    (brd / f"{HOSTILE}.md5").unlink()
    pairs = " ".join(mov[i:i + 2] for i in range(0, 32, 2))
    (brd / f"{HOSTILE}.mov.md5").write_bytes(
        f"MD5 hash of file D:\\digitisation\\BRD\\{HOSTILE}.mov:\r\n{pairs}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n".encode())
    (brd / f"{HOSTILE}.mp4.md5").write_text(f"MD5 (BRD/{HOSTILE}.mp4) = {mp4}\n")
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    assert run.returncode == 0, run.report["problems"]
    rows = {r["key"]: r["md5"] for r in query(
        database_url, "SELECT key, md5 FROM asset_files WHERE key LIKE %s", (f"%{HOSTILE}%",))}
    assert (rows[f"BRD/{HOSTILE}.mov"], rows[f"BRD/{HOSTILE}.mp4"]) == (mov, mp4)
    assert f"BRD/{HOSTILE}.mov.md5" in rows and f"BRD/{HOSTILE}.mp4.md5" in rows


def test_ffprobe_metadata_without_streams_is_an_invalid_sidecar(
        four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    root = hostile_copy(four, tmp_path / "bucket")
    brd = root / "BRD"
    shown = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                            str(brd / f"{HOSTILE}.mov")], capture_output=True, check=True)
    (brd / f"{HOSTILE}.json").write_bytes(shown.stdout)
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    problems = hostile_problems(run)
    assert [(key, reason) for key, reason, _ in problems] == [
        (f"BRD/{HOSTILE}.json", "invalid_metadata_sidecar")], problems
    assert "run ffprobe with -show_streams" in problems[0][2]
    assert_only_the_hostile_asset_refused(run, database_url, four)
