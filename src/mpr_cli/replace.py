"""`mpr replace KEY`: a person accepts the new bytes of a catalogued object.

A catalogued object whose bytes changed stays `changed_since_import` (and one that came back
from missing with other bytes `checksum_mismatch`) until someone decides. `replace_object`
re-checks the asset of KEY as phase 3 would check a delivery: every file of the asset in the
bucket that differs from the catalogue (KEY, its re-delivered sidecars, files of the asset not
catalogued yet) is checked as new, the rest of the catalogue as what the asset already holds,
with the very planner and rules of an import (`phases.ingest.AssetPlanner`,
`validation.assets`). Clean, its records are updated in one transaction, each old row kept in
asset_file_history; not clean, nothing changes and the problems say why. A dry run only says
what it would change. The import lock is held, so no import runs meanwhile.

The update's transaction also records its preservation events (mpr_cli.events): the checks
the planner made (message digest calculation, format identification), a `replacement` for
each catalogued file updated (its detail says what changed) and an `ingestion` for each file
of the asset catalogued for the first time. A dry run records none. Each master and
streaming copy written gets its technical summary again (mpr_cli.summary; sql/012 drops the
old one when tech_metadata changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from mpr_cli import db, events, summary
from mpr_cli.config import Settings
from mpr_cli.db import CataloguedFile, FileRow
from mpr_cli.errors import MissingObject, NotCatalogued
from mpr_cli.events import EventType, NewEvent, Outcome
from mpr_cli.phases.ingest import AssetPlanner, VerifyMode
from mpr_cli.problems import Problem, Reason, Severity
from mpr_cli.rules import MediaType, Role, Rules
from mpr_cli.storage import Storage
from mpr_cli.validation.assets import AssetFiles
from mpr_cli.validation.inventory import Candidate, classify_key


@dataclass(frozen=True)
class FileState:
    size: int | None
    etag: str | None
    md5: str | None


@dataclass(frozen=True)
class FileChange:
    """One file of the asset as it is catalogued (`old`: None when not yet) and the record
    that replaces it (`row`, as phase 3 planned it)."""

    old: FileState | None
    row: FileRow

    @property
    def key(self) -> str:
        return self.row.key

    def describe(self) -> str:
        """One line: what changes in this file's record."""
        new, role = self.row, Role(self.row.role).value
        if self.old is None:
            return f"add {new.key} ({role}): {new.size} bytes, MD5 {new.md5}"
        parts = [f"{name} {before} -> {after}" for name, before, after in (
            ("size", self.old.size, new.size), ("ETag", self.old.etag, new.etag),
            ("MD5", self.old.md5, new.md5)) if before != after]
        return f"replace {new.key} ({role}): " + (", ".join(parts) or "present again")


@dataclass
class ReplaceResult:
    key: str
    inventory_code: str
    dry_run: bool
    changes: list[FileChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    applied: bool = False
    checks: list[NewEvent] = field(default_factory=list)  # the planner's, of the changed files

    @property
    def ok(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)


@dataclass(frozen=True)
class _Remaining:
    """What the catalogue holds of the asset besides the files being replaced
    (validation.assets.Catalogued)."""

    has_master: bool
    has_streaming: bool
    md5s: Mapping[str, str]


def replace_object(settings: Settings, rules: Rules, key: str, *,
                   dry_run: bool = False) -> ReplaceResult:
    """Re-check the asset of `key` with the objects now in the input bucket and, when clean
    and not a dry run, record them (old rows kept in asset_file_history). NotCatalogued for
    a key the catalogue does not hold, MissingObject for one not in the bucket. The history
    rows name the command (`replace`; it has no run of its own)."""
    bucket = settings.s3_bucket_in
    lock = nullcontext() if dry_run else db.import_lock(settings)
    with lock, db.connect(settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        asset = db.file_asset(conn, bucket, key)
        if asset is None:
            raise NotCatalogued(f"{key} is not catalogued in bucket {bucket}",
                                hint="give the key of a catalogued file (`mpr import` "
                                     "imports new ones)")
        rows = db.asset_file_rows(conn, asset.id)
        storage = Storage(settings)
        listed, problems = _listed_files(storage, bucket, rules, asset.inventory_code, rows, key)
        result = ReplaceResult(key, asset.inventory_code, dry_run, problems=problems)
        if result.ok:
            _recheck(result, storage, bucket, asset, rows, listed)
        if result.ok and result.changes and not dry_run:
            _apply(conn, bucket, asset, result, db.Provenance("replace"))
            result.applied = True
    return result


def _listed_files(storage: Storage, bucket: str, rules: Rules, code: str,
                  rows: list[CataloguedFile], key: str) -> tuple[list[Candidate], list[Problem]]:
    """The asset's objects in the bucket, beside its catalogued files and KEY (each folder
    listed from `<folder>/<code>`), with the phase-1 problems of any of them."""
    folders = {row.key.rpartition("/")[0] for row in rows if row.bucket == bucket}
    folders.add(key.rpartition("/")[0])
    found: dict[str, Candidate] = {}
    problems: list[Problem] = []
    for folder in sorted(folders):
        for obj in storage.list_objects(bucket, f"{folder}/{code}" if folder else code):
            outcome = classify_key(obj.key, obj.size, obj.etag, rules)
            if isinstance(outcome, Candidate) and outcome.inventory_code == code:
                found[obj.key] = outcome
            elif isinstance(outcome, Problem) and obj.key == key:
                problems.append(outcome)
    if key not in found and not problems:
        raise MissingObject(f"{key} is not in bucket {bucket}: there is no new object to "
                            "accept", key=key, hint="put the new file at that key first")
    return sorted(found.values(), key=lambda c: c.key), problems


def _differs(candidate: Candidate, row: CataloguedFile | None) -> bool:
    return row is None or row.provisional or row.missing_since is not None or (
        row.size != candidate.size or row.etag != candidate.etag)


def _recheck(result: ReplaceResult, storage: Storage, bucket: str, asset: db.AssetRef,
             rows: list[CataloguedFile], listed: list[Candidate]) -> None:
    """Phase 3 on the asset: the objects that differ from the catalogue as new, the rest as
    known; the planned rows become the result's changes, or its problems say why not."""
    catalogued = {row.key: row for row in rows if row.bucket == bucket}
    new = [c for c in listed if _differs(c, catalogued.get(c.key))]
    if not new:
        return  # nothing differs: nothing to replace
    new_keys = {c.key for c in new}
    files = AssetFiles(asset.inventory_code, MediaType(asset.media_type), new,
                       [c for c in listed if c.key not in new_keys],
                       _remaining(rows, bucket, new_keys))
    with AssetPlanner(storage, bucket, VerifyMode.AUTO) as planner:
        plan = planner.plan(files)
    result.problems += plan.problems
    result.checks += [e for e in plan.events if e.key in new_keys]
    planned = {row.key: row for row in plan.rows if row.key in new_keys}
    for candidate in new:
        row = planned.get(candidate.key)
        if row is None:
            if plan.ok:
                result.problems.append(_unplanned(asset.inventory_code, candidate))
            continue
        old = catalogued.get(candidate.key)
        state = None if old is None else FileState(old.size, old.etag, old.md5)
        result.changes.append(FileChange(state, row))


def _remaining(rows: list[CataloguedFile], bucket: str, replaced: set[str]) -> _Remaining:
    kept = [r for r in rows if not (r.bucket == bucket and r.key in replaced)]
    return _Remaining(
        has_master=any(r.role is Role.MASTER and not r.provisional for r in kept),
        has_streaming=any(r.role is Role.STREAMING for r in kept),
        md5s={r.key: r.md5 for r in kept if r.md5 is not None})


def _unplanned(code: str, candidate: Candidate) -> Problem:
    return Problem.make(Reason.INTERNAL_ERROR, candidate.key,
                        f"checking {code} planned no record for {candidate.key}: nothing was "
                        "replaced; report this as a bug", inventory_code=code)


def _apply(conn: Any, bucket: str, asset: db.AssetRef, result: ReplaceResult,
           by: db.Provenance) -> None:
    """The planned rows recorded in one transaction: a catalogued file's old row kept in
    history and updated in place, a file not catalogued yet inserted; with their events."""
    with conn.transaction():
        fresh = [change.row for change in result.changes if change.old is None]
        done = list(result.checks)
        for change in result.changes:
            if change.old is not None and db.keep_history(conn, bucket, change.key, by):
                db.replace_file(conn, change.row)
                done.append(_event(EventType.REPLACEMENT, change, asset,
                                   f"accepted by mpr replace: {change.describe()}"))
        if fresh:
            db.insert_files(conn, None, [(asset.inventory_code, asset.media_type)], fresh)
            done += [_event(EventType.INGESTION, change, asset,
                            f"catalogued as the {Role(change.row.role).value} file of "
                            f"{asset.inventory_code} by mpr replace")
                     for change in result.changes if change.old is None]
        summary.fill(conn, [(change.row.bucket, change.row.key) for change in result.changes])
        events.record(conn, done)


def _event(event_type: EventType, change: FileChange, asset: db.AssetRef,
           detail: str) -> NewEvent:
    return NewEvent(event_type, Outcome.SUCCESS, detail, change.row.bucket, change.key,
                    asset_id=asset.id, inventory_code=asset.inventory_code,
                    etag=change.row.etag)
