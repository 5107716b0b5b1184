"""A fixity run's report: counts, problems, how it ended; as JSON in the shape the digest
e-mail (mpr_cli.notify) and the metrics (mpr_cli.metrics) read from every run's report.

Every checked file is counted once by outcome: `fixity_ok`, `fixity_mismatch` and
`missing_object` (errors), `not_verified` (a warning: the object could not be read, nothing was
concluded or recorded against it). `not_reached` counts the selected files a budget, a stop or
S3's failure left for the next run. A problem is *known* when the file's last conclusive check
found the same (asset_files.fixity_outcome): it no longer changes the exit code unless strict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from mpr_cli.errors import ExitCode
from mpr_cli.fixity.budget import Budget
from mpr_cli.fixity.outcome import CataloguedFile, FixityOutcome, Method


class FixityStatus(StrEnum):
    COMPLETED = "completed"  # every selected file checked
    BUDGET = "budget_spent"  # --max-bytes / --max-time ended it: the next run goes on
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    FAILED = "failed"  # S3 itself failed after retries


@dataclass(frozen=True, slots=True)
class Check:
    """One concluded or failed check of one file."""

    file: CataloguedFile
    outcome: FixityOutcome
    method: Method
    detail: str
    etag: str | None  # the ETag seen (listing or HEAD), else the catalogued one
    bytes_read: int = 0

    @property
    def known(self) -> bool:
        return self.outcome.is_error and self.file.previous == self.outcome.value


@dataclass
class FixityCounts:
    selected: int = 0
    checked: int = 0
    fixity_ok: int = 0
    fixity_mismatch: int = 0
    missing_object: int = 0
    not_verified: int = 0
    not_reached: int = 0
    bytes_verified: int = 0  # bytes streamed through MD5
    errors: int = 0
    warnings: int = 0
    new_errors: int = 0
    known_errors: int = 0
    new_warnings: int = 0
    known_warnings: int = 0


@dataclass
class FixityReport:
    method: Method
    run_key: str = ""
    prefix: str = ""
    strict: bool = False
    budget: Budget = field(default_factory=Budget)
    status: FixityStatus = FixityStatus.COMPLETED
    message: str = ""
    counts: FixityCounts = field(default_factory=FixityCounts)
    problems: list[Check] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    s3_failed: bool = False

    def add(self, check: Check) -> None:
        counts = self.counts
        counts.checked += 1
        setattr(counts, check.outcome.value, getattr(counts, check.outcome.value) + 1)
        counts.bytes_verified += check.bytes_read
        if check.outcome is FixityOutcome.OK:
            return
        self.problems.append(check)
        error, known = check.outcome.is_error, check.known
        counts.errors += error
        counts.warnings += not error
        counts.known_errors += error and known
        counts.new_errors += error and not known
        counts.new_warnings += not error

    def exit_code(self) -> ExitCode:
        """4 when S3 failed (whatever else was found), 130 when stopped, 1 for new errors
        (every error when strict), else 0. A budget that ended the run is no failure."""
        if self.s3_failed or self.status is FixityStatus.FAILED:
            return ExitCode.INFRASTRUCTURE
        if self.status is FixityStatus.INTERRUPTED:
            return ExitCode.INTERRUPTED
        errors = self.counts.errors if self.strict else self.counts.new_errors
        return ExitCode.FILE_ERRORS if errors else ExitCode.OK

    def problem_dict(self, check: Check) -> dict[str, Any]:
        return {"bucket": check.file.bucket, "key": check.file.key,
                "inventory_code": check.file.inventory_code,
                "severity": "error" if check.outcome.is_error else "warning",
                "reason": check.outcome.value, "method": check.method.value,
                "message": check.detail, "etag": check.etag, "known": check.known,
                "acknowledged": False}

    def to_dict(self) -> dict[str, Any]:
        return {"command": "fixity", "run_key": self.run_key, "method": self.method.value,
                "status": self.status.value, "exit_code": int(self.exit_code()),
                "message": self.message, "prefix": self.prefix, "strict": self.strict,
                "budget": self.budget.describe(), "counts": asdict(self.counts),
                "durations_s": {k: round(v, 3) for k, v in self.durations.items()},
                "problems": [self.problem_dict(p) for p in self.problems]}

    def summary_line(self) -> str:
        c = self.counts
        return (f"fixity {self.method.value} {self.status.value}: {c.checked} checked of "
                f"{c.selected} selected, {c.fixity_ok} ok, {c.fixity_mismatch} mismatched, "
                f"{c.missing_object} missing, {c.not_verified} not verified, "
                f"{c.not_reached} left for the next run, {c.bytes_verified} bytes read "
                f"({c.new_errors} new errors, {c.known_errors} known)")
