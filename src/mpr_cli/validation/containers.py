"""Technical metadata as a typed record, and the container rules it must meet.

`MediaInfo` is what a metadata sidecar (mediainfo or ffprobe JSON) or a live ffprobe says
about a media file, normalised so both sources compare equal: containers as `Container`,
codecs as ffprobe-style lower-case names ("h264", "aac", "mp3", "prores", "pcm", ...).

The checks (pure, one list of Problems each, empty when fine) read each extension's `Format`
from the rules (`rules.toml` `[formats]`; the shipped rules when given none):
- `check_streaming_copy`: the container and codecs its format allows; in the shipped rules
  .mp4 must be MPEG-4 with H.264 video AND AAC audio (a streaming copy without sound is
  almost always a mistake in an archive of audiovisual carriers, so audio is required) and
  .mp3 an MPEG audio layer 3 stream with no video.
- `check_master`: the container matches the extension's (.mov QuickTime, .mkv Matroska, ...).
- `check_kind`: a video (V) asset's file has a video stream; an audio (A) asset's has audio and
  no video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpr_cli.problems import Problem, Reason
from mpr_cli.rules import Container, Format, MediaType, Role, Rules, default_rules

__all__ = ["Container", "MediaInfo", "check_kind", "check_master", "check_media_file",
           "check_streaming_copy"]


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Technical metadata of one media file (from mediainfo or ffprobe)."""

    source: str  # "mediainfo" | "ffprobe"
    container: Container
    format_name: str  # as the tool wrote it, e.g. "MPEG-4" or "mov,mp4,m4a,3gp,3g2,mj2"
    duration_s: float | None = None
    size: int | None = None
    file_name: str | None = None  # base name of the file the tool read
    video_codecs: tuple[str, ...] = ()
    audio_codecs: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    interlaced: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def has_video(self) -> bool:
        return bool(self.video_codecs)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)

    @property
    def audio_channels(self) -> tuple[int | None, ...]:
        """Channels of each audio track, in order (None where the document does not say).

        Read from the tool's own document (`raw`), ffprobe's `streams[].channels` or
        mediainfo's `track[].Channels`, so every MediaInfo has it, whoever parsed it.
        """
        counts = _audio_channels(self.raw)
        if len(counts) != len(self.audio_codecs):  # no document, or one we cannot line up
            return (None,) * len(self.audio_codecs)
        return counts

    def describe(self) -> str:
        """Short human text: "QuickTime with video prores, audio pcm"."""
        parts = [f"video {', '.join(self.video_codecs)}"] if self.video_codecs else []
        parts += [f"audio {', '.join(self.audio_codecs)}"] if self.audio_codecs else []
        return f"{self.container} with {'; '.join(parts) or 'no audio or video streams'}"


def check_streaming_copy(key: str, code: str, extension: str, info: MediaInfo,
                         rules: Rules | None = None) -> list[Problem]:
    """A streaming copy: the container and codecs its extension's format allows
    (ValueError for an extension that is no streaming copy's)."""
    fmt = (rules or default_rules()).format_of(extension, Role.STREAMING)
    if fmt is None:
        raise ValueError(f"{extension!r} is not a streaming copy extension")
    if allows(fmt, info):
        return []
    message = (f"streaming copy is {info.describe()}; a {extension} must be "
               f"{fmt.expected()}: re-encode it")
    return [_mismatch(key, code, message)]


def allows(fmt: Format, info: MediaInfo) -> bool:
    """Is `info` the container of `fmt`, with streams only of the codecs it lists (at least
    one of each kind it lists codecs for, none of a kind it lists none for)?"""
    return (info.container is fmt.container
            and _only(info.video_codecs, fmt.video_codecs)
            and _only(info.audio_codecs, fmt.audio_codecs))


def check_master(key: str, code: str, extension: str, info: MediaInfo,
                 rules: Rules | None = None) -> list[Problem]:
    """The master's container matches its extension's (ValueError for an extension that is
    no master's)."""
    fmt = (rules or default_rules()).format_of(extension, Role.MASTER)
    if fmt is None:
        raise ValueError(f"{extension!r} is not a master extension")
    expected = fmt.container
    if info.container is expected:
        return []
    message = (
        f"master is {info.container} ({info.format_name}) but {extension} means {expected}: "
        f"rename it to the right extension or re-wrap it"
    )
    return [_mismatch(key, code, message)]


def check_kind(key: str, code: str, media_type: MediaType, info: MediaInfo) -> list[Problem]:
    """Video assets have video; audio assets have audio and no video."""
    if media_type is MediaType.VIDEO and not info.has_video:
        message = f"{code} is a video asset but the file is {info.describe()}: check the file"
    elif media_type is MediaType.AUDIO and (info.has_video or not info.has_audio):
        message = (
            f"{code} is an audio asset but the file is {info.describe()}; "
            "expected audio only: check the file or its inventory code"
        )
    else:
        return []
    return [_mismatch(key, code, message)]


def check_media_file(
    key: str, code: str, media_type: MediaType, extension: str, info: MediaInfo,
    rules: Rules | None = None,
) -> list[Problem]:
    """All container rules for a master or streaming copy: the kind first and, when the kind
    is right, the container (one problem per file, not two saying the same thing)."""
    problems = check_kind(key, code, media_type, info)
    if problems:
        return problems
    rules = rules or default_rules()
    if rules.format_of(extension, Role.STREAMING) is not None:
        return check_streaming_copy(key, code, extension, info, rules)
    return check_master(key, code, extension, info, rules)


def _audio_channels(raw: dict[str, Any]) -> tuple[int | None, ...]:
    media = raw.get("media")
    if isinstance(media, dict):  # mediainfo
        tracks = media.get("track") or []
        tracks = [tracks] if isinstance(tracks, dict) else tracks
        return tuple(_count(t.get("Channels")) for t in tracks
                     if isinstance(t, dict) and t.get("@type") == "Audio")
    streams = raw.get("streams")
    if isinstance(streams, list):  # ffprobe
        return tuple(_count(s.get("channels")) for s in streams
                     if isinstance(s, dict) and s.get("codec_type") == "audio")
    return ()


def _count(value: Any) -> int | None:
    """2, "2" or "2 / 1" (mediainfo's text for a changing count: the first) -> 2; else None."""
    text = str(value).split("/")[0].strip() if value is not None else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def _only(codecs: tuple[str, ...], allowed: tuple[str, ...]) -> bool:
    """No codec when none is allowed; else at least one, each of them allowed."""
    return not codecs if not allowed else bool(codecs) and all(c in allowed for c in codecs)


def _mismatch(key: str, code: str, message: str) -> Problem:
    return Problem.make(Reason.CONTAINER_MISMATCH, key, message, inventory_code=code)
