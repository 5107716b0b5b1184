"""Transcode presets as data: the built-ins in `presets.toml`, plus a user file (MPR_PRESETS).

`load_presets(path)` reads the shipped presets and, when `path` is given, the user's file on
top: a user preset with a new name is added, one with a built-in's name replaces that built-in
completely (no field merging), and a user `[defaults]` table replaces the defaults it names.
Every field is checked; a mistake raises `ConfigError` naming the file, the preset and the
field, e.g. "presets file x.toml: preset 'tiny': video_codec: 'h265x' is not one of libx264,
libx265".

Fields a preset leaves out take the defaults of its media type (video: libx264 High, yuv420p,
CRF 23, x264 speed preset "medium", bwdif, faststart, AAC in MP4; audio: libmp3lame CBR in MP3).
The speed preset is "medium" (x264's own default) because an access copy is encoded once and
watched many times; a user who needs throughput adds `preset = "veryfast"`. `audio_tracks`
("merge", the default, or "first") says how the master's audio tracks become the copy's one
audio stream (ffmpeg/command.py `plan_audio`).

The output check (transcode.verify_output) is derived from the preset: `video_made` and
`audio_made` name what its encoders make (`CODEC_MADE`), so a libx265 preset is checked for
HEVC. A preset whose encoder the check does not know could never pass it and is refused here,
when the presets load, naming the file, the preset and the field.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from mpr_cli import tomlfiles
from mpr_cli.errors import ConfigError
from mpr_cli.rules import MediaType

BUILTIN = "built-in presets.toml"
SUPPORTED_VERSIONS = (1,)
_TOP_KEYS = ("version", "defaults", "presets")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


class OutputContainer(StrEnum):
    MP4 = "mp4"
    MP3 = "mp3"


class VideoCodec(StrEnum):
    LIBX264 = "libx264"
    LIBX265 = "libx265"


class AudioCodec(StrEnum):
    AAC = "aac"
    LIBMP3LAME = "libmp3lame"


class PixelFormat(StrEnum):
    YUV420P = "yuv420p"
    YUV420P10LE = "yuv420p10le"


class SpeedPreset(StrEnum):
    """x264/x265 speed presets, fastest first."""

    ULTRAFAST = "ultrafast"
    SUPERFAST = "superfast"
    VERYFAST = "veryfast"
    FASTER = "faster"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    SLOWER = "slower"
    VERYSLOW = "veryslow"
    PLACEBO = "placebo"


class Deinterlacer(StrEnum):
    BWDIF = "bwdif"
    YADIF = "yadif"


class AudioTracks(StrEnum):
    """How the master's audio tracks become the copy's one audio stream (see command.py)."""

    MERGE = "merge"  # mono tracks become the channels of one stream; a stereo first track stays
    FIRST = "first"  # the first track only, as it is


class PresetOrigin(StrEnum):
    BUILTIN = "built-in"
    USER = "user"
    REPLACES_BUILTIN = "user, replaces built-in"


# profile -> bit depth it encodes, per codec; the pixel format must have the same depth
PROFILES: dict[VideoCodec, dict[str, int]] = {
    VideoCodec.LIBX264: {"baseline": 8, "main": 8, "high": 8, "high10": 10},
    VideoCodec.LIBX265: {"main": 8, "main10": 10},
}
# What each encoder makes, named as the output check reads it (ffprobe's codec names, which
# mediainfo's are normalised to). A preset whose encoder is missing here could never pass the
# output check (transcode.verify_output): it is refused when the presets load.
CODEC_MADE: dict[VideoCodec | AudioCodec, str] = {
    VideoCodec.LIBX264: "h264",
    VideoCodec.LIBX265: "hevc",
    AudioCodec.AAC: "aac",
    AudioCodec.LIBMP3LAME: "mp3",
}
_DEFAULT_PROFILE = {VideoCodec.LIBX264: "high", VideoCodec.LIBX265: "main"}
_DEPTH = {PixelFormat.YUV420P: 8, PixelFormat.YUV420P10LE: 10}
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_VIDEO_FIELDS = ("video_codec", "profile", "pix_fmt", "crf", "maxrate", "bufsize", "preset",
                 "max_width", "max_height", "deinterlace", "faststart")
_MEDIA_DEFAULTS: dict[str, dict[str, Any]] = {
    "video": {"container": "mp4", "video_codec": "libx264", "pix_fmt": "yuv420p", "crf": 23,
              "preset": "medium", "deinterlace": "bwdif", "faststart": True,
              "audio_codec": "aac"},
    "audio": {"container": "mp3", "audio_codec": "libmp3lame", "audio_cbr": True},
}


def _fail(field: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError("preset_field", "{field}: {reason}", {"field": field,
                                                                    "reason": reason})


def _bitrate(value: str) -> str:
    number, unit = (value[:-1], value[-1]) if value[-1:] in ("k", "M") else (value, "")
    if not number.replace(".", "", 1).isdigit() or float(number) <= 0:
        raise PydanticCustomError("bitrate", "{value} is not a bitrate like '3M' or '128k'",
                                  {"value": repr(value)})
    return value


def _even(value: int) -> int:
    if value % 2:
        raise PydanticCustomError("even", "must be an even number, not {value}", {"value": value})
    return value


Bitrate = Annotated[str, Field(min_length=1), AfterValidator(_bitrate)]
Dimension = Annotated[int, Field(ge=16, le=8192), AfterValidator(_even)]


class Preset(BaseModel):
    """One way of making a streaming copy. Immutable; build it with `load_presets`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    media: MediaType
    container: OutputContainer
    video_codec: VideoCodec | None = None
    profile: str | None = None
    pix_fmt: PixelFormat | None = None
    crf: int | None = Field(None, ge=0, le=51)
    maxrate: Bitrate | None = None
    bufsize: Bitrate | None = None
    preset: SpeedPreset | None = None
    max_width: Dimension | None = None
    max_height: Dimension | None = None
    deinterlace: Deinterlacer | None = None
    audio_codec: AudioCodec
    audio_bitrate: Bitrate
    audio_channels: int | None = Field(None, ge=1, le=8)
    audio_rate: int | None = None
    audio_cbr: bool | None = None
    audio_tracks: AudioTracks = AudioTracks.MERGE
    faststart: bool | None = None

    @property
    def extension(self) -> str:
        """The output file's extension, e.g. ".mp4"."""
        return "." + self.container.value

    @property
    def video_made(self) -> str | None:
        """The codec the output's video has, as the output check names it ("h264", "hevc")."""
        return CODEC_MADE[self.video_codec] if self.video_codec is not None else None

    @property
    def audio_made(self) -> str:
        """The codec the output's audio has, as the output check names it ("aac", "mp3")."""
        return CODEC_MADE[self.audio_codec]

    @model_validator(mode="before")
    @classmethod
    def _media_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        filled = {**_MEDIA_DEFAULTS.get(str(data.get("media")), {}), **data}
        if filled.get("media") == "video" and "profile" not in data:
            codec = filled.get("video_codec")
            filled["profile"] = _DEFAULT_PROFILE.get(codec) if codec in set(VideoCodec) else None
        return filled

    @model_validator(mode="after")
    def _consistent(self) -> Preset:
        if self.media is MediaType.VIDEO:
            self._check_video()
        else:
            self._check_audio()
        if (self.maxrate is None) != (self.bufsize is None):
            raise _fail("bufsize" if self.bufsize is None else "maxrate",
                        "maxrate and bufsize go together: set both or neither")
        self._check_checkable()
        return self

    def _check_checkable(self) -> None:
        """Refuse a preset whose output the output check could never accept."""
        for field, kind in (("video_codec", VideoCodec), ("audio_codec", AudioCodec)):
            codec = getattr(self, field)
            if codec is not None and codec not in CODEC_MADE:
                known = ", ".join(c.value for c in CODEC_MADE if isinstance(c, kind))
                raise _fail(field, f"{codec.value!r} has no output check in this mpr, so no "
                                   f"output could pass it: use {known}")

    def _check_video(self) -> None:
        if self.container is not OutputContainer.MP4:
            raise _fail("container", f"a video preset makes mp4, not {self.container.value!r}")
        for field in ("max_width", "max_height"):
            if getattr(self, field) is None:
                raise _fail(field, "required for a video preset")
        assert self.video_codec is not None and self.pix_fmt is not None
        profiles = PROFILES[self.video_codec]
        if self.profile not in profiles:
            raise _fail("profile", f"{self.profile!r} is not one of {', '.join(profiles)} "
                                   f"(the profiles of {self.video_codec.value})")
        if profiles[self.profile] != _DEPTH[self.pix_fmt]:
            raise _fail("pix_fmt", f"{self.pix_fmt.value!r} does not match profile "
                                   f"{self.profile!r} ({profiles[self.profile]}-bit)")
        if self.audio_codec is not AudioCodec.AAC:
            raise _fail("audio_codec", f"an mp4 preset uses aac, not {self.audio_codec.value!r}")
        if self.audio_cbr is not None:
            raise _fail("audio_cbr", "only for libmp3lame (mp3) presets")
        self._check_rate(AAC_RATES)

    def _check_audio(self) -> None:
        if self.container is not OutputContainer.MP3:
            raise _fail("container", f"an audio preset makes mp3, not {self.container.value!r}")
        for field in _VIDEO_FIELDS:
            if getattr(self, field) is not None:
                raise _fail(field, "only for video presets (this one has media = \"audio\")")
        if self.audio_codec is not AudioCodec.LIBMP3LAME:
            raise _fail("audio_codec", f"an mp3 preset uses libmp3lame, "
                                       f"not {self.audio_codec.value!r}")
        if self.audio_channels is not None and self.audio_channels > 2:
            raise _fail("audio_channels", "mp3 has at most 2 channels")
        self._check_rate(MP3_RATES)

    def _check_rate(self, allowed: tuple[int, ...]) -> None:
        if self.audio_rate is not None and self.audio_rate not in allowed:
            raise _fail("audio_rate", f"{self.audio_rate} is not one of "
                                      f"{', '.join(map(str, allowed))} "
                                      f"(the rates of {self.audio_codec.value})")


@dataclass(frozen=True)
class PresetBook:
    """The presets of one run: built-ins plus the user's, and a default per media type."""

    presets: Mapping[str, Preset]
    defaults: Mapping[MediaType, str]
    origins: Mapping[str, PresetOrigin]
    source: str = BUILTIN

    def names(self) -> tuple[str, ...]:
        """Preset names: built-ins in file order, then the user's additions."""
        return tuple(self.presets)

    def get(self, name: str) -> Preset:
        try:
            return self.presets[name]
        except KeyError:
            raise ConfigError(
                f"unknown preset {name!r}: choose one of {', '.join(self.names())}",
                hint="`mpr presets list` shows them; add your own with MPR_PRESETS",
            ) from None

    def default_for(self, media_type: MediaType) -> Preset:
        return self.presets[self.defaults[media_type]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"source", "defaults": {media: name}, "presets": [{...fields, origin}]}."""
        return {
            "source": self.source,
            "defaults": {media.value: name for media, name in self.defaults.items()},
            "presets": [
                {**preset.model_dump(mode="json", exclude_none=True),
                 "extension": preset.extension, "origin": self.origins[name].value}
                for name, preset in self.presets.items()
            ],
        }


class _Bad(tomlfiles.BadField):
    """One wrong field: turned into a ConfigError naming the file."""


def load_presets(path: Path | None = None) -> PresetBook:
    """The built-in presets, plus those in `path` (a user presets file) when given."""
    presets, defaults = _parse(_read_builtin(), BUILTIN)
    origins = dict.fromkeys(presets, PresetOrigin.BUILTIN)
    source = BUILTIN
    if path is not None:
        source = str(path)
        user_presets, user_defaults = _parse(_read_user(path), source)
        for name in user_presets:
            replaces = origins.get(name) is PresetOrigin.BUILTIN
            origins[name] = PresetOrigin.REPLACES_BUILTIN if replaces else PresetOrigin.USER
        presets.update(user_presets)
        defaults.update(user_defaults)
    with _reported(source):
        _check_defaults(presets, defaults)
    return PresetBook(
        presets=MappingProxyType(presets),
        defaults=MappingProxyType({MediaType(m): n for m, n in defaults.items()}),
        origins=MappingProxyType(origins),
        source=source,
    )


def _read_builtin() -> str:
    return resources.files("mpr_cli.ffmpeg").joinpath("presets.toml").read_text(encoding="utf-8")


def _read_user(path: Path) -> str:
    return tomlfiles.read_text(path, "presets", missing_hint="check MPR_PRESETS")


def _reported(source: str) -> AbstractContextManager[None]:
    """A _Bad or a TOML error raised inside becomes a ConfigError naming the file."""
    return tomlfiles.reported("presets", source,
                              hint="fix the presets file (see the shipped presets.toml)")


def _parse(text: str, source: str) -> tuple[dict[str, Preset], dict[str, str]]:
    with _reported(source):
        return _parse_document(text)


def _parse_document(text: str) -> tuple[dict[str, Preset], dict[str, str]]:
    data = tomlfiles.parse(text)
    for key in data:
        if key not in _TOP_KEYS:
            raise _Bad(f"{key}: unknown key (expected one of {', '.join(_TOP_KEYS)})")
    version = data.get("version", 1)
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise _Bad(f"version: unsupported version {version!r} (this mpr understands 1)")
    defaults = _table(data, "defaults")
    for key, value in defaults.items():
        if key not in set(MediaType) or not isinstance(value, str):
            raise _Bad(f"defaults.{key}: expected video = \"NAME\" or audio = \"NAME\"")
    presets = {name: _preset(name, table) for name, table in _table(data, "presets").items()}
    return presets, dict(defaults)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _Bad(f"{key}: must be a table ([{key}])")
    return value


def _preset(name: str, table: Any) -> Preset:
    where = f"preset {name!r}"
    if not isinstance(table, dict):
        raise _Bad(f"{where}: must be a table ([presets.{name}])")
    if not set(name) <= _NAME_CHARS or not name[:1].isalnum():
        raise _Bad(f"{where}: name: use lower-case letters, digits, '.', '_' and '-' "
                   "(starting with a letter or digit)")
    if "name" in table:
        raise _Bad(f"{where}: name: comes from the table name [presets.NAME]; remove it")
    try:
        return Preset(name=name, **table)
    except ValidationError as exc:
        raise _Bad(f"{where}: {_describe(exc.errors()[0])}") from None


def _describe(error: Any) -> str:
    """One pydantic error as "field: reason"."""
    if error["type"] == "preset_field":
        return f"{error['ctx']['field']}: {error['ctx']['reason']}"
    field = str(error["loc"][0]) if error["loc"] else "preset"
    value = error.get("input")
    if error["type"] == "enum":
        return f"{field}: {value!r} is not one of {', '.join(_choices(field))}"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field{_did_you_mean(field)}"
    if error["type"] == "missing":
        return f"{field}: required"
    if error["type"] in ("bitrate", "even"):
        return f"{field}: {error['msg']}"
    return f"{field}: {error['msg'][:1].lower()}{error['msg'][1:]} (got {value!r})"


def _choices(field: str) -> list[str]:
    annotation = Preset.model_fields[field].annotation
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, StrEnum):
            return [member.value for member in candidate]
    return []


def _did_you_mean(field: str) -> str:
    fields = [f for f in Preset.model_fields if f != "name"]
    close = difflib.get_close_matches(field, fields, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of {', '.join(fields)})"


def _check_defaults(presets: dict[str, Preset], defaults: dict[str, str]) -> None:
    for media in MediaType:
        name = defaults.get(media.value)
        field = f"defaults.{media.value}"
        if name is None:
            raise _Bad(f"{field}: missing")
        if name not in presets:
            raise _Bad(f"{field}: unknown preset {name!r} (choose one of {', '.join(presets)})")
        if presets[name].media is not media:
            raise _Bad(f"{field}: preset {name!r} is for {presets[name].media.value}, "
                       f"not {media.value}")
