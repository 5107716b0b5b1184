"""The new files of a run, put aside on disk and read back one asset at a time.

Phase 3 checks an asset with all its files together, and an asset's files need not be next to
each other in the listing: a master under BRD/ and its checksum under FILE/2019/ are listed far
apart. Holding every new file until the listing ends would cost memory in proportion to the
bucket (0.8 KiB a key: 8 GiB for ten million keys), so each new file goes to an SQLite file in
a private temporary folder (MPR_TEMP_DIR, else the system's) as the listing goes by, and comes
back grouped by inventory code, in code order: one asset's files at a time, whatever folders
they lie in. Only key, size and ETag are stored; the rest of a Candidate is the key's
classification, done again on the way out (pure and cheap).

SQLite is Python's own (no server); its page cache is capped (8 MiB), so the memory of
a spill does not grow with the files it holds. The file is removed on `close`.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path

from mpr_cli.errors import ConfigError
from mpr_cli.fixity.reading import in_pages
from mpr_cli.rules import Rules
from mpr_cli.validation.inventory import Candidate, classify_key

FLUSH_EVERY = 5000  # files written to the spill at once


class AssetSpill:
    """New candidate files, written as they are found; read back grouped by asset."""

    def __init__(self, rules: Rules, temp_dir: Path | None = None) -> None:
        self.rules = rules
        try:
            if temp_dir is not None:
                temp_dir.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="mpr-spill-", dir=temp_dir))
        except OSError as exc:
            where = temp_dir or tempfile.gettempdir()
            raise ConfigError(f"cannot make a temporary folder in {where} ({exc.strerror})",
                              hint="set MPR_TEMP_DIR to a writable folder") from exc
        self.db = sqlite3.connect(self.folder / "new-files.sqlite3", check_same_thread=False)
        self.db.executescript("""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            PRAGMA cache_size = -8192; PRAGMA temp_store = FILE;
            CREATE TABLE new_files (code TEXT NOT NULL, key TEXT NOT NULL PRIMARY KEY,
                                    size INTEGER NOT NULL, etag TEXT NOT NULL);""")
        self.waiting: list[tuple[str, str, int, str]] = []
        self.count = 0

    def add(self, candidate: Candidate) -> None:
        self.waiting.append((candidate.inventory_code, candidate.key, candidate.size,
                             candidate.etag))
        self.count += 1
        if len(self.waiting) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.waiting:
            self.db.executemany("INSERT OR IGNORE INTO new_files VALUES (?, ?, ?, ?)",
                                self.waiting)
            self.waiting.clear()

    def assets(self) -> int:
        """How many assets (inventory codes) the spilled files belong to."""
        self.flush()
        return int(self.db.execute("SELECT count(DISTINCT code) FROM new_files").fetchone()[0])

    def groups(self) -> Iterator[tuple[str, list[Candidate]]]:
        """Each inventory code with its new files (key order), in code order."""
        self.flush()
        rows = self.db.execute("SELECT code, key, size, etag FROM new_files ORDER BY code, key")
        for code, files in groupby(rows, key=lambda row: str(row[0])):
            found = [classify_key(key, size, etag, self.rules) for _, key, size, etag in files]
            yield code, [c for c in found if isinstance(c, Candidate)]

    def etags(self, keys: Iterable[str]) -> dict[str, str]:
        """The listed ETag of each of these keys that was spilled."""
        self.flush()
        found: dict[str, str] = {}
        for chunk in in_pages(iter(sorted(set(keys))), 1000):
            found.update(self.db.execute(
                "SELECT key, etag FROM new_files WHERE key IN (SELECT value FROM json_each(?))",
                (json.dumps(chunk),)).fetchall())
        return found

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> AssetSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
