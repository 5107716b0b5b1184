"""The pictures of catalogued assets: what `mpr thumbnails` and an import (MPR_PICTURES=on) run.

`sources` picks each asset's file to read (queries.sql picture_sources): its streaming copy
when one is in a bucket, else its master. `fill` makes the pictures of each (make.py) with
ffmpeg reading a presigned URL of that file: ffmpeg seeks before it opens the input and its
HTTP reader asks S3 for the ranges it needs (a poster of a faststart MP4 is its index and one
second of video; bench/bench_pictures.py counts the bytes), so nothing is downloaded whole but
the track a waveform draws. The pictures go to the output bucket and their rows are written
asset by asset (one transaction each). Nothing here raises for one asset's pictures: what
could not be made is a `PictureWarning`, with the file and the reason.

Assets are worked on `workers` at a time (ffmpeg is the work; the catalogue writes stay in the
calling thread). `stop()` true ends the fill before the next asset.

`after_import` is an import's last step with MPR_PICTURES=on: after its batches committed, the
pictures of the streaming copies it catalogued, each warning a `picture_failed` problem (a
warning) in its report. It is off by default (`transcode-only`): a 20,000-key import with a
few thousand streaming copies would run three ffmpeg processes per copy on top of its one
ffprobe; `mpr thumbnails --missing` makes them later instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mpr_cli import db
from mpr_cli.config import PicturesMode, Settings
from mpr_cli.errors import FfmpegError, MprError, StorageError
from mpr_cli.ffmpeg.probe import probe
from mpr_cli.pictures import model
from mpr_cli.pictures.make import make_pictures, publish
from mpr_cli.pictures.model import Picture
from mpr_cli.problems import Problem, Reason
from mpr_cli.report import Report, RunStatus
from mpr_cli.rules import MediaType
from mpr_cli.storage import Storage
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import InvalidMetadata, media_info_from_json

URL_EXPIRES_S = 3600


@dataclass(frozen=True)
class PictureSource:
    """An asset and the file its pictures are made from."""

    asset_id: int
    inventory_code: str
    media_type: MediaType
    bucket: str
    key: str
    role: str
    folder: str  # of its master's key (else of this file's): the pictures' folder
    tech: Any = field(default=None, compare=False, repr=False)  # stored ffprobe/mediainfo JSON


@dataclass(frozen=True)
class PictureWarning:
    """A picture of an asset that could not be made, and why (one line)."""

    inventory_code: str
    key: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"inventory_code": self.inventory_code, "key": self.key,
                "message": self.message}


@dataclass
class FillResult:
    """What a fill did: assets worked on, pictures made, warnings."""

    assets: int = 0
    pictures: list[tuple[str, Picture]] = field(default_factory=list)  # (code, picture)
    warnings: list[PictureWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"assets": self.assets,
                "pictures": [{"inventory_code": code, **picture.to_json()}
                             for code, picture in self.pictures],
                "warnings": [w.to_json() for w in self.warnings]}


def sources(conn: Any, *, prefix: str = "", missing: bool = False,
            run_id: int | None = None) -> list[PictureSource]:
    """The assets to make pictures for (see the module docstring), in code order."""
    rows = conn.execute(db.query("picture_sources"),
                        {"prefix": prefix, "missing": missing, "run_id": run_id}).fetchall()
    return [PictureSource(r["asset_id"], r["inventory_code"], MediaType(r["media_type"]),
                          r["bucket"], r["key"], r["role"],
                          str(PurePosixPath(r["master_key"] or r["key"]).parent),
                          r["tech_metadata"]) for r in rows]


@dataclass(frozen=True)
class _Outcome:
    source: PictureSource
    pictures: list[Picture]
    warnings: list[str]


def fill(settings: Settings, storage: Storage, conn: Any, todo: list[PictureSource], *,
         workers: int | None = None, stop: Callable[[], bool] | None = None,
         on_asset: Callable[[PictureSource], None] | None = None) -> FillResult:
    """Make, upload and record the pictures of every source in `todo`; `on_asset` is told of
    each asset as it is done."""
    result = FillResult()
    count = max(1, workers or min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="mpr-pictures") as pool:
        for outcome in _bounded(pool, todo, count, settings, storage, stop):
            with conn.transaction():
                for picture in outcome.pictures:
                    model.record(conn, outcome.source.asset_id, picture, outcome.source.key)
            code = outcome.source.inventory_code
            result.assets += 1
            result.pictures += [(code, picture) for picture in outcome.pictures]
            result.warnings += [PictureWarning(code, outcome.source.key, text)
                                for text in outcome.warnings]
            if on_asset is not None:
                on_asset(outcome.source)
    return result


def _bounded(pool: ThreadPoolExecutor, todo: list[PictureSource], count: int,
             settings: Settings, storage: Storage,
             stop: Callable[[], bool] | None) -> Iterator[_Outcome]:
    """The outcomes in order, at most 2 x `count` assets in flight; none started once
    `stop()` is true."""
    pending: list[Any] = []
    for source in todo:
        if stop is not None and stop():
            break
        pending.append(pool.submit(make_for, settings, storage, source))
        if len(pending) >= 2 * count:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


def make_for(settings: Settings, storage: Storage, source: PictureSource) -> _Outcome:
    """One asset's pictures from a presigned URL of its file, uploaded; never raises for
    them (S3 failing to sign or upload, ffprobe failing: warnings)."""
    name = f"s3://{source.bucket}/{source.key}"
    try:
        work = Path(tempfile.mkdtemp(prefix="mpr-pictures-", dir=_temp_root(settings)))
    except OSError as exc:
        return _Outcome(source, [], [f"{name}: no picture: cannot make a temp folder: "
                                     f"{exc.strerror or exc} (set MPR_TEMP_DIR to a writable "
                                     "folder)"])
    try:
        url = storage.presigned_get_url(source.bucket, source.key, expires=URL_EXPIRES_S)
        info = _info(source, url)
        made = make_pictures(url, info, source.media_type, work, name=name)
        pictures, failed = publish(storage, settings.s3_bucket_out, source.folder,
                                   source.inventory_code, made)
        return _Outcome(source, pictures, [*made.warnings, *failed])
    except (StorageError, FfmpegError) as exc:
        return _Outcome(source, [], [f"{name}: no picture: {exc.one_line()}"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def after_import(settings: Settings, storage: Storage, conn: Any, report: Report,
                 stop: Callable[[], bool] | None = None) -> None:
    """With MPR_PICTURES=on, after a recorded import's batches committed: the pictures of
    the streaming copies it catalogued; what could not be made a picture_failed warning in
    `report`. Never raises an MprError: a picture never fails an import."""
    if (settings.pictures is not PicturesMode.ON or report.dry_run or report.run_id is None
            or report.status is RunStatus.ABORTED):
        return
    try:
        result = fill(settings, storage, conn, sources(conn, run_id=report.run_id), stop=stop)
        warnings = result.warnings
    except MprError as exc:
        warnings = [PictureWarning("", settings.s3_bucket_out, f"no pictures made: "
                                   f"{exc.one_line()}")]
    report.extend([Problem.make(Reason.PICTURE_FAILED, w.key, w.message,
                                w.inventory_code or None) for w in warnings])


def _info(source: PictureSource, url: str) -> MediaInfo | None:
    """What the catalogue's technical metadata says of the file, else what ffprobe says of
    the URL (its header, by ranges); None when neither can (make.py then tries anyway)."""
    if source.tech:
        try:
            return media_info_from_json(source.tech)
        except InvalidMetadata:
            pass
    try:
        return probe(url)
    except FfmpegError:
        return None


def _temp_root(settings: Settings) -> Path | None:
    if settings.temp_dir is not None:
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
    return settings.temp_dir
