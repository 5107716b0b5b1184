#!/usr/bin/env python3
"""Benchmark of the pictures (mpr_cli.pictures): what they add to a transcode, and what a
poster of a delivered streaming copy reads from S3 and costs.

Starts its own PostgreSQL and SeaweedFS (mpr_cli.dev.devservices) like bench_transcode.py and
reuses its helpers (the 60 s 1280x720 H.264 master, settings, the in-process Transcoder run
with its phase breakdown), then measures side by side:

  transcode  the in-process Transcoder.run (download, probe, web-720p encode, pictures, upload)
             of the 60 s benchmark master with MPR_PICTURES=off against the default (poster
             and contact sheet made from the local master after the encode), rounds
             alternating (off/on, on/off, ...): best wall of each, their ratio, and the median
             ratio of the rounds' pairs; the pictures' own seconds (make, upload) in the runs.
  poster     a ~100 MB faststart MP4 (1280x720, H.264 ~2.6 Mbit/s + AAC, a keyframe every
             250 frames: x264's default) in the input bucket, read through a presigned URL by
             the poster's ffmpeg argv, as an import with MPR_PICTURES=on does: the bytes S3
             sent (counted by a TCP forwarder between ffmpeg and SeaweedFS, so whatever ffmpeg
             asked for and TCP delivered, not what the demuxer consumed), the HTTP requests,
             the CPU seconds of ffmpeg (RUSAGE_CHILDREN) and of this process (signing the URL,
             starting ffmpeg, checking the picture), beside the CPU of `ffmpeg -version` (what
             starting ffmpeg at all costs). Also, for information, the same for the contact
             sheet.

Targets (issue 15): pictures add <= 10 % to the transcode's wall time; the poster reads
<= 2 MB from S3 and costs <= 200 ms of CPU.

    .venv/bin/python bench/bench_pictures.py             # the full run (~6 min on 2 cores)
    .venv/bin/python bench/bench_pictures.py --save      # also bench/results/pictures-<date>.json
    .venv/bin/python bench/bench_pictures.py --rounds 1 --master-seconds 10 --copy-mb 20
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_transcode import (
    FPS,
    MASTER_KEY,
    PRESET,
    SIZE,
    best,
    log,
    machine_facts,
    make_h264_master,
    plain_client,
    run_inprocess,
    settings_for,
    source_facts,
    timed,
    upload,
    wait_for_quiet,
)
from benchservices import local_services
from results_file import add_save_option, emit, save_path

import mpr_cli.transcode.stages as transcode_module
from mpr_cli import db
from mpr_cli.config import PicturesMode, Settings
from mpr_cli.dev import devservices
from mpr_cli.ffmpeg.command import threads_per_job
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.ffmpeg.probe import probe
from mpr_cli.ffmpeg.runner import run_ffmpeg
from mpr_cli.pictures import command
from mpr_cli.pictures.imagesize import image_size
from mpr_cli.storage import Storage
from mpr_cli.transcode.stages import SourceMode

COPY_KEY = "FILE/VO-BEN-00009.mp4"  # the delivered streaming copy
COPY_VIDEO_RATE = "2600k"
MAX_TRANSCODE_RATIO = 1.10
MAX_POSTER_BYTES = 2 * 1000 * 1000
MAX_POSTER_CPU_S = 0.200
MB = 1000 * 1000
FORWARDER_BUFFER = 16 * 1024  # the forwarder's socket buffers (the kernel doubles them)


# -- a counting forwarder between ffmpeg and S3 ---------------------------------------------------


class CountingForwarder:
    """A loopback TCP forwarder in front of SeaweedFS counting the bytes it sends back to the
    client (what S3 delivered) and the connections (each ffmpeg seek is a new range request on
    a new connection or a reused one: `requests` counts HTTP response heads).

    Its sockets keep small buffers (FORWARDER_BUFFER) so that it holds no more than a server's
    TCP window would have in flight: a byte is counted when it is handed to the client's
    socket, which takes what the client's receive buffer (its TCP window) has room for. With
    the kernel's default buffers the forwarder itself would soak up megabytes that no client
    asked for, and count them."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.bytes_down = self.connections = self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.bytes_down = self.connections = self.requests = 0

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, FORWARDER_BUFFER)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FORWARDER_BUFFER)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(FORWARDER_BUFFER):
                if count:
                    with self.lock:
                        self.bytes_down += len(data)
                        self.requests += data.count(b"HTTP/1.1 20")
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- media ----------------------------------------------------------------------------------------


def make_streaming_copy(path: Path, megabytes: float) -> dict[str, Any]:
    """A faststart MP4 of about `megabytes` MB: 1280x720 H.264 at COPY_VIDEO_RATE + AAC 128k."""
    seconds = round(megabytes * MB * 8 / (2_600_000 + 128_000))
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", COPY_VIDEO_RATE,
            "-maxrate", COPY_VIDEO_RATE, "-bufsize", "5200k", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(path)]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return {"key": COPY_KEY, "seconds": seconds, "bytes": path.stat().st_size,
            "mb": round(path.stat().st_size / MB, 1), "frame_size": SIZE, "fps": FPS}


# -- transcode with and without pictures ----------------------------------------------------------


@contextlib.contextmanager
def picture_clock() -> Iterator[dict[str, float]]:
    """Seconds spent making and uploading pictures inside Transcoder.run (this process)."""
    spent: dict[str, float] = {}
    originals = {name: getattr(transcode_module, name) for name in ("make_pictures", "publish")}

    def wrapped(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = f"pictures_{name}_s"
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - started
        return call

    for name, original in originals.items():
        setattr(transcode_module, name, wrapped(name, original))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(transcode_module, name, original)


def bench_transcode(settings: Settings, rounds: int, threads: int) -> dict[str, Any]:
    preset = load_presets().get(PRESET)
    modes = {"off": settings.model_copy(update={"pictures": PicturesMode.OFF}),
             "on": settings.model_copy(update={"pictures": PicturesMode.TRANSCODE_ONLY})}
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for n in range(rounds):
        for name in (("off", "on") if n % 2 == 0 else ("on", "off")):
            log(f"round {n + 1}/{rounds}: transcode with pictures {name}")
            with picture_clock() as spent:
                run = run_inprocess(modes[name], MASTER_KEY, preset, SourceMode.DOWNLOAD,
                                    threads)
            run["pictures_s"] = {k: round(v, 3) for k, v in spent.items()}
            runs[name].append(run)
            log(f"  {run['wall_s']} s")
    pairs = [on["wall_s"] / off["wall_s"] for off, on in zip(runs["off"], runs["on"],
                                                             strict=True)]
    best_off, best_on = best(runs["off"]), best(runs["on"])
    return {"preset": PRESET, "rounds": rounds, "threads": threads, "runs": runs,
            "best_off_s": best_off["wall_s"], "best_on_s": best_on["wall_s"],
            "ratio_best": round(best_on["wall_s"] / best_off["wall_s"], 3),
            "ratio_median_of_pairs": round(statistics.median(pairs), 3),
            "pairs": [round(p, 3) for p in pairs]}


# -- a poster of a delivered streaming copy ------------------------------------------------------


def _read_once(storage: Storage, proxy: CountingForwarder, bucket: str,
               argv_for: Callable[[str], list[str]], out: Path) -> dict[str, Any]:
    """One picture from a presigned URL through the proxy: bytes, requests, CPU, wall."""
    proxy.reset()
    out.unlink(missing_ok=True)
    children, own, started = _cpu_children(), _cpu_self(), time.perf_counter()
    url = storage.presigned_get_url(bucket, COPY_KEY)
    result = run_ffmpeg(argv_for(url), duration_s=None, timeout=120)
    found = image_size(out.read_bytes())
    wall = time.perf_counter() - started
    time.sleep(0.2)  # let the forwarder's threads finish counting the closed connections
    return {"wall_s": round(wall, 3), "ffmpeg_cpu_s": round(_cpu_children() - children, 3),
            "mpr_cpu_s": round(_cpu_self() - own, 3), "bytes_from_s3": proxy.bytes_down,
            "http_responses": proxy.requests, "connections": proxy.connections,
            "picture": {"size": found[0] if found else None, "bytes": out.stat().st_size},
            "luma": command.luma_of(result.stderr_tail)}


def ffmpeg_start_cpu(runs: int = 9) -> float:
    """The CPU seconds of `ffmpeg -version` (median): what starting this ffmpeg costs before
    it does anything (loading its shared libraries), the floor under any picture's CPU."""
    spent = []
    for _ in range(runs):
        before = _cpu_children()
        subprocess.run(["ffmpeg", "-version"], check=True, capture_output=True)
        spent.append(_cpu_children() - before)
    return round(statistics.median(spent), 3)


def bench_poster(settings: Settings, state: devservices.ServiceState, client: Any, work: Path,
                 copy_mb: float, rounds: int) -> dict[str, Any]:
    log(f"generating a ~{copy_mb:g} MB faststart MP4")
    made_s, copy = timed(lambda: make_streaming_copy(work / "copy.mp4", copy_mb))
    upload(client, settings.s3_bucket_in, work / "copy.mp4", COPY_KEY)
    info = probe(work / "copy.mp4")
    host, port = state.s3_endpoint.removeprefix("http://").rsplit(":", 1)
    proxy = CountingForwarder(host, int(port))
    try:
        proxied = settings.model_copy(
            update={"s3_endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        storage = Storage(proxied)
        start = command.poster_starts(info.duration_s)[0]
        poster, sheet = work / "poster.jpg", work / "sheet.jpg"
        posters, sheets = [], []
        for n in range(rounds):
            log(f"round {n + 1}/{rounds}: poster and contact sheet from a presigned URL")
            posters.append(_read_once(storage, proxy, settings.s3_bucket_in, lambda url: (
                command.poster_argv(url, str(poster), start_s=start)), poster))
            sheets.append(_read_once(storage, proxy, settings.s3_bucket_in, lambda url: (
                command.contact_sheet_argv(url, str(sheet), duration_s=info.duration_s or 0)),
                sheet))
    finally:
        proxy.close()
    least = min(posters, key=lambda r: r["ffmpeg_cpu_s"] + r["mpr_cpu_s"])
    return {"copy": {**copy, "generate_s": round(made_s, 1)}, "poster_start_s": start,
            "ffmpeg_start_cpu_s": ffmpeg_start_cpu(),
            "posters": posters, "contact_sheets": sheets,
            "poster_bytes_max": max(r["bytes_from_s3"] for r in posters),
            "poster_cpu_s_best": round(least["ffmpeg_cpu_s"] + least["mpr_cpu_s"], 3),
            "poster_cpu_s_median": round(statistics.median(
                r["ffmpeg_cpu_s"] + r["mpr_cpu_s"] for r in posters), 3)}


def targets(transcode: dict[str, Any] | None, poster: dict[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if transcode is not None:
        found["transcode_ratio"] = {"limit": MAX_TRANSCODE_RATIO,
                                    "best": transcode["ratio_best"],
                                    "median_of_pairs": transcode["ratio_median_of_pairs"],
                                    "pass": transcode["ratio_best"] <= MAX_TRANSCODE_RATIO}
    if poster is not None:
        found["poster_bytes"] = {"limit": MAX_POSTER_BYTES, "max": poster["poster_bytes_max"],
                                 "pass": poster["poster_bytes_max"] <= MAX_POSTER_BYTES}
        found["poster_cpu_s"] = {"limit": MAX_POSTER_CPU_S, "best": poster["poster_cpu_s_best"],
                                 "median": poster["poster_cpu_s_median"],
                                 "pass": poster["poster_cpu_s_median"] <= MAX_POSTER_CPU_S}
    return found


def bench(args: argparse.Namespace) -> dict[str, Any]:
    started_all = time.perf_counter()
    for name in [n for n in os.environ if n.startswith(("MPR_", "ACH_"))]:
        os.environ.pop(name)
    machine, source_at_start = machine_facts(), source_facts()
    with local_services(log) as services:
        work, state = services.work, services.state
        settings = settings_for(state)
        db.migrate(settings)
        client = plain_client(state)
        transcode = poster = None
        if "transcode" in args.only:
            log(f"generating a {args.master_seconds:g} s {SIZE} master")
            master = make_h264_master(work / "master.mov", MASTER_KEY, args.master_seconds)
            upload(client, settings.s3_bucket_in, master.path, MASTER_KEY)
            quiet = wait_for_quiet(args.wait_quiet, "before the transcode runs")
            transcode = {"master": master.describe(), "quiet_before": quiet,
                         **bench_transcode(settings, args.rounds, threads_per_job(1))}
        if "poster" in args.only:
            poster = bench_poster(settings, state, client, work, args.copy_mb, args.rounds)
        return {"benchmark": "mpr pictures",
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine": machine,
                "mpr_source": {**source_at_start,
                               "changed_during_run": source_facts() != source_at_start},
                "transcode": transcode, "poster": poster,
                "targets": targets(transcode, poster),
                "total_s": round(time.perf_counter() - started_all, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_save_option(parser, "pictures")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating rounds of each measurement (4)")
    parser.add_argument("--master-seconds", type=float, default=60.0,
                        help="length of the transcode's master (60)")
    parser.add_argument("--copy-mb", type=float, default=100.0,
                        help="size of the delivered streaming copy in MB (100)")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="S",
                        help="before the transcode runs, wait up to S seconds for a quiet "
                             "machine (60)")
    parser.add_argument("--only", type=lambda text: set(text.split(",")),
                        default={"transcode", "poster"}, metavar="LIST",
                        help="transcode, poster (comma-separated; default both)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not args.only <= {"transcode", "poster"}:
        parser.error("--rounds >= 1; --only of transcode, poster")
    path = save_path(parser, "pictures", args.save)
    emit(bench(args), path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
