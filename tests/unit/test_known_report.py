"""New and known problems in the report, the exit code, the metrics and the digest (pure)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from mpr_cli.errors import ExitCode
from mpr_cli.metrics import LAST_SUCCESS, render
from mpr_cli.notify import digest_text
from mpr_cli.problems import Problem, Reason
from mpr_cli.report import Report, Standing, identity

OLD = Problem.make(Reason.CHECKSUM_MISMATCH, "BRD/VO-BAD-00001.mov", "old: fix the sidecar")
ACKED = Problem.make(Reason.INVALID_INVENTORY_CODE, "BRD/VO-BAD-1.mov", "acked: rename it")
FRESH = Problem.make(Reason.CHECKSUM_MISMATCH, "BRD/VO-BAD-00002.mov", "new: fix the sidecar")
WARNED = Problem.make(Reason.MISSING_QC_REPORT, "CD/AO-BAD-00011.wav", "old warning")


def marked(*problems: Problem, strict: bool = False) -> Report:
    report = Report("import", strict=strict)
    report.extend(list(problems))
    report.mark_standing({identity(OLD): Standing(True), identity(WARNED): Standing(True),
                          identity(ACKED): Standing(True, True)})
    return report


def test_known_problems_are_counted_apart_and_leave_the_exit_code() -> None:
    report = marked(OLD, ACKED, WARNED)
    counts = report.counts
    assert (counts.errors, counts.new_errors, counts.known_errors) == (2, 0, 2)
    assert (counts.warnings, counts.new_warnings, counts.known_warnings) == (1, 0, 1)
    assert counts.acknowledged == 1
    assert report.exit_code() is ExitCode.OK
    assert marked(OLD, ACKED, WARNED, strict=True).exit_code() is ExitCode.FILE_ERRORS


def test_a_new_error_beside_known_ones_fails_the_run() -> None:
    report = marked(OLD, FRESH)
    assert (report.counts.new_errors, report.counts.known_errors) == (1, 1)
    assert report.exit_code() is ExitCode.FILE_ERRORS


def test_every_problem_of_the_json_report_says_whether_it_is_known() -> None:
    shown = {p["key"]: (p["known"], p["acknowledged"])
             for p in marked(OLD, ACKED, FRESH).to_dict()["problems"]}
    assert shown == {OLD.key: (True, False), ACKED.key: (True, True),
                     FRESH.key: (False, False)}


def test_an_unmarked_report_calls_every_problem_new() -> None:
    report = Report("validate")
    report.extend([OLD, WARNED])
    assert (report.counts.new_errors, report.counts.new_warnings) == (1, 1)
    assert report.exit_code() is ExitCode.FILE_ERRORS


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_new_and_known_problems_by_severity() -> None:
    data: dict[str, Any] = marked(OLD, ACKED, FRESH, WARNED).to_dict()
    found = samples(render(data, success=False, exit_code=1, last_success=None, now=5.0))
    assert found[("mpr_problems_new", (("severity", "error"),))] == 1
    assert found[("mpr_problems_known", (("severity", "error"),))] == 2
    assert found[("mpr_problems_known", (("severity", "warning"),))] == 1
    assert found[("mpr_problems_new", (("severity", "warning"),))] == 0
    assert found[(LAST_SUCCESS, ())] == 0


def test_digest_lists_new_problems_with_keys_and_counts_known_ones() -> None:
    data = marked(OLD, ACKED, FRESH).to_dict()
    lines = digest_text(data, 1).splitlines()
    start = lines.index("Problems by reason")
    assert lines[start + 1:start + 3] == ["checksum_mismatch (error): 1", f"    {FRESH.key}"]
    known = next(i for i, line in enumerate(lines) if line.startswith("Known problems"))
    assert lines[known + 1:known + 3] == ["checksum_mismatch (error): 1",
                                          "invalid_inventory_code (error): 1, 1 acknowledged"]
    assert OLD.key not in lines[known:]


def test_digest_of_only_known_problems_says_no_new_ones() -> None:
    lines = digest_text(marked(OLD).to_dict(), 0).splitlines()
    assert lines[lines.index("Problems by reason") + 1] == "no new problems"
