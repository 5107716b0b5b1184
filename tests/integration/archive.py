"""Helpers for the import/validate tests: sample archives on disk, uploads, catalogue queries.

The ffmpeg work happens once per session (see the fixtures in tests/integration/conftest.py);
each test uploads what it needs into its own fresh bucket and runs the real `mpr` script.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mpr_cli.dev.sample import Expect, SampleArchive, build_sample_archive
from mpr_cli.rules import Role

MIME_BY_SUFFIX = {
    ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".mxf": "application/mxf",
    ".avi": "video/x-msvideo",
    ".wav": "audio/wav", ".flac": "audio/flac", ".mp4": "video/mp4", ".mp3": "audio/mpeg",
    ".json": "application/json", ".md5": "text/plain", ".pdf": "application/pdf",
}
TABLES = ("assets", "asset_files", "import_runs")
TAPE_CODE = "VO-TAP-00001"  # its master is on tape: described and listed, not in the bucket
TAPE_MASTER = "FILE/VO-TAP-00001.mov"


# -- local trees ---------------------------------------------------------------------------------


def tree_keys(root: Path) -> list[str]:
    """Every file under ``root`` as an S3 key (relative POSIX path), sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def clean_codes(archive: SampleArchive) -> list[str]:
    """Codes whose every file is expected to import without any problem (not even a warning)."""
    codes = {f.inventory_code for f in archive.files if f.inventory_code}
    return sorted(c for c in codes
                  if all(f.expect == Expect.IMPORT for f in archive.files if f.inventory_code == c))


def keys_of(archive: SampleArchive, codes: Iterable[str]) -> list[str]:
    wanted = set(codes)
    return sorted(f.key for f in archive.files if f.inventory_code in wanted)


def expected_keys(archive: SampleArchive, codes: set[str]) -> set[str]:
    """The asset_files keys a complete import of ``codes`` gives (the tape master included)."""
    keys = {f.key for f in archive.files if f.inventory_code in codes and f.imported}
    return keys | ({TAPE_MASTER} if TAPE_CODE in codes else set())


def assert_rows_match_files(database_url: str, archive: SampleArchive, codes: set[str],
                            skip: set[str] = frozenset()) -> None:
    """Every catalogued file of ``codes``: right asset, role, size, ETag, md5, MIME type."""
    rows = catalogue(database_url)
    roles = {f.key: f.role for f in archive.files}
    for key in expected_keys(archive, codes) - {TAPE_MASTER} - skip:
        row, local = rows[key], archive.root / key
        assert row["inventory_code"] == key.split("/")[-1][:12], key
        assert row["role"] == roles[key], key
        assert row["in_bucket"] is True, key
        assert row["size"] == local.stat().st_size, key
        assert row["md5"] == md5_of(local) == row["etag"], key
        assert row["mime_type"] == MIME_BY_SUFFIX[Path(key).suffix], key
        if row["role"] in ("master", "streaming"):
            assert row["has_tech"], key


# -- one hostile asset among four good ones ------------------------------------------------------

TEMPLATE = "VO-SMP-00001"  # a good video asset in BRD: .mov .mp4 .json .mp4.json .md5 _qc.pdf
HOSTILE = "VO-HST-00005"


def build_four(root: Path) -> SampleArchive:
    """Four good assets of the sample archive (2 video, 2 audio), built with ffmpeg in `root`."""
    return build_sample_archive(root, assets_video=2, assets_audio=2, bad=False,
                                tape_master=False)


def hostile_copy(four: SampleArchive, root: Path) -> Path:
    """The four good assets and a copy of TEMPLATE named HOSTILE, in a new tree `root`."""
    shutil.copytree(four.root, root)
    for path in sorted((root / "BRD").glob(f"{TEMPLATE}*")):
        data = path.read_bytes()
        if path.suffix in (".md5", ".json"):
            data = data.replace(TEMPLATE.encode(), HOSTILE.encode())
        (path.parent / path.name.replace(TEMPLATE, HOSTILE)).write_bytes(data)
    return root


def assert_four_good_inserted(database_url: str, four: SampleArchive) -> None:
    codes = {r["inventory_code"] for r in query(database_url, "SELECT inventory_code FROM assets")}
    assert codes == set(four.assets_ok)


# -- S3 ------------------------------------------------------------------------------------------


def upload_tree(client: Any, bucket: str, root: Path,
                keys: Iterable[str] | None = None) -> list[str]:
    """Upload ``root``'s files (or only ``keys``) into ``bucket``, single-part, in parallel."""
    chosen = tree_keys(root) if keys is None else sorted(keys)

    def put(key: str) -> None:
        with (root / key).open("rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, chosen))
    return chosen


def upload_multipart(client: Any, bucket: str, key: str, data: bytes,
                     part_size: int = 5 * 1024 * 1024) -> str:
    """Upload ``data`` in parts of ``part_size`` bytes (S3's minimum is 5 MiB but for the last
    part); return the ETag, which for a multipart object is not the MD5 of its bytes."""
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for number, start in enumerate(range(0, len(data), part_size), start=1):
        reply = client.upload_part(Bucket=bucket, Key=key, PartNumber=number,
                                   UploadId=upload["UploadId"], Body=data[start:start + part_size])
        done.append({"PartNumber": number, "ETag": reply["ETag"]})
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": done})
    return client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


# -- the catalogue -------------------------------------------------------------------------------


def query(database_url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def row_counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def catalogue(database_url: str) -> dict[str, dict[str, Any]]:
    """key -> the asset_files row (with the asset's code), for comparing whole catalogues."""
    rows = query(database_url, """
        SELECT a.inventory_code, a.media_type, f.bucket, f.key, f.role, f.in_bucket, f.size,
               f.etag, f.md5, f.mime_type, f.tech_metadata IS NOT NULL AS has_tech
        FROM asset_files f JOIN assets a ON a.id = f.asset_id ORDER BY f.key""")
    return {r["key"]: r for r in rows}


def duplicate_keys(database_url: str) -> list[dict[str, Any]]:
    return query(database_url, """SELECT bucket, key, count(*) AS n FROM asset_files
                                  GROUP BY bucket, key HAVING count(*) > 1""")


def runs(database_url: str) -> list[dict[str, Any]]:
    return query(database_url, "SELECT * FROM import_runs ORDER BY id")


# -- the mpr script ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One `mpr import/validate --report -` run: exit code, parsed report, stderr."""

    returncode: int
    report: dict[str, Any]
    stderr: str

    @property
    def counts(self) -> dict[str, int]:
        return self.report["counts"]

    def reasons(self) -> dict[str, str]:
        """key -> reason of every problem (each key is reported at most once here)."""
        found: dict[str, str] = {}
        for problem in self.report["problems"]:
            assert problem["key"] not in found, f"{problem['key']} reported twice"
            found[problem["key"]] = problem["reason"]
        return found


def parse_run(result: subprocess.CompletedProcess[str]) -> Outcome:
    try:
        report = json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"no JSON report (exit {result.returncode}):\nstdout: "
                             f"{result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}") from exc
    return Outcome(result.returncode, report, result.stderr)


def mpr_env(service_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of a `mpr` subprocess: this test's services, nothing from the caller."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_"))}
    return {**base, **service_env, **extra}


def mpr_argv(*args: str) -> list[str]:
    mpr = shutil.which("mpr") or str(Path(sys.executable).parent / "mpr")
    return [mpr, *args]


SLOW = {"MPR_BATCH_ASSETS": "2", "MPR_IO_WORKERS": "2"}  # phase 3 inserts every 2 assets


def start_import(service_env: dict[str, str], cwd: Path,
                 extra_env: dict[str, str] = SLOW) -> subprocess.Popen[str]:
    """`mpr import --report -` in the background, in an empty folder (no .env)."""
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(mpr_argv("import", "--report", "-"),
                            env=mpr_env(service_env, **extra_env), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def middle_code(archive: SampleArchive) -> str:
    """The code of an asset that an import plans and inserts in the middle of the archive."""
    codes = sorted(archive.assets_ok)
    return codes[len(codes) // 2]


@contextmanager
def held_asset(database_url: str, code: str) -> Iterator[None]:
    """Insert the asset `code` in a transaction that stays open until the block ends (then
    rolled back): an import whose batch holds that asset waits for it on the unique inventory
    code, however fast the machine is, with its earlier batches committed.

    Phase 3 plans assets in code order with at most 4 x MPR_IO_WORKERS in flight and inserts
    them in that order, so with `middle_code` and the SLOW settings (2 workers, batches of 2)
    at least 4 batches are committed before the import waits, and at least 8 assets are not
    yet planned when it does."""
    with held_transaction(database_url, "INSERT INTO assets (inventory_code, media_type) "
                          "VALUES (%s, %s)", (code, "video" if code.startswith("V") else "audio")):
        yield


@contextmanager
def held_transaction(database_url: str, statement: str, params: Any = None) -> Iterator[None]:
    """Run `statement` in a transaction left open (holding its locks) until the block ends,
    then rolled back."""
    with psycopg.connect(database_url) as conn:
        conn.execute(statement, params)
        try:
            yield
        finally:
            conn.rollback()


def wait_until_waiting_on_a_lock(proc: subprocess.Popen[str], database_url: str,
                                 timeout: float = 120) -> None:
    """Until mpr waits on a lock of `held_transaction` (pg_stat_activity: a lock wait)."""
    sql = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND application_name = 'mpr' AND wait_event_type = 'Lock'"""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while conn.execute(sql).fetchone()[0] == 0:
            assert proc.poll() is None, f"mpr ended before it reached the held lock: " \
                                        f"{proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "mpr never reached the held lock"
            time.sleep(0.05)


def assert_whole_assets(database_url: str, archive: SampleArchive) -> set[str]:
    """Every catalogued asset has all the files a complete import gives it; returns the codes."""
    files: dict[str, set[str]] = defaultdict(set)
    for row in query(database_url, """SELECT a.inventory_code, f.key FROM assets a
                                      LEFT JOIN asset_files f ON f.asset_id = a.id"""):
        files[row["inventory_code"]].add(row["key"])
    for code, keys in files.items():
        assert keys == set(keys_of(archive, [code])), code
    return set(files)


# -- the nightly tests' sample archive (media generated once per session) ----------------------
_ARCHIVES: dict[str, SampleArchive] = {}


def nightly_sample(factory: pytest.TempPathFactory) -> SampleArchive:
    """Small sample: one good video and audio asset, the tape master, every bad case, and two
    masters awaiting transcode (short clips, so the transcode step stays quick). Cached, so
    test_launcher.py shares it."""
    if "archive" not in _ARCHIVES:
        if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
            pytest.skip("needs ffmpeg and ffprobe")
        _ARCHIVES["archive"] = build_sample_archive(
            factory.mktemp("nightly") / "bucket", assets_video=1, assets_audio=1, awaiting=2,
            duration=1.0)
    return _ARCHIVES["archive"]


def awaiting_codes(archive: SampleArchive) -> list[str]:
    return [c for c in archive.assets_ok if "-NEW-" in c]


def awaiting_masters(archive: SampleArchive) -> list[str]:
    codes = set(awaiting_codes(archive))
    return sorted(f.key for f in archive.files
                  if f.inventory_code in codes and f.role is Role.MASTER)


def clean_keys(archive: SampleArchive, *, awaiting: bool = True) -> list[str]:
    """The keys of the assets that import without any problem (an archive built with
    bad=False), with or without the masters awaiting transcode."""
    skip = set() if awaiting else set(awaiting_codes(archive))
    return keys_of(archive, [c for c in clean_codes(archive) if c not in skip])
