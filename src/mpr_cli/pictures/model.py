"""The pictures of an asset as the catalogue records them (sql/013 asset_pictures).

Kinds and where they live in the output bucket (`picture_key`):
  poster         thumbnails/<folder>/<code>.jpg         image/jpeg, POSTER_WIDTH wide
  contact_sheet  thumbnails/<folder>/<code>.sheet.jpg   image/jpeg, SHEET_COLUMNS x SHEET_ROWS
                                                        tiles of TILE_WIDTH, aspect kept
  waveform       thumbnails/<folder>/<code>.waveform.png image/png, WAVEFORM_SIZE
<folder> is the folder of the asset's master key (else of the file the picture was made from),
<code> its inventory code. One row per asset and kind: a new picture of a kind replaces it.

`for_asset` reads an asset's pictures; `fetch_bytes` reads one back from S3 (for the HTML
report, which embeds it); `record` writes a row in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mpr_cli import db
from mpr_cli.errors import StorageError

if TYPE_CHECKING:  # only a type here: `mpr show` reads pictures without loading boto3
    from mpr_cli.storage import Storage

PREFIX = "thumbnails"
POSTER_WIDTH = 640  # the poster: 640 px wide, height from the frame's display aspect (even)
TILE_WIDTH = 320  # each tile of the contact sheet
SHEET_COLUMNS, SHEET_ROWS = 4, 3  # 12 frames spread evenly across the duration
WAVEFORM_SIZE = (1200, 240)  # the waveform of an audio asset, all channels mixed into one
MAX_PICTURE_BYTES = 8 * 1024 * 1024  # fetch_bytes refuses more: a picture is never that big


class PictureKind(StrEnum):
    """What a picture shows (asset_pictures.kind)."""

    POSTER = "poster"
    CONTACT_SHEET = "contact_sheet"
    WAVEFORM = "waveform"

    @property
    def suffix(self) -> str:
        """The end of its key after the inventory code."""
        return {"poster": ".jpg", "contact_sheet": ".sheet.jpg",
                "waveform": ".waveform.png"}[self.value]

    @property
    def mime_type(self) -> str:
        return "image/png" if self is PictureKind.WAVEFORM else "image/jpeg"


VIDEO_KINDS = (PictureKind.POSTER, PictureKind.CONTACT_SHEET)
AUDIO_KINDS = (PictureKind.WAVEFORM,)


@dataclass(frozen=True)
class Picture:
    """One picture of an asset, an object in the output bucket."""

    kind: PictureKind
    bucket: str
    key: str
    mime_type: str
    width: int | None
    height: int | None
    size: int | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "bucket": self.bucket, "key": self.key,
                "mime_type": self.mime_type, "width": self.width, "height": self.height,
                "size": self.size}


def picture_key(folder: str, code: str, kind: PictureKind) -> str:
    """thumbnails/<folder>/<code><suffix>; a master at the top of the bucket (folder "" or
    ".") gives thumbnails/<code><suffix>."""
    parts = [PREFIX] + [p for p in PurePosixPath(folder).parts if p not in (".", "/")]
    return "/".join([*parts, code + kind.suffix])


def for_asset(conn: Any, asset_id: int) -> list[Picture]:
    """The asset's pictures, poster first; [] when it has none."""
    rows = conn.execute(db.query("pictures_of_asset"), {"asset_id": asset_id}).fetchall()
    return [Picture(PictureKind(r["kind"]), r["bucket"], r["key"], r["mime_type"], r["width"],
                    r["height"], r["size"]) for r in rows]


def record(conn: Any, asset_id: int, picture: Picture, source_key: str | None) -> None:
    """The picture's row, replacing the asset's earlier one of its kind (caller's transaction)."""
    conn.execute(db.query("record_picture"), {
        "asset_id": asset_id, "kind": picture.kind.value, "bucket": picture.bucket,
        "key": picture.key, "mime_type": picture.mime_type, "width": picture.width,
        "height": picture.height, "size": picture.size, "source_key": source_key})


def fetch_bytes(storage: Storage, picture: Picture) -> bytes:
    """The picture's bytes (at most MAX_PICTURE_BYTES); StorageError when S3 cannot give them
    (MissingObject-like message naming s3://bucket/key, from Storage)."""
    try:
        return storage.read_bytes(picture.bucket, picture.key, MAX_PICTURE_BYTES)
    except StorageError as exc:
        raise StorageError(exc.message, key=picture.key,
                           hint="make it again with `mpr thumbnails --missing`") from None
