"""Known problems (the `known_problems` table, sql/007): what earlier runs already reported.

A problem is identified by its bucket, its key, the ETag of the object when it was reported
(None for a problem without an object, e.g. a master on tape) and its reason. One already
reported is *known*: a run's exit code reflects only new errors (unless --strict), and the
summary, the digest and the metrics count new and known problems apart.

Every completed, recorded run (`mpr import`, `mpr nightly`; never a dry run or validate) records
its problems here in the same transaction as its own record (`record`). The *open* problems are
those the latest completed run covering their key saw (a run covers the keys under its prefix).
`acknowledge` marks open problems as seen by a person; the mark holds for that row only, so a
changed object (a new ETag) is a new problem again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from mpr_cli import db
from mpr_cli.problems import Problem
from mpr_cli.report import Identity, Standing, identity


class Which(StrEnum):
    """`mpr problems --new|--known`."""

    ALL = "all"
    NEW = "new"
    KNOWN = "known"


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    """One problem per identity (the first): a key may carry a reason twice in one run."""
    seen: dict[Identity, Problem] = {}
    for problem in problems:
        seen.setdefault(identity(problem), problem)
    return list(seen.values())


def standings(conn: psycopg.Connection[Any], bucket: str, problems: Iterable[Problem],
              etags: Mapping[str, str]) -> dict[Identity, Standing]:
    """The known problems among `problems` (read only: a dry run may ask too); a problem
    missing from the result is new. `etags` maps a key to its listed object's ETag."""
    unique = _unique(problems)
    if not unique:
        return {}
    params = {"bucket": bucket, "keys": [p.key for p in unique],
              "etags": [etags.get(p.key) for p in unique],
              "reasons": [p.reason.value for p in unique]}
    rows = conn.execute(db.query("problem_standing"), params).fetchall()
    return {(r["key"], r["reason"]): Standing(True, bool(r["acknowledged"])) for r in rows}


def record(conn: psycopg.Connection[Any], bucket: str, run_id: int,
           problems: Iterable[Problem], etags: Mapping[str, str]) -> None:
    """Record a completed run's problems in the caller's transaction: new ones inserted,
    known ones marked as seen by this run (their message and severity refreshed)."""
    unique = _unique(problems)
    if not unique:
        return
    conn.execute(db.query("record_problems"), {
        "bucket": bucket, "run_id": run_id, "keys": [p.key for p in unique],
        "etags": [etags.get(p.key) for p in unique],
        "reasons": [p.reason.value for p in unique],
        "severities": [p.severity.value for p in unique],
        "codes": [p.inventory_code for p in unique], "messages": [p.message for p in unique]})


@dataclass(frozen=True)
class OpenProblem:
    """A problem the latest completed run covering its key saw."""

    key: str
    etag: str | None
    reason: str
    severity: str
    inventory_code: str | None
    message: str
    known: bool  # reported before that run too
    first_run_id: int
    first_seen_at: datetime
    last_run_id: int
    last_seen_at: datetime
    acknowledged_at: datetime | None
    ack_note: str | None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of `mpr problems --json` and `mpr show --json`."""
        return {"key": self.key, "etag": self.etag, "reason": self.reason,
                "severity": self.severity, "inventory_code": self.inventory_code,
                "message": self.message, "known": self.known,
                "acknowledged": self.acknowledged,
                "acknowledged_at": db.json_value(self.acknowledged_at),
                "ack_note": self.ack_note, "first_run_id": self.first_run_id,
                "first_seen_at": db.json_value(self.first_seen_at),
                "last_run_id": self.last_run_id,
                "last_seen_at": db.json_value(self.last_seen_at)}


@dataclass(frozen=True)
class ProblemFilter:
    """What `mpr problems` narrows the open problems to."""

    which: Which = Which.ALL
    reason: str | None = None
    prefix: str = ""
    inventory_code: str | None = None


def open_problems(conn: psycopg.Connection[Any], bucket: str,
                  wanted: ProblemFilter = ProblemFilter()) -> list[OpenProblem]:
    """The open problems of `bucket` (see the module docstring), by key then reason."""
    rows = conn.execute(db.query("open_problems"), {
        "bucket": bucket, "prefix": wanted.prefix, "reason": wanted.reason,
        "code": wanted.inventory_code}).fetchall()
    found = [OpenProblem(**row) for row in rows]
    if wanted.which is Which.NEW:
        return [p for p in found if not p.known]
    if wanted.which is Which.KNOWN:
        return [p for p in found if p.known]
    return found


def acknowledge(conn: psycopg.Connection[Any], bucket: str, *, key: str | None,
                reason: str | None, note: str | None) -> list[Identity]:
    """Acknowledge the open problems of `key` and/or `reason` (at least one given); the
    (key, reason) of each row acknowledged."""
    if key is None and reason is None:
        raise ValueError("acknowledge needs a key or a reason")
    rows = conn.execute(db.query("acknowledge_problems"), {
        "bucket": bucket, "key": key, "reason": reason, "note": note}).fetchall()
    return [(r["key"], r["reason"]) for r in rows]
