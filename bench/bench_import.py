#!/usr/bin/env python3
"""Benchmark of `mpr import` against plain baselines, on real local services.

Starts its own PostgreSQL and SeaweedFS (mpr_cli.dev.devservices, which starts a Redis too,
unused here) on free loopback ports, seeds the input bucket with N keys (real media made once
by mpr_cli.dev.sample, copied under many inventory codes, plus ~5% badly named keys), then
measures side by side:

  raw listing      a bare boto3 list_objects_v2 paginator over the bucket
  sidecar GETs     plain threaded GETs of every .json and .md5 and the first KiB of every .pdf
  COPY             a plain COPY of as many rows as mpr inserts into a scratch table
  ffprobe          plain ffprobe of every streaming copy through a presigned URL
  mpr all-new      `mpr import` (a subprocess) on a bucket whose keys are all new
  mpr nothing-new  `mpr import` again, nothing new (the nightly steady state; run 3 times)

and prints one JSON document with every figure, the peak RSS of each mpr run and the ratios
against the targets. See bench/README.md.

    .venv/bin/python bench/bench_import.py                # 20,000 keys
    .venv/bin/python bench/bench_import.py --keys 2000    # a quick run
    .venv/bin/python bench/bench_import.py --save         # also bench/results/import-<date>.json
    .venv/bin/python bench/bench_import.py --profile DIR  # mpr runs under py-spy (slower)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from benchservices import local_services
from botocore.config import Config
from results_file import add_save_option, emit, save_path

from mpr_cli import db
from mpr_cli.config import FIELD_BY_ENV, Settings, load_settings
from mpr_cli.dev import devservices, sample

HERE = Path(__file__).resolve().parent
KIB, MIB = 1024, 1024 * 1024

BAD_SHARE = 0.05  # share of keys with bad names (rejected in phase 1)
CLIP_SECONDS = 0.4  # duration of the generated clips: small objects, fast seeding
SEED_WORKERS = 24
QC_HEAD_BYTES = 1024  # mpr reads the first KiB of a QC report
NOTHING_NEW_RUNS = 3
LISTING_RUNS = 3
MPR_TIMEOUT_S = 1800

# Targets (see bench/README.md).
NOTHING_NEW_MAX_RATIO = 1.3  # nothing-new run <= 1.3 x raw listing
ALL_NEW_MAX_RATIO = 1.5  # all-new run <= 1.5 x (listing + sidecar GETs + COPY)
RSS_PER_KEY = 1.5 * KIB  # peak RSS < 1.5 KiB x listed keys + 100 MiB
RSS_BASE = 100 * MIB

SIDECAR_EXTENSIONS = (".json", ".md5", ".pdf")
TEXT_EXTENSIONS = (".json", ".md5", ".pdf")  # bodies that name the code: rewritten per copy
VIDEO_FOLDERS = ("BRD", "DVD", "FILE")
AUDIO_FOLDERS = ("CD", "DAT", "FILE")
MIME = {".mov": "video/quicktime", ".wav": "audio/wav", ".mp4": "video/mp4",
        ".mp3": "audio/mpeg", ".json": "application/json", ".md5": "text/plain",
        ".pdf": "application/pdf"}
ROLE = {".mov": "master", ".wav": "master", ".mp4": "streaming", ".mp3": "streaming",
        ".json": "metadata", ".md5": "checksum", ".pdf": "qc_report"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the data set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFile:
    suffix: str  # the name after the inventory code, e.g. ".mov", ".mp4.json", "_qc.pdf"
    body: bytes
    extension: str  # last extension, lower case

    @property
    def rewritten(self) -> bool:
        return self.extension in TEXT_EXTENSIONS


@dataclass(frozen=True)
class Template:
    """One generated asset: its code and its files (name = code + suffix)."""

    code: str
    files: tuple[TemplateFile, ...]


@dataclass(frozen=True)
class SeedKey:
    key: str
    body: bytes
    code: str | None  # None for a badly named key
    extension: str
    tech: str | None = None  # JSON text stored with a master or streaming row (COPY baseline)


@dataclass
class DataSet:
    keys: list[SeedKey] = field(default_factory=list)
    assets: int = 0
    video_assets: int = 0
    audio_assets: int = 0
    bad_keys: int = 0

    @property
    def valid(self) -> list[SeedKey]:
        return [k for k in self.keys if k.code is not None]

    @property
    def sidecars(self) -> list[SeedKey]:
        return [k for k in self.valid if k.extension in SIDECAR_EXTENSIONS]

    @property
    def streaming(self) -> list[SeedKey]:
        return [k for k in self.valid if ROLE[k.extension] == "streaming"]

    def describe(self) -> dict[str, Any]:
        return {"keys": len(self.keys), "assets": self.assets, "video_assets": self.video_assets,
                "audio_assets": self.audio_assets, "keys_per_asset": 6,
                "bad_keys": self.bad_keys, "sidecar_keys": len(self.sidecars),
                "streaming_copies": len(self.streaming),
                "bytes": sum(len(k.body) for k in self.keys)}


def make_templates(scratch: Path) -> tuple[Template, Template]:
    """One real video asset and one real audio asset, made once by mpr_cli.dev.sample."""
    root = scratch / "sample"
    archive = sample.build_sample_archive(root, assets_video=1, assets_audio=1, bad=False,
                                          tape_master=False, duration=CLIP_SECONDS)
    by_code: dict[str, list[TemplateFile]] = {}
    for item in archive.files:
        name = item.key.rsplit("/", 1)[-1]
        code = item.inventory_code
        assert code is not None and name.startswith(code), item
        extension = "." + name.rsplit(".", 1)[-1].lower()
        by_code.setdefault(code, []).append(
            TemplateFile(name[len(code):], (root / item.key).read_bytes(), extension))
    video = next(c for c in by_code if c.startswith("V"))
    audio = next(c for c in by_code if c.startswith("A"))
    return (Template(video, tuple(by_code[video])), Template(audio, tuple(by_code[audio])))


def _asset_code(index: int, video: bool) -> str:
    # VO-B00-00001 ... ; the middle group rolls over every 100,000 assets of a kind.
    group, number = divmod(index, 100_000)
    return f"{'VO' if video else 'AO'}-{'B' if video else 'A'}{group:02d}-{number:05d}"


def _copy_files(template: Template, code: str, folder: str) -> Iterator[SeedKey]:
    old = template.code.encode()
    new = code.encode()
    master_json = next(f.body for f in template.files if f.suffix == ".json")
    for f in template.files:
        # md5 lines and QC reports name the file: same length code, so a PDF's xref holds.
        body = f.body.replace(old, new) if f.rewritten else f.body
        role = ROLE[f.extension]
        tech = None
        if role == "master":
            tech = master_json.replace(old, new).decode()
        elif role == "streaming":
            tech = next(t.body for t in template.files
                        if t.suffix == f.suffix + ".json").replace(old, new).decode()
        yield SeedKey(f"{folder}/{code}{f.suffix}", body, code, f.extension, tech)


_BAD_BODY = b"not an archive file\n"


def _bad_key(index: int) -> SeedKey:
    """A key rejected in phase 1, of five kinds in turn."""
    kind, n = index % 5, index // 5
    key = (f"BRD/VO-X{n // 10_000 % 100:02d}-{n % 10_000:04d}.mp4",  # code of 11 chars
           f"FILE/VO-X{n // 100_000 % 100:02d}-{n % 100_000:05d}_notes.txt",  # extension
           f"XYZ/VO-X{n // 100_000 % 100:02d}-{n % 100_000:05d}.mp4",  # unknown folder
           f"CD/VO-X{n // 100_000 % 100:02d}-{n % 100_000:05d}.mov",  # video code under CD/
           f"DVD/vo-x{n // 100_000 % 100:02d}-{n % 100_000:05d}.mp4")[kind]  # lower case
    return SeedKey(key, _BAD_BODY, None, "." + key.rsplit(".", 1)[-1])


def plan_dataset(total: int, video: Template, audio: Template) -> DataSet:
    per_asset = len(video.files)
    assert per_asset == len(audio.files) == 6
    bad = round(total * BAD_SHARE)
    assets = max(0, (total - bad) // per_asset)
    data = DataSet(assets=assets, bad_keys=total - assets * per_asset)
    for i in range(assets):
        is_video = i % 2 == 0
        n = i // 2
        template = video if is_video else audio
        folder = (VIDEO_FOLDERS if is_video else AUDIO_FOLDERS)[n % 3]
        data.keys.extend(_copy_files(template, _asset_code(n + 1, is_video), folder))
        data.video_assets += is_video
        data.audio_assets += not is_video
    data.keys.extend(_bad_key(j) for j in range(data.bad_keys))
    assert len(data.keys) == total and len({k.key for k in data.keys}) == total
    return data


# -- clients ---------------------------------------------------------------------------------


def plain_client(state: devservices.ServiceState, pool: int) -> Any:
    """A bare boto3 client (path style, checksums only when required, like mpr's)."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                    max_pool_connections=pool, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client(
        "s3", endpoint_url=state.s3_endpoint, region_name="us-east-1", config=config,
        aws_access_key_id=state.s3_access_key, aws_secret_access_key=state.s3_secret_key)


def settings_for(state: devservices.ServiceState) -> Settings:
    overrides = {FIELD_BY_ENV[name]: value for name, value in state.env().items()}
    return load_settings(env_file=None, **overrides)


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def run_pool(workers: int, func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def _proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (all its threads); with `children`, also of reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class ServerCpu:
    """CPU seconds used so far by our SeaweedFS and our PostgreSQL (postmaster + backends)."""

    def __init__(self, home: Path) -> None:
        self.weed = _pid_from(home / "s3" / "weed.pid")
        self.postmaster = _pid_from(home / "pg" / "data" / "postmaster.pid")

    def __call__(self) -> dict[str, float]:
        s3 = _proc_cpu(self.weed) if self.weed else 0.0
        pg = 0.0
        if self.postmaster:
            pg = _proc_cpu(self.postmaster, children=True)  # + backends that have exited
            pg += sum(_proc_cpu(pid) for pid in _children(self.postmaster))
        return {"s3": s3, "postgres": pg}


def _own_cpu() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Measured:
    wall_s: float
    client_cpu_s: float  # this process and its children (ffprobe)
    server_cpu_s: dict[str, float]  # SeaweedFS and PostgreSQL during the measurement

    def figures(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 3), "client_cpu_s": round(self.client_cpu_s, 3),
                "server_cpu_s": {k: round(v, 3) for k, v in self.server_cpu_s.items()}}


def measure(servers: ServerCpu, func: Callable[[], Any]) -> tuple[Measured, Any]:
    cpu0, srv0 = _own_cpu(), servers()
    started = time.perf_counter()
    result = func()
    wall = time.perf_counter() - started
    cpu1, srv1 = _own_cpu(), servers()
    return Measured(wall, cpu1 - cpu0, {k: srv1[k] - srv0[k] for k in srv0}), result


# -- seeding and baselines -----------------------------------------------------------------------


def seed(client: Any, bucket: str, data: DataSet) -> None:
    def put(item: SeedKey) -> None:
        client.put_object(Bucket=bucket, Key=item.key, Body=item.body)

    run_pool(SEED_WORKERS, put, data.keys)


def raw_listing(client: Any, bucket: str) -> int:
    count = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}):
        count += len(page.get("Contents", ()))
    return count


def sidecar_gets(client: Any, bucket: str, keys: list[SeedKey], workers: int) -> int:
    def get(item: SeedKey) -> int:
        if item.extension == ".pdf":
            reply = client.get_object(Bucket=bucket, Key=item.key,
                                      Range=f"bytes=0-{QC_HEAD_BYTES - 1}")
        else:
            reply = client.get_object(Bucket=bucket, Key=item.key)
        with reply["Body"] as body:
            return len(body.read())

    return sum(run_pool(workers, get, keys))


COPY_COLUMNS = ("asset_id, bucket, key, role, in_bucket, size, etag, md5, mime_type, "
                "tech_metadata")


def copy_rows(data: DataSet, bucket: str) -> list[tuple[Any, ...]]:
    ids: dict[str, int] = {}
    rows = []
    for item in data.valid:
        assert item.code is not None
        digest = hashlib.md5(item.body, usedforsecurity=False).hexdigest()
        asset_id = ids.setdefault(item.code, len(ids) + 1)
        rows.append((asset_id, bucket, item.key, ROLE[item.extension], True, len(item.body),
                     digest, digest, MIME[item.extension], item.tech))
    return rows


def plain_copy(database_url: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds for one COPY of `rows` into a fresh scratch table (created and dropped untimed)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute("""CREATE TABLE bench_copy (
            id bigserial PRIMARY KEY, asset_id bigint NOT NULL, bucket text NOT NULL,
            key text NOT NULL, role text NOT NULL, in_bucket boolean NOT NULL, size bigint,
            etag text, md5 text, mime_type text, tech_metadata jsonb)""")
        try:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, \
                    cur.copy(f"COPY bench_copy ({COPY_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            elapsed = time.perf_counter() - started
            copied = conn.execute("SELECT count(*) FROM bench_copy").fetchone()
            assert copied is not None and copied[0] == len(rows), copied
        finally:
            conn.execute("DROP TABLE IF EXISTS bench_copy")
    return elapsed


def plain_ffprobe(client: Any, bucket: str, keys: list[SeedKey], workers: int) -> int:
    """ffprobe (the argv mpr uses) on a presigned URL of each key; returns the failures."""
    def one(item: SeedKey) -> int:
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket,
                                                                  "Key": item.key},
                                            ExpiresIn=900)
        argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                "-show_streams", "-rw_timeout", "60000000", url]
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=60, check=False)
        if done.returncode != 0:
            return 1
        return 0 if json.loads(done.stdout).get("streams") else 1

    return sum(run_pool(workers, one, keys))


# -- mpr as a subprocess -----------------------------------------------------------------------


def mpr_argv() -> list[str]:
    script = Path(sys.executable).parent / "mpr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpr_cli"]


def _read_hwm(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KIB
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# The child is started through this tiny wrapper because a child forked from the benchmark
# inherits the benchmark's own high-water RSS in its ru_maxrss (Linux keeps it across exec).
# The wrapper is small, so wait4() on the command it spawns gives that command's true peak.
_RSS_WRAPPER = """
import json, os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    json.dump({"maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, f)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Child:
    wall_s: float
    exit_code: int
    maxrss_bytes: int  # wait4's ru_maxrss of the command (and of what it waited for)
    cpu_s: float  # CPU of the command and of what it waited for (mpr's ffprobe children)
    hwm_bytes: int | None  # the largest VmHWM polled from /proc (cross-check)
    stdout: str
    stderr: str


def run_child(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Child:
    """Run argv; wall time, exit code and peak RSS (wait4 rusage and /proc VmHWM polling)."""
    out_path, err_path = cwd / "child.out", cwd / "child.err"
    rss_path = cwd / "child.rss.json"
    rss_path.unlink(missing_ok=True)
    wrapped = [sys.executable, "-I", "-S", "-c", _RSS_WRAPPER, str(rss_path), *argv]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        hwm: list[int] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                for pid in _children(proc.pid):
                    value = _read_hwm(pid)
                    if value is not None:
                        hwm.append(value)
                stop.wait(0.05)

        def kill() -> None:  # the wrapper's session: the wrapper and what it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        killer = threading.Timer(timeout, kill)
        killer.start()
        try:
            code = proc.wait()
        finally:
            killer.cancel()
            stop.set()
        wall = time.perf_counter() - started
        watcher.join()
    usage = json.loads(rss_path.read_text()) if rss_path.exists() else {}
    maxrss = usage.get("maxrss_kib", 0) * KIB
    return Child(wall, code, maxrss, usage.get("cpu_s", 0.0), max(hwm) if hwm else None,
                 out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


# py-spy's sampling: every thread, waiting ones too ("idle"); threads on a CPU, in Python or
# in native code ("cpu"); only the thread holding the GIL ("gil")
PROFILE_FLAGS = {"idle": ["--idle"], "cpu": [], "gil": ["--gil"]}
PROFILE_MODE = "idle"


def run_mpr(env: dict[str, str], work: Path, name: str, profile: Path | None,
            servers: ServerCpu) -> dict[str, Any]:
    report_path = work / f"{name}.report.json"
    no_env = work / "no.env"  # an empty settings file: only the environment given counts
    no_env.touch()
    argv = [*mpr_argv(), "--env-file", str(no_env), "import", "--quiet",
            "--report", str(report_path)]
    if profile is not None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        profile.mkdir(parents=True, exist_ok=True)
        argv = [py_spy, "record", *PROFILE_FLAGS[PROFILE_MODE], "--rate", "50", "--format",
                "raw", "--output", str(profile / f"{name}.txt"), "--", *argv]
    before = servers()
    child = run_child(argv, env, work, MPR_TIMEOUT_S)
    after = servers()
    if child.exit_code not in (0, 1):  # 1: completed, some files had errors (the bad names)
        raise SystemExit(f"mpr import ({name}) exited {child.exit_code}:\n"
                         f"{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
    report = json.loads(report_path.read_text())
    return {**run_figures(child, before, after, report),
            "summary": child.stdout.strip().splitlines()[-1:] or child.stderr.strip()[-300:]}


def run_figures(child: Child, before: dict[str, float], after: dict[str, float],
                report: dict[str, Any]) -> dict[str, Any]:
    """One mpr run's figures: wall, CPU (its own and the servers'), peak RSS, its report's
    phase times and counts."""
    peak = max(child.maxrss_bytes, child.hwm_bytes or 0)
    return {"wall_s": round(child.wall_s, 3), "exit_code": child.exit_code,
            "client_cpu_s": round(child.cpu_s, 3),
            "server_cpu_s": {k: round(after[k] - before[k], 3) for k in before},
            "peak_rss_mib": round(peak / MIB, 1),
            "peak_rss_wait4_mib": round(child.maxrss_bytes / MIB, 1),
            "peak_rss_vmhwm_mib": round(child.hwm_bytes / MIB, 1) if child.hwm_bytes else None,
            "phases_s": {k: round(v, 3) for k, v in report.get("durations_s", {}).items()},
            "counts": report.get("counts", {}), "status": report.get("status")}


def mpr_startup(env: dict[str, str], work: Path) -> dict[str, float]:
    """`mpr --version` (interpreter start and mpr's imports), best of 3: wall, CPU, RSS."""
    runs = [run_child([*mpr_argv(), "--version"], env, work, 120) for _ in range(3)]
    best = min(runs, key=lambda c: c.wall_s)
    return {"wall_s": round(best.wall_s, 3), "cpu_s": round(best.cpu_s, 3),
            "peak_rss_mib": round(best.maxrss_bytes / MIB, 1)}


# -- checks and targets ------------------------------------------------------------------------


def check_counts(data: DataSet, all_new: dict[str, Any],
                 nothing_new: list[dict[str, Any]]) -> list[str]:
    """What mpr reported that differs from what was seeded (empty when all is right)."""
    valid = len(data.valid)
    wrong = []
    expected_all = {"listed": len(data.keys), "rejected": data.bad_keys, "accepted": valid,
                    "skipped": 0, "inserted_assets": data.assets, "inserted_files": valid}
    expected_none = {"listed": len(data.keys), "rejected": data.bad_keys, "accepted": 0,
                     "skipped": valid, "inserted_assets": 0, "inserted_files": 0}
    for name, run, expected in [("all_new", all_new, expected_all),
                                *((f"nothing_new[{i}]", r, expected_none)
                                  for i, r in enumerate(nothing_new))]:
        for count, value in expected.items():
            got = run["counts"].get(count)
            if got != value:
                wrong.append(f"{name}: counts.{count} is {got}, expected {value}")
    return wrong


def _cpu(figures: dict[str, Any]) -> float:
    return float(figures["client_cpu_s"]) + sum(figures["server_cpu_s"].values())


def targets(keys: int, base: dict[str, Any], all_new: dict[str, Any],
            nothing_new: dict[str, Any], peak_rss_mib: float) -> dict[str, Any]:
    """The targets are on wall time; the CPU ratios (client + servers) are given beside them
    because they hold up when other work shares the machine."""
    listing, gets = base["raw_listing"], base["sidecar_gets"]
    copy, probes = base["copy"], base.get("ffprobe")
    rss_limit = (RSS_PER_KEY * keys + RSS_BASE) / MIB

    def ratio(run: dict[str, Any], parts: list[dict[str, Any]], limit: float) -> dict[str, Any]:
        wall = sum(p["wall_s"] for p in parts)
        cpu = sum(_cpu(p) for p in parts)
        value = run["wall_s"] / wall if wall > 0 else float("inf")
        return {"actual_s": run["wall_s"], "reference_s": round(wall, 3),
                "ratio": round(value, 2), "max_ratio": limit, "met": value <= limit,
                "cpu_actual_s": round(_cpu(run), 3), "cpu_reference_s": round(cpu, 3),
                "cpu_ratio": round(_cpu(run) / cpu, 2) if cpu > 0 else None}

    return {
        "nothing_new_vs_listing": ratio(nothing_new, [listing], NOTHING_NEW_MAX_RATIO),
        "all_new_vs_listing_gets_copy": ratio(all_new, [listing, gets, copy],
                                              ALL_NEW_MAX_RATIO),
        **({"all_new_vs_listing_gets_copy_ffprobe": ratio(
            all_new, [listing, gets, copy, probes], ALL_NEW_MAX_RATIO)} if probes else {}),
        "peak_rss": {"actual_mib": peak_rss_mib, "limit_mib": round(rss_limit, 1),
                     "formula": "1.5 KiB x listed keys + 100 MiB",
                     "met": peak_rss_mib < rss_limit},
    }


# -- main ---------------------------------------------------------------------------------------


def ffprobe_version() -> str | None:
    try:
        done = subprocess.run(["ffprobe", "-version"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    words = done.stdout.split(maxsplit=3)
    return words[2] if len(words) > 2 else None


def machine_facts(settings: Settings) -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "ffprobe": ffprobe_version(),
            "io_workers": settings.io_workers,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 1024 ** 3, 1)}


def bench(keys: int, profile: Path | None, ffprobe_baseline: bool = False) -> dict[str, Any]:
    started_all = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    if load_before[0] > (os.cpu_count() or 1):
        log(f"warning: load average {load_before[0]} on {os.cpu_count()} CPUs: other work is "
            "running, wall times will be inflated (compare the cpu_ratio figures)")
    setup: dict[str, float] = {}
    with local_services(log) as services:
        home, work, state = services.home, services.work, services.state
        setup["services_up_s"] = services.up_s
        servers = ServerCpu(home)
        settings = settings_for(state)
        setup["migrate_s"], _ = timed(lambda: db.migrate(settings))
        bucket, workers = settings.s3_bucket_in, settings.io_workers

        log("generating one video and one audio asset with mpr_cli.dev.sample")
        setup["sample_s"], (video, audio) = timed(lambda: make_templates(work))
        data = plan_dataset(keys, video, audio)
        log(f"seeding {len(data.keys)} keys ({data.assets} assets, {data.bad_keys} bad names)")
        seeder = plain_client(state, SEED_WORKERS + 4)
        setup["seed_s"], _ = timed(lambda: seed(seeder, bucket, data))
        setup = {k: round(v, 3) for k, v in setup.items()}

        client = plain_client(state, workers + 4)
        base: dict[str, Any] = {}
        log("raw listing")
        runs = []
        for _ in range(LISTING_RUNS):
            cost, listed = measure(servers, lambda: raw_listing(client, bucket))
            assert listed == keys, f"listed {listed} keys, seeded {keys}"
            runs.append(cost)
        median = sorted(runs, key=lambda c: c.wall_s)[len(runs) // 2]
        base["raw_listing"] = {**median.figures(), "keys": keys,
                               "runs_wall_s": [round(c.wall_s, 3) for c in runs]}

        sidecars = data.sidecars
        log(f"plain GET of {len(sidecars)} sidecars on {workers} threads")
        cost, read = measure(servers, lambda: sidecar_gets(client, bucket, sidecars, workers))
        base["sidecar_gets"] = {**cost.figures(), "gets": len(sidecars), "bytes_read": read,
                                "threads": workers}

        rows = copy_rows(data, bucket)
        log(f"plain COPY of {len(rows)} rows")
        # CPU covers the scratch table's CREATE and DROP too; the wall time only the COPY.
        cost, copy_wall = measure(servers, lambda: plain_copy(state.database_url, rows))
        cost.wall_s = copy_wall
        base["copy"] = {**cost.figures(), "rows": len(rows)}
        rows.clear()

        streaming = data.streaming
        if ffprobe_baseline:  # mpr probes in-process since 2026-11-23: kept for comparison
            log(f"plain ffprobe of {len(streaming)} streaming copies on {workers} threads")
            cost, failed = measure(servers,
                                   lambda: plain_ffprobe(client, bucket, streaming, workers))
            base["ffprobe"] = {
                **cost.figures(), "probes": len(streaming), "failures": failed,
                "threads": workers,
                "wall_ms_per_probe": round(1000 * cost.wall_s / len(streaming), 2),
                "cpu_ms_per_probe": round(1000 * cost.client_cpu_s / len(streaming), 2)}

        env = {**os.environ, **state.env()}
        base["mpr_startup"] = mpr_startup(env, work)

        log("mpr import, all keys new")
        all_new = run_mpr(env, work, "all_new", profile, servers)
        log(f"  {all_new['wall_s']} s, peak RSS {all_new['peak_rss_mib']} MiB")
        nothing_new = []
        for i in range(NOTHING_NEW_RUNS):
            log(f"mpr import, nothing new ({i + 1}/{NOTHING_NEW_RUNS})")
            run = run_mpr(env, work, f"nothing_new_{i + 1}", profile, servers)
            log(f"  {run['wall_s']} s, peak RSS {run['peak_rss_mib']} MiB")
            nothing_new.append(run)
        median_run = sorted(nothing_new, key=lambda r: r["wall_s"])[len(nothing_new) // 2]
        peak = max([all_new["peak_rss_mib"], *(r["peak_rss_mib"] for r in nothing_new)])
        wrong = check_counts(data, all_new, nothing_new)
        return {
            "benchmark": "mpr import",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keys": keys,
            "profiled": profile is not None,
            "machine": {**machine_facts(settings), "loadavg_before": load_before,
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
            "dataset": data.describe(),
            "setup_s": setup,
            "baselines": base,
            "mpr": {"all_new": all_new, "nothing_new": median_run,
                    "nothing_new_runs_wall_s": [r["wall_s"] for r in nothing_new],
                    "peak_rss_mib": peak},
            "targets": targets(keys, base, all_new, median_run, peak),
            "count_mismatches": wrong,
            "total_s": round(time.perf_counter() - started_all, 1),
        }


def main(argv: list[str] | None = None) -> int:
    global PROFILE_MODE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000, help="keys in the bucket (20000)")
    add_save_option(parser, "import")
    parser.add_argument("--ffprobe-baseline", action="store_true",
                        help="also time a plain ffprobe of every streaming copy (what phase 3 "
                             "did before it probed in-process with libmediainfo)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run mpr under `py-spy record --idle` (raw stacks into DIR); "
                             "timings and RSS are then not comparable")
    parser.add_argument("--profile-mode", choices=sorted(PROFILE_FLAGS), default=PROFILE_MODE,
                        help="with --profile: sample every thread (idle, the default), the "
                             "threads on a CPU (cpu) or the one holding the GIL (gil)")
    args = parser.parse_args(argv)
    PROFILE_MODE = args.profile_mode
    if args.keys < 120:
        parser.error("--keys must be at least 120")
    path = save_path(parser, "import", args.save)
    result = bench(args.keys, args.profile, args.ffprobe_baseline)
    emit(result, path)
    return 1 if result["count_mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
