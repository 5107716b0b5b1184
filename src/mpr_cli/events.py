"""Preservation events (issue 14): one append-only row per action on a file.

The `events` table (sql/009) holds, for each action mpr takes on a file, its PREMIS 3
eventType (a term of the Library of Congress vocabulary,
https://id.loc.gov/vocabulary/preservation/eventType), a UUID, the time, the outcome
(success, failure, warning), a detail line and the agent (`mpr <version> on <host>`). The
database refuses UPDATE, DELETE and TRUNCATE on it: a correction is a new event. Events name
their asset and file by plain columns (asset id, inventory code, bucket, key, ETag), so they
outlive both.

Which action writes which event (each in the transaction of the change it describes):

- `ingestion`: `mpr import` inserted the file into the catalogue (phases/insert.py; a master
  on tape says so), `mpr replace` catalogued a file of the asset for the first time, or
  `mpr transcode KEY` registered a master never imported (outcome warning: provisional, its
  sidecars not yet checked; transcode/outputs.py).
- `message digest calculation`: an import or `mpr replace` computed the file's MD5 (streamed,
  or read from a single-part ETag) and found it the declared one (phases/ingest.py; with
  `--verify none` the sidecar is trusted: no event); a transcode computed a master's MD5
  while it downloaded it, for a master it registers.
- `format identification`: the container of a master or streaming copy identified from its
  header by mediainfo/ffprobe (the detail names it and the MIME type).
- `validation`: the asset's rules passed for the file (success, or warning naming the
  warnings' reasons); a file with an error is never inserted, so never gets one.
- `fixity check`: written by `mpr fixity` (fixity/); also by an import that re-read an
  object whose ETag changed: same bytes (success, the new ETag recorded) or other bytes
  (failure: `changed_since_import`, noted once per ETag) (phases/crossref.py).
- `creation`: a streaming copy made from a master by a transcode, on the copy's key, in the
  transaction that records the output (transcode/outputs.py record_output).
- `replacement`: `mpr replace KEY` accepted new bytes for a catalogued file (replace.py).
- `deletion` (alias `MISSING`): the LoC vocabulary has no term for an object that vanished; a
  complete listing that no longer holds a catalogued object records a `deletion` with outcome
  `failure` and a detail saying that mpr did not delete it. `failure`, so that
  `mpr events --outcome failure` finds every object the archive lost.
- `recovery` (alias `RESTORED`): the LoC term for bringing an object back; written when an
  object recorded as missing is listed again with its catalogued bytes, or a master recorded
  on tape is copied into the bucket with its catalogued MD5 (outcome success).

An import hands `record` the events of every file it planned in a batch, with the run's id:
the statement keeps those of files that run actually inserted (one INSERT ... SELECT per
batch, joined with asset_files), so a file already catalogued gets none and the cost is one
statement per 200 assets (bench/results/import-2026-12-01-events-*.json: no change in wall
time at 4,000 keys, PostgreSQL CPU +0.2-0.5 s for ~10,000 events).

Dry runs record nothing: they never reach the code that writes the change.

`mpr events --since` takes an ISO 8601 date or date-time (one without a zone is in the local
time zone) or an age: a whole number and a unit, s, m, h, d or w (`7d`, `12h`). `--type`
takes a term (`fixity check`, also `fixity-check` or `fixity_check`, any case) or the aliases
`missing` and `restored`.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from mpr_cli import __version__
from mpr_cli.db import query


class EventType(StrEnum):
    """The PREMIS 3 eventType terms (LoC vocabulary) mpr records; the CHECK of sql/009."""

    INGESTION = "ingestion"
    DIGEST = "message digest calculation"
    FIXITY_CHECK = "fixity check"
    FORMAT_IDENTIFICATION = "format identification"
    VALIDATION = "validation"
    CREATION = "creation"
    REPLACEMENT = "replacement"
    DELETION = "deletion"
    RECOVERY = "recovery"
    # how issue 14's `missing` and `restored` map onto the vocabulary (aliases, same values)
    MISSING = "deletion"
    RESTORED = "recovery"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    WARNING = "warning"


@dataclass(frozen=True)
class NewEvent:
    """An event to record: what happened to which file, and how it went."""

    event_type: EventType
    outcome: Outcome
    detail: str
    bucket: str
    key: str
    asset_id: int | None = None
    inventory_code: str | None = None
    etag: str | None = None
    run_key: str | None = None


@dataclass(frozen=True)
class Event:
    """One recorded event, as the catalogue holds it."""

    event_uuid: UUID
    event_type: EventType
    occurred_at: datetime
    outcome: Outcome
    detail: str
    agent: str
    asset_id: int | None
    inventory_code: str | None
    bucket: str
    key: str
    etag: str | None
    run_key: str | None

    def to_json(self) -> dict[str, Any]:
        """The event as --json outputs show it: UUID as text, time in ISO 8601."""
        return {"event_uuid": str(self.event_uuid), "event_type": self.event_type.value,
                "occurred_at": self.occurred_at.isoformat(), "outcome": self.outcome.value,
                "detail": self.detail, "agent": self.agent, "asset_id": self.asset_id,
                "inventory_code": self.inventory_code, "bucket": self.bucket, "key": self.key,
                "etag": self.etag, "run_key": self.run_key}


@cache
def agent() -> str:
    """Who acts: `mpr <version> on <host>`."""
    return f"mpr {__version__} on {socket.gethostname()}"


def record(conn: psycopg.Connection[Any], events: Iterable[NewEvent], *,
           imported_by: int | None = None) -> int:
    """Append `events` in the caller's transaction, in their order, in one statement; how many
    were recorded. An event's asset id, inventory code and ETag, when not given, are the
    catalogue's for its bucket and key. With `imported_by` (an import run's id), only the
    events of files that run inserted are recorded: the import hands over the events of every
    file it planned, and the catalogue says which it actually inserted. A NUL in a detail
    (text a hostile file's header gave a probe) is written as `\\0`: PostgreSQL's text
    refuses it, and the change must not fail for its event's sake."""
    batch = list(events)
    if not batch:
        return 0
    params = {
        "agent": agent(), "imported_by": imported_by,
        "event_types": [EventType(e.event_type).value for e in batch],
        "outcomes": [Outcome(e.outcome).value for e in batch],
        "details": [e.detail.replace("\x00", "\\0") for e in batch],  # text refuses NUL
        "asset_ids": [e.asset_id for e in batch],
        "codes": [e.inventory_code for e in batch],
        "buckets": [e.bucket for e in batch],
        "keys": [e.key for e in batch],
        "etags": [e.etag for e in batch],
        "run_keys": [e.run_key for e in batch],
    }
    return conn.execute(query("insert_events"), params).rowcount


def _event(row: Any) -> Event:
    return Event(row["event_uuid"], EventType(row["event_type"]), row["occurred_at"],
                 Outcome(row["outcome"]), row["detail"], row["agent"], row["asset_id"],
                 row["inventory_code"], row["bucket"], row["key"], row["etag"],
                 row["run_key"])


def _rows(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[Event]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [_event(r) for r in cur.execute(query(name), params).fetchall()]


def for_asset(conn: psycopg.Connection[Any], asset_id: int) -> list[Event]:
    """Every event of an asset, oldest first."""
    return _rows(conn, "events_of_asset", {"asset_id": asset_id})


def for_file(conn: psycopg.Connection[Any], bucket: str, key: str) -> list[Event]:
    """Every event of the file at `bucket`/`key`, oldest first."""
    return _rows(conn, "events_of_file", {"bucket": bucket, "key": key})


@dataclass(frozen=True)
class EventFilter:
    """What `mpr events` asks for; None matches everything."""

    event_type: EventType | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    prefix: str | None = None
    limit: int = 100


def search(conn: psycopg.Connection[Any], wanted: EventFilter) -> list[Event]:
    """The newest `wanted.limit` events matching every filter, oldest first."""
    params = {"event_type": None if wanted.event_type is None else wanted.event_type.value,
              "outcome": None if wanted.outcome is None else wanted.outcome.value,
              "since": wanted.since, "prefix": wanted.prefix, "limit": wanted.limit}
    return _rows(conn, "search_events", params)


_AGE = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """The moment `--since` names: an age before `now` (7d, 12h) or an ISO 8601 date or
    date-time (local time when it has no zone). ValueError with the reason otherwise."""
    value = text.strip()
    age = _AGE.fullmatch(value.lower())
    if age is not None:
        try:
            return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO date or time (2026-11-01, "
                         "2026-11-01T08:00) nor an age like 7d or 12h") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def parse_event_type(text: str) -> EventType:
    """The event type a person names: a term in any case, with spaces, '-' or '_', or an
    alias (missing, restored). ValueError naming the choices otherwise."""
    name = re.sub(r"[-_\s]+", " ", text.strip().lower())
    for member_name, member in EventType.__members__.items():
        if name in (member.value, member_name.lower().replace("_", " ")):
            return member
    choices = ", ".join(sorted({e.value for e in EventType}))
    raise ValueError(f"{text!r} is no event type; choose one of: {choices} "
                     "(or missing, restored)")
