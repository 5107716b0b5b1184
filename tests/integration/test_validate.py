"""`mpr validate`: phases 1 and 3 on a delivery, with no database, as a CI gate runs it."""

from __future__ import annotations

import json
from collections import Counter
from xml.etree import ElementTree as ET

import pytest

from mpr_cli.dev.devservices import free_port
from tests.integration.archive import Outcome, clean_codes, keys_of, parse_run, row_counts

pytestmark = pytest.mark.integration


def without_database(service_env: dict[str, str]) -> dict[str, str]:
    """This test's S3 settings and no database setting at all."""
    return {k: v for k, v in service_env.items() if not k.startswith(("DATABASE_", "DB_"))}


def closed_database(service_env: dict[str, str]) -> dict[str, str]:
    """A DATABASE_URL on a port nothing listens on: any connection attempt would fail."""
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nowhere"
    return {**without_database(service_env), "DATABASE_URL": url}


def problem_rows(out: Outcome) -> Counter[tuple[str, str, int, str]]:
    return Counter((p["key"], p["reason"], p["phase"], p["severity"])
                   for p in out.report["problems"])


def test_json_lists_the_same_problems_as_import_without_a_database(sample_archive, upload,
                                                                  run_mpr, service_env,
                                                                  database_url):
    upload(sample_archive.root)
    result = run_mpr("validate", "--format", "json", env=closed_database(service_env))
    assert result.returncode == 1, result.stderr
    validated = parse_run(result)
    assert (validated.report["command"], validated.report["status"]) == ("validate", "completed")
    assert validated.counts["skipped"] == 0
    counts = validated.counts
    assert counts["listed"] == counts["excluded"] + counts["rejected"] + counts["accepted"]
    assert row_counts(database_url) == {"assets": 0, "asset_files": 0, "import_runs": 0}

    imported = parse_run(run_mpr("import", "--report", "-"))
    assert imported.returncode == 1
    assert problem_rows(validated) == problem_rows(imported)
    assert {p["phase"] for p in validated.report["problems"]} == {1, 3}
    for name in ("listed", "excluded", "rejected", "accepted", "errors", "warnings",
                 "inserted_assets", "inserted_files"):
        assert validated.counts[name] == imported.counts[name], name
    reasons = {(k, r) for k, r, _, _ in problem_rows(validated)}
    assert set(sample_archive.problems().items()) <= reasons


def test_junit_has_one_failure_per_error(sample_archive, upload, run_mpr, service_env, tmp_path):
    upload(sample_archive.root)
    report_path = tmp_path / "report.json"
    result = run_mpr("validate", "--format", "junit", "--report", str(report_path),
                     env=without_database(service_env))
    assert result.returncode == 1, result.stderr

    suite = ET.fromstring(result.stdout)
    report = json.loads(report_path.read_text())
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    warnings = [p for p in report["problems"] if p["severity"] == "warning"]
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    failures = [(case.get("name"), case.find("failure").get("type"))
                for case in cases if case.find("failure") is not None]
    assert int(suite.get("failures")) == len(failures) == len(errors) == report["counts"]["errors"]
    assert Counter(failures) == Counter((p["key"], p["reason"]) for p in errors)
    assert int(suite.get("tests")) == len(cases) == len(errors) + len(warnings)
    for key, reason in sample_archive.problems().items():
        if reason != "missing_qc_report":
            assert (key, reason) in failures
    passed = [case for case in cases if case.find("failure") is None]
    assert [case.get("name") for case in passed] == ["DAT/AO-BAD-00011.flac"]
    assert "warning" in passed[0].find("system-out").text


def test_clean_delivery_exits_0(sample_archive, upload, run_mpr, service_env):
    keys = upload(sample_archive.root, keys_of(sample_archive, clean_codes(sample_archive)))
    env = without_database(service_env)
    result = run_mpr("validate", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    out = parse_run(result)
    assert out.report["problems"] == []
    assert (out.counts["listed"], out.counts["accepted"], out.counts["errors"]) == (
        len(keys), len(keys), 0)

    junit = run_mpr("validate", "--format", "junit", env=env)
    assert junit.returncode == 0, junit.stderr
    suite = ET.fromstring(junit.stdout)
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase/failure") is None


def test_warning_alone_exits_0(sample_archive, upload, run_mpr, service_env):
    upload(sample_archive.root, keys_of(sample_archive, ["AO-BAD-00011"]))
    result = run_mpr("validate", "--format", "json", env=without_database(service_env))
    assert result.returncode == 0, result.stderr
    out = parse_run(result)
    assert [(p["key"], p["reason"]) for p in out.report["problems"]] == [
        ("DAT/AO-BAD-00011.flac", "missing_qc_report")]
    assert (out.counts["errors"], out.counts["warnings"]) == (0, 1)


def test_prefix_narrows_the_keys_listed(sample_archive, upload, run_mpr, service_env):
    upload(sample_archive.root)
    result = run_mpr("validate", "--format", "json", "--prefix", "DAT/",
                     env=without_database(service_env))
    assert result.returncode == 1, result.stderr
    out = parse_run(result)
    under = [f for f in sample_archive.files if f.key.startswith("DAT/")]
    assert out.counts["listed"] == len(under)
    assert out.report["prefix"] == "DAT/"
    expected = {k: r for k, r in sample_archive.problems().items() if k.startswith("DAT/")}
    assert {p["key"]: p["reason"] for p in out.report["problems"]} == expected
    assert expected == {"DAT/AO-BAD-00009.md5": "orphan_sidecar",
                        "DAT/AO-BAD-00011.flac": "missing_qc_report"}


def test_usage_errors_exit_2(run_mpr, service_env, tmp_path):
    env = without_database(service_env)
    assert run_mpr("validate", "--format", "yaml", env=env).returncode == 2
    assert run_mpr("validate", "--verify", "sometimes", env=env).returncode == 2
    missing = run_mpr("validate", env={**env, "MPR_RULES": str(tmp_path / "none.toml")})
    assert missing.returncode == 2
    assert len(missing.stderr.strip().splitlines()) == 1 and "not found" in missing.stderr
