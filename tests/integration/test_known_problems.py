"""Known problems as an operator meets them: the same bad files night after night no longer
fail the run, a new one does, `--strict` counts them all, `mpr problems` lists them and `ack`
quiets one until its object changes. Real `mpr`, PostgreSQL and SeaweedFS."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import Outcome, keys_of
from tests.integration.reports import assert_contract

pytestmark = pytest.mark.integration

PHASE_1_KEY = "FILE/VO-BAD-00001.txt"  # unsupported extension (sample archive)
BAD_ASSET = "VO-BAD-00002"  # checksum mismatch (sample archive)
LATE_KEY = "BRD/VO-BAD-1.mov"  # uploaded on a later night: invalid inventory code
LAST_SUCCESS = "mpr_last_success_timestamp_seconds"


def standing(out: Outcome) -> dict[tuple[str, str], tuple[bool, bool]]:
    return {(p["key"], p["reason"]): (p["known"], p["acknowledged"])
            for p in out.report["problems"]}


def open_problems(run_mpr: Any, *args: str) -> list[dict[str, Any]]:
    result = run_mpr("problems", "--json", *args)
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def first_night(archive: SampleArchive, upload: Any, mpr_report: Any) -> Outcome:
    upload(archive.root, [PHASE_1_KEY, *keys_of(archive, [BAD_ASSET])])
    out = mpr_report("import")
    assert out.returncode == 1, out.stderr
    assert_contract(out)
    assert out.counts["errors"] >= 2 and out.counts["new_errors"] == out.counts["errors"]
    assert all(mark == (False, False) for mark in standing(out).values())
    return out


def test_known_problems_leave_the_exit_code_and_a_new_one_fails_it(
        sample_archive, upload, mpr_report, run_mpr, s3_admin, buckets) -> None:
    first = first_night(sample_archive, upload, mpr_report)

    second = mpr_report("import")  # the same bad files: known, exit 0
    assert second.returncode == 0, second.stderr
    assert_contract(second)
    assert standing(second) == {k: (True, False) for k in standing(first)}
    assert (second.counts["new_errors"], second.counts["known_errors"]) == (
        0, first.counts["errors"])
    assert "[known]" in second.stderr  # the summary marks them

    strict = mpr_report("import", "--strict")  # --strict counts known errors too
    assert strict.returncode == 1, strict.stderr
    assert strict.report["strict"] is True

    s3_admin.put_object(Bucket=buckets[0], Key=LATE_KEY, Body=b"not a video")
    third = mpr_report("import")  # a new error beside the known ones: exit 1
    assert third.returncode == 1, third.stderr
    marks = standing(third)
    assert marks.pop((LATE_KEY, "invalid_inventory_code")) == (False, False)
    assert marks == {k: (True, False) for k in standing(first)}
    assert third.counts["new_errors"] == 1

    listed = open_problems(run_mpr)
    assert {(p["key"], p["reason"], p["known"]) for p in listed} == {
        (k, r, (k, r) != (LATE_KEY, "invalid_inventory_code")) for k, r in standing(third)}
    assert [p["key"] for p in open_problems(run_mpr, "--new")] == [LATE_KEY]
    assert LATE_KEY not in {p["key"] for p in open_problems(run_mpr, "--known")}
    assert {p["key"] for p in open_problems(run_mpr, "--reason", "unsupported_extension")} == {
        PHASE_1_KEY}


def test_an_acknowledged_problem_is_listed_as_such_until_its_object_changes(
        sample_archive, upload, mpr_report, run_mpr, s3_admin, buckets) -> None:
    first_night(sample_archive, upload, mpr_report)

    acked = run_mpr("problems", "ack", PHASE_1_KEY, "--note", "vendor re-delivers in March")
    assert acked.returncode == 0, acked.stderr
    assert PHASE_1_KEY in acked.stdout and "unsupported_extension" in acked.stdout
    [shown] = [p for p in open_problems(run_mpr) if p["key"] == PHASE_1_KEY]
    assert (shown["acknowledged"], shown["ack_note"]) == (True, "vendor re-delivers in March")
    text = run_mpr("problems", "--prefix", "FILE/")
    assert text.returncode == 0 and "acknowledged" in text.stdout, text.stdout

    second = mpr_report("import")  # the acknowledged problem: known and acknowledged
    assert second.returncode == 0, second.stderr
    assert standing(second)[(PHASE_1_KEY, "unsupported_extension")] == (True, True)
    assert second.counts["acknowledged"] == 1
    assert "[acknowledged]" in second.stderr

    # the object changes (a new ETag): its problem is new again, the run fails, no ack
    s3_admin.put_object(Bucket=buckets[0], Key=PHASE_1_KEY, Body=b"another text")
    third = mpr_report("import")
    assert third.returncode == 1, third.stderr
    assert standing(third)[(PHASE_1_KEY, "unsupported_extension")] == (False, False)
    [again] = [p for p in open_problems(run_mpr) if p["key"] == PHASE_1_KEY]
    assert (again["known"], again["acknowledged"]) == (False, False)


def test_ack_of_nothing_open_and_without_a_target(run_mpr) -> None:
    nothing = run_mpr("problems", "ack", "BRD/VO-NON-00001.mov")
    assert nothing.returncode == 1
    assert nothing.stderr.strip().splitlines() == [
        "error: no open problem of BRD/VO-NON-00001.mov to acknowledge (see `mpr problems`)"]
    usage = run_mpr("problems", "ack")
    assert usage.returncode == 2 and "name a KEY or a --reason" in usage.stderr
    assert run_mpr("problems").stdout.strip() == "no open problems"


def last_success(text: str) -> float:
    [line] = [x for x in text.splitlines() if x.startswith(LAST_SUCCESS)]
    return float(line.split()[-1])


def test_last_success_is_0_until_a_night_without_new_errors(
        run_mpr, s3_admin, buckets, service_env, tmp_path) -> None:
    metrics = tmp_path / "mpr.prom"
    s3_admin.put_object(Bucket=buckets[0], Key=LATE_KEY, Body=b"not a video")
    env = {**service_env, "MPR_TRANSCODE_WORKERS": "1"}

    first = run_mpr("nightly", "--metrics-file", str(metrics), env=env)
    assert first.returncode == 1, first.stderr
    assert last_success(metrics.read_text()) == 0  # never succeeded: an age alert fires

    started = time.time()
    second = run_mpr("nightly", "--metrics-file", str(metrics), env=env)  # the error is known
    assert second.returncode == 0, second.stderr
    text = metrics.read_text()
    assert started - 1 <= last_success(text) <= time.time() + 1
    assert 'mpr_problems_known{severity="error"} 1' in text
    assert 'mpr_problems_new{severity="error"} 0' in text
