#!/usr/bin/env python3
"""Benchmark of `mpr fixity` against plain baselines, on real local services.

Starts its own PostgreSQL and SeaweedFS (mpr_cli.dev.devservices, as bench_import.py does, whose
helpers it reuses), then:

  quick      --keys small objects (20,000) catalogued under CD/ (rows COPYed straight into the
             catalogue, each with its MD5 = its single-part ETag): `mpr fixity --prefix CD/`
             (a subprocess: listing, comparison, 20,000 events and rows written) against a bare
             boto3 listing of the same prefix. Target: <= 1.3 x, median of 3 each.
  full       a 1 GiB object (multipart upload) and 32 objects of 32 MiB (single part), the same
             random bytes: `mpr fixity --full` over each set against hashlib.md5 over the same
             bytes from a local file (page cache) in 8 MiB reads. Target: >= 80 %, median of 3.
             mpr's rate is over its run's own time (the report's durations_s.total: the
             selection, HEADs, GETs, MD5 and the catalogue writes), interpreter start aside;
             the wall-clock rate is given beside it.
  rss        peak RSS of `mpr fixity --full` over the 1 GiB object. Target: < 150 MB.

Prints one JSON document (progress on stderr); --save [NAME] also writes
bench/results/fixity-<date>[-NAME].json.

    .venv/bin/python bench/bench_fixity.py                       # 20,000 keys, 1 GiB
    .venv/bin/python bench/bench_fixity.py --keys 1000 --big-mib 64 --many 4   # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from bench_import import (
    MIB,
    SEED_WORKERS,
    ServerCpu,
    log,
    measure,
    mpr_argv,
    plain_client,
    run_child,
    run_pool,
    settings_for,
    timed,
)
from benchservices import local_services
from boto3.s3.transfer import TransferConfig
from results_file import add_save_option, emit, save_path

from mpr_cli import db

RUNS = 3
CHUNK = 8 * MIB
QUICK_MAX_RATIO = 1.3
FULL_MIN_SHARE = 0.8
RSS_MAX_BYTES = 150 * 10**6
FILES_PER_ASSET = (("master", ".wav"), ("metadata", ".json"), ("checksum", ".md5"),
                   ("qc_report", "_qc.pdf"))
MPR_TIMEOUT_S = 3600


# -- the data sets -------------------------------------------------------------------------


def quick_objects(keys: int) -> list[tuple[str, str, bytes]]:
    """(role, key, body) of `keys` small distinct objects, four per asset."""
    found = []
    for index in range(keys):
        role, suffix = FILES_PER_ASSET[index % 4]
        key = f"CD/AO-BEN-{index // 4:05d}{suffix}"
        found.append((role, key, (key * 40).encode()[: 256 + index % 512]))
    return found


def write_random(path: Path, size: int) -> str:
    """`size` random bytes into `path`; their MD5."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as out:
        for start in range(0, size, CHUNK):
            block = os.urandom(min(CHUNK, size - start))
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def slices(path: Path, count: int, size: int) -> Iterator[tuple[int, bytes]]:
    """The first `count` slices of `size` bytes of the file, one in memory at a time."""
    with path.open("rb") as source:
        for index in range(count):
            yield index, source.read(size)


def catalogue(database_url: str, bucket: str,
              files: list[tuple[str, str, str, int, str, str]]) -> None:
    """(code, role, key, size, etag, md5) rows COPYed into assets and asset_files."""
    with psycopg.connect(database_url) as conn:
        codes = sorted({code for code, *_ in files})
        with conn.cursor() as cur, cur.copy("COPY assets (inventory_code, media_type) "
                                            "FROM STDIN") as copy:
            for code in codes:
                copy.write_row((code, "audio"))
        ids = dict(conn.execute("SELECT inventory_code, id FROM assets").fetchall())
        with conn.cursor() as cur, cur.copy("COPY asset_files (asset_id, bucket, key, role, "
                                            "size, etag, md5) FROM STDIN") as copy:
            for code, role, key, size, etag, md5 in files:
                copy.write_row((ids[code], bucket, key, role, size, etag, md5))


def seed_quick(client: Any, database_url: str, bucket: str, keys: int) -> None:
    objects = quick_objects(keys)
    run_pool(SEED_WORKERS, lambda o: client.put_object(Bucket=bucket, Key=o[1], Body=o[2]),
             objects)
    rows = []
    for role, key, body in objects:
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        rows.append((key.split("/")[1].split(".")[0].removesuffix("_qc"), role, key,
                     len(body), md5, md5))
    catalogue(database_url, bucket, rows)


def seed_full(client: Any, database_url: str, bucket: str, local: Path, big: int,
              many: int) -> str:
    """The big object (multipart) and `many` slices of it (single part); the big one's MD5."""
    md5 = write_random(local, big)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=64 * MIB)
    client.upload_file(str(local), bucket, "FULL/big/AO-BIG-00001.wav", Config=config)
    etag = client.head_object(Bucket=bucket, Key="FULL/big/AO-BIG-00001.wav")["ETag"]
    rows = [("AO-BIG-00001", "master", "FULL/big/AO-BIG-00001.wav", big, etag.strip('"'), md5)]
    part = big // many
    for index, body in slices(local, many, part):
        key = f"FULL/many/AO-MNY-{index:05d}.wav"
        client.put_object(Bucket=bucket, Key=key, Body=body)
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        rows.append((f"AO-MNY-{index:05d}", "master", key, len(body), digest, digest))
    catalogue(database_url, bucket, rows)
    return md5


# -- the measurements ----------------------------------------------------------------------


def listing(client: Any, bucket: str, prefix: str) -> int:
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
        count += len(page.get("Contents", ()))
    return count


def hashlib_file(path: Path) -> tuple[float, int]:
    def run() -> int:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        with path.open("rb") as source:
            while block := source.read(CHUNK):
                digest.update(block)
                size += len(block)
        return size

    return timed(run)


def mpr_fixity(env: dict[str, str], work: Path, name: str, *args: str) -> dict[str, Any]:
    report_path = work / f"{name}.json"
    no_env = work / "no.env"
    no_env.touch()
    child = run_child([*mpr_argv(), "--env-file", str(no_env), "fixity", "--report",
                       str(report_path), *args], env, work, MPR_TIMEOUT_S)
    if child.exit_code != 0:
        raise SystemExit(f"mpr fixity {' '.join(args)} exited {child.exit_code}:\n"
                         f"{child.stderr[-3000:]}")
    report = json.loads(report_path.read_text())
    return {"wall_s": round(child.wall_s, 3), "run_s": report["durations_s"]["total"],
            "client_cpu_s": round(child.cpu_s, 3),
            "peak_rss_bytes": max(child.maxrss_bytes, child.hwm_bytes or 0),
            "counts": {k: report["counts"][k] for k in ("checked", "fixity_ok", "errors",
                                                        "bytes_verified")}}


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def quick_figures(client: Any, env: dict[str, str], work: Path, servers: ServerCpu,
                  bucket: str, keys: int) -> dict[str, Any]:
    log("raw listing of CD/")
    listed = []
    for _ in range(RUNS):
        cost, count = measure(servers, lambda: listing(client, bucket, "CD/"))
        assert count == keys, f"listed {count}, seeded {keys}"
        listed.append(cost.figures())
    log("mpr fixity --prefix CD/ (quick)")
    runs = [mpr_fixity(env, work, f"quick{i}", "--prefix", "CD/") for i in range(RUNS)]
    assert all(r["counts"]["fixity_ok"] == keys for r in runs), runs
    base, mine = median_of(listed, "wall_s"), median_of(runs, "wall_s")
    return {"keys": keys, "raw_listing_wall_s": [r["wall_s"] for r in listed],
            "mpr_runs": runs, "ratio_median_wall": round(mine / base, 2),
            "ratio_median_run_s": round(median_of(runs, "run_s") / base, 2),
            "max_ratio": QUICK_MAX_RATIO, "met": mine / base <= QUICK_MAX_RATIO}


def full_figures(env: dict[str, str], work: Path, local: Path, big: int) -> dict[str, Any]:
    log("hashlib.md5 over the local file")
    base_runs = [hashlib_file(local) for _ in range(RUNS)]
    base_rate = statistics.median(size / wall for wall, size in base_runs)
    result: dict[str, Any] = {"hashlib_mb_s": round(base_rate / 1e6, 1)}
    for name in ("big", "many"):
        log(f"mpr fixity --full --prefix FULL/{name}/")
        runs = [mpr_fixity(env, work, f"full-{name}{i}", "--full", "--prefix",
                           f"FULL/{name}/") for i in range(RUNS)]
        read = runs[0]["counts"]["bytes_verified"]
        rate = statistics.median(read / r["run_s"] for r in runs)
        wall_rate = statistics.median(read / r["wall_s"] for r in runs)
        result[name] = {"bytes": read, "runs": runs, "mb_s": round(rate / 1e6, 1),
                        "mb_s_wall": round(wall_rate / 1e6, 1),
                        "share_of_hashlib": round(rate / base_rate, 3),
                        "share_of_hashlib_wall": round(wall_rate / base_rate, 3),
                        "min_share": FULL_MIN_SHARE, "met": rate / base_rate >= FULL_MIN_SHARE}
    peak = max(r["peak_rss_bytes"] for r in result["big"]["runs"])
    result["rss"] = {"object_bytes": big, "peak_rss_mb": round(peak / 1e6, 1),
                     "limit_mb": RSS_MAX_BYTES / 1e6, "met": peak < RSS_MAX_BYTES}
    return result


def run(keys: int, big: int, many: int) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    with local_services(log, prefix="mpr-bench-fixity") as services:
        home, work, state, up_s = services.home, services.work, services.state, services.up_s
        settings = settings_for(state)
        db.migrate(settings)
        bucket, client = settings.s3_bucket_in, plain_client(state, SEED_WORKERS + 4)
        servers, env = ServerCpu(home), {**os.environ, **state.env()}
        log(f"seeding {keys} small objects and {big // MIB} MiB twice over")
        seed_s, _ = timed(lambda: seed_quick(client, state.database_url, bucket, keys))
        local = work / "big.bin"
        full_seed_s, _ = timed(lambda: seed_full(client, state.database_url, bucket, local,
                                                 big, many))
        quick = quick_figures(client, env, work, servers, bucket, keys)
        full = full_figures(env, work, local, big)
        return {"benchmark": "fixity", "host": platform.node(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "loadavg_before": load_before,
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "setup_s": {"services_up": round(up_s, 1), "seed_quick": round(seed_s, 1),
                            "seed_full": round(full_seed_s, 1)},
                "quick": quick, "full": full}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000, help="small objects (20000)")
    parser.add_argument("--big-mib", type=int, default=1024, help="big object, MiB (1024)")
    parser.add_argument("--many", type=int, default=32, help="slices of it (32)")
    add_save_option(parser, "fixity")
    args = parser.parse_args(argv)
    path = save_path(parser, "fixity", args.save)
    result = run(args.keys - args.keys % 4, args.big_mib * MIB, args.many)
    emit(result, path)
    met = [result["quick"]["met"], result["full"]["big"]["met"], result["full"]["many"]["met"],
           result["full"]["rss"]["met"]]
    log(f"targets met: {sum(met)} of {len(met)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
