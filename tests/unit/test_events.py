"""The pure parts of preservation events: what `mpr events --since` and `--type` accept, the
event types against the database's CHECK, an event's JSON, the one-line usage errors of
`mpr events` (CliRunner, no server: an option is refused before any connection), and the
events an import makes of one planned asset."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from mpr_cli import cli, db
from mpr_cli.db import FileRow
from mpr_cli.events import (
    Event,
    EventType,
    NewEvent,
    Outcome,
    agent,
    parse_event_type,
    parse_since,
)
from mpr_cli.phases.ingest import IngestPlan
from mpr_cli.phases.insert import BatchInserter
from mpr_cli.problems import Problem, Reason
from mpr_cli.rules import MediaType, Role

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "ago"), [
    ("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), (" 1D ", timedelta(days=1)),
    ("0d", timedelta(0)),
])
def test_since_takes_an_age_before_now(text, ago):
    assert parse_since(text, NOW) == NOW - ago


def test_since_takes_iso_dates_and_times_local_when_they_have_no_zone():
    assert parse_since("2026-11-01T08:00:00+02:00", NOW) == datetime(
        2026, 11, 1, 6, 0, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00Z", NOW) == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    local = parse_since("2026-11-01", NOW)
    assert local.tzinfo is not None
    assert local.replace(tzinfo=None) == datetime(2026, 11, 1)
    assert local.utcoffset() == datetime(2026, 11, 1).astimezone().utcoffset()


@pytest.mark.parametrize("text", ["", "7", "d", "7 days", "-7d", "7y", "yesterday",
                                  "2026-13-01", "01/11/2026", "1234567d"])
def test_since_refuses_anything_else_with_what_it_takes(text):
    with pytest.raises(ValueError, match="neither an ISO date or time .* nor an age like 7d"):
        parse_since(text, NOW)


def test_since_refuses_an_age_before_the_year_1():
    with pytest.raises(ValueError, match="before the year 1"):
        parse_since("999999w", NOW)


@pytest.mark.parametrize(("text", "wanted"), [
    ("fixity check", EventType.FIXITY_CHECK), ("Fixity-Check", EventType.FIXITY_CHECK),
    ("fixity_check", EventType.FIXITY_CHECK),
    ("message digest calculation", EventType.DIGEST), ("digest", EventType.DIGEST),
    ("missing", EventType.DELETION), ("restored", EventType.RECOVERY),
    ("creation", EventType.CREATION), ("  ingestion ", EventType.INGESTION),
])
def test_type_takes_a_term_in_any_spelling_or_an_alias(text, wanted):
    assert parse_event_type(text) is wanted


def test_type_refuses_an_unknown_term_naming_the_choices():
    with pytest.raises(ValueError) as refused:
        parse_event_type("virus check")
    assert "'virus check' is no event type" in str(refused.value)
    assert all(e.value in str(refused.value) for e in EventType)


def test_the_event_types_are_the_terms_the_database_accepts():
    migration = (db.sql_dir() / "009_events.sql").read_text()
    check = re.search(r"CHECK \(event_type IN \((.*?)\)\)", migration, re.DOTALL)
    assert check is not None
    assert set(re.findall(r"'([a-z ]+)'", check.group(1))) == {e.value for e in EventType}
    assert (EventType.MISSING, EventType.RESTORED) == (EventType.DELETION, EventType.RECOVERY)
    assert len(list(EventType)) == 9  # the aliases are no extra terms


def test_an_event_as_json():
    when = datetime(2026, 12, 1, 8, 30, tzinfo=timezone(timedelta(hours=1)))
    event = Event(uuid.UUID(int=1), EventType.DIGEST, when, Outcome.SUCCESS, "MD5 x", agent(),
                  7, "VO-1", "in", "A/VO-1.mov", "etag", "run-1")
    assert event.to_json() == {
        "event_uuid": "00000000-0000-0000-0000-000000000001",
        "event_type": "message digest calculation", "occurred_at": "2026-12-01T08:30:00+01:00",
        "outcome": "success", "detail": "MD5 x", "agent": agent(), "asset_id": 7,
        "inventory_code": "VO-1", "bucket": "in", "key": "A/VO-1.mov", "etag": "etag",
        "run_key": "run-1"}
    assert re.fullmatch(r"mpr \S+ on \S+", agent())


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last week"], "Invalid value for '--since': 'last week' is neither"),
    (["--type", "bogus"], "Invalid value for '--type': 'bogus' is no event type"),
    (["--outcome", "maybe"], "Invalid value for '--outcome'"),
    (["--limit", "0"], "Invalid value for '--limit'"),
])
def test_mpr_events_refuses_a_bad_option_in_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cleared = {k: None for k in os.environ if k.startswith(("DB_", "DATABASE_", "MPR_"))}
    result = CliRunner().invoke(cli.main, ["events", *args], prog_name="mpr", env=cleared)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}") and "(see `mpr events --help`)" in line


# -- the import's events of one planned asset (phases/insert.py), without a database -------------


def _plan() -> IngestPlan:
    digest = NewEvent(EventType.DIGEST, Outcome.SUCCESS, "MD5 x", "in", "A/VO-1.mov")
    return IngestPlan(
        "VO-1", MediaType.VIDEO,
        rows=[FileRow("VO-1", "in", "A/VO-1.mov", Role.MASTER, False, 10, None, "x", None,
                      None),
              FileRow("VO-1", "in", "A/VO-1.md5", Role.CHECKSUM, True, 40, "e", None, None,
                      None)],
        problems=[Problem.make(Reason.MISSING_QC_REPORT, "A/VO-1.mov", "no QC report",
                               inventory_code="VO-1")],
        events=[digest])


def test_a_planned_asset_gives_its_checks_then_each_files_validation_and_ingestion():
    inserter = BatchInserter(None, 7, None, False, set(), "in", "run-1")
    made = inserter._events(_plan())
    assert [(e.key, e.event_type, e.outcome) for e in made] == [
        ("A/VO-1.mov", EventType.DIGEST, Outcome.SUCCESS),
        ("A/VO-1.mov", EventType.VALIDATION, Outcome.WARNING),
        ("A/VO-1.mov", EventType.INGESTION, Outcome.SUCCESS),
        ("A/VO-1.md5", EventType.VALIDATION, Outcome.SUCCESS),
        ("A/VO-1.md5", EventType.INGESTION, Outcome.SUCCESS)]
    assert {e.run_key for e in made} == {"run-1"}
    assert made[1].detail == "passes the asset's rules with warnings: missing_qc_report"
    assert made[2].detail == "catalogued as the master file of VO-1 (on tape: recorded from " \
                             "its sidecars)"
    assert made[4].detail == "catalogued as the checksum file of VO-1"
