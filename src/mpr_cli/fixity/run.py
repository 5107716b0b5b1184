"""One `mpr fixity` run: select catalogued files least recently verified first, check each
(quick from one listing per bucket, or full through MD5), and record every check with its
`fixity check` event in one transaction.

- Selection: the catalogued files in a bucket (`in_bucket`) under `--prefix`, last verified
  (quick: either way; full: fully) before the run began, and before `--older-than` ago when
  given. A file `mpr fixity` never checked counts from its import (the import's own check), so
  new files queue behind old ones and the order is first in, first verified.
- Quick: the listing's size and ETag against the catalogue (fixity/outcome.py says what that
  proves: a single-part ETag is an MD5, a multipart one is not). Files the listing cannot
  settle (a multipart ETag that changed) are read in full at once.
- Full: HEAD (a missing object is `missing_object`), then the bytes streamed through MD5.
- Reads are retried (`READ_ATTEMPTS`, doubling waits, on top of botocore's own retries). A file
  whose object S3 would not serve after them is `not_verified`: its event says so, and its row
  is left as it was (no time, no outcome: it stays first in line and is never marked bad).
  When S3 itself failed the run stops there (every later read would fail too): exit 4.
- Budgets (fixity/budget.py) end a run between files; the files it did not reach are the least
  recently verified ones of the next run, which therefore continues where this one stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from mpr_cli import db, events, listing
from mpr_cli.config import Settings
from mpr_cli.errors import S3Unavailable, StorageError
from mpr_cli.fixity.budget import Budget
from mpr_cli.fixity.outcome import (
    CataloguedFile,
    FixityOutcome,
    Method,
    Verdict,
    full_verdict,
    paired,
    quick_verdict,
)
from mpr_cli.fixity.reading import in_pages, md5_of_chunks, prefetch
from mpr_cli.fixity.report import Check, FixityReport, FixityStatus
from mpr_cli.phases.sources import list_concurrency
from mpr_cli.rules import default_rules
from mpr_cli.storage import ObjectInfo, Storage

PAGE_SIZE = 500  # files per page of the selection, and per transaction of a quick pass
LISTING_PAGE = 1000  # listed objects handed over at once by the listing's thread
READ_ATTEMPTS = 3
RETRY_WAIT_S = 1.0
_START = datetime(1, 1, 1, tzinfo=UTC)
_EVENT_OUTCOME = {FixityOutcome.OK: events.Outcome.SUCCESS,
                  FixityOutcome.MISMATCH: events.Outcome.FAILURE,
                  FixityOutcome.MISSING: events.Outcome.FAILURE,
                  FixityOutcome.NOT_VERIFIED: events.Outcome.WARNING}


@dataclass(frozen=True)
class FixityOptions:
    full: bool = False
    prefix: str = ""
    older_than_s: float | None = None
    budget: Budget = field(default_factory=Budget)
    run_key: str = ""
    strict: bool = False

    @property
    def method(self) -> Method:
        return Method.FULL if self.full else Method.QUICK


def _file(row: dict[str, Any]) -> CataloguedFile:
    return CataloguedFile(row["id"], row["asset_id"], row["inventory_code"], row["bucket"],
                          row["key"], row["size"], row["etag"], row["md5"],
                          row["differing_etag"], row["previous"])


def event_of(check: Check, run_key: str) -> events.NewEvent:
    """The `fixity check` event of a check."""
    f = check.file
    return events.NewEvent(events.EventType.FIXITY_CHECK, _EVENT_OUTCOME[check.outcome],
                           f"{check.outcome.value}: {check.detail}", f.bucket, f.key,
                           asset_id=f.asset_id, inventory_code=f.inventory_code,
                           etag=check.etag, run_key=run_key or None)


class FixityRun:
    """One run; `run()` returns its report (S3 failing is in the report, not raised)."""

    def __init__(self, settings: Settings, options: FixityOptions, *,
                 storage: Storage | None = None, stop: threading.Event | None = None,
                 on_check: Callable[[Check], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.options = settings, options
        self.storage = storage or Storage(settings)
        self.stop = stop or threading.Event()
        self.on_check = on_check or (lambda check: None)
        self.clock = clock
        self.report = FixityReport(options.method, run_key=options.run_key,
                                   prefix=options.prefix, strict=options.strict,
                                   budget=options.budget)
        self.started = clock()

    def run(self) -> FixityReport:
        with db.connect(self.settings, autocommit=True) as conn:
            db.require_migrated_conn(conn)
            before = self._before(conn)
            try:
                if self.options.full:
                    self._full_pass(conn, before)
                elif self.options.budget.max_seconds is None:
                    self._quick_beside_listing(conn, before)
                else:
                    self._quick_pass(conn, before)
            except S3Unavailable as exc:  # a listing: nothing checked from it
                self.report.s3_failed = True
                self._end(FixityStatus.FAILED, exc.one_line())
            self._count_left(conn, before)
        self.report.durations["total"] = self.clock() - self.started
        return self.report

    # -- selection --------------------------------------------------------------------------

    def _before(self, conn: psycopg.Connection[Any]) -> datetime:
        row = conn.execute(db.query("fixity_clock")).fetchone()
        assert row is not None
        now: datetime = row["now"]
        older = self.options.older_than_s
        return now if older is None else now - timedelta(seconds=older)

    def _pages(self, conn: psycopg.Connection[Any], name: str,
               before: datetime) -> Iterator[list[dict[str, Any]]]:
        """The selection page by page (keyset on (age, id)); rows checked meanwhile are newer
        than `before`, so they never come back."""
        after_age, after_id = _START, 0
        while True:
            rows = conn.execute(db.query(name), {
                "prefix": self.options.prefix, "before": before, "after_age": after_age,
                "after_id": after_id, "limit": PAGE_SIZE}).fetchall()
            if not rows:
                return
            yield rows
            after_age, after_id = rows[-1]["age"], rows[-1]["id"]

    def _count_left(self, conn: psycopg.Connection[Any], before: datetime) -> None:
        row = conn.execute(db.query("fixity_left"), {
            "prefix": self.options.prefix, "full": self.options.full,
            "before": before}).fetchone()
        left = row["left"] if row is not None else 0
        counts = self.report.counts
        counts.not_reached = max(0, int(left) - counts.not_verified)
        counts.selected = counts.checked + counts.not_reached

    # -- budget and end ---------------------------------------------------------------------

    def _may_start(self, next_size: int) -> bool:
        """False (and the run's status set) when a stop or the budget ends the run here."""
        if self.stop.is_set():
            self._end(FixityStatus.INTERRUPTED, "interrupted: the next run goes on from here")
            return False
        counts = self.report.counts
        if not self.options.budget.allows(files_done=counts.checked,
                                          bytes_done=counts.bytes_verified,
                                          elapsed=self.clock() - self.started,
                                          next_size=next_size):
            self._end(FixityStatus.BUDGET, "budget spent: the next run goes on from here")
            return False
        return True

    def _end(self, status: FixityStatus, message: str) -> None:
        self.report.status, self.report.message = status, message

    @property
    def _over(self) -> bool:
        return self.report.status is not FixityStatus.COMPLETED

    # -- the passes -------------------------------------------------------------------------

    def _full_pass(self, conn: psycopg.Connection[Any], before: datetime) -> None:
        for rows in self._pages(conn, "fixity_full_page", before):
            for row in rows:
                file = _file(row)
                if not self._may_start(file.size):
                    return
                self._record(conn, [self.full_check(file)])
                if self.report.s3_failed:
                    return

    def _quick_pass(self, conn: psycopg.Connection[Any], before: datetime) -> None:
        self._load_listings(conn)
        for rows in self._pages(conn, "fixity_quick_page", before):
            if not self._may_start(0):
                return
            checks = []
            for row in rows:
                file = _file(row)
                verdict = quick_verdict(file, row["listed_size"], row["listed_etag"])
                checks.append(self.full_check(file) if verdict.read
                              else self._check(file, verdict, Method.QUICK, row["listed_etag"]))
                if self.report.s3_failed:
                    break
            self._record(conn, checks)
            if self._over or self.report.s3_failed:
                return

    def _buckets(self, conn: psycopg.Connection[Any]) -> list[str]:
        return [r["bucket"] for r in conn.execute(db.query("fixity_buckets"),
                                                  {"prefix": self.options.prefix}).fetchall()]

    def _quick_beside_listing(self, conn: psycopg.Connection[Any], before: datetime) -> None:
        """A quick pass with no time budget: each bucket's listing walked beside its files in
        key order, the listing's pages fetched and parsed (a thread of their own) while the
        checks are written, so the pass takes little more than the listing."""
        for bucket in self._buckets(conn):
            pages = prefetch(in_pages(self._listing(bucket), LISTING_PAGE))
            try:
                self._walk(conn, bucket, (info for page in pages for info in page), before)
            finally:
                pages.close()
            if self._over or self.report.s3_failed:
                return

    def _listing(self, bucket: str) -> Iterator[ObjectInfo]:
        """The bucket's objects under the prefix, its folders listed concurrently (the
        import's lister: MPR_LIST_CONCURRENCY, else one thread per carrier folder, at most 8)."""
        return listing.list_objects(self.storage, bucket, self.options.prefix,
                                    concurrency=list_concurrency(self.settings, default_rules()))

    def _walk(self, conn: psycopg.Connection[Any], bucket: str,
              listing: Iterator[ObjectInfo], before: datetime) -> None:
        params = {"bucket": bucket, "prefix": self.options.prefix, "before": before}
        with db.connect(self.settings) as reader, reader.cursor(name="fixity_walk") as cur:
            cur.itersize = PAGE_SIZE
            cur.execute(db.query("fixity_quick_by_key"), params)
            batch: list[Check] = []
            for row, entry in paired(cur, listing):
                file = _file(row)
                verdict = quick_verdict(file, entry.size if entry else None,
                                        entry.etag if entry else None)
                batch.append(self.full_check(file) if verdict.read else self._check(
                    file, verdict, Method.QUICK, entry.etag if entry else None))
                if self.report.s3_failed or len(batch) >= PAGE_SIZE:
                    self._record(conn, batch)
                    batch = []
                    if self.report.s3_failed or not self._may_start(0):
                        return
            self._record(conn, batch)

    def _load_listings(self, conn: psycopg.Connection[Any]) -> None:
        """One listing of every bucket holding selected files, into the session's table."""
        buckets = self._buckets(conn)
        began = self.clock()
        with conn.transaction():
            conn.execute(db.query("fixity_create_listing"))
            for bucket in buckets:
                with conn.cursor() as cur, cur.copy(db.query("fixity_copy_listing")) as copy:
                    for info in self._listing(bucket):
                        copy.write_row((bucket, info.key, info.size, info.etag))
        self.report.durations["listing"] = self.clock() - began

    # -- one file ---------------------------------------------------------------------------

    @staticmethod
    def _check(file: CataloguedFile, verdict: Verdict, method: Method, etag: str | None,
               bytes_read: int = 0) -> Check:
        assert verdict.outcome is not None
        return Check(file, verdict.outcome, method, verdict.detail,
                     (etag or file.etag or "").strip('"') or None, bytes_read)

    def full_check(self, file: CataloguedFile) -> Check:
        """Read `file` through MD5, retrying S3's failures; `not_verified` when it could not
        (and the run marked as failed on S3 when S3 itself failed)."""
        failure: StorageError | None = None
        for attempt in range(READ_ATTEMPTS):
            try:
                return self._read(file)
            except S3Unavailable as exc:
                failure = exc
                if attempt + 1 < READ_ATTEMPTS and self.stop.wait(RETRY_WAIT_S * 2 ** attempt):
                    break
            except StorageError as exc:  # this object refused (access denied, gone mid-read)
                return self._not_verified(file, exc, attempts=attempt + 1)
        assert failure is not None
        self.report.s3_failed = True
        self._end(FixityStatus.FAILED, failure.one_line())
        return self._not_verified(file, failure, attempts=READ_ATTEMPTS)

    def _not_verified(self, file: CataloguedFile, exc: StorageError, *, attempts: int) -> Check:
        detail = (f"full: not read after {attempts} attempt(s): {exc.one_line()}; nothing "
                  "concluded, the next run tries again")
        return Check(file, FixityOutcome.NOT_VERIFIED, Method.FULL, detail, file.etag)

    def _read(self, file: CataloguedFile) -> Check:
        info = self.storage.head(file.bucket, file.key)
        if info is None:
            return self._check(file, Verdict(FixityOutcome.MISSING, "full: no object at the "
                                             "key"), Method.FULL, None)
        if info.size != file.size or file.expected_md5 is None:  # settled without the bytes
            verdict = quick_verdict(file, info.size, info.etag)
            if verdict.outcome is not None:
                return self._check(file, verdict, Method.FULL, info.etag)
        md5, size = md5_of_chunks(self.storage.iter_chunks(file.bucket, file.key))
        return self._check(file, full_verdict(file, md5, size), Method.FULL, info.etag, size)

    # -- recording --------------------------------------------------------------------------

    def _record(self, conn: psycopg.Connection[Any], checks: list[Check]) -> None:
        """The checks' events and, for those that concluded, the files' fixity columns, in
        one transaction; then into the report."""
        concluded = [c for c in checks if c.outcome is not FixityOutcome.NOT_VERIFIED]
        with conn.transaction():
            events.record(conn, [event_of(c, self.options.run_key) for c in checks])
            if concluded:
                conn.execute(db.query("fixity_record_checks"), {
                    "ids": [c.file.id for c in concluded],
                    "hows": [c.method.value for c in concluded],
                    "outcomes": [c.outcome.value for c in concluded]})
        for check in checks:
            self.report.add(check)
            self.on_check(check)
