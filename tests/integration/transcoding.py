"""Helpers shared by the transcode tests (test_transcode*.py, test_kill_loop.py,
test_provisional_master.py): the sample masters and their keys, the `Catalogue` a test reads
its database and buckets through, and ways to catalogue masters and create jobs. Their
fixtures (`cat`, `popen_mpr`, `long_master`) are in conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from mpr_cli import db
from mpr_cli.dev.sample import SampleArchive, build_sample_archive
from mpr_cli.transcode import jobs
from tests.integration.archive import keys_of, query, upload_tree
from tests.integration.processes import HeldFfmpeg, group_members

VIDEO_CODE, AUDIO_CODE = "VO-NEW-00001", "AO-NEW-00002"
VIDEO_MASTER, AUDIO_MASTER = f"FILE/{VIDEO_CODE}.mov", f"CD/{AUDIO_CODE}.wav"


def build_awaiting_archive(root: Path, count: int) -> SampleArchive:
    """`count` assets with a master and sidecars but no streaming copy (2 s, 320x240):
    VO-NEW-00001 (FILE/, .mov), AO-NEW-00002 (CD/, .wav), VO-NEW-00003, ..."""
    return build_sample_archive(root, assets_video=0, assets_audio=0, bad=False,
                                tape_master=False, awaiting=count)


def master_key(code: str) -> str:
    return f"FILE/{code}.mov" if code.startswith("V") else f"CD/{code}.wav"


def output_key(code: str) -> str:
    return f"FILE/{code}.mp4" if code.startswith("V") else f"CD/{code}.mp3"


@dataclass
class Catalogue:
    """This test's database and buckets, read the way a test checks them."""

    url: str
    bucket_in: str
    bucket_out: str
    s3: Any

    def rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        return query(self.url, sql, params)

    def jobs(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM transcode_jobs ORDER BY id")

    def job(self, job_id: int) -> dict[str, Any]:
        return self.rows("SELECT * FROM transcode_jobs WHERE id = %s", (job_id,))[0]

    def files(self, code: str, role: str | None = None) -> list[dict[str, Any]]:
        return self.rows("""SELECT f.* FROM asset_files f JOIN assets a ON a.id = f.asset_id
                            WHERE a.inventory_code = %s AND (%s::text IS NULL OR f.role = %s)
                            ORDER BY f.key""", (code, role, role))

    def streaming_per_asset(self) -> dict[str, int]:
        rows = self.rows("""SELECT a.inventory_code, count(f.id) AS n FROM assets a
                            LEFT JOIN asset_files f ON f.asset_id = a.id AND f.role = 'streaming'
                            GROUP BY a.inventory_code""")
        return {r["inventory_code"]: r["n"] for r in rows}

    def output_keys(self) -> set[str]:
        """The output bucket's keys but the pictures (under thumbnails/, see picture_keys):
        the streaming copies and their sidecars."""
        return {key for key in self.all_output_keys() if not key.startswith("thumbnails/")}

    def picture_keys(self) -> set[str]:
        """The pictures a transcode made (mpr_cli.pictures) in the output bucket."""
        return {key for key in self.all_output_keys() if key.startswith("thumbnails/")}

    def all_output_keys(self) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_out)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def download(self, key: str, path: Path) -> Path:
        self.s3.download_file(self.bucket_out, key, str(path))
        return path

    def head_out(self, key: str) -> dict[str, Any]:
        return self.s3.head_object(Bucket=self.bucket_out, Key=key)


def put_catalogued(run_mpr: Callable[..., Any], cat: Catalogue, archive: SampleArchive,
                   codes: Iterable[str]) -> None:
    """Upload the assets' files into the input bucket and import them with `mpr import`."""
    upload_tree(cat.s3, cat.bucket_in, archive.root, keys_of(archive, codes))
    done = run_mpr("import")
    assert done.returncode == 0, done.stdout + done.stderr


def completed_ids(stdout: str) -> list[int]:
    """The job ids of every "job N completed" line a transcode printed."""
    return [int(n) for n in re.findall(r"^job (\d+) completed", stdout, re.MULTILINE)]


def leftover_workdirs(service_env: dict[str, str]) -> list[Path]:
    temp = Path(service_env["MPR_TEMP_DIR"])
    return sorted(temp.glob("mpr-transcode-*")) if temp.exists() else []


def ffprobe(path: Path) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)], capture_output=True, text=True,
                          check=True, timeout=60)
    return json.loads(done.stdout)


def top_level_boxes(data: bytes) -> list[tuple[str, int]]:
    """(type, offset) of each top-level ISO-BMFF box, walked header by header."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        assert size >= 8, f"bad box size {size} at {offset}"
        boxes.append((kind.decode("latin-1"), offset))
        offset += size
    assert offset == len(data), "the boxes do not add up to the file"
    return boxes


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


PENDING_CODES = ["VO-NEW-00001", "AO-NEW-00002", "VO-NEW-00003", "AO-NEW-00004",
                 "VO-NEW-00005", "AO-NEW-00006"]
CORRUPT_CODE = "VO-CRP-00001"
CORRUPT_KEY = f"FILE/{CORRUPT_CODE}.mov"
LONG_CODE = "VO-LNG-00001"
LONG_KEY = f"FILE/{LONG_CODE}.mov"
LONG_SECONDS = 60
HEARTBEAT_S = 5.0


MASTER_MIME = {".mov": "video/quicktime", ".wav": "audio/wav"}


def register_master(cat: Catalogue, code: str, key: str, data: bytes) -> int:
    """Put a master into the input bucket and catalogue it with SQL (asset + master row), as
    `mpr import` would have."""
    cat.s3.put_object(Bucket=cat.bucket_in, Key=key, Body=data)
    etag = cat.s3.head_object(Bucket=cat.bucket_in, Key=key)["ETag"].strip('"')
    with psycopg.connect(cat.url, autocommit=True) as conn:
        asset_id = conn.execute(
            "INSERT INTO assets (inventory_code, media_type) VALUES (%s, %s) RETURNING id",
            (code, "video" if code.startswith("V") else "audio")).fetchone()[0]
        conn.execute("""INSERT INTO asset_files (asset_id, bucket, key, role, size, etag, md5,
                                                 mime_type)
                        VALUES (%s, %s, %s, 'master', %s, %s, %s, %s)""",
                     (asset_id, cat.bucket_in, key, len(data), etag,
                      hashlib.md5(data).hexdigest(), MASTER_MIME[Path(key).suffix]))
    return int(asset_id)


def register_sample(cat: Catalogue, archive: SampleArchive, codes: list[str]) -> None:
    for code in codes:
        register_master(cat, code, master_key(code), (archive.root / master_key(code)).read_bytes())


def create_pending_job(settings, code: str, key: str, asset_id: int | None) -> int:
    """A PENDING job, made with the product's own `create_job` query (nothing runs it yet)."""
    with db.connect(settings, autocommit=True) as conn:
        job_id = jobs.create(conn, asset_id=asset_id, inventory_code=code, media_type="video",
                             source_bucket=settings.s3_bucket_in, source_key=key,
                             preset="web-720p", output_bucket=settings.s3_bucket_out,
                             output_key=output_key(code), max_attempts=3)
    assert job_id is not None
    return job_id


def jobs_json(run_mpr) -> list[dict[str, Any]]:
    done = run_mpr("jobs", "list", "--json", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def processing(cat: Catalogue, key: str) -> dict[str, Any] | None:
    rows = cat.rows("""SELECT * FROM transcode_jobs WHERE source_key = %s
                       AND status = 'PROCESSING' AND progress > 0""", (key,))
    return rows[0] if rows else None


def start_long_job(long_master: Path, cat: Catalogue,
                   popen_mpr) -> tuple[subprocess.Popen[str], dict[str, Any], HeldFfmpeg]:
    """`mpr transcode` of the long master, its ffmpeg held (SIGSTOP) once the job is
    PROCESSING with progress > 0: mid-encode however fast the machine is."""
    cat.s3.upload_file(str(long_master), cat.bucket_in, LONG_KEY)
    proc = popen_mpr("transcode", LONG_KEY)
    held = HeldFfmpeg(proc).catch()
    job = held.advance_until(lambda: processing(cat, LONG_KEY),
                             "the job to be PROCESSING with progress > 0")
    assert "ffmpeg" in group_members(proc.pid)
    return proc, job, held
