"""One asset as a person wants to see it (`mpr show CODE|KEY`): its files, a technical summary
of its master and streaming copy, its transcode jobs, the open problems about it and its
preservation events (mpr_cli.events, oldest first).

The technical summary is derived from each file's stored metadata JSON (the mediainfo or
ffprobe document the import or the transcode recorded) with the same parser the import uses
(validation.sidecars.media_info_from_json); a file without one, or with one that parser
refuses, has no summary (None), never an error. That is the older `tech` of `--json`, kept
as it was; each master and streaming copy also has its typed summary (`summary`: the row of
sql/012 that import and transcode write, mpr_cli.summary), None when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from mpr_cli import db, events, known
from mpr_cli.events import Event
from mpr_cli.pictures.model import Picture
from mpr_cli.pictures.model import for_asset as pictures_of
from mpr_cli.summary import TechSummary as Summary
from mpr_cli.summary import for_asset as summaries_of
from mpr_cli.transcode.jobs import Job
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import InvalidMetadata, media_info_from_json

SUMMARISED_ROLES = ("master", "streaming")


@dataclass(frozen=True)
class TechSummary:
    """What a person asks of a media file: container, codecs, duration, picture, sound."""

    container: str
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    duration_s: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    audio_channels: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "video_codecs": list(self.video_codecs),
                "audio_codecs": list(self.audio_codecs), "duration_s": self.duration_s,
                "width": self.width, "height": self.height, "frame_rate": self.frame_rate,
                "audio_channels": list(self.audio_channels)}


@dataclass(frozen=True)
class AssetFile:
    """One catalogued file of the asset."""

    bucket: str
    key: str
    role: str
    size: int | None
    md5: str | None
    mime_type: str | None
    in_bucket: bool  # False: a master on tape, recorded from its sidecars
    provisional: bool
    preset: str | None  # the preset mpr made a streaming copy with (None: delivered)
    created_at: datetime
    import_run_id: int | None
    import_run_key: str | None
    tech: TechSummary | None
    summary: Summary | None = None  # the catalogue's typed summary (sql/012)

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "role": self.role, "size": self.size,
                "md5": self.md5, "mime_type": self.mime_type, "in_bucket": self.in_bucket,
                "provisional": self.provisional, "preset": self.preset,
                "imported_at": db.json_value(self.created_at),
                "import_run_id": self.import_run_id, "import_run_key": self.import_run_key,
                "tech": None if self.tech is None else self.tech.to_json(),
                "summary": None if self.summary is None else self.summary.to_json()}


@dataclass(frozen=True)
class AssetView:
    """An asset with everything `mpr show` prints."""

    inventory_code: str
    media_type: str
    created_at: datetime
    files: list[AssetFile]
    jobs: list[Job]
    problems: list[known.OpenProblem]
    events: list[Event] = field(default_factory=list)  # oldest first
    pictures: list[Picture] = field(default_factory=list)  # poster first (sql/013)

    def file_of(self, role: str) -> AssetFile | None:
        return next((f for f in self.files if f.role == role), None)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of `mpr show --json` (documented in README)."""
        return {"inventory_code": self.inventory_code, "media_type": self.media_type,
                "created_at": db.json_value(self.created_at),
                "files": [f.to_json() for f in self.files],
                "jobs": [j.to_json() for j in self.jobs],
                "problems": [p.to_json() for p in self.problems],
                "events": [e.to_json() for e in self.events],
                "pictures": [p.to_json() for p in self.pictures]}


def _frame_rate(info: MediaInfo) -> float | None:
    """The first video track's frame rate from the tool's own document, if it says."""
    raw = info.raw
    if info.source == "mediainfo":
        tracks = raw.get("media", {}).get("track", [])
        values = [t.get("FrameRate") for t in tracks if t.get("@type") == "Video"]
    else:
        values = [s.get("avg_frame_rate") or s.get("r_frame_rate")
                  for s in raw.get("streams", []) if s.get("codec_type") == "video"]
    return _rate(values[0]) if values else None


def _rate(value: Any) -> float | None:
    """"25", "25.000" or "30000/1001" as frames per second (rounded to 3 decimals)."""
    try:
        text = str(value)
        top, _, bottom = text.partition("/")
        rate = float(top) / float(bottom) if bottom else float(top)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(rate, 3) if rate > 0 else None


def summarise(document: Any) -> TechSummary | None:
    """The summary of a stored metadata document; None when there is none or it is refused."""
    if document is None:
        return None
    try:
        info = media_info_from_json(document)
        frame_rate = _frame_rate(info)
    except (InvalidMetadata, AttributeError, TypeError, ValueError):
        return None
    return TechSummary(str(info.container), info.video_codecs, info.audio_codecs,
                       info.duration_s, info.width, info.height, frame_rate,
                       info.audio_channels)


def _file(row: dict[str, Any], summaries: dict[int, Summary]) -> AssetFile:
    tech = summarise(row["tech_metadata"]) if row["role"] in SUMMARISED_ROLES else None
    return AssetFile(row["bucket"], row["key"], row["role"], row["size"], row["md5"],
                     row["mime_type"], row["in_bucket"], row["provisional"], row["preset"],
                     row["created_at"], row["import_run_id"], row["run_key"], tech,
                     summaries.get(row["id"]))


def find_asset(conn: psycopg.Connection[Any], code_or_key: str,
               input_bucket: str) -> AssetView | None:
    """The asset of an inventory code, or of the catalogued file at a key (any bucket);
    None when the catalogue has neither."""
    row = conn.execute(db.query("asset_by_code_or_key"), {"name": code_or_key}).fetchone()
    if row is None:
        return None
    code = row["inventory_code"]
    files = conn.execute(db.query("asset_files_shown"), {"asset_id": row["id"]}).fetchall()
    jobs = conn.execute(db.query("jobs_of_asset"), {"code": code}).fetchall()
    problems = known.open_problems(conn, input_bucket,
                                   known.ProblemFilter(inventory_code=code))
    summaries = summaries_of(conn, row["id"])
    return AssetView(code, row["media_type"], row["created_at"],
                     [_file(f, summaries) for f in files],
                     [Job.from_row(j) for j in jobs], problems, events.for_asset(conn, row["id"]),
                     pictures_of(conn, row["id"]))
