#!/usr/bin/env python3
"""Benchmark of the celery executor against the local pool, on real local services.

Starts its own PostgreSQL, SeaweedFS and Redis (mpr_cli.dev.devservices) on free loopback
ports, catalogues the pool benchmark's 8 masters (bench_transcode.py: 10 s, 1280x720 H.264 +
PCM, one file under 8 codes), then runs, side by side in rounds that alternate their order:

  local        `mpr transcode --pending --workers 2` (the local pool)
  celery_1x2   `mpr transcode --pending --executor celery`, one `mpr worker --concurrency 2`
  celery_2x1   the same with two `mpr worker --concurrency 1 --threads <cores / 2>` processes
               (two machines in miniature, each with its share of the cores)

For each: wall time of the command, the CPU seconds of everything it took (the command and its
children; for celery also the workers' process trees), CPU use = CPU / (wall x cores), and for
celery the per-job dispatch overhead from the worker logs and the catalogue:

  slot free    when the task could start: the later of its dispatch (dispatched_at) and the end
               of the job that pool process ran before it
  claimed      the job's started_at (the worker's compare-and-set claim)
  ffmpeg       the worker's "job N ffmpeg started" log line (after download + probe)

`dispatch_ms` = claimed - slot free (broker hop, task receipt, claim) and `to_ffmpeg_ms` =
ffmpeg - slot free (also the master's download and probe, which the local pool does ahead).

    .venv/bin/python bench/bench_celery.py              # 2 rounds (~6 min on 2 quiet cores)
    .venv/bin/python bench/bench_celery.py --save       # also bench/results/celery-<date>.json
    .venv/bin/python bench/bench_celery.py --rounds 1 --pool-seconds 3   # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench_transcode as bt
import psycopg
import redis
from benchservices import local_services
from results_file import add_save_option, emit, save_path

from mpr_cli import db

PREFIX = bt.POOL_PREFIX
MASTERS = bt.POOL_MASTERS
MAX_WALL_RATIO = 1.10  # celery wall <= 1.10 x the local pool
MIN_CPU_USE = 0.90  # of the two cores
MAX_DISPATCH_MS = 100.0  # median, task sent to ffmpeg started
MODES = ("local", "celery_1x2", "celery_2x1")
_STARTED = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/[^\]]+\] "
                      r"job (\d+) ffmpeg started")


def tree_cpu_s(pid: int) -> float:
    """user+sys of `pid` and its live descendants, with what each one reaped (cutime)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for member in [pid, *bt_descendants(pid)]:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{member}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()
            total += sum(int(v) for v in fields[11:15]) / tick
    return total


def bt_descendants(pid: int) -> list[int]:
    table: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            text = stat.read_text()
            table[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
    found, parents = [], {pid}
    while parents:
        children = [p for p, ppid in table.items() if ppid in parents and p not in found]
        found += children
        parents = set(children)
    return found


@contextlib.contextmanager
def workers(env: dict[str, str], work: Path, shape: list[int]) -> Iterator[list[Any]]:
    """`mpr worker` processes, one per entry of `shape` (its concurrency), ready. Several
    workers are machines in miniature: each gets its share of the cores (--threads), as it
    would have a machine's."""
    procs = []
    threads = max(1, (os.cpu_count() or 1) // sum(shape))
    for n, concurrency in enumerate(shape):
        log = work / f"worker-{n}.log"
        share = ["--threads", str(threads)] if len(shape) > 1 else []
        with log.open("wb") as out:
            procs.append((subprocess.Popen(
                [*bt.mpr_argv(), "worker", "--concurrency", str(concurrency), "--hostname",
                 f"bench{n}@local", *share], env=env, cwd=work, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True), log))
    try:
        deadline = time.monotonic() + 120
        while not all("ready" in log.read_text(errors="replace") for _, log in procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in procs):
                raise SystemExit("the workers did not start:\n" + "\n".join(
                    log.read_text(errors="replace")[-2000:] for _, log in procs))
            time.sleep(0.2)
        yield procs
    finally:
        for proc, _ in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def overheads(settings: Any, logs: list[Path]) -> dict[str, Any]:
    """Per job: claimed and ffmpeg start against the moment its pool process was free."""
    started: dict[int, float] = {}
    for log in logs:
        for stamp, job in _STARTED.findall(log.read_text(errors="replace")):
            when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            started[int(job)] = when.replace(tzinfo=dt.UTC).timestamp()
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, worker, extract(epoch FROM dispatched_at)::float8, "
            "extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8 "
            "FROM transcode_jobs WHERE source_key LIKE %s AND status = 'COMPLETED' "
            "ORDER BY started_at", (PREFIX + "%",)).fetchall()
    free_at: dict[str, float] = {}
    dispatch, to_ffmpeg = [], []
    for job_id, worker, sent, claimed, finished in rows:
        slot_free = max(sent, free_at.get(worker, 0.0))
        free_at[worker] = finished
        dispatch.append((claimed - slot_free) * 1000)
        if job_id in started:
            to_ffmpeg.append((started[job_id] - slot_free) * 1000)
    return {"jobs": len(rows), "dispatch_ms_median": round(statistics.median(dispatch), 1),
            "dispatch_ms_max": round(max(dispatch), 1),
            "to_ffmpeg_ms_median": round(statistics.median(to_ffmpeg), 1) if to_ffmpeg else None,
            "to_ffmpeg_ms_max": round(max(to_ffmpeg), 1) if to_ffmpeg else None,
            "dispatch_ms": [round(v, 1) for v in dispatch],
            "to_ffmpeg_ms": [round(v, 1) for v in to_ffmpeg]}


def run_mode(mode: str, env: dict[str, str], work: Path, settings: Any,
             client: Any) -> dict[str, Any]:
    bt.clear_outputs(settings, client, PREFIX)
    with redis.Redis.from_url(env["CELERY_BROKER_URL"]) as broker:
        broker.flushdb()
    cores = os.cpu_count() or 1
    args = ["transcode", "--pending", "--prefix", PREFIX, "--preset", bt.PRESET]
    if mode == "local":
        child = bt.run_mpr([*args, "--workers", "2"], env, work, "local pool")
        cpu, extra = child.cpu_s, {}
    else:
        shape = [2] if mode == "celery_1x2" else [1, 1]
        with workers(env, work, shape) as procs:
            before = sum(tree_cpu_s(p.pid) for p, _ in procs)
            child = bt.run_mpr([*args, "--executor", "celery"], env, work, mode)
            after = sum(tree_cpu_s(p.pid) for p, _ in procs)
            extra = {"workers": shape, "workers_cpu_s": round(after - before, 2),
                     "overhead": overheads(settings, [log for _, log in procs])}
        cpu = child.cpu_s + after - before
    counts = bt.job_counts(settings, PREFIX)
    if counts.get("COMPLETED") != MASTERS:
        raise SystemExit(f"{mode}: jobs {counts}\n{child.stdout[-2000:]}{child.stderr[-2000:]}")
    return {"wall_s": round(child.wall_s, 3), "cpu_s": round(cpu, 2),
            "cpu_use": round(cpu / (child.wall_s * cores), 3),
            **bt.contention(child.wall_s, child.machine_busy_s, cpu), **extra}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    for name in [n for n in os.environ if n.startswith(("MPR_", "ACH_"))]:
        os.environ.pop(name)
    with local_services(bt.log) as services:
        work, state = services.work, services.state
        settings = bt.settings_for(state)
        db.migrate(settings)
        env = {**os.environ, **state.env(), "MPR_TEMP_DIR": str(work / "tmp")}
        (work / "tmp").mkdir()
        client = bt.plain_client(state)
        pool_file = work / "pool.mov"
        bt.log(f"generating the pool master ({args.pool_seconds:g} s), under {MASTERS} codes")
        first = bt.make_h264_master(pool_file, f"{PREFIX}00001.mov", args.pool_seconds)
        masters = [bt.Master(f"{PREFIX}{i + 1:05d}.mov", pool_file, first.seconds, first.size,
                             first.md5, first.codecs) for i in range(MASTERS)]
        for m in masters:
            bt.upload(client, settings.s3_bucket_in, m.path, m.key)
        bt.catalogue_masters(settings, client, masters)
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for n in range(args.rounds):
            order = MODES if n % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                quiet = bt.wait_for_quiet(args.wait_quiet, mode)
                bt.log(f"round {n + 1}: {mode}")
                figures = run_mode(mode, env, work, settings, client) | {"quiet_before": quiet}
                bt.log(f"  {figures['wall_s']} s, CPU use {figures['cpu_use']}")
                runs[mode].append(figures)
        return summary(runs, args, first)


def summary(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace,
            master: Any) -> dict[str, Any]:
    best = {mode: min(r["wall_s"] for r in rs) for mode, rs in runs.items()}
    targets: dict[str, Any] = {}
    for mode in MODES[1:]:
        ratio = round(best[mode] / best["local"], 3)
        use = max(r["cpu_use"] for r in runs[mode])
        dispatch = statistics.median(r["overhead"]["dispatch_ms_median"] for r in runs[mode])
        targets[mode] = {
            "wall_ratio_vs_local": ratio, "max_ratio": MAX_WALL_RATIO,
            "wall_met": ratio <= MAX_WALL_RATIO,
            "cpu_use": use, "min_cpu_use": MIN_CPU_USE, "cpu_met": use >= MIN_CPU_USE,
            "dispatch_ms_median": dispatch, "max_dispatch_ms": MAX_DISPATCH_MS,
            "dispatch_met": dispatch < MAX_DISPATCH_MS}
    return {"benchmark": "celery executor vs local pool",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": bt.machine_facts(), "masters": MASTERS, "master": master.describe(),
            "preset": bt.PRESET, "rounds": args.rounds, "best_wall_s": best,
            "runs": runs, "targets": targets,
            "note": "best wall time of the rounds per mode; cpu_use = CPU s of the command, its "
                    "children and (celery) the workers' trees / (wall x cores)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_save_option(parser, "celery")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, order alternating (2)")
    parser.add_argument("--pool-seconds", type=float, default=10.0,
                        help="length of each of the 8 masters (10, as bench_transcode's pool)")
    parser.add_argument("--wait-quiet", type=float, default=60.0, metavar="S",
                        help="wait up to S seconds for a quiet machine before each run (60)")
    args = parser.parse_args(argv)
    path = save_path(parser, "celery", args.save)
    emit(bench(args), path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
