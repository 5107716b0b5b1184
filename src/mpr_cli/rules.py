"""The archive's rules as data: code pattern, roles by extension, carrier folders, exclusions.

The rules live in `rules.toml` (shipped with the package, documented there). `load_rules`
reads it, or a replacement file, and checks every field: a mistake raises `ConfigError`
naming the file and the field, e.g.
"rules file x.toml: folders.BRD: unknown media type 'vidoe' (expected audio, video)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mpr_cli import tomlfiles

SUPPORTED_VERSIONS = (1,)
BUILTIN = "built-in rules.toml"
_TOP_KEYS = ("version", "exclude_prefixes", "inventory", "media_types", "extensions", "folders")
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


class _Bad(tomlfiles.BadField):
    """One wrong field: turned into a ConfigError naming the file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def load_rules(path: Path | None = None, exclude_prefixes: tuple[str, ...] | None = None) -> Rules:
    """Load the shipped rules or `path`; `exclude_prefixes` (when not None) replaces the file's."""
    path = None if path is None else Path(path)
    source = BUILTIN if path is None else str(path)
    with tomlfiles.reported("rules", source,
                            hint="fix the rules file (see the shipped rules.toml)"):
        rules = _rules_from(tomlfiles.parse(_read_text(path)), source)
    if exclude_prefixes is not None:
        rules = _with_excludes(rules, exclude_prefixes)
    return rules


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
    return Rules(
        version=version,
        code_pattern=pattern,
        code_length=length,
        code_example=example,
        media_types=MappingProxyType(media_types),
        extensions=MappingProxyType(_extensions(_table(data, "extensions"))),
        folders=MappingProxyType(_folders(_table(data, "folders"))),
        exclude_prefixes=_prefixes(data.get("exclude_prefixes"), "exclude_prefixes"),
        source=source,
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
