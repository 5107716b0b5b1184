"""The run report: counts, problems, JSON (a contract read by scripts and CI), rich summary.

`listed = excluded + rejected + skipped + accepted` always holds. In a dry run the
`inserted_*` counts say what would have been inserted. Every problem is new or known
(`mpr_cli.known`: reported before for the same key, ETag and reason; a run that could not ask
the catalogue calls them all new): `errors = new_errors + known_errors`, the same for warnings,
and the exit code counts only new errors unless the run is strict.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET  # noqa: S405 - we only write XML, never parse it

from rich.console import Console
from rich.table import Table

from mpr_cli.atomic import atomic_write
from mpr_cli.display import for_console, for_xml, visible
from mpr_cli.errors import ExitCode
from mpr_cli.problems import Problem, Severity

Identity = tuple[str, str]  # (key, reason) within one run: the bucket and ETag are fixed by it


@dataclass(frozen=True, slots=True)
class Standing:
    """How a problem of a run stands against earlier runs (mpr_cli.known)."""

    known: bool = False  # reported before: same bucket, key, ETag and reason
    acknowledged: bool = False  # and acknowledged by `mpr problems ack`


NEW = Standing()


def identity(problem: Problem) -> Identity:
    return problem.key, problem.reason.value


class RunStatus(StrEnum):
    COMPLETED = "completed"
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass
class Counts:
    listed: int = 0
    excluded: int = 0
    rejected: int = 0
    skipped: int = 0
    accepted: int = 0
    inserted_assets: int = 0
    inserted_files: int = 0
    errors: int = 0
    warnings: int = 0
    bytes_verified: int = 0
    refreshed: int = 0  # catalogued objects re-uploaded with the same bytes (new ETag recorded)
    restored: int = 0  # catalogued objects back in the bucket with the catalogued bytes
    missing: int = 0  # catalogued objects this run first found missing (missing_object)
    new_errors: int = 0
    known_errors: int = 0
    new_warnings: int = 0
    known_warnings: int = 0
    acknowledged: int = 0  # of the known problems, those a person acknowledged


@dataclass
class Report:
    command: str
    dry_run: bool = False
    safe_run: bool = False
    status: RunStatus = RunStatus.COMPLETED
    counts: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)
    run_id: int | None = None  # the import_runs row (None in a dry run)
    run_key: str = ""  # names this invocation in logs, metrics, e-mails
    prefix: str = ""
    message: str = ""
    durations: dict[str, float] = field(default_factory=dict)
    strict: bool = False  # known errors count in the exit code too (--strict)
    standing: dict[Identity, Standing] = field(default_factory=dict)  # absent: new
    inventory: dict[str, Any] | None = None  # the S3 Inventory read instead of a listing

    def add(self, problem: Problem) -> None:
        """A problem, new until `mark_standing` says otherwise."""
        self.problems.append(problem)
        if problem.severity is Severity.ERROR:
            self.counts.errors += 1
            self.counts.new_errors += 1
        else:
            self.counts.warnings += 1
            self.counts.new_warnings += 1

    def standing_of(self, problem: Problem) -> Standing:
        return self.standing.get(identity(problem), NEW)

    def mark_standing(self, standing: dict[Identity, Standing]) -> None:
        """Which problems are known (the rest are new); the new/known counts follow."""
        self.standing = standing
        counts = self.counts
        counts.new_errors = counts.known_errors = counts.acknowledged = 0
        counts.new_warnings = counts.known_warnings = 0
        for problem in self.problems:
            mark = self.standing_of(problem)
            error = problem.severity is Severity.ERROR
            if mark.known:
                counts.known_errors += error
                counts.known_warnings += not error
                counts.acknowledged += mark.acknowledged
            else:
                counts.new_errors += error
                counts.new_warnings += not error

    def extend(self, problems: list[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def sort_problems(self) -> None:
        """A stable order for people and diffs: phase, then key, then reason."""
        self.problems.sort(key=lambda p: (p.phase, p.key, p.reason.value))

    def exit_code(self) -> ExitCode:
        if self.status is RunStatus.ABORTED:
            return ExitCode.SAFE_RUN_ABORT
        if self.status is RunStatus.FAILED:
            return ExitCode.INFRASTRUCTURE
        errors = self.counts.errors if self.strict else self.counts.new_errors
        return ExitCode.FILE_ERRORS if errors else ExitCode.OK

    def problem_dict(self, problem: Problem) -> dict[str, str | int | bool | None]:
        """A problem as the JSON report shows it: with whether it is known, acknowledged."""
        mark = self.standing_of(problem)
        return {**problem.to_dict(), "known": mark.known, "acknowledged": mark.acknowledged}

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data; `inventory` is there only when the run read one."""
        counts = asdict(self.counts)
        source = {} if self.inventory is None else {"inventory": self.inventory}
        return source | {
            "command": self.command,
            "run_id": self.run_id,
            "run_key": self.run_key,
            "dry_run": self.dry_run,
            "safe_run": self.safe_run,
            "strict": self.strict,
            "status": str(self.status),
            "message": self.message,
            "prefix": self.prefix,
            "counts": counts,
            "durations_s": {k: round(v, 3) for k, v in self.durations.items()},
            "problems": [self.problem_dict(p) for p in self.problems],
        }


def write_json(report: Report | dict[str, Any], target: str, stdout: IO[str]) -> None:
    """A report (or an already built report dict, e.g. nightly's combined one) as JSON:
    `target` is a path, or `-` for stdout. Written atomically when a path."""
    data = report.to_dict() if isinstance(report, Report) else report
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if target == "-":
        stdout.write(text)
        return
    atomic_write(Path(target), text)


def to_junit(report: Report) -> str:
    """One test case per problem key, failing for errors; a passing case when clean."""
    suite = ET.Element("testsuite", name=f"mpr {report.command}")
    errors = [p for p in report.problems if p.severity is Severity.ERROR]
    for problem in report.problems:
        case = ET.SubElement(suite, "testcase", classname=problem.reason.value,
                             name=for_xml(problem.key))
        if problem.severity is Severity.ERROR:
            ET.SubElement(case, "failure", type=problem.reason.value,
                          message=for_xml(problem.message))
        else:
            ET.SubElement(case, "system-out").text = f"warning: {for_xml(problem.message)}"
    if not report.problems:
        ET.SubElement(suite, "testcase", classname="delivery", name="all files valid")
    suite.set("tests", str(max(1, len(report.problems))))
    suite.set("failures", str(len(errors)))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


SUMMARY_COUNTS = ("listed", "excluded", "rejected", "skipped", "accepted", "errors",
                  "warnings", "new_errors", "known_errors")


def counts_table(report: Report) -> Table:
    counts = report.counts
    table = Table(title=f"mpr {report.command}: {report.status}", show_header=True)
    for column in SUMMARY_COUNTS:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_row(*(str(getattr(counts, c)) for c in SUMMARY_COUNTS))
    return table


def standing_label(mark: Standing) -> str:
    """"new", "known" or "acknowledged" (an acknowledged problem is known)."""
    return "acknowledged" if mark.acknowledged else "known" if mark.known else "new"


def problems_table(report: Report, limit: int = 50) -> Table:
    problems = report.problems
    table = Table(title=f"problems ({len(problems)})", show_lines=False)
    for column in ("severity", "reason", "seen", "key", "message"):
        table.add_column(column, overflow="fold")
    for problem in problems[:limit]:
        style = "red" if problem.severity is Severity.ERROR else "yellow"
        table.add_row(f"[{style}]{problem.severity}[/]", problem.reason.value,
                      standing_label(report.standing_of(problem)),
                      for_console(problem.key), for_console(problem.message))
    if len(problems) > limit:
        table.add_row("", "", f"... {len(problems) - limit} more", "see --report")
    return table


def _plain_lines(report: Report, limit: int) -> list[str]:
    counts = report.counts
    lines = [f"mpr {report.command} {report.status}: " + ", ".join(
        f"{name} {getattr(counts, name)}" for name in (
            "listed", "excluded", "rejected", "skipped", "accepted", "errors", "warnings"))
        + f" ({counts.new_errors} new errors, {counts.known_errors} known)"]
    lines += [f"{p.severity:<7} {p.reason.value:<26} {visible(p.key)}: {visible(p.message)}"
              + _marker(report.standing_of(p)) for p in report.problems[:limit]]
    if len(report.problems) > limit:
        lines.append(f"... {len(report.problems) - limit} more problems: see --report")
    return lines


def _marker(mark: Standing) -> str:
    return f" [{standing_label(mark)}]" if mark.known else ""


def print_summary(report: Report, console: Console, *, verbose: bool = False) -> None:
    """Tables on a terminal; plain one-line-per-problem text in logs (cron, CI)."""
    limit = 10_000 if verbose else 50
    if not console.is_terminal:
        for line in _plain_lines(report, limit):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        _print_totals(report, console)
        return
    console.print(counts_table(report))
    if report.problems:
        by_reason = Counter(p.reason.value for p in report.problems)
        console.print("by reason: " + ", ".join(f"{r} {n}" for r, n in by_reason.most_common()))
        console.print(problems_table(report, limit=limit))
    _print_totals(report, console)


def _print_totals(report: Report, console: Console) -> None:
    verb = "would insert" if report.dry_run else "inserted"
    console.print(f"{verb} {report.counts.inserted_assets} asset(s), "
                  f"{report.counts.inserted_files} file(s)", markup=False)
    catalogue = _catalogue_line(report)
    if catalogue:
        console.print(catalogue, markup=False)
    if report.message:
        console.print(visible(report.message), markup=False)


def _catalogue_line(report: Report) -> str:
    """One info line on catalogued objects the run updated quietly or found missing."""
    counts, verb = report.counts, "would record" if report.dry_run else "recorded"
    parts = [f"{n} {what}" for n, what in (
        (counts.refreshed, "re-uploaded with the same bytes (new ETag)"),
        (counts.restored, "back in the bucket with the catalogued bytes"),
        (counts.missing, "newly missing from the bucket")) if n]
    return f"{verb}: " + "; ".join(parts) if parts else ""
