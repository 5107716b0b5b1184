#!/usr/bin/env python3
"""Benchmark of `mpr transcode` against plain ffmpeg, on real local services.

Starts its own PostgreSQL and SeaweedFS (mpr_cli.dev.devservices, which starts a Redis too,
unused here) on free loopback ports, migrates a fresh catalogue, generates its masters once
with ffmpeg's lavfi sources, uploads them to the input bucket, then measures side by side:

  single       `mpr transcode KEY --preset web-720p` (a subprocess) of a 60 s 1280x720 master,
               against the very ffmpeg argv mpr builds (build_transcode_argv, same preset,
               probe info and threads) run directly on a local copy; also against the same
               argv with ffmpeg's own thread default (all cores). Rounds alternate; best of each.
  source mode  the in-process Transcoder with SourceMode.DOWNLOAD (local copy, the default)
               against SourceMode.URL (ffmpeg reads a presigned URL), on the 60 s master and
               on the ~1 GB one, with a phase breakdown (download, probes, ffmpeg, upload).
  pool         `mpr transcode --pending` over 8 catalogued 10 s masters with --workers 2
               against --workers 1: wall time, speed-up, CPU seconds of the children and
               utilisation = CPU / (wall x cores); after each, the same ffmpeg argvs run
               directly, as many at a time.
  memory       the peak RSS of the mpr process itself (VmRSS/VmHWM of its /proc status, sampled
               every 0.2 s; ffmpeg is another process and not counted) while it transcodes a
               ~1 GB uncompressed (v210) master with a tiny user preset (MPR_PRESETS).

and prints one JSON document with every figure, the targets and pass/fail per target.
See bench/README.md (section `bench_transcode.py`).

    .venv/bin/python bench/bench_transcode.py             # the full run (~10 min on 2 quiet cores)
    .venv/bin/python bench/bench_transcode.py --save      # also bench/results/transcode-<date>.json
    .venv/bin/python bench/bench_transcode.py --only pool # one section (single, source_mode,
                                                          # pool, memory; comma-separated)
    .venv/bin/python bench/bench_transcode.py --master-seconds 10 --pool-seconds 3 \\
        --big-mb 200 --rounds 1                           # a quick run (figures not comparable)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import platform
import resource
import signal
import statistics
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

import mpr_cli.transcode.stages as transcode_module
from mpr_cli import db
from mpr_cli.config import FIELD_BY_ENV, Settings, load_settings
from mpr_cli.dev import devservices, sample
from mpr_cli.ffmpeg.command import PROGRESS_ARGS, build_transcode_argv, threads_per_job
from mpr_cli.ffmpeg.presets import Preset, load_presets
from mpr_cli.ffmpeg.probe import ffmpeg_version, probe
from mpr_cli.rules import load_rules
from mpr_cli.secrets import redact_query
from mpr_cli.storage import Storage
from mpr_cli.transcode.stages import SourceMode, Transcoder, parse_source
from mpr_cli.validation.mime import mime_for_media

HERE = Path(__file__).resolve().parent
KIB, MIB = 1024, 1024 * 1024

PRESET = "web-720p"
SIZE = "1280x720"
FPS = 25
MASTER_KEY = "FILE/VO-BEN-00001.mov"  # the 60 s master
BIG_KEY = "FILE/VO-BEN-00002.mov"  # the ~1 GB master
POOL_PREFIX = "FILE/VO-PEN-"  # the pool's masters: FILE/VO-PEN-00001.mov ...
POOL_MASTERS = 8
BIG_PRESET = "bench-tiny"
BIG_PRESETS_TOML = """\
# bench/bench_transcode.py: a preset that makes the encode cheap, so that the memory run
# measures mpr (download, probe, upload) and not x264.
version = 1

[presets.bench-tiny]
description = "benchmark only: fits 320x180, x264 ultrafast"
media = "video"
max_width = 320
max_height = 180
preset = "ultrafast"
crf = 30
audio_bitrate = "64k"
"""
V210_BYTES_PER_FRAME = -(-1280 // 48) * 128 * 720  # v210 packs 48 pixels into 128 bytes a line
PCM_BYTES_PER_S = 48_000 * 2 * 3  # pcm_s24le stereo
SAMPLE_EVERY_S = 0.2
TIMELINE_EVERY_S = 1.0  # RSS timeline points kept in the JSON
SEED_WORKERS = 8
QUIET_CORES = 0.3  # "quiet": the rest of the machine uses fewer cores than this
QUIET_WINDOW_S = 3.0
MPR_TIMEOUT_S = 1200
FFMPEG_TIMEOUT_S = 1200

# Targets (see bench/README.md).
SINGLE_MAX_RATIO = 1.10  # mpr transcode KEY <= 1.10 x the same ffmpeg argv run directly
POOL_MIN_UTILISATION = 0.90  # --workers 2: CPU / (wall x cores) "near 1.0"
RSS_LIMIT_BYTES = 150 * 1000 * 1000  # peak RSS of the mpr process < 150 MB
THREADS_MAX_RATIO = 1.25  # a check, not a target: mpr vs ffmpeg's own thread default
SECTIONS = ("single", "source_mode", "pool", "memory")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


# -- media ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Master:
    key: str
    path: Path
    seconds: float
    size: int
    md5: str
    codecs: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "seconds": self.seconds, "frame_size": SIZE, "fps": FPS,
                "bytes": self.size, "mib": mib(self.size), "codecs": list(self.codecs)}


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(8 * MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _master(key: str, path: Path, seconds: float) -> Master:
    info = probe(path)
    return Master(key, path, seconds, path.stat().st_size, _md5(path),
                  (*info.video_codecs, *info.audio_codecs))


def make_h264_master(path: Path, key: str, seconds: float) -> Master:
    """H.264 (x264 ultrafast, CRF 18, ~12 Mbit/s) + PCM in .mov, by mpr_cli.dev.sample."""
    sample.generate_media(path, "mov", duration=seconds, size=SIZE)
    return _master(key, path, seconds)


def make_big_master(path: Path, key: str, target_bytes: int) -> Master:
    """Uncompressed 10-bit 4:2:2 (v210) + 24-bit PCM in .mov: ~target_bytes in a few seconds."""
    frames = max(FPS, -(-target_bytes // (V210_BYTES_PER_FRAME + PCM_BYTES_PER_S // FPS)))
    seconds = frames / FPS
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}:duration={seconds:g}",
            "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=48000:duration={seconds:g}",
            "-c:v", "v210", "-c:a", "pcm_s24le", "-ac", "2", "-f", "mov", str(path)]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return _master(key, path, seconds)


# -- services and clients ---------------------------------------------------------------------


def plain_client(state: devservices.ServiceState) -> Any:
    """A bare boto3 client (path style, checksums only when required, like mpr's)."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                    max_pool_connections=SEED_WORKERS + 4,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client(
        "s3", endpoint_url=state.s3_endpoint, region_name="us-east-1", config=config,
        aws_access_key_id=state.s3_access_key, aws_secret_access_key=state.s3_secret_key)


def settings_for(state: devservices.ServiceState) -> Settings:
    overrides = {FIELD_BY_ENV[name]: value for name, value in state.env().items()}
    return load_settings(env_file=None, **overrides)


def upload(client: Any, bucket: str, path: Path, key: str) -> None:
    client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "video/quicktime"})


def catalogue_masters(settings: Settings, client: Any, masters: list[Master]) -> None:
    """Assets with a master row (as `mpr import` leaves them), no streaming copy yet."""
    bucket = settings.s3_bucket_in
    assets, rows = [], []
    for m in masters:
        code = m.key.rsplit("/", 1)[-1].split(".")[0]
        info = probe(m.path)
        etag = client.head_object(Bucket=bucket, Key=m.key)["ETag"].strip('"')
        assets.append((code, "video"))
        rows.append(db.FileRow(code, bucket, m.key, "master", True, m.size, etag, m.md5,
                               mime_for_media(info), info.raw))
    with db.connect(settings) as conn, conn.transaction():
        db.insert_files(conn, None, assets, rows)


def clear_outputs(settings: Settings, client: Any, prefix: str) -> int:
    """Forget the streaming copies under `prefix`: jobs, output rows, output objects."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute("DELETE FROM transcode_jobs WHERE source_key LIKE %s", (prefix + "%",))
        conn.execute("DELETE FROM asset_files WHERE bucket = %s AND key LIKE %s",
                     (settings.s3_bucket_out, prefix + "%"))
    removed = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.s3_bucket_out, Prefix=prefix):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=settings.s3_bucket_out, Key=item["Key"])
            removed += 1
    return removed


def job_counts(settings: Settings, prefix: str) -> dict[str, int]:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM transcode_jobs WHERE source_key LIKE %s "
                            "GROUP BY status", (prefix + "%",)).fetchall()
    return {status: int(count) for status, count in rows}


def job_timeline(settings: Settings, prefix: str, child: Child) -> dict[str, Any]:
    """When each job was claimed and finished (from the catalogue), against the process's
    start and end. A job claimed ahead waits for a slot: its duration includes that wait."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, worker, extract(epoch FROM started_at)::float8, "
            "extract(epoch FROM finished_at)::float8 FROM transcode_jobs "
            "WHERE source_key LIKE %s AND status = 'COMPLETED' ORDER BY started_at",
            (prefix + "%",)).fetchall()
    if not rows:
        return {}
    base = child.started_epoch
    jobs = [{"id": r[0], "worker": r[1].rsplit(":", 1)[-1], "start_s": round(r[2] - base, 2),
             "duration_s": round(r[3] - r[2], 2)} for r in rows]
    busy = sum(j["duration_s"] for j in jobs)
    first, last = min(r[2] for r in rows), max(r[3] for r in rows)
    workers = len({j["worker"] for j in jobs})
    return {"before_first_job_s": round(first - base, 2),
            "after_last_job_s": round(child.ended_epoch - last, 2),
            "jobs_span_s": round(last - first, 2),
            "job_seconds_total": round(busy, 2),
            "mean_job_s": round(busy / len(jobs), 2),
            "workers_seen": workers,
            "worker_busy_share": round(busy / ((last - first) * workers), 3),
            "jobs": jobs}


def slots_busy(child: Child, workers: int) -> dict[str, Any]:
    """How full the `workers` ffmpeg slots were, from the ffmpeg children sampled every
    SAMPLE_EVERY_S: over the whole run, and from the first ffmpeg seen to the last."""
    counts = [min(n, workers) for _, n in child.ffmpeg_counts]
    seen = [i for i, n in enumerate(counts) if n]
    if not seen:
        return {}
    inner = counts[seen[0]:seen[-1] + 1]
    short = [child.ffmpeg_counts[i][0] for i in range(seen[0], seen[-1] + 1)
             if counts[i] < workers]
    return {"samples": len(counts), "every_s": SAMPLE_EVERY_S,
            "first_ffmpeg_s": child.ffmpeg_counts[seen[0]][0],
            "last_ffmpeg_s": child.ffmpeg_counts[seen[-1]][0],
            "busy_share": round(sum(counts) / (len(counts) * workers), 3),
            "busy_share_first_to_last": round(sum(inner) / (len(inner) * workers), 3),
            "samples_short_of_workers_s": short}


def streaming_rows(settings: Settings, prefix: str) -> int:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM asset_files WHERE bucket = %s AND key LIKE %s "
                           "AND role = 'streaming'", (settings.s3_bucket_out, prefix + "%"))
        found = row.fetchone()
    return int(found[0]) if found else 0


# -- a child process: wall, CPU, RSS ------------------------------------------------------------


def mpr_argv() -> list[str]:
    script = Path(sys.executable).parent / "mpr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mpr_cli"]


def _status_kib(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(rest.split()[0])
    return found


def _self_cpu_s(pid: int) -> float | None:
    """user + system seconds of the process itself (not its children), from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (mpr starts ffmpeg from its worker threads)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


@dataclass
class Child:
    wall_s: float
    exit_code: int
    cpu_s: float  # user+sys of the process and all it reaped (RUSAGE_CHILDREN delta)
    self_cpu_s: float | None  # the process's own user+sys (last /proc sample before it ended)
    peak_rss: int | None  # largest VmRSS sampled (bytes)
    peak_hwm: int | None  # largest VmHWM sampled (bytes)
    samples: int
    timeline: list[tuple[float, float | None]]  # (s, VmRSS MiB), one point a TIMELINE_EVERY_S
    ffmpeg_argvs: list[list[str]]  # the ffmpeg children seen (first of each distinct argv)
    stdout: str
    stderr: str
    machine_busy_s: float = 0.0  # non-idle CPU seconds of the whole machine meanwhile
    started_epoch: float = 0.0
    ended_epoch: float = 0.0
    ffmpeg_counts: list[tuple[float, int]] = field(default_factory=list)  # (s, ffmpegs running)

    def figures(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 3), "exit_code": self.exit_code,
                "cpu_s": round(self.cpu_s, 2),
                "self_cpu_s": None if self.self_cpu_s is None else round(self.self_cpu_s, 2),
                "peak_rss_mib": mib(self.peak_rss), "peak_vmhwm_mib": mib(self.peak_hwm),
                **contention(self.wall_s, self.machine_busy_s, self.cpu_s)}


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle since boot (/proc/stat), all processes."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def contention(wall_s: float, busy_s: float, own_cpu_s: float) -> dict[str, float]:
    """What the rest of the machine did meanwhile: CPU seconds and cores used by others, and
    the share of the CPU time they left over that this run used (1.0: it took all of it)."""
    cores = os.cpu_count() or 1
    others = max(0.0, busy_s - own_cpu_s)
    left = max(1e-9, wall_s * cores - others)
    return {"machine_busy_cores": round(busy_s / wall_s, 2),
            "others_cpu_s": round(others, 2), "others_cores": round(others / wall_s, 2),
            "utilisation_of_cpu_left": round(min(1.0, own_cpu_s / left), 3)}


def run_child(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Child:
    """Run argv; wall time, exit code, CPU of it and its reaped descendants, its own RSS."""
    out_path, err_path = cwd / "child.out", cwd / "child.err"
    rss: list[int] = []
    hwm: list[int] = []
    timeline: list[tuple[float, float | None]] = []
    ffmpegs: list[list[str]] = []
    counts: list[tuple[float, int]] = []
    self_cpu: list[float] = []
    stop = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        cpu_before, busy_before = _cpu_children(), _machine_busy_s()
        started, started_epoch = time.perf_counter(), time.time()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)

        def poll() -> None:
            next_point = 0.0
            while not stop.is_set():
                status = _status_kib(proc.pid)
                now = time.perf_counter() - started
                if "VmRSS" in status:
                    rss.append(status["VmRSS"] * KIB)
                    hwm.append(status.get("VmHWM", 0) * KIB)
                    if now >= next_point:
                        timeline.append((round(now, 1), mib(status["VmRSS"] * KIB)))
                        next_point = now + TIMELINE_EVERY_S
                cpu = _self_cpu_s(proc.pid)
                if cpu is not None:
                    self_cpu.append(cpu)
                running = 0
                for pid in _children(proc.pid):
                    cmd = _cmdline(pid)
                    if cmd[:1] and Path(cmd[0]).name == "ffmpeg":
                        running += 1
                        if cmd not in ffmpegs:
                            ffmpegs.append(cmd)
                counts.append((round(now, 2), running))
                stop.wait(SAMPLE_EVERY_S)

        def kill() -> None:
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
        cpu, busy = _cpu_children() - cpu_before, _machine_busy_s() - busy_before
        watcher.join()
    return Child(wall, code, cpu, max(self_cpu) if self_cpu else None,
                 max(rss) if rss else None, max(hwm) if hwm else None, len(rss), timeline,
                 ffmpegs, out_path.read_text(errors="replace"),
                 err_path.read_text(errors="replace"), busy, started_epoch,
                 started_epoch + wall, counts)


def run_mpr(args: list[str], env: dict[str, str], work: Path, what: str) -> Child:
    no_env = work / "no.env"  # an empty settings file: only the environment given counts
    no_env.touch()
    argv = [*mpr_argv(), "--env-file", str(no_env), *args]
    child = run_child(argv, env, work, MPR_TIMEOUT_S)
    if child.exit_code != 0:
        raise SystemExit(f"{what} exited {child.exit_code}:\n{child.stdout[-3000:]}\n"
                         f"{child.stderr[-3000:]}")
    return child


def _redacted(argv: list[str]) -> list[str]:
    return [redact_query(a) for a in argv]


def threads_in(argv: list[str]) -> list[str]:
    """The values of every -threads option of an ffmpeg argv."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-threads"]


def wait_for_quiet(max_wait_s: float, what: str) -> dict[str, Any]:
    """Wait (at most max_wait_s) until the rest of the machine uses < QUIET_CORES cores over a
    QUIET_WINDOW_S window: other processes (tests, other benchmarks) skew every figure here."""
    started = time.perf_counter()
    while True:
        before = _machine_busy_s()
        time.sleep(QUIET_WINDOW_S)
        busy_cores = (_machine_busy_s() - before) / QUIET_WINDOW_S
        waited = time.perf_counter() - started
        if busy_cores < QUIET_CORES or waited >= max_wait_s:
            quiet = busy_cores < QUIET_CORES
            if not quiet:
                log(f"{what}: the machine is still busy ({busy_cores:.2f} cores used by other "
                    f"processes); going on after {waited:.0f} s")
            return {"waited_s": round(waited, 1), "busy_cores": round(busy_cores, 2),
                    "quiet": quiet}
        log(f"{what}: other processes use {busy_cores:.2f} cores; waiting for a quiet machine")


# -- in-process Transcoder ----------------------------------------------------------------------


@contextlib.contextmanager
def phase_clock() -> Iterator[dict[str, float]]:
    """Seconds spent in each step of Transcoder.run, by wrapping the names
    mpr_cli.transcode.stages calls (in this process only, for the duration of the block)."""
    spent: dict[str, float] = {}
    originals: dict[str, Any] = {}

    def wrap(name: str, label: Callable[..., str]) -> None:
        original = getattr(transcode_module, name)
        originals[name] = original

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = label(*args, **kwargs)
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - started

        setattr(transcode_module, name, timed_call)

    wrap("probe", lambda source, **_: "probe_output_s" if str(source).endswith(".mp4")
         else "probe_master_s")
    wrap("run_ffmpeg", lambda *_, **__: "ffmpeg_s")
    wrap("mediainfo_json", lambda *_, **__: "mediainfo_output_s")
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(transcode_module, name, original)


class TimedStorage(Storage):
    """mpr's Storage, with the time spent downloading and uploading added up."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.spent: dict[str, float] = {}

    def _add(self, name: str, started: float) -> None:
        self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started

    def download_to(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().download_to(*args, **kwargs)
        finally:
            self._add("download_master_s", started)

    def upload_file(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().upload_file(*args, **kwargs)
        finally:
            self._add("upload_output_s", started)

    def upload_bytes(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().upload_bytes(*args, **kwargs)
        finally:
            self._add("upload_sidecars_s", started)


def run_inprocess(settings: Settings, key: str, preset: Preset, mode: SourceMode,
                  threads: int) -> dict[str, Any]:
    """One Transcoder.run (what a job does, without the catalogue) in this process."""
    storage = TimedStorage(settings)
    transcoder = Transcoder(settings, storage, threads=threads, source_mode=mode)
    source = parse_source(key, load_rules())
    out_key = f"bench-inprocess/{mode.value}/{source.inventory_code}{preset.extension}"
    cpu_before, busy_before = _cpu_children(), _machine_busy_s()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    with phase_clock() as spent:
        started = time.perf_counter()
        outcome = transcoder.run(source, preset, out_key)
        wall = time.perf_counter() - started
    cpu, busy = _cpu_children() - cpu_before, _machine_busy_s() - busy_before
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    own = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime
                                                          - self_before.ru_stime)
    transcoder.remove_outputs([out_key, out_key + ".md5", out_key + ".json"])
    phases = {**spent, **storage.spent}
    phases["other_s"] = wall - sum(phases.values())
    return {"wall_s": round(wall, 3), "children_cpu_s": round(cpu, 2),
            "self_cpu_s": round(own, 2), "output_bytes": outcome.size,
            **contention(wall, busy, cpu + own),
            "phases_s": {k: round(v, 3) for k, v in sorted(phases.items())}}


# -- the measurements ---------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["wall_s"])


def comparable(argv: list[str]) -> list[str]:
    """An ffmpeg argv with its input and output named INPUT / OUTPUT and no progress flags."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "-i":
            out[i + 1] = "INPUT"
    out[-1] = "OUTPUT"
    for i in range(len(out) - len(PROGRESS_ARGS) + 1):
        if tuple(out[i:i + len(PROGRESS_ARGS)]) == PROGRESS_ARGS:
            del out[i:i + len(PROGRESS_ARGS)]
            break
    return out


def bench_single(env: dict[str, str], work: Path, master: Master,
                 rounds: int) -> dict[str, Any]:
    """mpr transcode KEY against the argv mpr ran (its -threads read from /proc), run directly
    on a local copy, and against that argv with ffmpeg's own thread default."""
    preset = load_presets().get(PRESET)
    info = probe(master.path)
    direct_out = work / "direct.mp4"
    all_cores = build_transcode_argv(str(master.path), direct_out, preset, info, threads=0,
                                     progress=False)
    runs: dict[str, list[dict[str, Any]]] = {"mpr": [], "ffmpeg_same_argv": [],
                                             "ffmpeg_all_cores": []}
    seen: list[list[str]] = []
    same: dict[str, Any] = {}

    def same_argv() -> list[str]:
        if "argv" not in same:  # after the first mpr run, which shows the argv mpr uses
            values = threads_in(seen[0]) if seen else []
            same["threads"] = int(values[0]) if values else 0
            same["argv"] = build_transcode_argv(str(master.path), direct_out, preset, info,
                                                threads=same["threads"], progress=False)
        return list(same["argv"])

    def mpr_run() -> None:
        child = run_mpr(["transcode", master.key, "--preset", PRESET, "--force"], env, work,
                        "mpr transcode KEY")
        seen.extend(a for a in child.ffmpeg_argvs if a not in seen)
        runs["mpr"].append(child.figures())

    def ffmpeg_run(name: str, argv: Callable[[], list[str]]) -> Callable[[], None]:
        def run() -> None:
            child = run_child(argv(), dict(os.environ), work, FFMPEG_TIMEOUT_S)
            if child.exit_code != 0:
                raise SystemExit(f"direct ffmpeg ({name}) exited {child.exit_code}:\n"
                                 f"{child.stderr[-3000:]}")
            direct_out.unlink(missing_ok=True)
            runs[name].append(child.figures())
        return run

    order = [("mpr", mpr_run), ("ffmpeg_same_argv", ffmpeg_run("ffmpeg_same_argv", same_argv)),
             ("ffmpeg_all_cores", ffmpeg_run("ffmpeg_all_cores", lambda: all_cores))]
    for n in range(rounds):
        for name, run in (order if n % 2 == 0 else order[::-1]):
            log(f"single, round {n + 1}/{rounds}: {name}")
            run()
            last = runs[name][-1]
            log(f"  {last['wall_s']} s, CPU {last['cpu_s']} s, others used "
                f"{last['others_cores']} cores meanwhile")
    cores = os.cpu_count() or 1
    summary = {}
    for name, items in runs.items():
        top = best(items)
        summary[name] = {"best_wall_s": top["wall_s"], "cpu_s": top["cpu_s"],
                         "cores_busy": round(top["cpu_s"] / top["wall_s"], 2),
                         "utilisation": round(top["cpu_s"] / (top["wall_s"] * cores), 2),
                         "others_cores": top["others_cores"],
                         "min_cpu_s": min(r["cpu_s"] for r in items),
                         "median_wall_s": round(statistics.median(r["wall_s"] for r in items),
                                                3)}
    mpr_best = summary["mpr"]["best_wall_s"]
    cpu_ratio = summary["mpr"]["min_cpu_s"] / summary["ffmpeg_same_argv"]["min_cpu_s"]
    # mpr and the same argv run back to back in every round, in alternating order (ABC, CBA):
    # the geometric mean of the rounds' ratios cancels a drift of the machine's speed, which
    # best-of and median do not (this VM drifted by 25 % within minutes, see bench/README.md)
    paired = [m["wall_s"] / f["wall_s"] for m, f in zip(runs["mpr"], runs["ffmpeg_same_argv"],
                                                        strict=True)]
    return {"preset": PRESET, "master": master.describe(), "rounds": rounds,
            "threads_mpr_passes": same.get("threads"),
            "ffmpeg_argv_mpr_ran": [_redacted(a) for a in seen],
            "ffmpeg_argv_same": same.get("argv"), "ffmpeg_argv_all_cores": all_cores,
            "same_argv_matches_mpr": bool(seen) and all(
                comparable(a) == comparable(same["argv"]) for a in seen),
            "best": summary,
            "ratio_mpr_vs_same_argv": round(mpr_best / summary["ffmpeg_same_argv"]["best_wall_s"],
                                            3),
            "ratio_mpr_vs_all_cores": round(mpr_best / summary["ffmpeg_all_cores"]["best_wall_s"],
                                            3),
            # CPU seconds (mpr + its ffmpeg/ffprobe, against ffmpeg alone): what mpr adds,
            # almost blind to other processes competing for the cores
            "cpu_ratio_mpr_vs_same_argv": round(cpu_ratio, 3),
            "median_ratio_mpr_vs_same_argv": round(
                summary["mpr"]["median_wall_s"] / summary["ffmpeg_same_argv"]["median_wall_s"], 3),
            "paired_ratios_mpr_vs_same_argv": [round(r, 3) for r in paired],
            "paired_ratio_mpr_vs_same_argv": round(statistics.geometric_mean(paired), 3),
            "runs": runs}


def bench_source_modes(settings: Settings, key: str, preset: Preset, rounds: int,
                       threads: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {SourceMode.DOWNLOAD.value: [],
                                             SourceMode.URL.value: []}
    order = [SourceMode.DOWNLOAD, SourceMode.URL]
    for n in range(rounds):
        for mode in (order if n % 2 == 0 else order[::-1]):
            log(f"in-process Transcoder {key} {preset.name}, round {n + 1}/{rounds}: {mode.value}")
            result = run_inprocess(settings, key, preset, mode, threads)
            log(f"  {result['wall_s']} s {result['phases_s']}")
            runs[mode.value].append(result)
    down = best(runs[SourceMode.DOWNLOAD.value])
    url = best(runs[SourceMode.URL.value])
    return {"key": key, "preset": preset.name, "threads": threads, "rounds": rounds,
            "best_wall_s": {"download": down["wall_s"], "url": url["wall_s"]},
            "url_vs_download": round(url["wall_s"] / down["wall_s"], 3),
            "best_phases_s": {"download": down["phases_s"], "url": url["phases_s"]},
            "runs": runs}


def direct_pool(work: Path, pool_file: Path, workers: int, threads: int) -> dict[str, Any]:
    """The pool's 8 ffmpeg runs without mpr: the argv mpr ran (same -threads), on a local copy,
    `workers` at a time from a queue (as mpr's worker threads take jobs)."""
    preset = load_presets().get(PRESET)
    info = probe(pool_file)
    argvs = [build_transcode_argv(str(pool_file), work / f"pool-direct-{i}.mp4", preset, info,
                                  threads=threads, progress=False) for i in range(POOL_MASTERS)]

    def one(argv: list[str]) -> int:
        done = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False,
                              timeout=FFMPEG_TIMEOUT_S)
        Path(argv[-1]).unlink(missing_ok=True)
        return done.returncode

    cpu_before, busy_before = _cpu_children(), _machine_busy_s()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(one, argvs))
    wall = time.perf_counter() - started
    cpu, busy = _cpu_children() - cpu_before, _machine_busy_s() - busy_before
    if any(codes):
        raise SystemExit(f"direct pool ffmpeg failed: exit codes {codes}")
    cores = os.cpu_count() or 1
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 2), "threads": threads,
            "utilisation": round(cpu / (wall * cores), 3), **contention(wall, busy, cpu)}


def bench_pool(env: dict[str, str], work: Path, settings: Settings, client: Any,
               pool_file: Path, workers_list: list[int], max_wait_s: float) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {}
    for workers in workers_list:
        clear_outputs(settings, client, POOL_PREFIX)
        quiet = wait_for_quiet(max_wait_s, f"pool --workers {workers}")
        log(f"pool: mpr transcode --pending --workers {workers}")
        child = run_mpr(["transcode", "--pending", "--prefix", POOL_PREFIX, "--preset", PRESET,
                         "--workers", str(workers)], env, work, f"mpr transcode --pending "
                                                               f"--workers {workers}")
        counts = job_counts(settings, POOL_PREFIX)
        made = streaming_rows(settings, POOL_PREFIX)
        if counts.get("COMPLETED") != POOL_MASTERS or made != POOL_MASTERS:
            raise SystemExit(f"--workers {workers}: jobs {counts}, {made} streaming rows; "
                             f"expected {POOL_MASTERS} of each\n{child.stdout[-2000:]}")
        figures = child.figures()
        threads = sorted({",".join(threads_in(a)) for a in child.ffmpeg_argvs})
        figures.update({"workers": workers, "jobs": counts, "quiet_before": quiet,
                        "timeline": job_timeline(settings, POOL_PREFIX, child),
                        "ffmpeg_slots": slots_busy(child, workers),
                        "threads_in_ffmpeg_argv": threads,
                        "cores_busy": round(child.cpu_s / child.wall_s, 2),
                        "utilisation": round(child.cpu_s / (child.wall_s * cores), 3),
                        "summary": child.stdout.strip().splitlines()[-1:]})
        log(f"  {figures['wall_s']} s, CPU {figures['cpu_s']} s, "
            f"utilisation {figures['utilisation']}, others used {figures['others_cores']} cores")
        values = threads_in(child.ffmpeg_argvs[0]) if child.ffmpeg_argvs else []
        log(f"pool: the same {POOL_MASTERS} ffmpeg argvs directly, {workers} at a time")
        direct = direct_pool(work, pool_file, workers,
                             int(values[0]) if values else 0)
        log(f"  {direct['wall_s']} s, CPU {direct['cpu_s']} s, "
            f"utilisation {direct['utilisation']}")
        figures["direct_ffmpeg"] = direct
        figures["ratio_mpr_vs_direct"] = round(child.wall_s / direct["wall_s"], 3)
        results[f"workers_{workers}"] = figures
    one, many = results[f"workers_{workers_list[0]}"], results[f"workers_{workers_list[-1]}"]
    return {"masters": POOL_MASTERS, "preset": PRESET, "cores": cores, **results,
            "speedup": round(one["wall_s"] / many["wall_s"], 3),
            "direct_ffmpeg_speedup": round(one["direct_ffmpeg"]["wall_s"]
                                           / many["direct_ffmpeg"]["wall_s"], 3)}


def bench_memory(env: dict[str, str], work: Path, big: Master,
                 presets_file: Path) -> dict[str, Any]:
    env = {**env, "MPR_PRESETS": str(presets_file)}
    log("memory: mpr --version (interpreter + mpr's imports), best of 3")
    startup = [run_mpr(["--version"], env, work, "mpr --version") for _ in range(3)]
    log(f"memory: mpr transcode {big.key} --preset {BIG_PRESET} ({mib(big.size)} MiB master)")
    child = run_mpr(["transcode", big.key, "--preset", BIG_PRESET, "--force"], env, work,
                    "mpr transcode (big master)")
    peak = max(child.peak_rss or 0, child.peak_hwm or 0)
    log(f"  {child.wall_s:.1f} s, peak RSS {mib(peak)} MiB over {child.samples} samples")
    return {"master": big.describe(), "preset": BIG_PRESET, "presets_toml": BIG_PRESETS_TOML,
            "sample_every_s": SAMPLE_EVERY_S, "samples": child.samples,
            "peak_rss_bytes": peak, "peak_rss_mib": mib(peak),
            "peak_vmrss_sampled_mib": mib(child.peak_rss),
            "peak_vmhwm_sampled_mib": mib(child.peak_hwm),
            "startup_peak_rss_mib": min(mib(max(c.peak_rss or 0, c.peak_hwm or 0)) or 0.0
                                        for c in startup),
            "startup_wall_s": round(min(c.wall_s for c in startup), 3),
            "run": child.figures(), "rss_timeline_mib": child.timeline,
            "ffmpeg_argv_mpr_ran": [_redacted(a) for a in child.ffmpeg_argvs]}


def targets(single: dict[str, Any] | None, pool: dict[str, Any] | None,
            memory: dict[str, Any] | None, pool_workers: int) -> dict[str, Any]:
    """The targets of the sections that ran (--only may leave some out)."""
    found: dict[str, Any] = {}
    if single is not None:
        ratio = single["paired_ratio_mpr_vs_same_argv"]
        found["single_vs_same_ffmpeg_argv"] = {
            "statistic": "geometric mean of the per-round ratios (back-to-back runs, order "
                         "alternating each round)",
            "ratio": ratio, "max_ratio": SINGLE_MAX_RATIO, "met": ratio <= SINGLE_MAX_RATIO,
            "best_of_rounds": {"mpr_s": single["best"]["mpr"]["best_wall_s"],
                               "ffmpeg_s": single["best"]["ffmpeg_same_argv"]["best_wall_s"],
                               "ratio": single["ratio_mpr_vs_same_argv"]}}
    if pool is not None:
        found["pool_utilisation"] = pool_target(pool, pool_workers)
    if memory is not None:
        peak = memory["peak_rss_bytes"]
        found["peak_rss"] = {"actual_mb": round(peak / 1e6, 1), "actual_mib": mib(peak),
                             "limit_mb": RSS_LIMIT_BYTES / 1e6, "met": peak < RSS_LIMIT_BYTES}
    return found


def pool_target(pool: dict[str, Any], pool_workers: int) -> dict[str, Any]:
    utilisation = pool[f"workers_{pool_workers}"]["utilisation"]
    return {"workers": pool_workers, "utilisation": utilisation, "min": POOL_MIN_UTILISATION,
            "met": utilisation >= POOL_MIN_UTILISATION,
            "speedup": pool["speedup"], "direct_ffmpeg_speedup": pool["direct_ffmpeg_speedup"],
            "others_cores": pool[f"workers_{pool_workers}"]["others_cores"],
            "utilisation_of_cpu_left": pool[f"workers_{pool_workers}"]["utilisation_of_cpu_left"],
            "note": "utilisation = CPU s of mpr and its children / (wall x cores); when other "
                    "processes used cores meanwhile (others_cores), utilisation_of_cpu_left "
                    "is the share of what they left that mpr used"}


def checks(single: dict[str, Any]) -> dict[str, Any]:
    """Not targets: guards against a regression the targets cannot see."""
    all_cores = single["ratio_mpr_vs_all_cores"]
    return {
        "threads_not_starved": {
            "mpr_s": single["best"]["mpr"]["best_wall_s"],
            "ffmpeg_thread_default_s": single["best"]["ffmpeg_all_cores"]["best_wall_s"],
            "ratio": all_cores, "max_ratio": THREADS_MAX_RATIO,
            "ok": all_cores <= THREADS_MAX_RATIO,
            "note": "mpr against the same argv with ffmpeg's own thread default: catches mpr "
                    "passing a too-small -threads (a single job on -threads 1 is ~1.8x on 2 "
                    "cores), which the target (same argv, same -threads) cannot see; the limit "
                    "is loose because two ffmpeg thread settings differ by up to ~10% run to run"},
    }


# -- main ---------------------------------------------------------------------------------------


def source_facts() -> dict[str, Any]:
    """Which mpr was measured: a digest of the package's files and the newest change time."""
    root = Path(transcode_module.__file__).resolve().parent
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".toml",
                                                                             ".sql"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    newest = max(p.stat().st_mtime for p in files)
    return {"package": str(root), "files": len(files), "sha256": digest.hexdigest()[:16],
            "newest_change": dt.datetime.fromtimestamp(newest, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")}


def machine_facts() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(),
            "ffmpeg": ffmpeg_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 1024 ** 3, 1)}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    started_all = time.perf_counter()
    # measure mpr's defaults: no MPR_* setting inherited from the caller's environment
    for name in [n for n in os.environ if n.startswith(("MPR_", "ACH_"))]:
        os.environ.pop(name)
    machine = machine_facts()
    source_at_start = source_facts()
    setup: dict[str, float] = {}
    with local_services(log) as services:
        work, state = services.work, services.state
        setup["services_up_s"] = services.up_s
        settings = settings_for(state)
        setup["migrate_s"], _ = timed(lambda: db.migrate(settings))
        env = {**os.environ, **state.env()}
        client = plain_client(state)
        bucket = settings.s3_bucket_in

        only = args.only
        masters = []
        if only & {"single", "source_mode"}:
            log(f"generating a {args.master_seconds:g} s {SIZE} master")
            setup["generate_master_s"], master = timed(lambda: make_h264_master(
                work / "master.mov", MASTER_KEY, args.master_seconds))
            masters.append(master)
        pool_file = work / "pool.mov"
        pool_masters: list[Master] = []
        if "pool" in only:
            log(f"generating the pool master ({args.pool_seconds:g} s), copied under "
                f"{POOL_MASTERS} codes")
            setup["generate_pool_s"], pool_master = timed(lambda: make_h264_master(
                pool_file, f"{POOL_PREFIX}00001.mov", args.pool_seconds))
            pool_masters = [Master(f"{POOL_PREFIX}{i + 1:05d}.mov", pool_file,
                                   pool_master.seconds, pool_master.size, pool_master.md5,
                                   pool_master.codecs) for i in range(POOL_MASTERS)]
        if only & {"memory", "source_mode"}:
            log(f"generating a ~{args.big_mb} MB master (v210)")
            setup["generate_big_s"], big = timed(lambda: make_big_master(
                work / "big.mov", BIG_KEY, args.big_mb * 1000 * 1000))
            log(f"  {mib(big.size)} MiB, {big.seconds:g} s")
            masters.append(big)

        def seed() -> None:
            for m in (*masters, *pool_masters):
                upload(client, bucket, m.path, m.key)
            if pool_masters:
                catalogue_masters(settings, client, pool_masters)

        log("uploading the masters; cataloguing the pool's")
        setup["seed_s"], _ = timed(seed)
        presets_file = work / "bench-presets.toml"
        presets_file.write_text(BIG_PRESETS_TOML)
        single_threads = threads_per_job(1)  # what one job alone on this machine should get

        single = pool = memory = None
        modes: dict[str, Any] = {}
        if "single" in only:
            quiet_start = wait_for_quiet(args.wait_quiet, "before the single-master runs")
            single = bench_single(env, work, master, args.rounds)
            single["quiet_before"] = quiet_start
        if "source_mode" in only:
            modes["single_master"] = bench_source_modes(settings, master.key,
                                                        load_presets().get(PRESET),
                                                        min(args.rounds, 2), single_threads)
        if "pool" in only:
            pool = bench_pool(env, work, settings, client, pool_file, [1, args.pool_workers],
                              args.wait_quiet)
        if "memory" in only:
            memory = bench_memory(env, work, big, presets_file)
        if "source_mode" in only:
            modes["big_master"] = bench_source_modes(settings, big.key,
                                                     load_presets(presets_file).get(BIG_PRESET),
                                                     1, single_threads)
        return {
            "benchmark": "mpr transcode",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sections": sorted(only),
            "machine": machine,
            "mpr_source": {**source_at_start,
                           "changed_during_run": source_facts() != source_at_start},
            "setup_s": {k: round(v, 3) for k, v in setup.items()},
            "single": single,
            "source_mode": modes or None,
            "pool": pool,
            "memory": memory,
            "targets": targets(single, pool, memory, args.pool_workers),
            "checks": checks(single) if single is not None else None,
            "total_s": round(time.perf_counter() - started_all, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_save_option(parser, "transcode")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of the single-master runs (3; an even number "
                             "cancels a drift of the machine's speed best)")
    parser.add_argument("--master-seconds", type=float, default=60.0,
                        help="length of the single master (60)")
    parser.add_argument("--pool-seconds", type=float, default=10.0,
                        help="length of each of the 8 pool masters (10)")
    parser.add_argument("--pool-workers", type=int, default=2,
                        help="--workers of the parallel pool run, against --workers 1 (2)")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="S",
                        help="before the single and pool runs, wait up to S seconds for other "
                             "processes to leave the CPUs alone (60)")
    parser.add_argument("--big-mb", type=int, default=1000,
                        help="size of the memory run's master in MB (1000)")
    parser.add_argument("--only", type=sections, default=set(SECTIONS), metavar="LIST",
                        help=f"run only these sections, comma-separated ({','.join(SECTIONS)}; "
                             "default all)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.pool_workers < 2 or args.big_mb < 10:
        parser.error("--rounds >= 1, --pool-workers >= 2, --big-mb >= 10")
    path = save_path(parser, "transcode", args.save)
    result = bench(args)
    emit(result, path)
    return 0


def sections(text: str) -> set[str]:
    """--only: "single,pool" -> {"single", "pool"}; an unknown name is an error."""
    chosen = {name.strip() for name in text.split(",") if name.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}; "
                                         f"not {', '.join(sorted(unknown)) or 'empty'}")
    return chosen


if __name__ == "__main__":
    raise SystemExit(main())
