"""The catalogue's part of a run's page: the assets the run imported a file of (with their
technical summaries, mpr_cli.summary, and the picture chosen for each, mpr_cli.pictures), the
transcode jobs that finished while a nightly ran, and the pictures' bytes from S3.

Which picture an asset shows: its poster (video) or its waveform (audio), else whatever it
has. Pictures are embedded in the order the assets are listed, at most `Limits.max_pictures`,
and, when `Limits.max_bytes` is set, only while the page stays under it (a picture costs its
size in base64 plus its tag); the page says how many were left out and why. A picture S3
cannot give is left out with its reason on its row: a picture is never worth a failed report.

A run's transcodes: the jobs whose last attempt finished between the run's start and the end
of its transcode step (`run_window_end`; now, while it runs) -- the jobs that step settled,
and any other a worker settled meanwhile (the report does not name its jobs' ids).
Only a nightly run has a transcode step; an import run's page has no transcode section.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from mpr_cli import db, pictures, summary
from mpr_cli.errors import MprError
from mpr_cli.htmlreport.model import AssetEntry, Image, Limits, RunPage, TranscodeEntry
from mpr_cli.pictures import Picture
from mpr_cli.storage import Storage

PREFERRED_KIND = {"video": "poster", "audio": "waveform"}
TAG_BYTES = 200  # an <img> tag around a data: URI, with its width, height and alt
MAX_TRANSCODES = 2000
SLACK_S = 5  # the catalogue's clock and the host's may differ a little


def _chosen(found: list[Picture], media_type: str) -> Picture | None:
    wanted = PREFERRED_KIND.get(media_type)
    return next((p for p in found if p.kind == wanted), found[0] if found else None)


def _entry(conn: psycopg.Connection[Any], row: dict[str, Any]) -> AssetEntry:
    summaries = summary.for_asset(conn, row["id"])
    master, streaming = summaries.get(row["master_id"]), summaries.get(row["streaming_id"])
    entry = AssetEntry(row["id"], row["inventory_code"], row["media_type"], row["master_key"],
                       row["streaming_key"],
                       master.one_line() if master is not None else None,
                       streaming.one_line() if streaming is not None else None)
    picture = _chosen(pictures.for_asset(conn, row["id"]), row["media_type"])
    if picture is None:
        entry.picture_note = "no picture made yet (`mpr thumbnails --missing`)"
    entry.picture = picture
    return entry


def run_assets(conn: psycopg.Connection[Any], run_id: int,
               limit: int) -> tuple[list[AssetEntry], int]:
    """The first `limit` assets (by code) with a file run `run_id` imported, and how many."""
    rows = conn.execute(db.query("html_run_assets"), {"run_id": run_id, "limit": limit})
    found = rows.fetchall()
    return [_entry(conn, r) for r in found], int(found[0]["total"]) if found else 0


def _seconds(row: dict[str, Any]) -> float | None:
    started, finished = row["started_at"], row["finished_at"]
    return (finished - started).total_seconds() if started and finished else None


def run_window_end(row: dict[str, Any]) -> datetime | None:
    """When a nightly's transcode step ended: its row's finished_at is the end of its import
    step, so the start plus the report's total duration (measured from before the row was
    made: never short), and SLACK_S more; None (now) for a run without a report yet."""
    total = ((row.get("report") or {}).get("durations_s") or {}).get("total")
    if not isinstance(total, int | float) or row.get("finished_at") is None:
        return None
    end: datetime = max(row["finished_at"], row["started_at"] + timedelta(seconds=total))
    return end + timedelta(seconds=SLACK_S)


def run_transcodes(conn: psycopg.Connection[Any], row: dict[str, Any]) -> list[TranscodeEntry]:
    """The jobs that finished while the run (an import_runs row) ran, oldest first."""
    jobs = conn.execute(db.query("html_run_transcodes"), {
        "started_at": row["started_at"], "finished_at": run_window_end(row),
        "limit": MAX_TRANSCODES}).fetchall()
    entries = []
    for job in jobs:
        master = (summary.for_asset(conn, job["asset_id"]).get(job["master_id"])
                  if job["asset_id"] is not None else None)
        entries.append(TranscodeEntry(
            job["id"], job["inventory_code"], job["preset"], job["status"], job["source_key"],
            job["output_key"], _seconds(job), master.duration_s if master else None,
            job["error"]))
    return entries


def add_catalogue(page: RunPage, conn: psycopg.Connection[Any], row: dict[str, Any],
                  limits: Limits) -> None:
    """The run's assets (and, for a nightly, its transcodes) onto `page`."""
    if page.run_id is None:
        return
    page.assets, page.assets_total = run_assets(conn, page.run_id, limits.max_assets)
    if page.command == "nightly" and row.get("started_at") is not None:
        page.transcodes = run_transcodes(conn, row)


def _fetch(storage: Storage, entry: AssetEntry, picture: Picture) -> None:
    try:
        data = pictures.fetch_bytes(storage, picture)
    except MprError as exc:
        entry.picture_note = f"picture not readable: {exc.message}"
        return
    entry.image = Image(picture.kind.value, picture.mime_type, data, picture.width,
                        picture.height)


def embed_pictures(page: RunPage, storage: Storage, limits: Limits, base_size: int) -> None:
    """Fetch the chosen pictures within the limits (see the module docstring); `base_size`:
    the page's size without them. Notes on `page` say how many were left out."""
    budget = None if limits.max_bytes is None else limits.max_bytes - base_size
    embedded = by_count = by_size = 0
    for entry in page.assets or []:
        picture = entry.picture
        if picture is None:
            continue
        if embedded >= limits.max_pictures:
            by_count += 1
            entry.picture_note = f"left out: a page holds at most {limits.max_pictures}"
            continue
        if budget is not None and (picture.size or 0) * 4 // 3 + TAG_BYTES > budget:
            by_size += 1
            entry.picture_note = "left out to keep the page small"
            continue
        _fetch(storage, entry, picture)
        if entry.image is not None:
            embedded += 1
            if budget is not None:
                budget -= len(entry.image.data) * 4 // 3 + TAG_BYTES
    _note_left_out(page, limits, by_count, by_size)


def _note_left_out(page: RunPage, limits: Limits, by_count: int, by_size: int) -> None:
    if by_count:
        page.notes.append(f"{by_count} picture(s) left out: a page embeds at most "
                          f"{limits.max_pictures}")
    if by_size:
        page.notes.append(f"{by_size} picture(s) left out to keep this page under "
                          f"{(limits.max_bytes or 0) // 1024} KiB")
