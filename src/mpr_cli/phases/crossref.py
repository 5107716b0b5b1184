"""Phase 2: what to make of the catalogued files the listing shows changed or no longer holds.

The listing is walked beside the catalogue (phases/discover.py, phases/merge.py): a key
already catalogued with the same size and ETag is skipped. One whose size or ETag changed, or
one recorded as missing that is listed again, is a `CataloguedChange`, settled by
`settle_changes`:

  same bytes (the catalogued MD5: a multipart re-upload of the same file, or an object put
  back)  -> refreshed: the new size and ETag recorded quietly, present again
  other bytes, an object that was missing  -> CHECKSUM_MISMATCH (error)
  other bytes, or no way to tell (no MD5 catalogued, `--verify none` on a multipart ETag)
             -> CHANGED_SINCE_IMPORT (warning), never overwritten: `mpr replace KEY` decides

An object's bytes are read (its MD5 streamed) only when its size is the catalogued one and its
ETag is no plain MD5, and once per ETag: bytes read and found other are noted with their ETag
(asset_files.differing_etag), so the nightly warning costs no read the next nights.

After a complete listing of the bucket (or of a whole prefix), a catalogued object in the
bucket that the listing no longer holds is MISSING_OBJECT (`missing_problem`), reported by the
run that first notices it (the caller records it missing; later runs do not report it again).

What the caller records comes with its preservation events (mpr_cli.events), built here:
a vanished object `deletion` (failure: mpr did not delete it), one back with its bytes
`recovery`, a re-upload of the same bytes `fixity check` (success: its MD5 was read and is the
catalogued one), bytes read and found other `fixity check` (failure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mpr_cli import db, events
from mpr_cli.db import MissingFile
from mpr_cli.events import EventType, NewEvent, Outcome
from mpr_cli.problems import Problem, Reason
from mpr_cli.validation.inventory import Candidate


@dataclass(frozen=True, slots=True)
class CataloguedChange:
    """A catalogued object listed with another size or ETag than the catalogue's, or listed
    again after it was recorded missing."""

    candidate: Candidate
    md5: str | None  # the catalogued MD5
    size: int | None  # the catalogued size
    changed: bool  # size or ETag differ from the catalogue's
    missing: bool  # recorded as missing, now listed again
    known_different: bool = False  # this ETag's bytes were read by an earlier run: they differ

    def needs_md5(self) -> bool:
        """Must the object's MD5 be read to tell whether its bytes changed? Not when nothing
        changed, when the catalogue has no MD5 to compare with, when the sizes differ, or when
        an earlier run read the bytes of this very ETag."""
        return (self.changed and self.md5 is not None and self.size == self.candidate.size
                and not self.known_different)


class Bytes(Enum):
    SAME = "same"
    DIFFERENT = "different"
    UNKNOWN = "unknown"


@dataclass
class Settled:
    """What `settle_changes` made of the changed objects."""

    refreshed: list[CataloguedChange] = field(default_factory=list)  # same bytes
    problems: list[Problem] = field(default_factory=list)
    differing: list[CataloguedChange] = field(default_factory=list)  # read now: other bytes

    @property
    def restored(self) -> int:
        """Of the refreshed, the objects that were missing and are back."""
        return sum(change.missing for change in self.refreshed)

    def events(self, bucket: str, run_key: str | None) -> list[NewEvent]:
        """The events of recording what was settled: differing bytes, refreshed objects."""
        made = [NewEvent(EventType.FIXITY_CHECK, Outcome.FAILURE,
                         f"its bytes differ from the catalogued MD5 {c.md5} "
                         "(changed_since_import): not re-imported", bucket, c.candidate.key,
                         etag=c.candidate.etag, run_key=run_key) for c in self.differing]
        for c in self.refreshed:
            if c.missing:
                made.append(NewEvent(EventType.RECOVERY, Outcome.SUCCESS,
                                     "back in the bucket with its catalogued bytes",
                                     bucket, c.candidate.key, run_key=run_key))
            else:
                made.append(NewEvent(EventType.FIXITY_CHECK, Outcome.SUCCESS,
                                     f"re-uploaded with a new ETag; its MD5 is the catalogued "
                                     f"{c.md5}", bucket, c.candidate.key, run_key=run_key))
        return made


def compare_bytes(change: CataloguedChange, actual_md5: str | None) -> Bytes:
    """Are the object's bytes the catalogued ones? `actual_md5` is the object's MD5 when it
    was read (`CataloguedChange.needs_md5`), else None."""
    if not change.changed:
        return Bytes.SAME  # listed again as catalogued (same size and ETag)
    if change.md5 is None:
        return Bytes.UNKNOWN
    if change.size != change.candidate.size or change.known_different:
        return Bytes.DIFFERENT
    if actual_md5 is None:
        return Bytes.UNKNOWN
    return Bytes.SAME if actual_md5 == change.md5 else Bytes.DIFFERENT


def settle_changes(changes: list[CataloguedChange],
                   md5_of: Callable[[Candidate], str | None]) -> Settled:
    """Each change refreshed (same bytes) or a problem; `md5_of` reads an object's MD5 (None
    when it cannot tell), asked only for the changes that need it."""
    settled = Settled()
    for change in changes:
        actual = md5_of(change.candidate) if change.needs_md5() else None
        verdict = compare_bytes(change, actual)
        if verdict is Bytes.DIFFERENT and actual is not None:
            settled.differing.append(change)
        if verdict is Bytes.SAME:
            settled.refreshed.append(change)
        elif change.missing and verdict is Bytes.DIFFERENT:
            settled.problems.append(_back_with_other_bytes(change, actual))
        else:
            settled.problems.append(_changed_problem(change.candidate))
    return settled


def _changed_problem(candidate: Candidate) -> Problem:
    return Problem.make(
        Reason.CHANGED_SINCE_IMPORT, candidate.key,
        f"{candidate.key} changed in the bucket since it was imported (its bytes differ, or "
        "could not be compared); it was not re-imported: check the delivery, and if the new "
        f"file is right accept it with `mpr replace {candidate.key}`",
        inventory_code=candidate.inventory_code)


def _back_with_other_bytes(change: CataloguedChange, actual: str | None) -> Problem:
    candidate = change.candidate
    found = (f"MD5 {actual}" if actual is not None
             else f"{candidate.size} bytes (catalogued: {change.size})")
    return Problem.make(
        Reason.CHECKSUM_MISMATCH, candidate.key,
        f"{candidate.key} was missing from the bucket and is back with other bytes ({found}; "
        f"catalogued MD5 {change.md5}): put back the catalogued file, or accept this one with "
        f"`mpr replace {candidate.key}`", inventory_code=candidate.inventory_code)


def record_missing(conn: Any, bucket: str, missing: list[MissingFile],
                   run_key: str | None) -> None:
    """Record these catalogued objects missing since now, with their events, in one
    transaction."""
    with conn.transaction():
        db.mark_missing(conn, bucket, [m.key for m in missing])
        events.record(conn, [missing_event(bucket, m, run_key) for m in missing])


def record_settled(conn: Any, bucket: str, settled: Settled, by: db.Provenance) -> None:
    """Bytes read and found other noted, the same bytes refreshed (history kept), with their
    events, in one transaction."""
    with conn.transaction():
        if settled.differing:
            db.note_differing(conn, bucket, [(c.candidate.key, c.candidate.etag)
                                             for c in settled.differing])
        if settled.refreshed:
            db.refresh_files(conn, bucket, [(c.candidate.key, c.candidate.size,
                                             c.candidate.etag) for c in settled.refreshed], by)
        events.record(conn, settled.events(bucket, by.run_key))


def missing_event(bucket: str, missing: MissingFile, run_key: str | None) -> NewEvent:
    """The event of recording a catalogued object missing from its bucket."""
    return NewEvent(EventType.MISSING, Outcome.FAILURE,
                    "no longer in the bucket (noticed by a complete listing; mpr did not "
                    "delete it): recorded as missing", bucket, missing.key,
                    inventory_code=missing.inventory_code, run_key=run_key)


def missing_problem(missing: MissingFile) -> Problem:
    return Problem.make(
        Reason.MISSING_OBJECT, missing.key,
        f"{missing.key} is catalogued but no longer in the bucket (reported once, recorded as "
        "missing): put it back; it is marked present again when its bytes are the catalogued "
        "ones", inventory_code=missing.inventory_code)
