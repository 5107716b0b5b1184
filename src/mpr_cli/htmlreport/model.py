"""What the HTML page of a run shows, as records: built from the run's stored report (pure,
`from_report`), then given the catalogue's assets, transcodes and pictures (gather.py).

The report is the JSON report of `mpr import` / `mpr nightly` / `mpr fixity` as stored in
import_runs.report or handed to the digest: a dict whose shape scripts already rely on
(mpr_cli.report). Anything missing from it (a run still running has no report) is shown as
absent, never an error. Texts are kept exactly as they came; escaping is render.py's job.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mpr_cli.htmlreport.fixes import fix_for
from mpr_cli.pictures import Picture

SHOWN_COUNTS = ("listed", "excluded", "rejected", "skipped", "accepted", "inserted_assets",
                "inserted_files", "errors", "warnings", "new_errors", "known_errors")


@dataclass(frozen=True)
class Limits:
    """How much one page holds: pictures embedded, problem rows per reason, asset rows, and
    (for the e-mail) the page's size in bytes (None: no bound)."""

    max_pictures: int = 200
    max_problems_per_reason: int = 200
    max_assets: int = 2000
    max_bytes: int | None = None


@dataclass(frozen=True)
class ProblemLine:
    key: str
    message: str
    standing: str  # new | known | acknowledged


@dataclass(frozen=True)
class ReasonGroup:
    """The problems of one reason, with what to do about them."""

    reason: str
    severity: str
    fix: str
    problems: tuple[ProblemLine, ...]

    @property
    def new(self) -> int:
        return sum(p.standing == "new" for p in self.problems)


@dataclass(frozen=True)
class Image:
    """A picture's bytes, to be embedded as a data: URI."""

    kind: str  # poster | contact_sheet | waveform
    mime_type: str
    data: bytes
    width: int | None
    height: int | None


@dataclass
class AssetEntry:
    """One asset the run imported a file of, as the page lists it."""

    asset_id: int
    inventory_code: str
    media_type: str
    master_key: str | None
    streaming_key: str | None
    master_summary: str | None = None
    streaming_summary: str | None = None
    picture: Picture | None = None  # the picture chosen for the page (poster or waveform)
    image: Image | None = None  # its bytes, when embedded
    picture_note: str = ""  # why there is no picture (none made, not readable, left out)


@dataclass(frozen=True)
class TranscodeEntry:
    """One transcode job that finished while the run ran."""

    job_id: int
    inventory_code: str
    preset: str
    status: str
    source_key: str
    output_key: str
    wall_s: float | None  # started to finished (its last attempt)
    media_s: float | None  # the master's duration
    error: str | None

    @property
    def speed(self) -> float | None:
        """Media seconds per wall second (2.0: twice as fast as real time)."""
        if not self.wall_s or not self.media_s or self.wall_s <= 0:
            return None
        return self.media_s / self.wall_s


@dataclass
class RunPage:
    """Everything one page shows."""

    command: str
    status: str
    run_id: int | None = None
    run_key: str = ""
    mode: str = ""  # normal | dry_run | safe_run
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    host: str | None = None
    prefix: str = ""
    message: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, Any] = field(default_factory=dict)
    groups: list[ReasonGroup] = field(default_factory=list)
    transcode: dict[str, Any] | None = None  # the nightly report's transcode section
    assets: list[AssetEntry] | None = None  # None: the catalogue was not asked
    assets_total: int = 0
    transcodes: list[TranscodeEntry] | None = None
    notes: list[str] = field(default_factory=list)  # what the page left out, and why

    @property
    def reasons(self) -> list[str]:
        return [g.reason for g in self.groups]


def _standing(problem: dict[str, Any]) -> str:
    if problem.get("acknowledged"):
        return "acknowledged"
    return "known" if problem.get("known") else "new"


def group_problems(problems: list[dict[str, Any]]) -> list[ReasonGroup]:
    """Problems by reason: errors first, then the largest groups, then by name."""
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for problem in problems:
        by_reason[str(problem.get("reason", "unknown"))].append(problem)
    groups = [ReasonGroup(reason, str(items[0].get("severity", "")), fix_for(reason),
                          tuple(ProblemLine(str(p.get("key", "")), str(p.get("message", "")),
                                            _standing(p)) for p in items))
              for reason, items in by_reason.items()]
    return sorted(groups, key=lambda g: (g.severity != "error", -len(g.problems), g.reason))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def from_report(report: dict[str, Any], row: dict[str, Any] | None = None) -> RunPage:
    """The page of a report; `row` (an import_runs row, db.get_run) adds when and where the
    run ran, and stands in for a report not stored yet (a running run)."""
    row = row or {}
    report = report or {}
    page = RunPage(
        command=str(report.get("command") or row.get("command") or "run"),
        status=str(row.get("status") or report.get("status") or "unknown"),
        run_id=_int(report.get("run_id")) or _int(row.get("id")),
        run_key=str(report.get("run_key") or row.get("run_key") or ""),
        mode=str(row.get("mode") or ("dry_run" if report.get("dry_run") else
                                     "safe_run" if report.get("safe_run") else "normal")),
        exit_code=_int(report.get("exit_code", row.get("exit_code"))),
        started_at=row.get("started_at"), finished_at=row.get("finished_at"),
        host=row.get("host"), prefix=str(report.get("prefix", row.get("prefix")) or ""),
        message=str(report.get("message") or ""),
        counts=dict(report.get("counts") or row.get("counts") or {}),
        durations=dict(report.get("durations_s") or {}),
        groups=group_problems(list(report.get("problems") or [])),
        transcode=report.get("transcode") if isinstance(report.get("transcode"), dict) else None)
    if not report and row:
        page.notes.append("this run has no stored report yet (still running, or stopped "
                          "before it wrote one): counts as recorded so far")
    return page
