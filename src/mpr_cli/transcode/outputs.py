"""Where a transcode's output may be written, and its record in the catalogue.

`check_output_key` and `refuse_unsafe_output` are checked when a job is created and again
before every upload: an output never replaces the master, an object of the input bucket that
mpr did not make, or a file catalogued for another asset or in another role. `record_output`
writes the streaming copy and its sidecars (the last stage of a job), `register_master` the
asset of a master that was never imported.

Both record their preservation events (mpr_cli.events) in the caller's transaction: the
streaming copy a `creation` (its sidecars, mpr's own bookkeeping, none); a master registered
provisionally an `ingestion` and, when its MD5 was computed while it downloaded, a `message
digest calculation`. Both write the technical summary (mpr_cli.summary) of the file they
catalogue from its probe, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mpr_cli import db, events, summary
from mpr_cli.errors import DatabaseError, UsageError
from mpr_cli.events import EventType, NewEvent, Outcome
from mpr_cli.ffmpeg.presets import Preset
from mpr_cli.rules import Role
from mpr_cli.storage import Download, Storage
from mpr_cli.transcode.jobs import Connection
from mpr_cli.transcode.stages import Source, TranscodeResult, default_output_key
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.mime import mime_for_media, mime_for_sidecar


def check_output_key(key: str, source: Source, preset: Preset) -> None:
    """--output-key is checked like any key: relative, no '.' or '..' or empty segments, the
    preset's extension, a file name that starts with the asset's inventory code."""
    parts = key.split("/")
    name = parts[-1]
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        why = "must not start with '/' or have '.', '..' or empty segments"
    elif not name.endswith(preset.extension):
        why = f"must end in {preset.extension} (what preset {preset.name} makes)"
    elif not name.startswith(source.inventory_code):
        why = f"must name the asset: a file name that starts with {source.inventory_code}"
    else:
        return
    raise UsageError(f"--output-key {key!r} {why}",
                     hint=f"e.g. {default_output_key(source, preset)}")


@dataclass(frozen=True)
class OutputTarget:
    """Where a job reads its master and writes its output (as recorded on the job)."""

    inventory_code: str
    source_bucket: str
    source_key: str
    output_bucket: str
    output_key: str

    @property
    def keys(self) -> dict[str, str]:
        """Each key the output writes -> the role it is catalogued in."""
        key = self.output_key
        return {key: Role.STREAMING.value, key + ".md5": Role.CHECKSUM.value,
                key + ".json": Role.METADATA.value}


def refuse_unsafe_output(conn: Connection, storage: Storage, target: OutputTarget) -> None:
    """Raise unless the output may be written: never over the master or any object of the input
    bucket that mpr did not make, never over a file catalogued for another asset or in another
    role. Called before every upload (and when a job is created)."""
    bucket, keys = target.output_bucket, target.keys
    hint = "choose another --output-key, or set S3_BUCKET_OUT to another bucket"
    if bucket == target.source_bucket and target.output_key == target.source_key:
        raise UsageError(f"s3://{bucket}/{target.output_key} is the master itself: an output "
                         "never replaces it", hint=hint)
    rows = db.catalogued_files(conn, bucket, list(keys))
    for key, role in keys.items():
        row = rows.get(key)
        if row is not None and (row["inventory_code"], row["role"]) != (target.inventory_code,
                                                                        role):
            raise UsageError(f"s3://{bucket}/{key} is catalogued as the {row['role']} file of "
                             f"{row['inventory_code']}: the output would replace it", hint=hint)
    made = rows.get(target.output_key, {}).get("preset") is not None
    if bucket != target.source_bucket or made:
        return
    for key in keys:
        if storage.head(bucket, key) is not None:
            raise UsageError(f"s3://{bucket}/{key} is an object of the input bucket that mpr did "
                             "not make: the output would replace it", hint=hint)


def register_master(conn: Connection, source: Source, bucket: str, download: Download,
                    info: MediaInfo, etag: str | None) -> int:
    """Catalogue an asset that was never imported, from its master's own probe: provisional
    until an import has checked its sidecars (sql/006)."""
    row = db.FileRow(source.inventory_code, bucket, source.key, Role.MASTER, True,
                     download.size, etag, download.md5, mime_for_media(info), info.raw,
                     provisional=True)
    db.insert_files(conn, None, [(source.inventory_code, source.media_type.value)], [row])
    summary.fill(conn, [(bucket, source.key)])
    asset = db.asset_by_code(conn, source.inventory_code)
    if asset is None:  # insert_files made it in this transaction
        raise DatabaseError(f"asset {source.inventory_code} vanished while it was registered")
    made = [NewEvent(EventType.INGESTION, Outcome.WARNING,
                     "registered provisionally by mpr transcode from its own probe: its "
                     "sidecars are checked by the next import", bucket, source.key)]
    if download.md5 is not None:
        made.insert(0, NewEvent(EventType.DIGEST, Outcome.SUCCESS,
                                f"MD5 {download.md5} computed while it downloaded", bucket,
                                source.key))
    events.record(conn, made)
    return int(asset["id"])


def record_output(conn: Connection, asset_id: int, preset: Preset, result: TranscodeResult,
                  bucket: str) -> None:
    """The streaming copy (replacing the asset's streaming row, if any) and its sidecars as
    catalogue rows, in the caller's transaction."""
    rows: list[tuple[Any, ...]] = [(result.output_key, Role.STREAMING.value, result.size,
                                    result.etag, result.md5, result.mime, result.tech,
                                    preset.name)]
    rows += [(obj.key, role.value, obj.size, obj.etag, obj.single_part_md5,
              mime_for_sidecar("." + obj.key.rsplit(".", 1)[-1]), None, None)
             for obj, role in result.sidecars]
    for key, role, size, etag, md5, mime, tech, made_by in rows:
        if db.upsert_output_file(conn, asset_id=asset_id, bucket=bucket, key=key, role=role,
                                 size=size, etag=etag, md5=md5, mime_type=mime,
                                 tech_metadata=tech, preset=made_by) is None:
            raise UsageError(f"s3://{bucket}/{key} is catalogued as another asset's file or "
                             f"in another role than {role}; not recorded",
                             hint="choose another --output-key")
    summary.fill(conn, [(bucket, result.output_key)])
    events.record(conn, [NewEvent(
        EventType.CREATION, Outcome.SUCCESS,
        f"streaming copy made from its master with preset {preset.name}: "
        f"{result.size} bytes, MD5 {result.md5}", bucket, result.output_key,
        asset_id=asset_id, etag=result.etag)])
