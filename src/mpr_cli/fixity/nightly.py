"""The fixity step of `mpr nightly`: after the import, a quick pass over every catalogued file
under the night's prefix, then a full pass within the night's budget (fixity/budget.py:
max(MPR_FIXITY_BUDGET, the cycle's share), so that every file is fully verified within
MPR_FIXITY_CYCLE). Skipped in a dry run, after an import that could not reach S3 or the
database, and once the night was stopped. Its problems join the night's report (one per key
and reason), so the one digest e-mail of the night lists them; the passes' own reports are its
`fixity` section.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.errors import ExitCode, MprError
from mpr_cli.fixity.budget import night_budget, parse_budget, parse_duration
from mpr_cli.fixity.report import Check, FixityReport
from mpr_cli.fixity.run import FixityOptions, FixityRun
from mpr_cli.runlog import get_logger


@dataclass
class NightlyFixity:
    quick: FixityReport | None = None
    full: FixityReport | None = None
    note: str = ""
    exit_code: int = int(ExitCode.OK)

    def section(self) -> dict[str, Any]:
        return {"quick": self.quick.to_dict() if self.quick else None,
                "full": self.full.to_dict() if self.full else None, "message": self.note}

    def merge_into(self, combined: dict[str, Any]) -> None:
        """The `fixity` section, and the passes' problems among the night's (each key and
        reason once), counted in its errors and warnings."""
        combined["fixity"] = self.section()
        seen = {(p.get("key"), p.get("reason")) for p in combined.get("problems", [])}
        counts = combined.setdefault("counts", {})
        for report in (self.quick, self.full):
            for problem in (report.to_dict()["problems"] if report else []):
                if (problem["key"], problem["reason"]) in seen:
                    continue
                seen.add((problem["key"], problem["reason"]))
                combined.setdefault("problems", []).append(problem)
                kind = "errors" if problem["severity"] == "error" else "warnings"
                standing = "known" if problem["known"] else "new"
                for name in (kind, f"{standing}_{kind}"):
                    counts[name] = counts.get(name, 0) + 1


def _log_problem(check: Check) -> None:
    if check.outcome.value != "fixity_ok":
        level = get_logger().error if check.outcome.is_error else get_logger().warning
        level("fixity: %s %s: %s", check.outcome.value, check.file.key, check.detail)


def _pass(settings: Settings, options: FixityOptions, stop: threading.Event) -> FixityReport:
    report = FixityRun(settings, options, stop=stop, on_check=_log_problem).run()
    get_logger().info("%s", report.summary_line())
    return report


def _full_options(settings: Settings, prefix: str, run_key: str) -> FixityOptions:
    with db.connect(settings, autocommit=True) as conn:
        row = conn.execute(db.query("fixity_total_bytes"), {"prefix": prefix}).fetchone()
    total = int(row["total"]) if row is not None else 0
    configured = parse_budget(settings.fixity_budget) if settings.fixity_budget else None
    budget = night_budget(configured, total, parse_duration(settings.fixity_cycle))
    return FixityOptions(full=True, prefix=prefix, budget=budget, run_key=run_key,
                         strict=settings.strict)


def nightly_fixity(settings: Settings, *, prefix: str, run_key: str, dry_run: bool,
                   import_code: int, stop: threading.Event) -> NightlyFixity:
    """Both passes; never raises MprError (a failure is the step's exit code and note)."""
    if dry_run:
        return NightlyFixity(note="dry run: fixity skipped")
    if import_code == ExitCode.INFRASTRUCTURE:
        return NightlyFixity(note="fixity skipped: the import could not reach S3 or the "
                                  "database")
    if stop.is_set():
        return NightlyFixity(note="fixity skipped: the run was interrupted")
    step = NightlyFixity()
    try:
        get_logger().info("fixity: quick pass started")
        step.quick = _pass(settings, FixityOptions(prefix=prefix, run_key=run_key,
                                                   strict=settings.strict), stop)
        step.exit_code = int(step.quick.exit_code())
        if step.exit_code in (ExitCode.OK, ExitCode.FILE_ERRORS) and not stop.is_set():
            get_logger().info("fixity: full pass started")
            step.full = _pass(settings, _full_options(settings, prefix, run_key), stop)
            step.exit_code = max(step.exit_code, int(step.full.exit_code()))
    except MprError as exc:
        get_logger().error("fixity: failed: %s", exc.one_line())
        step.note, step.exit_code = exc.one_line(), int(exc.exit_code)
    return step
