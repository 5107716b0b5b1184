"""The skeleton every TOML data file of mpr shares (rules.toml, presets.toml and the user's
replacements): read it, parse it, and turn whatever is wrong into one ConfigError that names the
file, "<kind> file <source>: <what is wrong>".

The module reading a file says what its fields mean: it raises `BadField` for a wrong one inside
`reported`, which names the file around it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mpr_cli.errors import ConfigError


class BadField(Exception):
    """One wrong field of a data file; its text says which and why."""


def read_text(path: Path, kind: str, *, missing_hint: str) -> str:
    """The text of a user's data file; ConfigError when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{kind} file {path}: not found", hint=missing_hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{kind} file {path}: cannot be read: {exc}") from None


def parse(text: str) -> dict[str, Any]:
    """The TOML document (raises tomllib.TOMLDecodeError: call it inside `reported`)."""
    return tomllib.loads(text)


@contextmanager
def reported(kind: str, source: str, *, hint: str) -> Iterator[None]:
    """A BadField or a TOML syntax error raised inside becomes a ConfigError naming the file
    (`hint` goes with a bad field; a syntax error's message says where it is)."""
    try:
        yield
    except BadField as exc:
        raise ConfigError(f"{kind} file {source}: {exc}", hint=hint) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{kind} file {source}: not valid TOML: {exc}") from None
