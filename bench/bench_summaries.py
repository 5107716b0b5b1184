#!/usr/bin/env python3
"""Benchmark of the technical summaries (sql/012, mpr_cli.summary): what they add to an
import's batch, and how fast `mpr db backfill-summaries` fills a catalogue.

Starts its own PostgreSQL (mpr_cli.dev.devservices, which starts SeaweedFS and Redis too,
unused here), migrates it, then inserts `--assets` assets of two files each (a master with a
real mediainfo document, a streaming copy with a real ffprobe one: tests/unit/data) in the
import's batches (200 assets, db.insert_files in one transaction), alternating batches with
and without `summary.fill` (paired, so that load on the machine hits both alike), and measures:

  insert        db.insert_files of one batch (400 files)
  fill          summary.fill of the same batch (reads the batch's JSON back, writes 400 rows)
  backfill      summary.backfill of every file left without a summary (the batches without)
  summary_of    the pure extraction, per document (mediainfo and ffprobe)

and prints one JSON document (medians, per-file figures, the ratio fill/insert).

    .venv/bin/python bench/bench_summaries.py                 # 4,000 assets
    .venv/bin/python bench/bench_summaries.py --assets 1000   # a quick run
    .venv/bin/python bench/bench_summaries.py --save          # bench/results/summaries-<date>.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from mpr_cli import db, summary
from mpr_cli.config import FIELD_BY_ENV, load_settings
from mpr_cli.dev import devservices
from mpr_cli.rules import Role

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import add_save_option, emit, save_path  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "unit" / "data"
BATCH = 200  # ImportOptions.batch_assets' default


def documents() -> tuple[dict[str, Any], dict[str, Any]]:
    return (json.loads((DATA / "mov_prores_pcm.mediainfo.json").read_text()),
            json.loads((DATA / "mp4_h264_aac.ffprobe.json").read_text()))


def batch_rows(first: int, count: int, master: dict[str, Any],
               stream: dict[str, Any]) -> tuple[list[tuple[str, str]], list[db.FileRow]]:
    assets, rows = [], []
    for n in range(first, first + count):
        code = f"VO-BEN-{n:05d}"
        assets.append((code, "video"))
        rows += [db.FileRow(code, "in", f"BRD/{code}.mov", Role.MASTER, True, 438190, "e",
                            None, "video/quicktime", master),
                 db.FileRow(code, "in", f"BRD/{code}.mp4", Role.STREAMING, True, 16575, "e",
                            None, "video/mp4", stream)]
    return assets, rows


def timed(func: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def run_batches(conn: psycopg.Connection[Any], assets: int) -> dict[str, list[float]]:
    """Every batch inserted; even batches also filled (in the same transaction)."""
    master, stream = documents()
    times: dict[str, list[float]] = {"insert_with": [], "fill": [], "insert_without": []}
    for number, first in enumerate(range(0, assets, BATCH)):
        batch_assets, rows = batch_rows(first, min(BATCH, assets - first), master, stream)
        with conn.transaction():
            started = time.perf_counter()
            db.insert_files(conn, None, batch_assets, rows)
            inserted = time.perf_counter()
            if number % 2 == 0:
                summary.fill(conn, [(r.bucket, r.key) for r in rows])
                times["insert_with"].append(inserted - started)
                times["fill"].append(time.perf_counter() - inserted)
            else:
                times["insert_without"].append(inserted - started)
    return times


def extraction_us(rounds: int = 2000) -> dict[str, float]:
    master, stream = documents()
    result = {}
    for name, document in (("mediainfo", master), ("ffprobe", stream)):
        took, _ = timed(lambda d=document: [summary.summary_of(d) for _ in range(rounds)])
        result[name] = round(took / rounds * 1e6, 1)
    return result


def measure(database_url: str, assets: int) -> dict[str, Any]:
    with psycopg.connect(database_url, row_factory=dict_row, autocommit=True) as conn:
        times = run_batches(conn, assets)
        missing = conn.execute("SELECT count(*) AS n FROM asset_files f WHERE NOT EXISTS "
                               "(SELECT 1 FROM media_summaries m WHERE m.file_id = f.id)"
                               ).fetchone()
        backfill_s, done = timed(lambda: summary.backfill(conn))
    per_batch = 2 * BATCH
    insert = statistics.median(times["insert_with"] + times["insert_without"])
    fill = statistics.median(times["fill"])
    return {
        "assets": assets, "files": 2 * assets, "batch_files": per_batch,
        "insert_batch_median_s": round(insert, 4),
        "fill_batch_median_s": round(fill, 4),
        "fill_per_file_us": round(fill / per_batch * 1e6, 1),
        "fill_over_insert": round(fill / insert, 3),
        "backfill": {"files": missing["n"] if missing else None, "filled": done.filled,
                     "seconds": round(backfill_s, 3),
                     "files_per_s": round(done.filled / backfill_s) if backfill_s else None},
        "summary_of_us": extraction_us(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=4000)
    add_save_option(parser, "summaries")
    args = parser.parse_args(argv)
    path = save_path(parser, "summaries", args.save)
    home = Path(tempfile.mkdtemp(prefix="mpr-bench-summaries-"))
    home.chmod(0o755)
    try:
        state = devservices.up(home)
        overrides = {FIELD_BY_ENV[k]: v for k, v in state.env().items()}
        db.migrate(load_settings(env_file=None, **overrides))
        result = {"load_before": [round(x, 2) for x in os.getloadavg()],
                  **measure(state.database_url, args.assets),
                  "load_after": [round(x, 2) for x in os.getloadavg()]}
    finally:
        devservices.down(home)
        shutil.rmtree(home, ignore_errors=True)
    emit(result, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
