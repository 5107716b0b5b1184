"""Files written whole or not at all: the reports, the metrics file, downloads, sample media.

Everything is written to a hidden partial file beside the target (same folder, so the same
file system) and moved over the target with `os.replace` only once complete: a reader sees the
old file or the new one, never half of one, and a process killed mid-write leaves at most a
partial file whose name starts with a dot, never a truncated target. The partial name is new
for every write (made with O_EXCL), so two writers of one target never share it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_NAME_PREFIX = 100  # characters of the target's name kept in the partial's (names <= 255)


@contextmanager
def replacing(path: Path, *, suffix: str = ".part",
              permissions: int | None = None) -> Iterator[tuple[Path, BinaryIO]]:
    """(the partial file's path, the partial file open for writing bytes); when the block ends
    cleanly the partial is closed and moved over `path`, when it raises the partial is removed.

    The file gets exactly `permissions` when given (0o600 keeps a download private), else
    those of any new file (0o666 less the umask, as `open` gives). OSError when the partial
    cannot be made, written or moved."""
    partial = path.with_name(f".{path.name[:_NAME_PREFIX]}.{secrets.token_hex(4)}{suffix}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o666 if permissions is None else permissions)
    try:
        if permissions is not None:
            os.fchmod(fd, permissions)
        with os.fdopen(fd, "wb") as out:
            yield partial, out
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes, *, permissions: int | None = None,
                 suffix: str = ".tmp") -> None:
    """Write `data` (text as UTF-8) to `path` atomically: the whole of it or nothing."""
    with replacing(path, suffix=suffix, permissions=permissions) as (_, out):
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
