"""An external merge sort: any number of rows in key order, in bounded memory.

Rows are gathered into runs of at most `run_rows`; a full run is sorted and pickled (in blocks
of `BLOCK_ROWS`) into a private temp folder under `scratch`, made only when a first run is
full: rows that fit in one run are sorted in memory and no file is written. The runs are then
merged with `heapq.merge`, at most `FAN_IN` at a time (more runs are first merged, in passes
over consecutive groups, into bigger ones), so that open files and read buffers stay bounded
whatever the row count: memory holds one run while reading, and `FAN_IN` blocks while
merging. The folder is removed when the iteration ends, is stopped, or fails. The sort is
stable: rows with equal keys keep their input order. The temp files are this process's own,
so unpickling them is safe.
"""

from __future__ import annotations

import heapq
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from mpr_cli.fixity.reading import in_pages

RUN_ROWS = 100_000
BLOCK_ROWS = 256
FAN_IN = 64
T = TypeVar("T")


def sorted_rows(rows: Iterable[T], key: Callable[[T], Any], *, scratch: Path,
                run_rows: int = RUN_ROWS) -> Iterator[T]:
    """`rows` in the order of `key` (see the module docstring for the memory it takes)."""
    with ExitStack() as stack:
        folder: list[Path] = []  # made on the first full run
        runs: list[Path] = []
        batch: list[T] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= run_rows:
                runs.append(_write_run(batch, key, _folder(folder, scratch, stack), len(runs)))
                batch = []
        if not runs:
            batch.sort(key=key)
            yield from batch
            return
        if batch:
            runs.append(_write_run(batch, key, folder[0], len(runs)))
            del batch
        passes = 0
        while len(runs) > FAN_IN:  # consecutive groups, in order: the sort stays stable
            passes += 1
            runs = [_merge_into_run(runs[start:start + FAN_IN], key, folder[0],
                                    f"pass-{passes}-{start:05d}")
                    for start in range(0, len(runs), FAN_IN)]
        with ExitStack() as files:
            yield from heapq.merge(*(_read_run(path, files) for path in runs), key=key)


def _folder(made: list[Path], scratch: Path, stack: ExitStack) -> Path:
    if not made:
        scratch.mkdir(parents=True, exist_ok=True)
        made.append(Path(tempfile.mkdtemp(prefix="mpr-sort-", dir=scratch)))
        stack.callback(shutil.rmtree, made[0], ignore_errors=True)
    return made[0]


def _write_run(batch: list[T], key: Callable[[T], Any], folder: Path, number: int) -> Path:
    batch.sort(key=key)
    return _write_blocks(batch, folder / f"run-{number:05d}.pickle")


def _write_blocks(rows: Iterable[T], path: Path) -> Path:
    with path.open("wb") as file:
        pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
        for block in in_pages(iter(rows), BLOCK_ROWS):
            pickler.dump(block)
            pickler.clear_memo()
    return path


def _merge_into_run(group: list[Path], key: Callable[[T], Any], folder: Path,
                    name: str) -> Path:
    with ExitStack() as files:
        merged = heapq.merge(*(_read_run(path, files) for path in group), key=key)
        path = _write_blocks(merged, folder / f"{name}.pickle")
    for done in group:
        done.unlink()
    return path


def _read_run(path: Path, files: ExitStack) -> Iterator[Any]:
    file = files.enter_context(path.open("rb", buffering=64 * 1024))
    while True:
        try:
            block = pickle.load(file)  # noqa: S301 - this process's own temp file
        except EOFError:
            return
        yield from block
