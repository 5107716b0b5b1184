"""The end of phase 3: the planned assets written to the catalogue in batches.

One transaction per batch (`ImportOptions.batch_assets` assets, 200 by default): an
interrupted run loses at most the batch in flight, rolled back, and the next run imports it
again. A batch the catalogue refuses (a constraint, a value jsonb refuses) is retried asset
by asset, so only the asset refused is left out, with a problem that names it. A dry run
counts what would be inserted and writes nothing.
"""

from __future__ import annotations

from typing import Any

from mpr_cli import db
from mpr_cli.errors import RowsRefused
from mpr_cli.phases.ingest import IngestPlan
from mpr_cli.problems import Problem, Reason
from mpr_cli.report import Report
from mpr_cli.validation.inventory import Candidate


class BatchInserter:
    """Collects planned assets and writes them in batches, one transaction per batch."""

    def __init__(self, conn: Any, run_id: int | None, report: Report, dry_run: bool,
                 existing: set[str], bucket: str = "") -> None:
        self.conn, self.run_id, self.report, self.bucket = conn, run_id, report, bucket
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
                for c in self.restored:
                    db.mark_restored(self.conn, self.bucket, c.key, c.size, c.etag)
        self.restored.clear()
        if not self.batch:
            return
        assets = [(p.code, p.media_type.value) for p in self.batch]
        rows = [row for p in self.batch for row in p.rows]
        if self.dry_run:
            new_assets = sum(1 for code, _ in assets if code not in self.existing)
            new_files = len(rows)
        else:
            try:
                new_assets, new_files = self._insert(assets, rows)
            except RowsRefused:  # retried asset by asset: only the one refused is left out
                new_assets, new_files = self._insert_one_by_one()
        self.report.counts.inserted_assets += new_assets
        self.report.counts.inserted_files += new_files
        self.batch.clear()

    def _insert(self, assets: list[tuple[str, str]], rows: list[db.FileRow]) -> tuple[int, int]:
        with self.conn.transaction():
            return db.insert_files(self.conn, self.run_id, assets, rows)

    def _insert_one_by_one(self) -> tuple[int, int]:
        new_assets = new_files = 0
        for plan in self.batch:
            try:
                added = self._insert([(plan.code, plan.media_type.value)], plan.rows)
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
