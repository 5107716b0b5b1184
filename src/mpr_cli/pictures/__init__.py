"""Pictures of the assets: a poster and a contact sheet for a video, a waveform for audio.

model.py: the Picture record, its kinds, keys and sizes, the catalogue rows (sql/013), and
`for_asset` / `fetch_bytes` for the reports. command.py: the ffmpeg argv builders (pure).
make.py: ffmpeg run on a local file or a presigned URL, the pictures checked and uploaded.
"""

from __future__ import annotations

from mpr_cli.pictures.model import Picture, PictureKind, fetch_bytes, for_asset, picture_key

__all__ = ["Picture", "PictureKind", "fetch_bytes", "for_asset", "picture_key"]
