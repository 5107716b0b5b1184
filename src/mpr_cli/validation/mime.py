"""MIME types: for a file by its extension (the rules' `[formats]`), for media by container.

A file the rules name (every file an import catalogues) has its extension's MIME type:
`mime_for_extension`, `mime_for_sidecar`. Media no rule names (a transcode's output, a probe)
has its container's (`mime_for_media`): MPEG-4 is the one container whose type depends on its
content, video/mp4 with a video stream, audio/mp4 without (RFC 4337); every other container
has one type whatever it holds. `Container.OTHER` has no type (None): the caller decides
(e.g. application/octet-stream).
"""

from __future__ import annotations

from mpr_cli.rules import MEDIA_ROLES, Rules, default_rules
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
    Container.OGG: "audio/ogg",
    Container.ADTS: "audio/aac",
    Container.FLV: "video/x-flv",
    Container.ASF: "video/x-ms-asf",
}


def mime_for_container(container: Container, *, has_video: bool = True) -> str | None:
    """The MIME type of a media file in `container` (None for an unknown container)."""
    if container is Container.MPEG4 and not has_video:
        return "audio/mp4"
    return CONTAINER_MIME.get(container)


def mime_for_media(info: MediaInfo) -> str | None:
    """The MIME type of the file `info` describes, by its container."""
    return mime_for_container(info.container, has_video=info.has_video)


def mime_for_extension(extension: str, rules: Rules | None = None) -> str | None:
    """The MIME type the rules give an extension (".webm" -> "video/webm"), else None."""
    fmt = (rules or default_rules()).format_of(extension)
    return fmt.mime if fmt is not None else None


def mime_for_sidecar(extension: str, rules: Rules | None = None) -> str | None:
    """The MIME type of a sidecar by extension (".json", ".md5", ".pdf"), else None."""
    fmt = (rules or default_rules()).format_of(extension)
    return fmt.mime if fmt is not None and fmt.role not in MEDIA_ROLES else None
