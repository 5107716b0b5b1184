"""Phase 1 on one key: is it excluded, rejected (with a Problem) or a Candidate file?

Pure and cheap: it runs on every key of a listing (20,000+), so it does string slicing and at
most two precompiled regex matches per key, and allocates only its result.

Checks, in order (the first failure wins):
  excluded prefix  -> None (counted as excluded)
  folder marker    -> None (a key ending in "/" is not a file)
  hostile key      -> INVALID_KEY (".." / "." / empty segments, backslashes, control characters)
  extension        -> UNSUPPORTED_EXTENSION (no extension, or not in the rules)
  carrier folder   -> UNKNOWN_FOLDER (at the bucket root, or a folder the rules do not know)
  inventory code   -> INVALID_INVENTORY_CODE
  folder vs type   -> PREFIX_TYPE_MISMATCH (e.g. an audio code under BRD/)
  extension vs type-> UNSUPPORTED_EXTENSION (e.g. ".mov" for an audio code)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mpr_cli.problems import Problem, Reason
from mpr_cli.rules import MediaType, Role, Rules

# Control characters (C0, DEL, C1, line/paragraph separators), backslashes, a leading "/",
# empty segments and "." / ".." segments.
_HOSTILE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]|^/|//|(?:^|/)\.{1,2}(?:/|$)")
_SEPARATORS = "._"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A key that passed phase 1."""

    key: str
    size: int
    etag: str
    inventory_code: str
    media_type: MediaType
    role: Role
    folder: str
    name: str  # base name
    extension: str  # lower case, e.g. ".mov"
    describes: str | None  # sidecars: base name of the covered file; None = the asset/master


def describes_of(name: str, extension: str) -> str | None:
    """What a .json/.md5 sidecar covers: "X.mov.md5" -> "X.mov"; "X.md5", "X_a.json" -> None."""
    stem = name[: len(name) - len(extension)]
    return stem if "." in stem else None


def classify_key(key: str, size: int, etag: str, rules: Rules) -> Candidate | Problem | None:
    """Classify one listed key: a Candidate, a phase-1 Problem, or None when excluded."""
    if key.startswith(rules.exclude_prefixes) or key.endswith("/"):
        return None
    if _HOSTILE.search(key):
        return _problem(Reason.INVALID_KEY, key, _hostile_message(key))
    slash = key.rfind("/")
    name = key[slash + 1 :]
    dot = name.rfind(".")
    extension = name[dot:].lower() if dot > 0 else ""
    spec = rules.extensions.get(extension)
    if spec is None:
        return _bad_extension(key, name, extension, rules)
    folder = key[: key.find("/")] if slash >= 0 else ""
    allowed = rules.folders.get(folder)
    if allowed is None:
        return _unknown_folder(key, name, folder, rules)
    length = rules.code_length
    code = name[:length]
    media_type = rules.media_types.get(code[:1])
    if (
        media_type is None
        or len(name) <= length
        or name[length] not in _SEPARATORS
        or not rules.is_code(code)
    ):
        return _problem(Reason.INVALID_INVENTORY_CODE, key, invalid_code_message(name, rules))
    if media_type not in allowed:
        return _type_mismatch(key, code, media_type, folder, allowed)
    role, ext_types = spec
    if media_type not in ext_types:
        return _extension_type_mismatch(key, code, media_type, extension, ext_types)
    describes = describes_of(name, extension) if role in _DESCRIBING else None
    return Candidate(key, size, etag, code, media_type, role, folder, name, extension, describes)


_DESCRIBING = frozenset({Role.METADATA, Role.CHECKSUM})


def code_of(name: str, rules: Rules) -> str | None:
    """The valid inventory code a base name starts with, or None."""
    length = rules.code_length
    code = name[:length]
    if (
        len(name) > length
        and name[length] in _SEPARATORS
        and code[:1] in rules.media_types
        and rules.is_code(code)
    ):
        return code
    return None


def invalid_code_message(name: str, rules: Rules) -> str:
    """Why a base name does not start with a valid code, and what to do."""
    cut = min((i for i in (name.find("."), name.find("_")) if i >= 0), default=len(name))
    shown = name[:cut]
    example = rules.code_example
    if len(shown) != rules.code_length:
        return (
            f"inventory code {shown!r} is not {rules.code_length} characters like {example}: "
            "rename the file"
        )
    hint = " (codes are upper case)" if rules.code_pattern.fullmatch(shown.upper()) else ""
    return (
        f"inventory code {shown!r} does not match {rules.code_pattern.pattern} "
        f"like {example}{hint}: rename the file"
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _problem(reason: Reason, key: str, message: str, code: str | None = None) -> Problem:
    return Problem.make(reason, key, message, inventory_code=code)


def _hostile_message(key: str) -> str:
    if "\\" in key:
        what = "a backslash"
    elif re.search(r"(?:^|/)\.{1,2}(?:/|$)", key):
        what = "a '.' or '..' path segment"
    elif key.startswith("/") or "//" in key:
        what = "an empty path segment"
    else:
        what = "a control character"
    return f"key {key!r} contains {what}: rename the object in the bucket"


def _bad_extension(key: str, name: str, extension: str, rules: Rules) -> Problem:
    known = " ".join(rules.extensions)
    what = f"extension {extension!r} is" if extension else "a name without an extension is"
    message = f"{what} not supported (supported: {known}): rename or remove the file"
    return _problem(Reason.UNSUPPORTED_EXTENSION, key, message, code_of(name, rules))


def _unknown_folder(key: str, name: str, folder: str, rules: Rules) -> Problem:
    known = ", ".join(rules.folders)
    if not folder:
        message = f"file is at the bucket root: move it into a carrier folder ({known})"
    else:
        near = [f for f in rules.folders if f.lower() == folder.lower()]
        hint = f" (did you mean {near[0]}/?)" if near else ""
        message = f"folder {folder!r} is not a carrier folder{hint}: move the file into {known}"
    return _problem(Reason.UNKNOWN_FOLDER, key, message, code_of(name, rules))


def _type_mismatch(
    key: str, code: str, media_type: MediaType, folder: str, allowed: frozenset[MediaType]
) -> Problem:
    holds = " and ".join(sorted(allowed))
    message = (
        f"{code} is {_article(media_type)} {media_type} asset but {folder}/ holds {holds} only: "
        "move the file or fix its inventory code"
    )
    return _problem(Reason.PREFIX_TYPE_MISMATCH, key, message, code)


def _extension_type_mismatch(
    key: str, code: str, media_type: MediaType, extension: str, allowed: frozenset[MediaType]
) -> Problem:
    kinds = " and ".join(sorted(allowed))
    message = (
        f"{extension} files are for {kinds} assets but {code} is {_article(media_type)} "
        f"{media_type} asset: fix the inventory code or convert the file"
    )
    return _problem(Reason.UNSUPPORTED_EXTENSION, key, message, code)
