"""The listing walked beside the catalogue: one pass over both, neither held whole.

The catalogue's rows of a bucket come in byte order (a server-side cursor, `ORDER BY key
COLLATE "C"`: UTF-8 byte order, which is also Python's code point order); the listing comes in
the order S3 sends it. AWS sends byte order. SeaweedFS lists a folder's objects before the
names that sort between them ("a/b" before "a.txt"), so the listing may run a little ahead of or
behind the rows. `merged` pairs them all the same:

- a listed key ahead of the current row advances the rows; the rows passed over wait in
  `pending` (their entry may still come, out of order);
- a listed key behind the current row takes its row from `pending`, or has none (new);
- once the listing ends, every row not paired has no entry (not listed).

Memory: the rows passed over and not yet paired. For a listing in byte order that is the rows
of objects no longer in the bucket; SeaweedFS's order adds the rows of the names it listed
late (a few per folder).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import TypeVar

from mpr_cli.db import CatalogueRow
from mpr_cli.storage import ObjectInfo


def changed(row: CatalogueRow, entry: ObjectInfo) -> bool:
    """Does the listing show another size or ETag than the catalogue's?"""
    return row.size != entry.size or row.etag != entry.etag


def needs_attention(row: CatalogueRow, entry: ObjectInfo) -> bool:
    """Anything to do for this listed key? Not for a file catalogued, present and unchanged
    (the nightly steady state: every key of a bucket with nothing new)."""
    return row.provisional or not row.in_bucket or row.missing or changed(row, entry)


Pair = tuple[ObjectInfo | None, CatalogueRow | None]
R = TypeVar("R")


def merged(listing: Iterable[ObjectInfo], rows: Iterable[R],
           key: Callable[[R], str] | None = None) -> Iterator[tuple[ObjectInfo | None, R | None]]:
    """Every listed object with its catalogue row or None, and every row that no listed
    object took with None; listed objects in the listing's order, unlisted rows after the
    listing ended (a listing that fails raises here, before any row is called unlisted).
    `key` gives a row's key (its `.key` when None: a CatalogueRow); rows in byte order."""
    key_of: Callable[[R], str] = key or attrgetter("key")
    row_iter = iter(rows)
    row = next(row_iter, None)
    pending: dict[str, R] = {}
    for entry in listing:
        listed = entry.key
        while row is not None and key_of(row) < listed:
            pending[key_of(row)] = row
            row = next(row_iter, None)
        if row is not None and key_of(row) == listed:
            yield entry, row
            row = next(row_iter, None)
        else:
            yield entry, pending.pop(listed, None)
    for waiting in pending.values():
        yield None, waiting
    while row is not None:
        yield None, row
        row = next(row_iter, None)
