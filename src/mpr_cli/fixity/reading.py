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
from collections.abc import Iterator

QUEUED = 2
PUT_WAIT_S = 0.2
_END = object()


def _put(out: queue.Queue[object], item: object, abandoned: threading.Event) -> bool:
    """Put `item` unless the consumer gave up first (then False)."""
    while not abandoned.is_set():
        try:
            out.put(item, timeout=PUT_WAIT_S)
            return True
        except queue.Full:
            continue
    return False


def _pump(chunks: Iterator[bytes], out: queue.Queue[object], abandoned: threading.Event) -> None:
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


def md5_of_chunks(chunks: Iterator[bytes]) -> tuple[str, int]:
    """Hex MD5 and byte count of `chunks`, read in a thread of their own; an exception of the
    source is raised here."""
    digest, size = hashlib.md5(usedforsecurity=False), 0
    waiting: queue.Queue[object] = queue.Queue(maxsize=QUEUED)
    abandoned = threading.Event()
    reader = threading.Thread(target=_pump, args=(chunks, waiting, abandoned), daemon=True,
                              name="fixity-reader")
    reader.start()
    try:
        while (item := waiting.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes | bytearray | memoryview)
            digest.update(item)
            size += len(item)
    finally:
        abandoned.set()
        reader.join()
    return digest.hexdigest(), size
