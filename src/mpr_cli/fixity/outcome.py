"""What one fixity check found (pure: data in, a verdict out).

Quick (`mpr fixity`): one listing gives each object's size and ETag. A single-part upload's
ETag is the MD5 of its bytes, so for those the quick check is a real digest check at no
download cost. A multipart ETag (`<md5 of the parts' MD5s>-<parts>`) is not an MD5: for those
the quick check can only compare size and ETag with the catalogue. An ETag that changed can
still be the same bytes (a re-upload in other parts): when the listing cannot tell, the quick
pass reads that object in full (`Verdict.READ`) rather than raise a false alarm or miss one.

Full (`mpr fixity --full`): the bytes streamed through MD5 against the catalogued MD5.

Neither pass ever concludes anything from a failed read: that is `not_verified`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import Any, TypeVar

from mpr_cli.phases.merge import merged
from mpr_cli.storage import ObjectInfo, single_part_md5

Row = TypeVar("Row", bound=Mapping[str, Any])


class FixityOutcome(StrEnum):
    OK = "fixity_ok"
    MISMATCH = "fixity_mismatch"  # an error
    MISSING = "missing_object"  # an error
    NOT_VERIFIED = "not_verified"  # the object could not be read: nothing concluded

    @property
    def is_error(self) -> bool:
        return self in (FixityOutcome.MISMATCH, FixityOutcome.MISSING)


class Method(StrEnum):
    QUICK = "quick"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class CataloguedFile:
    """One asset_files row a fixity run checks."""

    id: int
    asset_id: int
    inventory_code: str
    bucket: str
    key: str
    size: int
    etag: str | None
    md5: str | None
    differing_etag: str | None = None  # bytes of this ETag were read before: not the MD5
    previous: str | None = None  # the last conclusive fixity outcome recorded

    @property
    def expected_md5(self) -> str | None:
        """The catalogued MD5, else the catalogued ETag when it is one (single-part)."""
        return self.md5 or (single_part_md5(self.etag) if self.etag else None)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A check's result: `outcome` None with `read` True: the listing cannot tell, read it."""

    outcome: FixityOutcome | None
    detail: str
    read: bool = False


READ = Verdict(None, "", read=True)


def quick_verdict(file: CataloguedFile, listed_size: int | None,
                  listed_etag: str | None) -> Verdict:
    """The quick check of `file` against its listing entry (None: not listed)."""
    if listed_size is None:
        return Verdict(FixityOutcome.MISSING, "quick: not in the bucket's listing")
    if listed_size != file.size:
        return Verdict(FixityOutcome.MISMATCH, f"quick: size {listed_size} bytes, catalogued "
                                               f"{file.size}")
    etag = (listed_etag or "").strip('"')
    listed_md5 = single_part_md5(etag)
    expected = file.expected_md5
    if listed_md5 is not None and expected is not None:
        if listed_md5 == expected:
            return Verdict(FixityOutcome.OK, f"quick: size and single-part ETag (the MD5 "
                                             f"{listed_md5}) match the catalogue")
        return Verdict(FixityOutcome.MISMATCH, f"quick: ETag {listed_md5} is the object's "
                                               f"MD5, catalogued {expected}")
    if file.differing_etag and etag == file.differing_etag:
        return Verdict(FixityOutcome.MISMATCH, f"quick: ETag {etag}'s bytes were read before "
                                               f"and differ from the catalogued MD5")
    if file.etag and etag == file.etag.strip('"'):
        return Verdict(FixityOutcome.OK, f"quick: size and multipart ETag {etag} match the "
                                         "catalogue (not an MD5: no digest compared)")
    if expected is None:
        return Verdict(FixityOutcome.MISMATCH, f"quick: ETag {etag}, catalogued {file.etag}, "
                                               "and no catalogued MD5 to compare bytes with")
    return READ


def full_verdict(file: CataloguedFile, md5: str, size: int) -> Verdict:
    """The full check: the MD5 and byte count of what was read."""
    expected = file.expected_md5
    if size != file.size:
        return Verdict(FixityOutcome.MISMATCH, f"full: read {size} bytes, catalogued "
                                               f"{file.size}")
    if expected is None:
        return Verdict(FixityOutcome.MISMATCH, f"full: MD5 {md5} read, but the catalogue "
                                               "holds no MD5 to compare it with")
    if md5 != expected:
        return Verdict(FixityOutcome.MISMATCH, f"full: MD5 {md5} read, catalogued {expected}")
    return Verdict(FixityOutcome.OK, f"full: MD5 {md5} of {size} bytes matches the catalogue")


def paired(rows: Iterable[Row],
           listing: Iterable[ObjectInfo]) -> Iterator[tuple[Row, ObjectInfo | None]]:
    """Each catalogue row (by its "key"; rows in code point order, which is UTF-8 byte order)
    with its listing entry, or None when the whole listing holds no such key: the import's
    walk of the listing beside the catalogue (phases/merge.py, which also pairs a listing in
    SeaweedFS's folder order), its listed objects with no row left out. Only a listing that
    ended normally makes a row unlisted (a listing that fails raises here first)."""
    for entry, row in merged(listing, rows, itemgetter("key")):
        if row is not None:
            yield row, entry
