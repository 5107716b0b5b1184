"""MIME types: for media by container, for sidecars by extension.

MPEG-4 is the one container whose type depends on its content: video/mp4 when it has a video
stream, audio/mp4 when it has none (RFC 4337). Every other container has one type whatever
it holds. `Container.OTHER` has no type (None): the caller decides (e.g.
application/octet-stream).
"""

from __future__ import annotations

from mpr_cli.validation.containers import Container, MediaInfo

CONTAINER_MIME: dict[Container, str] = {
    Container.QUICKTIME: "video/quicktime",
    Container.MATROSKA: "video/x-matroska",
    Container.MXF: "application/mxf",
    Container.WAVE: "audio/wav",
    Container.FLAC: "audio/flac",
    Container.MPEG4: "video/mp4",
    Container.MPEG_AUDIO: "audio/mpeg",
    Container.AVI: "video/x-msvideo",
}

SIDECAR_MIME: dict[str, str] = {
    ".json": "application/json",
    ".md5": "text/plain",
    ".pdf": "application/pdf",
}


def mime_for_container(container: Container, *, has_video: bool = True) -> str | None:
    """The MIME type of a media file in `container` (None for an unknown container)."""
    if container is Container.MPEG4 and not has_video:
        return "audio/mp4"
    return CONTAINER_MIME.get(container)


def mime_for_media(info: MediaInfo) -> str | None:
    """The MIME type of the file `info` describes."""
    return mime_for_container(info.container, has_video=info.has_video)


def mime_for_sidecar(extension: str) -> str | None:
    """The MIME type of a sidecar by extension (".json", ".md5", ".pdf"), else None."""
    return SIDECAR_MIME.get(extension.lower())
