"""Every object under a prefix as one stream, its first-level folders listed concurrently.

`list_objects(storage, bucket, prefix, concurrency=N)` yields what a plain ListObjectsV2 of
the whole prefix yields, in the same order, folder markers ("x/") skipped as
`Storage.list_objects` skips them:

1. one delimiter ("/") listing of the prefix's first level, in the consumer's thread: the
   objects there and the common prefixes (the carrier folders), page by page;
2. each common prefix listed by its own thread, at most `concurrency` at once, in the order
   the first level names them; a thread runs at most `QUEUE_PAGES` pages ahead of the consumer
   (then waits), so memory is bounded whatever the size of the bucket;
3. the consumer drains the first level's objects and the folders' queues in order.

A thread's exception is re-raised in the consumer at the folder's place in the stream (after
every object before it); when the consumer stops (the generator closed, an exception) every
thread is told to stop and its queue emptied, so none is left blocked on a full queue, and the
generator waits for them (up to STOP_WAIT_S for a request in flight) before it returns.

Order: a page of the first level lists its objects, then its common prefixes, so the two are
merged. Where they interleave servers differ: AWS sorts full keys by UTF-8 bytes ("d-x" before
"d/..."), SeaweedFS sorts names segment by segment (the folder "d" before "d-x"). Only a
first-level object that sorts between "d" and "d/" is placed differently; for the first such
object one small plain listing (Prefix="d", MaxKeys=1) asks the server which comes first, and
that answer holds for the rest of the listing.

Meant for a first level of a few folders (mpr's carrier folders): each common prefix costs at
least one request of its own, so a first level of thousands of small folders lists faster with
`split=False`.

The caller chooses `concurrency`: mpr's default (phases/sources.py) is MPR_LIST_CONCURRENCY,
else the number of carrier folders in the rules, at most 8. With `concurrency` 1 or
`split=False` the prefix is listed plainly, page by page, with the same fast page parser
(`Storage.list_page`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Protocol

from mpr_cli.s3xml import ListPage
from mpr_cli.storage import PAGE_SIZE, ObjectInfo

QUEUE_PAGES = 3  # pages a folder's thread may hold ahead of the consumer
LOOKAHEAD_OBJECTS = 10_000  # first-level objects buffered while looking for folders to start
DELIMITER = "/"
STOP_WAIT_S = 5.0  # how long a stopped listing waits for its threads' requests in flight


class PageSource(Protocol):
    """What the lister needs of Storage: one ListObjectsV2 page."""

    def list_page(self, bucket: str, prefix: str = "", token: str | None = None,
                  delimiter: str | None = None, *, max_keys: int = PAGE_SIZE) -> ListPage: ...


def list_objects(storage: PageSource, bucket: str, prefix: str = "", *, concurrency: int,
                 split: bool = True, page_size: int = PAGE_SIZE) -> Iterator[ObjectInfo]:
    """Every object under `prefix`, in the order a plain listing of it gives, folder markers
    skipped; the first-level folders listed by up to `concurrency` threads when `split`.
    Errors are Storage's (StorageError, S3Unavailable), raised where they occur in the
    stream."""
    if not split or concurrency <= 1:
        yield from _objects(_pages(storage, bucket, prefix, None, page_size))
        return
    yield from _SplitListing(storage, bucket, prefix, concurrency, page_size).run()


def _pages(storage: PageSource, bucket: str, prefix: str, delimiter: str | None,
           page_size: int, stop: threading.Event | None = None) -> Iterator[ListPage]:
    """The listing's pages in order; no further request once `stop` is set."""
    token: str | None = None
    while stop is None or not stop.is_set():
        page = storage.list_page(bucket, prefix, token, delimiter, max_keys=page_size)
        yield page
        token = page.next_token
        if token is None:
            return


def _objects(pages: Iterator[ListPage]) -> Iterator[ObjectInfo]:
    for page in pages:
        for info in page.objects:
            if not info.key.endswith("/"):
                yield info


# -- the first level: objects and folders in the server's order ------------------------------


class _FirstLevel:
    """The delimiter listing of the prefix as one sequence of objects and folder prefixes."""

    def __init__(self, storage: PageSource, bucket: str, prefix: str, page_size: int) -> None:
        self.storage, self.bucket, self.prefix, self.page_size = storage, bucket, prefix, page_size
        self.folders_first: bool | None = None  # None: not yet asked (see the module doc)

    def entries(self) -> Generator[ObjectInfo | str, None, None]:
        for page in _pages(self.storage, self.bucket, self.prefix, DELIMITER, self.page_size):
            yield from self._merge(page.objects, page.prefixes)

    def _merge(self, objects: list[ObjectInfo], prefixes: list[str]) -> Iterator[ObjectInfo | str]:
        position = 0
        for folder in prefixes:
            while position < len(objects) and self._before(objects[position].key, folder):
                yield objects[position]
                position += 1
            yield folder
        yield from objects[position:]

    def _before(self, key: str, folder: str) -> bool:
        """Whether the object `key` comes before the folder `folder` ("d/") in a plain listing."""
        stem = folder[:-len(DELIMITER)]
        if key <= stem:
            return True
        if key > folder:
            return False
        if self.folders_first is None:  # stem < key < folder: the servers differ
            self.folders_first = self._ask(stem, folder)
        return not self.folders_first

    def _ask(self, stem: str, folder: str) -> bool:
        """Whether this server lists the folder's contents before the names that sort between
        the folder's name and the folder's name + "/" (SeaweedFS), or after them (AWS)."""
        first = self.storage.list_page(self.bucket, stem, None, None, max_keys=1).objects
        return bool(first) and first[0].key.startswith(folder)


# -- the folders, each listed by its own thread ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_END = object()  # a folder's queue: the listing is complete


class _Folder:
    """One common prefix listed by its own thread into a bounded queue of pages."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.pages: queue.Queue[object] = queue.Queue(maxsize=QUEUE_PAGES)
        self.thread: threading.Thread | None = None

    def fill(self, storage: PageSource, bucket: str, page_size: int,
             stop: threading.Event) -> None:
        """The thread's body: every page, then _END; an exception handed over as _Failure."""
        try:
            for page in _pages(storage, bucket, self.prefix, None, page_size, stop):
                self.pages.put(page.objects)  # the consumer empties the queue when it stops
                if stop.is_set():
                    return
            self.pages.put(_END)
        except Exception as exc:  # re-raised in the consumer at this folder's place
            self.pages.put(_Failure(exc))

    def drain(self) -> Iterator[ObjectInfo]:
        """The folder's objects in order, as its thread delivers them."""
        while True:
            item = self.pages.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, list)
            for info in item:
                if not info.key.endswith("/"):
                    yield info

    def discard(self) -> None:
        """Empty the queue, so that a thread blocked on a full one can see the stop."""
        while True:
            try:
                self.pages.get_nowait()
            except queue.Empty:
                return


class _SplitListing:
    """The consumer: the first level in order, up to `concurrency` folders listed ahead."""

    def __init__(self, storage: PageSource, bucket: str, prefix: str, concurrency: int,
                 page_size: int) -> None:
        self.storage, self.bucket, self.page_size = storage, bucket, page_size
        self.concurrency = concurrency
        self.entries = _FirstLevel(storage, bucket, prefix, page_size).entries()
        self.ahead: deque[ObjectInfo | _Folder] = deque()
        self.started: deque[_Folder] = deque()  # started and not yet drained, in order
        self.threads = 0  # threads started so far (their names)
        self.buffered = 0  # first-level objects in self.ahead
        self.exhausted = False
        self.stop = threading.Event()

    def run(self) -> Iterator[ObjectInfo]:
        try:
            while self._look_ahead():
                item = self.ahead.popleft()
                if isinstance(item, _Folder):
                    yield from item.drain()
                    self.started.popleft()  # the oldest folder under way is this one
                    if item.thread is not None:
                        item.thread.join()  # it has sent its last page: it is returning
                else:
                    self.buffered -= 1
                    if not item.key.endswith("/"):
                        yield item
        finally:
            self._stop_all()

    def _look_ahead(self) -> bool:
        """Read the first level until `concurrency` folders are under way (or the lookahead
        is full, or the level ends); whether anything is left to yield."""
        while (not self.exhausted and len(self.started) < self.concurrency
               and self.buffered < LOOKAHEAD_OBJECTS):
            entry = next(self.entries, None)
            if entry is None:
                self.exhausted = True
            elif isinstance(entry, str):
                self.ahead.append(self._start(entry))
            else:
                self.ahead.append(entry)
                self.buffered += 1
        return bool(self.ahead)

    def _start(self, prefix: str) -> _Folder:
        folder = _Folder(prefix)
        self.threads += 1
        folder.thread = threading.Thread(
            target=folder.fill, args=(self.storage, self.bucket, self.page_size, self.stop),
            name=f"mpr-list-{self.threads}", daemon=True)
        self.started.append(folder)
        folder.thread.start()
        return folder

    def _stop_all(self) -> None:
        """Stop every thread and wait for it (each is at most one request from its end) for
        up to STOP_WAIT_S: one still inside a request then is left to finish it on its own (a
        daemon that makes no further request and whose queue has room for what it sends)."""
        self.stop.set()
        for folder in self.started:
            folder.discard()
        deadline = time.monotonic() + STOP_WAIT_S
        for folder in self.started:
            while (folder.thread is not None and folder.thread.is_alive()
                   and time.monotonic() < deadline):
                folder.discard()
                folder.thread.join(0.05)
        self.entries.close()
