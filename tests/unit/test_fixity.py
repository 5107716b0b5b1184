"""mpr fixity without servers: sizes, durations and budgets, the nightly cycle's share, what a
quick or full check concludes, the report's exit codes, the metrics, the overlapped MD5, and the
one-line usage errors of bad sizes and durations."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from mpr_cli import cli
from mpr_cli.errors import S3Unavailable
from mpr_cli.fixity.budget import (
    DAY_S,
    Budget,
    cycle_share,
    night_budget,
    parse_budget,
    parse_duration,
    parse_size,
)
from mpr_cli.fixity.metrics import previous_successes, render
from mpr_cli.fixity.nightly import NightlyFixity
from mpr_cli.fixity.outcome import (
    CataloguedFile,
    FixityOutcome,
    Method,
    full_verdict,
    paired,
    quick_verdict,
)
from mpr_cli.fixity.reading import md5_of_chunks
from mpr_cli.fixity.report import Check, FixityReport, FixityStatus
from mpr_cli.storage import ObjectInfo

MD5 = hashlib.md5(b"x", usedforsecurity=False).hexdigest()
OTHER = hashlib.md5(b"y", usedforsecurity=False).hexdigest()
MULTI = "0123456789abcdef0123456789abcdef-2"


def catalogued(**fields: object) -> CataloguedFile:
    values: dict[str, object] = {"id": 1, "asset_id": 1, "inventory_code": "AO-SMP-00001",
                                 "bucket": "in", "key": "CD/AO-SMP-00001.wav", "size": 10,
                                 "etag": MD5, "md5": MD5}
    return CataloguedFile(**{**values, **fields})  # type: ignore[arg-type]


# -- parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    ("500G", 500 * 10**9), ("200M", 200 * 10**6), ("1.5T", 1_500_000_000_000),
    ("64MiB", 64 * 2**20), ("12", 12), ("7b", 7), ("1 gb", 10**9), ("2KiB", 2048)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "5X", "-3G", "1.2.3G", "G"])
def test_bad_sizes_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="is not a size: write a number of bytes with a unit"):
        parse_size(text)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90d", 90 * DAY_S), ("2h", 7200), ("1h30m", 5400), ("1h 30m", 5400), ("45s", 45),
    ("2w", 14 * DAY_S), ("0s", 0), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "d", "1h x", "1h30", "3x", "-1h"])
def test_bad_durations_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="is not a duration: write a number with a unit"):
        parse_duration(text)


def test_a_budget_is_a_duration_when_it_parses_as_one_else_a_size():
    assert parse_budget("1h") == Budget(max_seconds=3600)
    assert parse_budget("200m") == Budget(max_seconds=12_000)  # lower-case m: minutes
    assert parse_budget("200M") == Budget(max_bytes=200 * 10**6)
    assert parse_budget("200G") == Budget(max_bytes=200 * 10**9)
    with pytest.raises(ValueError, match="neither a size nor a duration"):
        parse_budget("soon")


# -- budget arithmetic -----------------------------------------------------------------------


def test_the_first_file_always_passes_even_a_zero_or_small_budget():
    for budget in (Budget(max_bytes=0), Budget(max_seconds=0), Budget(max_bytes=5)):
        assert budget.allows(files_done=0, bytes_done=0, elapsed=99, next_size=10)
        assert not budget.allows(files_done=1, bytes_done=10, elapsed=99, next_size=10)


def test_a_byte_budget_counts_the_next_file_in_and_a_time_budget_the_time_spent():
    budget = Budget(max_bytes=100)
    assert budget.allows(files_done=1, bytes_done=60, elapsed=0, next_size=40)
    assert not budget.allows(files_done=1, bytes_done=60, elapsed=0, next_size=41)
    timed = Budget(max_seconds=60)
    assert timed.allows(files_done=5, bytes_done=10**12, elapsed=59.9, next_size=10**12)
    assert not timed.allows(files_done=5, bytes_done=0, elapsed=60, next_size=0)
    assert Budget().allows(files_done=10**6, bytes_done=10**15, elapsed=10**6, next_size=1)


def test_the_cycle_share_reads_everything_within_the_cycle():
    assert cycle_share(365_000, 365 * DAY_S) == 1000
    assert cycle_share(365_001, 365 * DAY_S) == 1001  # rounded up: never a night short
    assert cycle_share(10, DAY_S / 2) == 10  # a cycle of a day or less: all of it each night
    assert cycle_share(0, 365 * DAY_S) == 0


def test_the_night_takes_the_larger_of_budget_and_share():
    """No budget: the share alone. A byte budget below the share: the share (the floor). A
    time budget: at least the share, then on while the time lasts."""
    share_only = night_budget(None, 365 * 10**9, 365 * DAY_S)
    assert share_only == Budget(max_bytes=10**9, floor_bytes=10**9)
    small = night_budget(Budget(max_bytes=10), 365 * 10**9, 365 * DAY_S)
    assert small.allows(files_done=3, bytes_done=10**9 - 1, elapsed=0, next_size=5 * 10**9)
    assert not small.allows(files_done=3, bytes_done=10**9, elapsed=0, next_size=1)
    timed = night_budget(Budget(max_seconds=3600), 365 * 10**9, 365 * DAY_S)
    assert timed.allows(files_done=3, bytes_done=0, elapsed=7200, next_size=1)  # share first
    assert timed.allows(files_done=3, bytes_done=10**9, elapsed=10, next_size=10**12)
    assert not timed.allows(files_done=3, bytes_done=10**9, elapsed=3600, next_size=1)


# -- verdicts --------------------------------------------------------------------------------


def test_quick_single_part_etag_is_a_digest_check():
    assert quick_verdict(catalogued(), 10, f'"{MD5}"').outcome is FixityOutcome.OK
    changed = quick_verdict(catalogued(), 10, OTHER)
    assert changed.outcome is FixityOutcome.MISMATCH and OTHER in changed.detail
    # re-uploaded single-part with the same bytes after a multipart import: its MD5 matches
    assert quick_verdict(catalogued(etag=MULTI), 10, MD5).outcome is FixityOutcome.OK


def test_quick_missing_and_size():
    assert quick_verdict(catalogued(), None, None).outcome is FixityOutcome.MISSING
    assert quick_verdict(catalogued(), 11, MD5).outcome is FixityOutcome.MISMATCH


def test_quick_multipart_compares_size_and_etag_only_and_reads_what_it_cannot_tell():
    same = quick_verdict(catalogued(etag=MULTI), 10, MULTI)
    assert same.outcome is FixityOutcome.OK and "not an MD5" in same.detail
    other = "fedcba9876543210fedcba9876543210-3"
    assert quick_verdict(catalogued(etag=MULTI), 10, other).read
    known_bad = quick_verdict(catalogued(etag=MULTI, differing_etag=other), 10, other)
    assert known_bad.outcome is FixityOutcome.MISMATCH
    no_md5 = quick_verdict(catalogued(etag=MULTI, md5=None), 10, other)
    assert no_md5.outcome is FixityOutcome.MISMATCH and "no catalogued MD5" in no_md5.detail


def test_full_verdicts():
    assert full_verdict(catalogued(), MD5, 10).outcome is FixityOutcome.OK
    assert full_verdict(catalogued(), OTHER, 10).outcome is FixityOutcome.MISMATCH
    assert full_verdict(catalogued(), MD5, 9).outcome is FixityOutcome.MISMATCH
    # no MD5 catalogued, a single-part catalogued ETag is one
    assert full_verdict(catalogued(md5=None), MD5, 10).outcome is FixityOutcome.OK


# -- the report ------------------------------------------------------------------------------


def check(outcome: FixityOutcome, previous: str | None = None) -> Check:
    return Check(catalogued(previous=previous), outcome, Method.FULL, "detail", MD5, 10)


def test_exit_codes():
    report = FixityReport(Method.FULL)
    report.add(check(FixityOutcome.OK))
    assert report.exit_code() == 0
    report.add(check(FixityOutcome.NOT_VERIFIED))  # a warning alone: no failure
    assert report.exit_code() == 0 and report.counts.warnings == 1
    report.add(check(FixityOutcome.MISMATCH, previous="fixity_mismatch"))  # known
    assert report.exit_code() == 0 and report.counts.known_errors == 1
    report.strict = True
    assert report.exit_code() == 1
    report.strict = False
    report.add(check(FixityOutcome.MISSING))
    assert report.exit_code() == 1 and report.counts.new_errors == 1
    report.s3_failed = True
    assert report.exit_code() == 4  # S3 failing wins
    stopped = FixityReport(Method.QUICK, status=FixityStatus.INTERRUPTED)
    assert stopped.exit_code() == 130
    assert FixityReport(Method.QUICK, status=FixityStatus.BUDGET).exit_code() == 0


def test_report_json_counts_every_check_once():
    report = FixityReport(Method.QUICK, run_key="k")
    for outcome in FixityOutcome:
        report.add(check(outcome))
    data = report.to_dict()
    assert data["command"] == "fixity" and data["exit_code"] == 1
    counts = data["counts"]
    assert [counts[o.value] for o in FixityOutcome] == [1, 1, 1, 1]
    assert counts["errors"] == counts["new_errors"] == 2 and counts["warnings"] == 1
    assert [p["reason"] for p in data["problems"]] == ["fixity_mismatch", "missing_object",
                                                       "not_verified"]


def test_the_nightly_merges_each_problem_once():
    quick = FixityReport(Method.QUICK)
    quick.add(check(FixityOutcome.MISSING))
    full = FixityReport(Method.FULL)
    full.add(check(FixityOutcome.MISSING, previous="missing_object"))
    combined = {"problems": [], "counts": {"errors": 0}}
    NightlyFixity(quick, full).merge_into(combined)
    assert [p["reason"] for p in combined["problems"]] == ["missing_object"]
    assert combined["counts"] == {"errors": 1, "new_errors": 1}
    assert combined["fixity"]["quick"]["counts"]["missing_object"] == 1


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_are_mpr_fixity_and_keep_each_methods_last_success(tmp_path):
    report = FixityReport(Method.FULL)
    report.add(check(FixityOutcome.MISMATCH))
    text = render(report.to_dict(), success=False, last={"quick": 5.0}, now=100.0)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if not line.startswith("#")}
    assert names and all(n.startswith("mpr_fixity_") for n in names)
    assert 'mpr_fixity_files{method="full",outcome="fixity_mismatch"} 1' in text
    assert 'mpr_fixity_last_success_timestamp_seconds{method="quick"} 5' in text
    assert 'mpr_fixity_last_success_timestamp_seconds{method="full"} 0' in text
    path = tmp_path / "fixity.prom"
    path.write_text(render(report.to_dict(), success=True, last={}, now=7.0))
    assert previous_successes(path) == {"full": 7.0}


# -- reading ---------------------------------------------------------------------------------


def test_md5_of_chunks_matches_hashlib_and_closes_the_source():
    closed = []

    def source() -> Iterator[bytes]:
        try:
            for i in range(50):
                yield bytes([i]) * 1000
        finally:
            closed.append(True)

    data = b"".join(bytes([i]) * 1000 for i in range(50))
    assert md5_of_chunks(source()) == (hashlib.md5(data, usedforsecurity=False).hexdigest(),
                                       len(data))
    assert closed == [True]


def test_md5_of_chunks_raises_the_sources_error_and_closes_it():
    closed = []

    def failing() -> Iterator[bytes]:
        try:
            yield b"abc"
            raise S3Unavailable("S3 unreachable")
        finally:
            closed.append(True)

    with pytest.raises(S3Unavailable, match="S3 unreachable"):
        md5_of_chunks(failing())
    assert closed == [True]


# -- the command line ------------------------------------------------------------------------


@pytest.fixture()
def mpr(tmp_path, monkeypatch):
    runner = CliRunner()
    cleared = {k: None for k in os.environ
               if k.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_", "SMTP_"))}
    monkeypatch.chdir(tmp_path)

    def run(*args: str, **env: str):
        return runner.invoke(cli.main, list(args), prog_name="mpr", env={**cleared, **env},
                             catch_exceptions=False)

    return run


@pytest.mark.parametrize(("args", "named"), [
    (["--max-bytes", "lots"], "--max-bytes"), (["--max-time", "90"], "--max-time"),
    (["--older-than", "3x"], "--older-than")])
def test_bad_sizes_and_durations_are_one_line_usage_errors(mpr, args, named):
    result = mpr("fixity", *args)
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: Invalid value for '{named}': ")
    assert line.endswith("(see `mpr fixity --help`)")


@pytest.mark.parametrize(("name", "value"), [("MPR_FIXITY_BUDGET", "soon"),
                                             ("MPR_FIXITY_CYCLE", "12h")])
def test_bad_fixity_settings_exit_2_naming_the_variable(mpr, name, value):
    result = mpr("config", **{name: value})
    assert result.exit_code == 2
    assert name in result.output


def _listed(*keys: str) -> list[ObjectInfo]:
    from datetime import UTC, datetime

    return [ObjectInfo(k, 1, MD5, datetime(2026, 1, 1, tzinfo=UTC)) for k in keys]


def _pairs(rows: list[str], listing: list[ObjectInfo]) -> dict[str, str | None]:
    found = {row["key"]: entry.key if entry else None
             for row, entry in paired([{"key": k} for k in rows], listing)}
    assert len(found) == len(rows)
    return found


def test_rows_are_paired_with_a_listing_in_byte_order():
    listing = _listed("a", "b/1", "b/3", "c", "é")
    assert _pairs(["b/1", "b/2", "c", "d", "é", "z"], listing) == {
        "b/1": "b/1", "b/2": None, "c": "c", "d": None, "é": "é", "z": None}


def test_a_listing_in_folder_order_is_no_false_missing():
    """SeaweedFS lists "CD/a/b" before "CD/a b" (its folders first): every row still finds
    its entry, whatever the order; only keys listed nowhere are unlisted."""
    keys = ["CD/A", "CD/a", "CD/a b", "CD/a-y", "CD/a.x", "CD/a/b", "CD/a/c/d", "CD/a0", "CD/ab"]
    folder_order = _listed("CD/A", "CD/a", "CD/a/b", "CD/a/c/d", "CD/a b", "CD/a-y", "CD/a.x",
                           "CD/a0", "CD/ab", "CD/zz")
    assert _pairs(sorted(keys), folder_order) == {k: k for k in keys}
    assert _pairs(sorted([*keys, "CD/a/c/e", "CD/b"]), folder_order) == {
        **{k: k for k in keys}, "CD/a/c/e": None, "CD/b": None}


def test_a_listing_that_fails_raises_before_any_row_is_unlisted():
    def failing():
        yield from _listed("a")
        raise S3Unavailable("S3 unreachable")

    pairs = paired([{"key": "a"}, {"key": "b"}], failing())
    assert next(pairs)[1] is not None
    with pytest.raises(S3Unavailable):
        next(pairs)
