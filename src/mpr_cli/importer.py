"""The main job: `mpr import` (three phases, recorded) and `mpr validate` (no database).

This module wires the phases to storage, the catalogue and the report. It never prints: it
tells a `Progress` what happens and returns a Report; the CLI shows both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.errors import MprError, RowsRefused, describe
from mpr_cli.phases.crossref import cross_reference
from mpr_cli.phases.discover import Discovery, discover
from mpr_cli.phases.ingest import AssetPlan, AssetPlanner, VerifyMode, group_assets, plan_assets
from mpr_cli.problems import Phase, Problem, Reason
from mpr_cli.report import Report, RunStatus
from mpr_cli.rules import Rules
from mpr_cli.storage import Storage
from mpr_cli.validation.inventory import Candidate


class Progress(Protocol):
    def start(self, phase: str, total: int | None = None) -> None: ...
    def update(self, phase: str, completed: int) -> None: ...
    def finish(self, phase: str) -> None: ...


class NoProgress:
    def start(self, phase: str, total: int | None = None) -> None:
        pass

    def update(self, phase: str, completed: int) -> None:
        pass

    def finish(self, phase: str) -> None:
        pass


@dataclass(frozen=True)
class ImportOptions:
    prefix: str = ""
    dry_run: bool = False
    safe_run: bool = False
    verify: VerifyMode = VerifyMode.AUTO
    batch_assets: int = 200
    command: str = "import"  # or "nightly": how the run is recorded
    run_key: str = ""


@contextmanager
def _timed(report: Report, phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.durations[phase] = report.durations.get(phase, 0.0) + time.monotonic() - started


def stop_point(stop: threading.Event | None) -> None:
    """Where an import may stop cleanly: no query and no batch in flight."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


def _discover(storage: Storage, settings: Settings, rules: Rules, options: ImportOptions,
              report: Report, progress: Progress, stop: threading.Event | None) -> Discovery:
    progress.start("discover")

    def listed(n: int) -> None:
        progress.update("discover", n)
        stop_point(stop)

    with _timed(report, "discover"):
        objects = storage.list_objects(settings.s3_bucket_in, options.prefix)
        found = discover(objects, rules, progress=listed)
    progress.finish("discover")
    report.counts.listed = found.listed
    report.counts.excluded = found.excluded
    report.counts.rejected = len(found.problems)
    report.extend(found.problems)
    return found


class _Inserter:
    """Collects planned assets and writes them in batches, one transaction per batch."""

    def __init__(self, conn: Any, run_id: int | None, report: Report, dry_run: bool,
                 existing: set[str], bucket: str = "") -> None:
        self.conn, self.run_id, self.report, self.bucket = conn, run_id, report, bucket
        self.dry_run, self.existing = dry_run, existing
        self.batch: list[AssetPlan] = []
        self.restored: list[Candidate] = []

    def restore(self, candidate: Candidate) -> None:
        """A master on tape now in the bucket: mark its row (with the next batch)."""
        self.restored.append(candidate)

    def add(self, plan: AssetPlan) -> None:
        if plan.ok and plan.rows:
            self.batch.append(plan)

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


def _refused(plan: AssetPlan, exc: RowsRefused) -> Problem:
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


class _BytesMeter:
    """Bytes streamed through MD5 by the planner's threads -> the "verify" progress bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.lock, self.done, self.total = progress, threading.Lock(), 0, 0

    def start(self, total: int) -> None:
        self.total = total
        if total:
            self.progress.start("verify", total=total)

    def add(self, size: int) -> None:
        with self.lock:
            self.done += size
            self.progress.update("verify", self.done)

    def finish(self) -> None:
        if self.total:
            self.progress.finish("verify")


@contextmanager
def _planner(storage: Storage, settings: Settings, options: ImportOptions, progress: Progress,
             to_verify: list[Candidate]) -> Iterator[AssetPlanner]:
    """The phase-3 planner, with a "verify" bar when checksums need objects streamed."""
    meter = _BytesMeter(progress)
    with AssetPlanner(storage, settings.s3_bucket_in, options.verify,
                      on_bytes=meter.add) as planner:
        meter.start(planner.bytes_to_verify(to_verify))
        yield planner
    meter.finish()


def _ingest(planner: AssetPlanner, assets: list[Any], inserter: _Inserter, options: ImportOptions,
            settings: Settings, report: Report, progress: Progress,
            stop: threading.Event | None = None) -> None:
    progress.start("ingest", total=len(assets))
    progress.start("sidecars")
    done = fetched = 0
    with _timed(report, "ingest"):
        for plan in plan_assets(planner, assets, settings.io_workers):
            stop_point(stop)
            report.extend(plan.problems)
            report.counts.bytes_verified += plan.bytes_verified
            inserter.add(plan)
            done += 1
            fetched += plan.sidecars_fetched
            progress.update("ingest", done)
            progress.update("sidecars", fetched)
            if not options.safe_run and len(inserter.batch) >= options.batch_assets:
                inserter.flush()
    progress.finish("ingest")
    progress.finish("sidecars")
    if options.safe_run and any(p.phase is Phase.INGEST for p in report.problems):
        inserter.batch.clear()
        inserter.restored.clear()
        report.status = RunStatus.ABORTED
        report.message = ("safe-run: phase 3 found problems, nothing was inserted; fix them "
                          "(see the problems) and run again")
        return
    with _timed(report, "insert"):
        inserter.flush()


def run_import(settings: Settings, rules: Rules, options: ImportOptions,
               progress: Progress | None = None, stop: threading.Event | None = None) -> Report:
    """Run the three phases; record the run unless it is a dry run. When `stop` is set the
    run ends at the next safe point as if interrupted (KeyboardInterrupt)."""
    progress = progress or NoProgress()
    report = Report(options.command, dry_run=options.dry_run, safe_run=options.safe_run,
                    prefix=options.prefix, run_key=options.run_key)
    storage = Storage(settings)
    lock = nullcontext() if options.dry_run else db.import_lock(settings)
    try:
        with lock, db.connect(settings, autocommit=True) as conn:
            _run_recorded(conn, storage, settings, rules, options, report, progress, stop)
    except MprError as exc:  # also before the run started: the lock held, no database
        if getattr(exc, "report", None) is None:
            report.status = RunStatus.FAILED
            report.message = exc.one_line()
            exc.report = report  # type: ignore[attr-defined]  # the CLI still writes --report
        raise
    return report


def _run_recorded(conn: Any, storage: Storage, settings: Settings, rules: Rules,
                  options: ImportOptions, report: Report, progress: Progress,
                  stop: threading.Event | None) -> None:
    """The phases, with the run recorded in import_runs (unless a dry run) however they end."""
    db.require_migrated_conn(conn)
    if not options.dry_run:
        report.run_id = db.start_run(conn, options.command, _mode(options), options.prefix,
                                     options.run_key or None)
    try:
        _import_phases(conn, storage, settings, rules, options, report, progress, stop)
    except KeyboardInterrupt as exc:
        report.status = RunStatus.ABORTED
        report.message = "interrupted: work in flight rolled back; run again to complete it"
        exc.report = report  # type: ignore[attr-defined]  # the CLI still writes --report
        raise
    except MprError as exc:
        report.status = RunStatus.FAILED
        report.message = exc.one_line()
        exc.report = report  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        report.status = RunStatus.FAILED
        report.message = f"internal error: {describe(exc)}"
        exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        report.sort_problems()
        _record(conn, report)


def _import_phases(conn: Any, storage: Storage, settings: Settings, rules: Rules,
                   options: ImportOptions, report: Report, progress: Progress,
                   stop: threading.Event | None) -> None:
    found = _discover(storage, settings, rules, options, report, progress, stop)
    stop_point(stop)
    progress.start("crossref", total=len(found.candidates))
    with _timed(report, "crossref"):
        crossed = cross_reference(conn, settings.s3_bucket_in, found.candidates)
        existing = db.existing_assets(conn, sorted({c.inventory_code for c in crossed.new}))
    progress.update("crossref", len(found.candidates))
    progress.finish("crossref")
    report.counts.skipped = len(crossed.known)
    report.counts.accepted = len(crossed.new) + len(crossed.restored)
    report.extend(crossed.problems)
    assets = group_assets(crossed.new, crossed.known, existing)
    inserter = _Inserter(conn, report.run_id, report, options.dry_run, set(existing),
                         settings.s3_bucket_in)
    restored = [candidate for candidate, _ in crossed.restored]
    with _planner(storage, settings, options, progress, crossed.new + restored) as planner:
        for candidate, catalogued_md5 in crossed.restored:
            problem = planner.check_restored(candidate, catalogued_md5)
            if problem is None:
                inserter.restore(candidate)
            else:
                report.add(problem)
        stop_point(stop)
        _ingest(planner, assets, inserter, options, settings, report, progress, stop)


def _record(conn: Any, report: Report) -> None:
    if report.run_id is None:
        return
    if conn.info.transaction_status != 0:  # a batch was in flight: roll it back first
        conn.rollback()
    summary = report.to_dict()
    db.finish_run(conn, report.run_id, str(report.status), summary["counts"], summary)


def _mode(options: ImportOptions) -> str:
    return "safe_run" if options.safe_run else "dry_run" if options.dry_run else "normal"


def run_validate(settings: Settings, rules: Rules, options: ImportOptions,
                 progress: Progress | None = None) -> Report:
    """Phases 1 and 3 on the bucket's contents, with no database (for CI gates)."""
    progress = progress or NoProgress()
    report = Report("validate", dry_run=True, prefix=options.prefix, run_key=options.run_key)
    storage = Storage(settings)
    found = _discover(storage, settings, rules, options, report, progress, None)
    report.counts.accepted = len(found.candidates)
    assets = group_assets(found.candidates, [], {})
    inserter = _Inserter(None, None, report, True, set())
    with _planner(storage, settings, options, progress, found.candidates) as planner:
        _ingest(planner, assets, inserter,
                ImportOptions(prefix=options.prefix, verify=options.verify),
                settings, report, progress)
    report.sort_problems()
    return report
