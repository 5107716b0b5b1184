"""listing.list_objects over a fake page source: one stream in the order of a plain listing
(AWS's byte order and SeaweedFS's folder-first order), at most N folders listed at once, a
folder's error re-raised at its place, and every thread stopped when the consumer stops."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mpr_cli import listing
from mpr_cli.errors import S3Unavailable
from mpr_cli.s3xml import ListPage
from mpr_cli.storage import ObjectInfo

STAMP = datetime(2026, 12, 1, tzinfo=UTC)


def segments(key: str) -> list[str]:
    return key.split("/")


class FakeBucket:
    """A ListObjectsV2 server over a list of keys: `folders_first` sorts like SeaweedFS (name
    by name), else like AWS (UTF-8 bytes). Continuation tokens are positions."""

    def __init__(self, keys: list[str], *, folders_first: bool = False,
                 fail: Callable[[str, int], None] | None = None) -> None:
        self.keys = sorted(keys, key=segments if folders_first else None)
        self.fail = fail  # called with (prefix, page number) before each page
        self.calls: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def info(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(key), f"etag-{key}", STAMP)

    def list_page(self, bucket: str, prefix: str = "", token: str | None = None,
                  delimiter: str | None = None, *, max_keys: int = 1000) -> ListPage:
        with self.lock:
            self.calls.append((prefix, delimiter))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.fail is not None:
                self.fail(prefix, int(token or 0) // max_keys)
            return self._page(prefix, int(token or 0), delimiter, max_keys)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _entries(self, prefix: str, delimiter: str | None) -> list[tuple[str, bool]]:
        """(name, is a common prefix) in the server's order."""
        entries: list[tuple[str, bool]] = []
        for key in self.keys:
            if not key.startswith(prefix):
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            entry = (key, False) if cut < 0 else (key[:cut + 1], True)
            if not entries or entries[-1] != entry:
                entries.append(entry)
        return entries

    def _page(self, prefix: str, start: int, delimiter: str | None, size: int) -> ListPage:
        entries = self._entries(prefix, delimiter)
        chunk = entries[start:start + size]
        objects = [self.info(name) for name, folder in chunk if not folder]
        folders = [name for name, folder in chunk if folder]
        more = start + size < len(entries)
        return ListPage(objects, folders, str(start + size) if more else None)

    def plain(self, prefix: str = "") -> list[ObjectInfo]:
        return [self.info(k) for k in self.keys if k.startswith(prefix) and not k.endswith("/")]


KEYS = (["root-a.txt", "BRD-notes.txt", "BRD.txt", "BRD!", "zz-last", "CD/", "DVD/"]
        + [f"{folder}/{code:03d}{suffix}" for folder in ("BRD", "CD", "DAT", "DVD", "FILE")
           for code in range(9) for suffix in (".mov", ".json")]
        + ["BRD/nested/deeper/x.mov", "FILE/sub/", "FILE/sub/a b+c&d.wav", "été/ü.wav"])


@pytest.mark.parametrize("folders_first", [False, True], ids=["aws", "seaweedfs"])
@pytest.mark.parametrize("concurrency", [1, 2, 8])
def test_the_stream_is_the_plain_listing(folders_first: bool, concurrency: int) -> None:
    bucket = FakeBucket(KEYS, folders_first=folders_first)
    got = list(listing.list_objects(bucket, "b", concurrency=concurrency, page_size=4))
    assert got == bucket.plain()
    assert not any(info.key.endswith("/") for info in got)
    assert bucket.most_in_flight <= max(1, concurrency)


def test_the_server_is_asked_once_where_its_folders_go() -> None:
    bucket = FakeBucket(KEYS, folders_first=True)
    list(listing.list_objects(bucket, "b", concurrency=4, page_size=4))
    probes = [call for call in bucket.calls if call == ("BRD", None)]
    assert len(probes) == 1  # "BRD!", "BRD-notes.txt", "BRD.txt" sort between BRD and BRD/


def test_a_prefix_is_split_below_itself() -> None:
    bucket = FakeBucket(KEYS)
    got = list(listing.list_objects(bucket, "b", "FILE/", concurrency=3, page_size=2))
    assert got == bucket.plain("FILE/")
    assert ("FILE/sub/", None) in bucket.calls


def test_split_off_lists_plainly() -> None:
    bucket = FakeBucket(KEYS)
    got = list(listing.list_objects(bucket, "b", concurrency=8, split=False, page_size=5))
    assert got == bucket.plain()
    assert {delimiter for _, delimiter in bucket.calls} == {None}


def folder_fails(folder: str, page: int) -> Callable[[str, int], None]:
    def fail(prefix: str, number: int) -> None:
        if prefix == folder and number == page:
            raise S3Unavailable(f"S3 unreachable while listing {prefix}")
    return fail


@pytest.mark.parametrize("page", [0, 2])
def test_an_error_in_the_third_folder_comes_after_the_first_two(page: int) -> None:
    bucket = FakeBucket(KEYS, fail=folder_fails("DAT/", page))
    before = threading.active_count()
    got: list[ObjectInfo] = []
    with pytest.raises(S3Unavailable, match="listing DAT/"):
        for info in listing.list_objects(bucket, "b", concurrency=5, page_size=4):
            got.append(info)
    plain = bucket.plain()
    assert got == ([o for o in plain if o.key < "DAT/"]
                   + [o for o in plain if o.key.startswith("DAT/")][:page * 4])
    assert any(o.key.startswith("CD/") for o in got)
    assert threading.active_count() == before


def test_an_error_in_the_first_level_listing_is_raised() -> None:
    def fail(prefix: str, page: int) -> None:
        if prefix == "" and page == 1:
            raise S3Unavailable("first level")

    before = threading.active_count()
    bucket = FakeBucket(KEYS, fail=fail)
    with pytest.raises(S3Unavailable, match="first level"):
        list(listing.list_objects(bucket, "b", concurrency=4, page_size=3))
    assert threading.active_count() == before


class Endless(FakeBucket):
    """Every folder has pages without end: the threads can only stop when told."""

    def _page(self, prefix: str, start: int, delimiter: str | None, size: int) -> ListPage:
        if delimiter:
            return ListPage([], [f"F{i}/" for i in range(6)], None)
        keys = [f"{prefix}{n:09d}" for n in range(start, start + size)]
        return ListPage([self.info(k) for k in keys], [], str(start + size))


def test_closing_the_stream_early_stops_every_thread() -> None:
    bucket = Endless([])
    before = threading.active_count()
    stream = listing.list_objects(bucket, "b", concurrency=4, page_size=2)
    got = [next(stream) for _ in range(7)]
    assert [o.key for o in got] == [f"F0/{n:09d}" for n in range(7)]
    assert threading.active_count() == before + 4  # four folders under way, queues full
    stream.close()
    assert threading.active_count() == before


def test_an_exception_in_the_consumer_stops_every_thread() -> None:
    bucket = Endless([])
    before = threading.active_count()

    def consume() -> None:
        for info in listing.list_objects(bucket, "b", concurrency=3, page_size=5):
            if info.key == "F0/000000012":
                raise KeyError(info.key)

    with pytest.raises(KeyError):
        consume()
    assert threading.active_count() == before


def test_memory_is_bounded_whatever_the_folder_size() -> None:
    bucket = Endless([])
    stream = listing.list_objects(bucket, "b", concurrency=2, page_size=10)
    next(stream)  # F0's first page is with the consumer; F0 and F1 fill their queues
    blocked = {"F0/": listing.QUEUE_PAGES + 2, "F1/": listing.QUEUE_PAGES + 1}

    def fetched(folder: str) -> int:
        return sum(1 for prefix, _ in list(bucket.calls) if prefix == folder)

    waited = threading.Event()
    for _ in range(1000):  # until both threads wait on a full queue (or have run past it)
        if all(fetched(folder) >= pages for folder, pages in blocked.items()):
            break
        waited.wait(0.01)
    counts = {folder: fetched(folder) for folder in blocked}
    stream.close()
    assert counts == blocked  # not one page more: the threads wait for the consumer


def test_never_more_threads_than_the_concurrency() -> None:
    keys = [f"F{folder:02d}/{n}" for folder in range(30) for n in range(10)] + ["F07.txt"]
    bucket = FakeBucket(keys)
    before = threading.active_count()
    alive = []
    for _ in listing.list_objects(bucket, "b", concurrency=3, page_size=2):
        alive.append(threading.active_count() - before)
    assert len(alive) == len(keys) and max(alive) <= 3  # 5 pages a folder: threads wait
    assert bucket.most_in_flight <= 3 + 1  # the consumer's own first-level listing
    assert threading.active_count() == before
