"""The end of phase 3: the planned assets written to the catalogue in batches.

One transaction per batch (`ImportOptions.batch_assets` assets, 200 by default): an
interrupted run loses at most the batch in flight, rolled back, and the next run imports it
again. A batch the catalogue refuses (a constraint, a value jsonb refuses) is retried asset
by asset, so only the asset refused is left out, with a problem that names it. A dry run
counts what would be inserted and writes nothing.

Each batch's preservation events (mpr_cli.events) are written in its transaction, by one
statement, for the files the batch actually inserted (a file already catalogued is left
untouched and gets none): the checks the plan made (message digest calculation, format
identification), then per file `validation` (success, or warning naming the rules' warnings
about it) and `ingestion`. A master that was on tape and is now in the bucket, with its
catalogued MD5, gets a `recovery` event with its row's update. The batch's masters and
streaming copies get their technical summary (sql/012) in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mpr_cli import db, events, summary
from mpr_cli.errors import RowsRefused
from mpr_cli.events import EventType, NewEvent, Outcome
from mpr_cli.phases.ingest import IngestPlan
from mpr_cli.problems import Problem, Reason, Severity
from mpr_cli.report import Report
from mpr_cli.rules import Role
from mpr_cli.validation.inventory import Candidate


class BatchInserter:
    """Collects planned assets and writes them in batches, one transaction per batch."""

    def __init__(self, conn: Any, run_id: int | None, report: Report, dry_run: bool,
                 existing: set[str], bucket: str = "", run_key: str | None = None) -> None:
        self.conn, self.run_id, self.report, self.bucket = conn, run_id, report, bucket
        self.run_key = run_key
        self.dry_run, self.existing = dry_run, existing
        self.batch: list[IngestPlan] = []
        self.restored: list[Candidate] = []

    def restore(self, candidate: Candidate) -> None:
        """A master on tape now in the bucket: mark its row (with the next batch)."""
        self.restored.append(candidate)

    def add(self, plan: IngestPlan) -> None:
        if plan.ok and plan.rows:
            self.batch.append(plan)

    def discard(self) -> None:
        """Forget what is waiting (safe-run: nothing is inserted when phase 3 found problems)."""
        self.batch.clear()
        self.restored.clear()

    def flush(self) -> None:
        if self.restored and not self.dry_run:
            with self.conn.transaction():
                back = [c for c in self.restored
                        if db.mark_restored(self.conn, self.bucket, c.key, c.size, c.etag)]
                events.record(self.conn, [self._from_tape(c) for c in back])
        self.restored.clear()
        if not self.batch:
            return
        if self.dry_run:
            new_assets = sum(1 for p in self.batch if p.code not in self.existing)
            new_files = sum(len(p.rows) for p in self.batch)
        else:
            try:
                new_assets, new_files = self._insert(self.batch)
            except RowsRefused:  # retried asset by asset: only the one refused is left out
                new_assets, new_files = self._insert_one_by_one()
        self.report.counts.inserted_assets += new_assets
        self.report.counts.inserted_files += new_files
        self.batch.clear()

    def _insert(self, plans: list[IngestPlan]) -> tuple[int, int]:
        """The plans' assets, files, their technical summaries (mpr_cli.summary) and events in
        one transaction."""
        assets = [(p.code, p.media_type.value) for p in plans]
        rows = [row for p in plans for row in p.rows]
        with self.conn.transaction():
            inserted = db.insert_files(self.conn, self.run_id, assets, rows)
            summary.fill(self.conn, [(row.bucket, row.key) for row in rows])
            events.record(self.conn, [e for p in plans for e in self._events(p)],
                          imported_by=self.run_id)
            return inserted

    def _events(self, plan: IngestPlan) -> list[NewEvent]:
        """The plan's checks, then each file's validation and ingestion (of this run)."""
        made = [replace(e, run_key=self.run_key) for e in plan.events]
        for row in plan.rows:
            warned = sorted({p.reason.value for p in plan.problems
                             if p.key == row.key and p.severity is Severity.WARNING})
            valid = (NewEvent(EventType.VALIDATION, Outcome.WARNING,
                              "passes the asset's rules with warnings: " + ", ".join(warned),
                              row.bucket, row.key, run_key=self.run_key) if warned else
                     NewEvent(EventType.VALIDATION, Outcome.SUCCESS, "passes the asset's rules",
                              row.bucket, row.key, run_key=self.run_key))
            where = "" if row.in_bucket else " (on tape: recorded from its sidecars)"
            made += [valid, NewEvent(EventType.INGESTION, Outcome.SUCCESS,
                                     f"catalogued as the {Role(row.role).value} file of "
                                     f"{plan.code}{where}", row.bucket, row.key,
                                     run_key=self.run_key)]
        return made

    def _from_tape(self, candidate: Candidate) -> NewEvent:
        return NewEvent(EventType.RECOVERY, Outcome.SUCCESS,
                        "the master catalogued as on tape is now in the bucket with its "
                        "catalogued MD5", self.bucket, candidate.key, run_key=self.run_key)

    def _insert_one_by_one(self) -> tuple[int, int]:
        new_assets = new_files = 0
        for plan in self.batch:
            try:
                added = self._insert([plan])
            except RowsRefused as exc:
                self.report.add(_refused(plan, exc))
                continue
            new_assets, new_files = new_assets + added[0], new_files + added[1]
        return new_assets, new_files


def _refused(plan: IngestPlan, exc: RowsRefused) -> Problem:
    if exc.duplicate:  # e.g. a streaming copy recorded by a transcode while this import ran
        return Problem.make(
            Reason.DUPLICATE_ROLE, plan.rows[0].key,
            f"{plan.code} already has such a file in the catalogue (recorded while this import "
            f"ran: {exc.message}): the asset was left out; check it with the catalogue and "
            "remove the extra file from the delivery", inventory_code=plan.code)
    return Problem.make(
        Reason.INTERNAL_ERROR, plan.rows[0].key,
        f"the catalogue refused {plan.code} ({exc.message}): the asset was left out, the "
        "others were inserted; report this as a bug", inventory_code=plan.code)
