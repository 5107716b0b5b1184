"""The archive's rules as data: code pattern, roles and formats by extension, carrier
folders, exclusions.

The rules live in `rules.toml` (shipped with the package, documented there); profiles shipped
beside it (`profiles/<name>.toml`, e.g. "extended") are chosen by name. `load_rules` reads one,
or a replacement file, and checks every field: a mistake raises `ConfigError` naming the file
and the field, e.g.
"rules file x.toml: folders.BRD: unknown media type 'vidoe' (expected audio, video)".

Each extension has a role and media types (`[extensions]`, all phase 1 needs) and a `Format`
(`[formats]`: its MIME type; for masters and streaming copies the container family; for
streaming copies the codecs allowed), which phase 3's container rules and MIME types read.
An extension a file leaves out of `[formats]` keeps the shipped rules' format for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mpr_cli import tomlfiles

SUPPORTED_VERSIONS = (1,)
BUILTIN = "built-in rules.toml"
PROFILES = "profiles"  # the package folder of shipped profiles: profiles/<name>.toml
_TOP_KEYS = ("version", "exclude_prefixes", "inventory", "media_types", "extensions", "formats",
             "folders")
_INVENTORY_KEYS = ("code_pattern", "code_length", "code_example")


class MediaType(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class Role(StrEnum):
    MASTER = "master"
    STREAMING = "streaming"
    METADATA = "metadata"
    CHECKSUM = "checksum"
    QC_REPORT = "qc_report"


MEDIA_ROLES = frozenset({Role.MASTER, Role.STREAMING})


class Container(StrEnum):
    """The container families mpr recognises in mediainfo and ffprobe output
    (validation/sidecars.py maps each tool's names to these)."""

    QUICKTIME = "QuickTime"
    MATROSKA = "Matroska"  # WebM is Matroska too
    MXF = "MXF"
    WAVE = "Wave"
    FLAC = "FLAC"
    MPEG4 = "MPEG-4"  # ISO base media: .mp4, .m4v, .m4a
    MPEG_AUDIO = "MPEG Audio"
    AVI = "AVI"
    OGG = "Ogg"
    ADTS = "ADTS"  # raw AAC (.aac)
    FLV = "FLV"
    ASF = "ASF"  # Windows Media (.wmv, .wma)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Format:
    """What a file with one extension is: its role, the media types of its assets, its MIME
    type; for a master or streaming copy its container family; for a streaming copy the
    codecs its streams may have (ffprobe names: an empty tuple means no stream of that kind,
    a non-empty one at least one stream, every one of them listed)."""

    extension: str
    role: Role
    media: frozenset[MediaType]
    mime: str
    container: Container | None = None
    video_codecs: tuple[str, ...] = ()
    audio_codecs: tuple[str, ...] = ()
    expect: str | None = None  # what it must be, in words (default: from the fields)

    def expected(self) -> str:
        """What a streaming copy must be, for messages: "MPEG-4 with H.264 video and AAC
        audio" (the rules' `expect` when they give one)."""
        if self.expect:
            return self.expect
        video = f"{_codec_names(self.video_codecs)} video" if self.video_codecs else ""
        audio = f"{_codec_names(self.audio_codecs)} audio" if self.audio_codecs else ""
        missing = "no video" if not video else "no audio" if not audio else ""
        return f"{self.container} with {' and '.join(p for p in (video, audio, missing) if p)}"

    def brief(self) -> str:
        """The short form: "MPEG-4 with H.264 and AAC"."""
        codecs = [_codec_names(c) for c in (self.video_codecs, self.audio_codecs) if c]
        return f"{self.container} with {' and '.join(codecs)}"


# How messages name codecs (ffprobe's names otherwise)
CODEC_NAMES = {"h264": "H.264", "hevc": "HEVC", "aac": "AAC", "mp3": "MP3", "vp8": "VP8",
               "vp9": "VP9", "av1": "AV1", "opus": "Opus", "vorbis": "Vorbis", "flac": "FLAC",
               "wmv2": "WMV2", "wmv3": "WMV3", "vc1": "VC-1", "wmav2": "WMA", "flv1": "FLV1"}


def _codec_names(codecs: tuple[str, ...]) -> str:
    return "/".join(CODEC_NAMES.get(c, c) for c in codecs)


# What the catalogue accepts as an inventory code, whatever the rules file says (the schema's
# CHECK on assets.inventory_code and transcode_jobs.inventory_code, sql/005): any code the rules
# accept can be inserted.
MAX_CODE_LENGTH = 64
CODE_CHARS = re.compile(r"[!-.0-~]{1,64}", re.ASCII)  # printable ASCII without space and '/'


@dataclass(frozen=True)
class Rules:
    """The effective rules of one run. Mappings are read-only."""

    version: int
    code_pattern: re.Pattern[str]
    code_length: int
    code_example: str
    media_types: Mapping[str, MediaType]  # first letter of a code -> media type
    extensions: Mapping[str, tuple[Role, frozenset[MediaType]]]  # ".mov" -> (MASTER, {VIDEO})
    folders: Mapping[str, frozenset[MediaType]]
    exclude_prefixes: tuple[str, ...]
    source: str = BUILTIN
    formats: Mapping[str, Format] = field(  # ".mov" -> its Format
        default_factory=lambda: MappingProxyType({}))

    def is_code(self, code: str) -> bool:
        """Is `code` a valid inventory code: the pattern in full, the length, and only the
        printable ASCII characters the catalogue stores (CODE_CHARS)?"""
        return (len(code) == self.code_length and CODE_CHARS.fullmatch(code) is not None
                and self.code_pattern.fullmatch(code) is not None)

    def media_type_of(self, code: str) -> MediaType:
        """The media type of a valid inventory code (KeyError for an unknown first letter)."""
        return self.media_types[code[:1]]

    def role_of(self, extension: str) -> Role | None:
        spec = self.extensions.get(extension.lower())
        return spec[0] if spec else None

    def format_of(self, extension: str, role: Role | None = None) -> Format | None:
        """The Format of an extension (any case), None when unknown or not of `role`."""
        found = self.formats.get(extension.lower())
        return found if found is not None and role in (None, found.role) else None

    def extensions_of(self, role: Role) -> tuple[str, ...]:
        """The extensions with `role`, sorted: (".avi", ".flac", ...)."""
        return tuple(sorted(ext for ext, spec in self.extensions.items() if spec[0] is role))

    def is_master_name(self, name: str) -> bool:
        """Does a file name end in a master extension?"""
        extension = "." + name.rsplit(".", 1)[-1]
        return "." in name and self.format_of(extension, Role.MASTER) is not None


@cache
def default_rules() -> Rules:
    """The shipped rules.toml, read once (what the pure checks use when given no rules)."""
    return load_rules()


class _Bad(tomlfiles.BadField):
    """One wrong field: turned into a ConfigError naming the file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def load_rules(path: Path | str | None = None,
               exclude_prefixes: tuple[str, ...] | None = None) -> Rules:
    """Load the shipped rules, a shipped profile by name (`profile_names()`, e.g.
    "extended", when no file of that name exists) or the file `path`; `exclude_prefixes`
    (when not None) replaces the file's."""
    profile = _profile(path)
    path = None if path is None or profile else Path(path)
    source = (BUILTIN if path is None and not profile
              else f"shipped profile {profile} ({PROFILES}/{profile}.toml)" if profile
              else str(path))
    text = _profile_text(profile) if profile else _read_text(path)
    with tomlfiles.reported("rules", source,
                            hint="fix the rules file (see the shipped rules.toml)"):
        rules = _rules_from(tomlfiles.parse(text), source)
    if exclude_prefixes is not None:
        rules = _with_excludes(rules, exclude_prefixes)
    return rules


def profile_names() -> tuple[str, ...]:
    """The profiles shipped beside rules.toml ("extended", ...)."""
    folder = resources.files("mpr_cli").joinpath(PROFILES)
    return tuple(sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir()
                        if entry.name.endswith(".toml")))


def _profile(path: Path | str | None) -> str | None:
    """The profile `path` names: a bare name (no folder, no suffix) of a shipped profile
    with no file of that name in the working directory."""
    if path is None:
        return None
    text = str(path)
    if "/" in text or "." in text or Path(text).exists() or text not in profile_names():
        return None
    return text


def _profile_text(name: str) -> str:
    return resources.files("mpr_cli").joinpath(PROFILES, f"{name}.toml").read_text(
        encoding="utf-8")


def _read_text(path: Path | None) -> str:
    if path is None:
        return resources.files("mpr_cli").joinpath("rules.toml").read_text(encoding="utf-8")
    return tomlfiles.read_text(path, "rules", missing_hint="check --rules or MPR_RULES")


def _with_excludes(rules: Rules, prefixes: tuple[str, ...]) -> Rules:
    """The settings' exclusions replace the file's; an empty tuple means exclude nothing."""
    return replace(rules, exclude_prefixes=tuple(p for p in prefixes if p))


def _rules_from(data: dict[str, Any], source: str) -> Rules:
    _known_keys(data, _TOP_KEYS, "")
    version = _version(data.get("version"))
    inventory = _table(data, "inventory")
    _known_keys(inventory, _INVENTORY_KEYS, "inventory.")
    pattern = _pattern(inventory.get("code_pattern"))
    length = _positive_int(inventory.get("code_length"), "inventory.code_length")
    if length > MAX_CODE_LENGTH:
        raise _Bad("inventory.code_length", f"must be at most {MAX_CODE_LENGTH} (the catalogue "
                   f"stores codes of 1 to {MAX_CODE_LENGTH} characters), not {length}")
    media_types = _media_types(_table(data, "media_types"))
    example = _example(inventory.get("code_example"), pattern, length, media_types)
    extensions = _extensions(_table(data, "extensions"))
    formats = _formats(data.get("formats", {}), extensions, builtin=source == BUILTIN)
    return Rules(
        version=version,
        code_pattern=pattern,
        code_length=length,
        code_example=example,
        media_types=MappingProxyType(media_types),
        extensions=MappingProxyType(extensions),
        folders=MappingProxyType(_folders(_table(data, "folders"))),
        exclude_prefixes=_prefixes(data.get("exclude_prefixes"), "exclude_prefixes"),
        source=source,
        formats=MappingProxyType(formats),
    )


def _known_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise _Bad(f"{where}{key}", f"unknown key (expected one of {', '.join(known)})")


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        raise _Bad(name, "missing table")
    if not isinstance(value, dict) or not value:
        raise _Bad(name, "must be a non-empty table")
    return value


def _version(value: Any) -> int:
    if value is None:
        raise _Bad("version", "missing (this mpr understands version = 1)")
    if type(value) is not int or value not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise _Bad("version", f"unsupported version {value!r} (this mpr understands {supported})")
    return value


def _positive_int(value: Any, field: str) -> int:
    if type(value) is not int or value < 1:
        raise _Bad(field, f"must be a positive integer, not {value!r}")
    return value


def _pattern(value: Any) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise _Bad("inventory.code_pattern", "must be a regular expression string")
    try:  # ASCII: \d and \w must not match other scripts' digits and letters
        return re.compile(value, re.ASCII)
    except re.error as exc:
        raise _Bad("inventory.code_pattern", f"not a valid regular expression: {exc}") from None


def _media_type(value: Any, field: str) -> MediaType:
    try:
        return MediaType(value)
    except ValueError:
        expected = ", ".join(sorted(MediaType))
        raise _Bad(field, f"unknown media type {value!r} (expected {expected})") from None


def _media_set(value: Any, field: str) -> frozenset[MediaType]:
    if not isinstance(value, list) or not value:
        raise _Bad(field, "must be a non-empty list of media types, e.g. [\"video\"]")
    return frozenset(_media_type(item, field) for item in value)


def _media_types(table: dict[str, Any]) -> dict[str, MediaType]:
    result: dict[str, MediaType] = {}
    for letter, value in table.items():
        if len(letter) != 1:
            raise _Bad(f"media_types.{letter}", "keys must be single letters (the code's first)")
        result[letter] = _media_type(value, f"media_types.{letter}")
    return result


def _example(value: Any, pattern: re.Pattern[str], length: int, types: dict[str, Any]) -> str:
    field = "inventory.code_example"
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _Bad(field, f"{value!r} does not match inventory.code_pattern")
    if len(value) != length:
        raise _Bad(field, f"{value!r} is not inventory.code_length ({length}) characters long")
    if not CODE_CHARS.fullmatch(value):
        raise _Bad(field, f"{value!r} holds characters a code may not have (codes are printable "
                   "ASCII letters, digits and punctuation, without '/' or spaces)")
    if value[0] not in types:
        raise _Bad(field, f"{value!r} starts with a letter missing from [media_types]")
    return value


def _extensions(table: dict[str, Any]) -> dict[str, tuple[Role, frozenset[MediaType]]]:
    result: dict[str, tuple[Role, frozenset[MediaType]]] = {}
    for ext, spec in table.items():
        field = f"extensions.{ext}"
        if not ext.startswith(".") or len(ext) < 2 or "/" in ext or "." in ext[1:]:
            raise _Bad(field, "an extension is one dot and a suffix, e.g. \".mov\"")
        if not isinstance(spec, dict) or set(spec) != {"role", "media"}:
            raise _Bad(field, "must be { role = \"...\", media = [...] }")
        try:
            role = Role(spec["role"])
        except ValueError:
            roles = ", ".join(Role)
            why = f"unknown role {spec['role']!r} (expected {roles})"
            raise _Bad(f"{field}.role", why) from None
        result[ext.lower()] = (role, _media_set(spec["media"], f"{field}.media"))
    return result


_FORMAT_KEYS = ("mime", "container", "video_codecs", "audio_codecs", "expect")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.ASCII)
_CODEC = re.compile(r"[a-z0-9_]+", re.ASCII)


def _formats(table: Any, extensions: Mapping[str, tuple[Role, frozenset[MediaType]]], *,
             builtin: bool) -> dict[str, Format]:
    """Each extension's Format: its [formats] entry, else the shipped rules' one for it."""
    if not isinstance(table, dict):
        raise _Bad("formats", "must be a table ([formats])")
    given = {ext.lower(): spec for ext, spec in table.items()}
    for ext in given:
        if ext not in extensions:
            raise _Bad(f"formats.{ext}", "not in [extensions]: give it a role and media there")
    result: dict[str, Format] = {}
    for ext, (role, media) in extensions.items():
        spec = given.get(ext)
        if spec is None:
            result[ext] = _shipped_format(ext, role, media, builtin)
        else:
            result[ext] = _format(ext, role, media, spec)
    return result


def _shipped_format(ext: str, role: Role, media: frozenset[MediaType], builtin: bool) -> Format:
    shipped = None if builtin else default_rules().formats.get(ext)
    if shipped is None or (role in MEDIA_ROLES and shipped.container is None):
        example = 'mime = "video/webm", container = "Matroska"'
        raise _Bad(f"formats.{ext}", f"missing: a {role} extension needs its format, e.g. "
                   f"{{ {example} }} (see the shipped rules.toml)")
    keep = role is Role.STREAMING
    return Format(ext, role, media, shipped.mime,
                  shipped.container if role in MEDIA_ROLES else None,
                  shipped.video_codecs if keep else (), shipped.audio_codecs if keep else (),
                  shipped.expect if keep else None)


def _format(ext: str, role: Role, media: frozenset[MediaType], spec: Any) -> Format:
    field = f"formats.{ext}"
    if not isinstance(spec, dict):
        raise _Bad(field, 'must be { mime = "...", ... }')
    _known_keys(spec, _FORMAT_KEYS, f"{field}.")
    mime = spec.get("mime")
    if not isinstance(mime, str) or not _MIME.fullmatch(mime):
        raise _Bad(f"{field}.mime", f"must be a MIME type like \"video/webm\", not {mime!r}")
    container = _container(spec.get("container"), role, f"{field}.container")
    streaming = role is Role.STREAMING
    for key in ("video_codecs", "audio_codecs", "expect"):
        if not streaming and key in spec:
            raise _Bad(f"{field}.{key}", f"only streaming copies have one (this is a {role})")
    video = _codecs(spec.get("video_codecs"), f"{field}.video_codecs") if streaming else ()
    audio = _codecs(spec.get("audio_codecs"), f"{field}.audio_codecs") if streaming else ()
    if streaming and not (video or audio):
        raise _Bad(field, "a streaming copy needs video_codecs or audio_codecs (or both)")
    expect = spec.get("expect")
    if expect is not None and (not isinstance(expect, str) or not expect.strip()):
        raise _Bad(f"{field}.expect", "must be a non-empty string")
    return Format(ext, role, media, mime, container, video, audio, expect)


def _container(value: Any, role: Role, field: str) -> Container | None:
    if role not in MEDIA_ROLES:
        if value is not None:
            raise _Bad(field, f"only masters and streaming copies have one (this is a {role})")
        return None
    known = ", ".join(c for c in Container if c is not Container.OTHER)
    if value is None:
        raise _Bad(field, f"missing: a {role} needs its container family ({known})")
    try:
        container = Container(value)
    except ValueError:
        container = Container.OTHER
    if container is Container.OTHER:
        raise _Bad(field, f"unknown container {value!r} (expected {known})")
    return container


def _codecs(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        raise _Bad(field, "missing: list the codecs allowed ([] for none), e.g. [\"h264\"]")
    if not isinstance(value, list) or not all(isinstance(c, str) and _CODEC.fullmatch(c)
                                              for c in value):
        raise _Bad(field, "must be a list of ffprobe codec names (lower case), e.g. [\"vp9\"]")
    return tuple(value)


def _folders(table: dict[str, Any]) -> dict[str, frozenset[MediaType]]:
    result: dict[str, frozenset[MediaType]] = {}
    for name, media in table.items():
        if not name or "/" in name or name in (".", ".."):
            raise _Bad(f"folders.{name}", "a folder name is one path segment without '/'")
        result[name] = _media_set(media, f"folders.{name}")
    return result


def _prefixes(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise _Bad(field, "must be a list of non-empty strings")
    return tuple(value)
