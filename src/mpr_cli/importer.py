"""The main job: `mpr import` (three phases, recorded) and `mpr validate` (no database).

An `ImportRun` is one run: its settings, rules, options, storage, report, progress and stop
event, and the stage list (`ImportRun.stages`, readable in one place as beets'
`ImportSession.run`). It wires the phases to storage, the catalogue and the report. It never
prints: it tells a `Progress` what happens and returns a Report; the CLI shows both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from mpr_cli import db, known
from mpr_cli.config import Settings
from mpr_cli.errors import ImportInterrupted, MprError, describe
from mpr_cli.fixity.reading import in_pages
from mpr_cli.phases.crossref import missing_problem, record_missing, record_settled, settle_changes
from mpr_cli.phases.discover import Scope, Survey, Surveyor, survey
from mpr_cli.phases.ingest import (
    AssetPlanner,
    VerifyMode,
    group_assets,
    plan_ingest,
    streamed_bytes,
)
from mpr_cli.phases.insert import BatchInserter
from mpr_cli.phases.merge import merged
from mpr_cli.phases.sources import InventoryChoice, ObjectSource
from mpr_cli.phases.spill import AssetSpill
from mpr_cli.pictures.fill import after_import
from mpr_cli.problems import Phase
from mpr_cli.report import Report, RunStatus
from mpr_cli.rules import Rules
from mpr_cli.storage import Storage
from mpr_cli.validation.assets import AssetFiles
from mpr_cli.validation.inventory import Candidate, classify_key

ASSETS_AT_ONCE = 500  # assets whose catalogue entries phase 3 looks up together
INTERRUPTED = "interrupted: work in flight rolled back; run again to complete it"
SAFE_RUN_ABORTED = ("safe-run: phase 3 found problems, nothing was inserted; fix them "
                    "(see the problems) and run again")


class Progress(Protocol):
    """Told what each phase of a run does (the CLI's bars or log lines)."""

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
    strict: bool = False  # known errors count in the exit code too
    inventory: InventoryChoice | None = None  # read the objects from an S3 Inventory

    @classmethod
    def from_settings(cls, settings: Settings, *, prefix: str, verify: str,
                      dry_run: bool | None, safe_run: bool | None, run_key: str,
                      command: str = "import", strict: bool | None = None,
                      inventory: InventoryChoice | None = None) -> ImportOptions:
        """The options of `mpr import` and `mpr nightly`: a flag given on the command line
        (not None) wins over MPR_DRY_RUN / MPR_SAFE_RUN / MPR_STRICT; the batch size is
        MPR_BATCH_ASSETS."""
        return cls(prefix=prefix, verify=VerifyMode(verify), command=command, inventory=inventory,
                   batch_assets=settings.batch_assets, run_key=run_key,
                   strict=settings.strict if strict is None else strict,
                   dry_run=settings.dry_run if dry_run is None else dry_run,
                   safe_run=settings.safe_run if safe_run is None else safe_run)

    @property
    def mode(self) -> str:
        """How the run is recorded in import_runs.mode."""
        return "safe_run" if self.safe_run else "dry_run" if self.dry_run else "normal"


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


class ImportRun:
    """One run of `mpr import` (`run`) or `mpr validate` (`validate`).

    `report` is this run's report from the start: however the run ends, it says how (the CLI
    writes it for --report even when the run raised: see `report_of`). When `stop` is set the
    run ends at the next safe point, with ImportInterrupted carrying the report.
    """

    def __init__(self, settings: Settings, rules: Rules, options: ImportOptions,
                 progress: Progress | None = None, stop: threading.Event | None = None, *,
                 report: Report | None = None) -> None:
        self.settings, self.rules, self.options = settings, rules, options
        self.progress: Progress = progress or NoProgress()
        self.stop = stop
        self.report = report or Report(options.command, dry_run=options.dry_run,
                                       safe_run=options.safe_run, prefix=options.prefix,
                                       run_key=options.run_key, strict=options.strict)
        self.storage = Storage(settings)
        self.source = ObjectSource(settings, self.storage, rules, options.prefix,
                                   options.inventory)
        self.spill: AssetSpill | None = None  # the new files, while the run lasts
        self.surveyed: Survey | None = None  # phases 1 and 2's result, once listed
        self.failure: BaseException | None = None  # the exception the report ended with

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Report:
        """Run the three phases; record the run unless it is a dry run."""
        lock = nullcontext() if self.options.dry_run else db.import_lock(self.settings)
        try:
            self.source.open()  # an inventory refused is no run: nothing is recorded
            with lock, db.connect(self.settings, autocommit=True) as conn, self.spilling():
                self._run_recorded(conn)
        except MprError as exc:  # also before the run started: the lock held, no database
            if exc is not self.failure:
                self._end(RunStatus.FAILED, exc.one_line(), exc)
            raise
        return self.report

    def report_of(self, exc: BaseException) -> Report | None:
        """The report, when `exc` (raised by `run`) is what it ended with: any MprError, and
        anything raised once the run started; None for a run that never started."""
        return self.report if exc is self.failure else None

    def stages(self, conn: Any) -> None:
        """The stage list of an import: list beside the catalogue, settle what changed, check
        (and insert) the new files asset by asset."""
        found = self.survey(conn)
        self.stop_point()
        self.cross_reference(conn, found)
        inserter = BatchInserter(conn, self.report.run_id, self.report, self.options.dry_run,
                                 set(), self.settings.s3_bucket_in,
                                 self.options.run_key or None)
        with self.planner(found.to_verify) as planner:
            self.check_restored(planner, found, inserter)
            self.check_changed(conn, planner, found)
            self.stop_point()
            self.ingest(planner, self.assets(conn, found, inserter), inserter)
        self.pictures(conn)

    @contextmanager
    def spilling(self) -> Iterator[AssetSpill]:
        """The run's spill of new files (phases/spill.py), removed when the run ends."""
        with AssetSpill(self.rules, self.settings.temp_dir) as spill:
            self.spill = spill
            try:
                yield spill
            finally:
                self.spill = None

    def pictures(self, conn: Any) -> None:
        """After the batches' commits, with MPR_PICTURES=on: the pictures of the streaming
        copies this run catalogued (a picture that fails is a warning, never the run's)."""
        stop = self.stop
        after_import(self.settings, self.storage, conn, self.report,
                     stop=None if stop is None else stop.is_set)

    def validate(self) -> Report:
        """Phases 1 and 3 on the bucket's contents, with no database (for CI gates)."""
        self.source.open()
        with self.spilling():
            found = self.survey(None)
            self.report.counts.accepted = found.new
            inserter = BatchInserter(None, None, self.report, True, set())
            with self.planner(found.to_verify) as planner:
                self.ingest(planner, self.assets(None, found, inserter), inserter)
        self.report.sort_problems()
        return self.report

    def _run_recorded(self, conn: Any) -> None:
        """The stages, with the run recorded in import_runs (unless a dry run) however they
        end."""
        db.require_migrated_conn(conn)
        options = self.options
        if not options.dry_run:
            self.report.run_id = db.start_run(conn, options.command, options.mode,
                                              options.prefix, options.run_key or None)
        try:
            self.stages(conn)
        except ImportInterrupted:
            raise
        except KeyboardInterrupt as exc:  # a second Ctrl-C: not at a safe point
            raise self._interrupted() from exc
        except MprError as exc:
            self._end(RunStatus.FAILED, exc.one_line(), exc)
            raise
        except Exception as exc:
            self._end(RunStatus.FAILED, f"internal error: {describe(exc)}", exc)
            raise
        finally:
            self.report.sort_problems()
            _record(conn, self.report, self.settings.s3_bucket_in, self.problem_etags())

    def problem_etags(self) -> dict[str, str]:
        """The listed ETag of each key a problem names (known problems are told apart by
        it); a key that was not listed (a master on tape) has none."""
        found, spill = self.surveyed, self.spill
        if found is None or spill is None:
            return {}
        keys = {p.key for p in self.report.problems}
        etags = {key: etag for key, etag in found.etags.items() if key in keys}
        etags.update(spill.etags(keys))
        held = [c for c, _ in found.restored] + [change.candidate for change in found.changed]
        etags.update((c.key, c.etag) for c in held if c.key in keys)
        return etags

    def _end(self, status: RunStatus, message: str, exc: BaseException) -> None:
        self.report.status, self.report.message, self.failure = status, message, exc

    def _interrupted(self) -> ImportInterrupted:
        self.report.status, self.report.message = RunStatus.ABORTED, INTERRUPTED
        interrupted = ImportInterrupted(self.report)
        self.failure = interrupted
        return interrupted

    def stop_point(self) -> None:
        """Where an import may stop cleanly: no query and no batch in flight."""
        if self.stop is not None and self.stop.is_set():
            raise self._interrupted()

    # -- the stages -------------------------------------------------------------------------

    def survey(self, conn: Any) -> Survey:
        """Phases 1 and 2: the objects (listed, or from an inventory) classified by the rules
        and walked beside the catalogue's rows in one pass; the new files spilled. With no
        database (`mpr validate`) every candidate is new."""
        progress, report, spill = self.progress, self.report, self.spill
        assert spill is not None
        report.inventory = self.source.describe()
        progress.start("discover")

        def listed(n: int) -> None:
            progress.update("discover", n)
            self.stop_point()

        def streamed(candidate: Candidate) -> int:
            return streamed_bytes(self.options.verify, candidate)

        scope = self.source.scope() if conn is not None else Scope(complete=False)
        surveyor = Surveyor(self.rules, spill, scope, streamed)
        with _timed(report, "discover"), self._reading(conn):
            rows = (db.catalogue_rows(conn, self.settings.s3_bucket_in, self.options.prefix)
                    if conn is not None else ())
            found = survey(merged(self.source.objects(), rows), surveyor, on_listed=listed)
        progress.finish("discover")
        report.counts.listed = found.listed
        report.counts.excluded = found.excluded
        report.counts.rejected = len(found.problems)
        report.extend(found.problems)
        self.surveyed = found
        return found

    @staticmethod
    def _reading(conn: Any) -> Any:
        """The read-only transaction the catalogue's server-side cursor lives in."""
        return nullcontext() if conn is None else conn.transaction()

    def cross_reference(self, conn: Any, found: Survey) -> None:
        """Phase 2's records: the missing files (reported and recorded), and the counts."""
        progress, report = self.progress, self.report
        progress.start("crossref", total=found.listed)
        with _timed(report, "crossref"):
            self.record_missing(conn, found)
        progress.update("crossref", found.listed)
        progress.finish("crossref")
        report.counts.skipped = found.known
        report.counts.accepted = found.new + len(found.restored)
        report.extend([missing_problem(missing) for missing in found.missing])

    def assets(self, conn: Any, found: Survey,
               inserter: BatchInserter) -> Iterator[AssetFiles]:
        """The spilled new files as assets, in code order, each with what the catalogue holds
        of it (looked up `ASSETS_AT_ONCE` assets at a time; none without a database)."""
        spill = self.spill
        assert spill is not None
        gone = {missing.key for missing in found.missing}
        for batch in in_pages(spill.groups(), ASSETS_AT_ONCE):
            yield from self._assets_of(conn, batch, gone, inserter)

    def _assets_of(self, conn: Any, batch: list[tuple[str, list[Candidate]]],
                   gone: set[str], inserter: BatchInserter) -> list[AssetFiles]:
        new = [candidate for _, files in batch for candidate in files]
        if conn is None:
            return group_assets(new, [], {}, self.rules)
        codes = [code for code, _ in batch]
        existing = db.existing_assets(conn, codes)
        inserter.existing.update(existing)
        siblings = [classify_key(key, size, etag, self.rules) for key, size, etag
                    in db.catalogued_siblings(conn, self.settings.s3_bucket_in, codes)
                    if key not in gone]
        known = [c for c in siblings if isinstance(c, Candidate)]
        return group_assets(new, known, existing, self.rules)

    def check_restored(self, planner: AssetPlanner, found: Survey,
                       inserter: BatchInserter) -> None:
        """Masters catalogued as on tape, now in the bucket: marked restored when the same."""
        for candidate, catalogued_md5 in found.restored:
            problem = planner.check_restored(candidate, catalogued_md5)
            if problem is None:
                inserter.restore(candidate)
                self.report.counts.restored += 1
            else:
                self.report.add(problem)

    def record_missing(self, conn: Any, found: Survey) -> None:
        """Catalogued objects the listing no longer holds: recorded as missing (reported by
        this run only; a dry run records nothing, so it reports them again)."""
        self.report.counts.missing = len(found.missing)
        if found.missing and not self.options.dry_run:
            record_missing(conn, self.settings.s3_bucket_in, found.missing,
                           self.options.run_key or None)

    def check_changed(self, conn: Any, planner: AssetPlanner, found: Survey) -> None:
        """Catalogued objects with a new size or ETag, or back after missing: the same bytes
        are recorded quietly (refreshed, restored), other bytes are problems."""
        report = self.report

        def md5_of(candidate: Candidate) -> str | None:
            md5, streamed = planner.current_md5(candidate)
            report.counts.bytes_verified += streamed
            return md5

        settled = settle_changes(found.changed, md5_of)
        report.extend(settled.problems)
        report.counts.refreshed += len(settled.refreshed) - settled.restored
        report.counts.restored += settled.restored
        if not self.options.dry_run:
            by = db.Provenance(self.options.command, self.options.run_key or None,
                               report.run_id)
            record_settled(conn, self.settings.s3_bucket_in, settled, by)

    @contextmanager
    def planner(self, to_verify: int) -> Iterator[AssetPlanner]:
        """The phase-3 planner, with a "verify" bar when checksums need `to_verify` bytes
        streamed."""
        meter = _BytesMeter(self.progress)
        with AssetPlanner(self.storage, self.settings.s3_bucket_in, self.options.verify,
                          on_bytes=meter.add) as planner:
            meter.start(to_verify)
            yield planner
        meter.finish()

    def ingest(self, planner: AssetPlanner, assets: Iterable[AssetFiles],
               inserter: BatchInserter) -> None:
        """Phase 3: check every asset, inserting in batches (all at the end in safe-run,
        and nothing at all when safe-run found a problem)."""
        self._check_assets(planner, assets, inserter)
        report = self.report
        if self.options.safe_run and any(p.phase is Phase.INGEST for p in report.problems):
            inserter.discard()
            report.status = RunStatus.ABORTED
            report.message = SAFE_RUN_ABORTED
            return
        with _timed(report, "insert"):
            inserter.flush()

    def _check_assets(self, planner: AssetPlanner, assets: Iterable[AssetFiles],
                      inserter: BatchInserter) -> None:
        progress, report, options = self.progress, self.report, self.options
        progress.start("ingest", total=self.spill.assets() if self.spill else None)
        progress.start("sidecars")
        done = fetched = 0
        with _timed(report, "ingest"):
            for plan in plan_ingest(planner, assets, self.settings.io_workers):
                self.stop_point()
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


@contextmanager
def _timed(report: Report, phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.durations[phase] = report.durations.get(phase, 0.0) + time.monotonic() - started


def _record(conn: Any, report: Report, bucket: str, etags: dict[str, str]) -> None:
    """The run's end: its problems marked new or known (also in a dry run, which only reads);
    then, for a recorded run, its problems (when it completed) and its record, together."""
    if conn.info.transaction_status != 0:  # a batch was in flight: roll it back first
        conn.rollback()
    if report.status is not RunStatus.FAILED:  # a failed run exits 4 whatever it found
        report.mark_standing(known.standings(conn, bucket, report.problems, etags))
    if report.run_id is None:
        return
    summary = report.to_dict()
    with conn.transaction():
        if report.status is RunStatus.COMPLETED:
            known.record(conn, bucket, report.run_id, report.problems, etags)
        db.finish_run(conn, report.run_id, str(report.status), summary["counts"], summary)


def run_import(settings: Settings, rules: Rules, options: ImportOptions,
               progress: Progress | None = None, stop: threading.Event | None = None) -> Report:
    """`ImportRun(...).run()`: the three phases, recorded unless a dry run."""
    return ImportRun(settings, rules, options, progress, stop).run()


def run_validate(settings: Settings, rules: Rules, options: ImportOptions,
                 progress: Progress | None = None) -> Report:
    """Phases 1 and 3 on the bucket's contents, with no database (for CI gates)."""
    report = Report("validate", dry_run=True, prefix=options.prefix, run_key=options.run_key)
    return ImportRun(settings, rules, ImportOptions(prefix=options.prefix, verify=options.verify,
                                                    inventory=options.inventory),
                     progress, report=report).validate()
