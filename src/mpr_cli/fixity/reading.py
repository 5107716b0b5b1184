"""Streaming an object through MD5 with the download and the digest overlapped.

A reader thread pulls the object's chunks from S3 while the caller's thread hashes them:
both release the GIL (socket reads, hashlib on large buffers), so on two cores the pass runs
at the speed of the slower of the two instead of their sum (bench/bench_fixity.py measures
it). Memory stays bounded: at most `QUEUED` chunks wait, plus one being read and one being
hashed (4 x 8 MiB by default), whatever the object's size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

QUEUED = 2
PUT_WAIT_S = 0.2
_END = object()
T = TypeVar("T")


def _put(out: queue.Queue[object], item: object, abandoned: threading.Event) -> bool:
    """Put `item` unless the consumer gave up first (then False)."""
    while not abandoned.is_set():
        try:
            out.put(item, timeout=PUT_WAIT_S)
            return True
        except queue.Full:
            continue
    return False


def _pump(chunks: Iterator[object], out: queue.Queue[object], abandoned: threading.Event) -> None:
    """Move chunks into `out` until the end (then `_END`), an error (then the exception), or
    the consumer gives up; closes the source in this, its own thread."""
    try:
        for chunk in chunks:
            if not _put(out, chunk, abandoned):
                return
        _put(out, _END, abandoned)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
        _put(out, exc, abandoned)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def prefetch(items: Iterator[T], depth: int = QUEUED) -> Generator[T, None, None]:
    """`items` as they come, pulled by a thread of their own up to `depth` ahead (a listing's
    pages parsed while the caller writes to the catalogue, or an object's chunks read while
    the caller hashes); an exception of the source is raised here, and the source is closed
    in its thread when the caller stops early."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    abandoned = threading.Event()
    reader = threading.Thread(target=_pump, args=(items, waiting, abandoned), daemon=True,
                              name="fixity-prefetch")
    reader.start()
    try:
        while (item := waiting.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        abandoned.set()
        reader.join()


def in_pages(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter): one hand-over per list."""
    page: list[T] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def md5_of_chunks(chunks: Iterator[bytes]) -> tuple[str, int]:
    """Hex MD5 and byte count of `chunks`, read in a thread of their own (`prefetch`)."""
    digest, size = hashlib.md5(usedforsecurity=False), 0
    for chunk in prefetch(chunks):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
