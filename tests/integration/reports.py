"""Checks of a run's JSON report shared by the import and nightly tests: the shape and the
invariants every report keeps, and the reasons the sample archive's manifest expects."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from mpr_cli.dev.sample import Expect, SampleArchive
from tests.integration.archive import Outcome

REPORT_KEYS = {"command", "run_id", "dry_run", "safe_run", "status", "message", "prefix",
               "counts", "durations_s", "problems"}
COUNT_KEYS = {"listed", "excluded", "rejected", "skipped", "accepted", "inserted_assets",
              "inserted_files", "errors", "warnings", "bytes_verified", "new_errors",
              "known_errors", "new_warnings", "known_warnings", "acknowledged"}
# known / acknowledged: reported before for the same key, ETag and reason (mpr_cli.known)
PROBLEM_KEYS = {"key", "inventory_code", "phase", "severity", "reason", "message", "known",
                "acknowledged"}
PHASE_1 = {"invalid_key", "unsupported_extension", "unknown_folder", "invalid_inventory_code",
           "prefix_type_mismatch"}
WARNINGS = {"missing_qc_report", "changed_since_import"}
PHASE_2 = {"changed_since_import", "missing_object"}


def assert_contract(out: Outcome) -> None:
    """The report's shape and the invariants every report keeps."""
    report, counts = out.report, out.counts
    assert set(report) >= REPORT_KEYS
    assert set(counts) >= COUNT_KEYS and all(isinstance(counts[k], int) for k in COUNT_KEYS)
    assert counts["listed"] == (counts["excluded"] + counts["rejected"] + counts["skipped"]
                                + counts["accepted"])
    for problem in report["problems"]:
        assert set(problem) == PROBLEM_KEYS
        assert problem["severity"] == ("warning" if problem["reason"] in WARNINGS else "error")
        expected_phase = (1 if problem["reason"] in PHASE_1
                          else 2 if problem["reason"] in PHASE_2 else 3)
        assert problem["phase"] == expected_phase, problem
        assert problem["message"] and "\n" not in problem["message"]
    severities = [p["severity"] for p in report["problems"]]
    assert counts["errors"] == severities.count("error")
    assert counts["warnings"] == severities.count("warning")
    assert counts["rejected"] == sum(p["phase"] == 1 for p in report["problems"])
    known = [p["severity"] for p in report["problems"] if p["known"]]
    assert (counts["known_errors"], counts["known_warnings"]) == (
        known.count("error"), known.count("warning"))
    assert counts["errors"] == counts["new_errors"] + counts["known_errors"]
    assert counts["warnings"] == counts["new_warnings"] + counts["known_warnings"]


def reasons_by_key(out: Outcome) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for problem in out.report["problems"]:
        found[problem["key"]].add(problem["reason"])
    return dict(found)


def problem_set(out: Outcome) -> set[tuple[str, str, int, str]]:
    return {(p["key"], p["reason"], p["phase"], p["severity"]) for p in out.report["problems"]}


def assert_manifest_reasons(out: Outcome, archive: SampleArchive,
                            keys: list[str] | None = None) -> None:
    """Each key (of ``keys``, when given) the manifest expects a problem for has exactly that
    reason; any other key reported belongs to an asset rejected for that same reason (e.g. both
    files of an asset without any .md5 are missing_checksum)."""
    found = reasons_by_key(out)
    expected = {k: r for k, r in archive.problems().items() if keys is None or k in keys}
    for key, reason in expected.items():
        assert found.get(key) == {reason}, key
    by_key = {f.key: f for f in archive.files}
    for key in set(found) - set(expected):
        sample_file = by_key[key]
        assert sample_file.expect == Expect.REJECTED_WITH_ASSET, key
        assert found[key] == {archive.assets_rejected[sample_file.inventory_code]}, key


def json_lines(text: str, where: str) -> list[dict[str, Any]]:
    """Every non-empty line of `text` as JSON (a line that is not fails the test)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"nothing logged to {where}"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{where}: not JSON: {line!r}") from exc
    return parsed
