"""Phase 2: set-based comparison of the candidates with what the catalogue already holds.

One COPY into a temporary table and one anti-join per batch; never a query per file. A key
already catalogued with the same size and ETag is skipped; one whose size or ETag changed is
skipped and flagged `changed_since_import`, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpr_cli import db
from mpr_cli.problems import Problem, Reason
from mpr_cli.validation.inventory import Candidate


@dataclass
class CrossReference:
    new: list[Candidate] = field(default_factory=list)
    known: list[Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # masters catalogued from their sidecars (on tape) now in the bucket, with the catalogued MD5
    restored: list[tuple[Candidate, str | None]] = field(default_factory=list)


def _changed_message(candidate: Candidate) -> str:
    return (f"{candidate.key} changed in the bucket since it was imported (size or ETag "
            "differs); it was not re-imported: check the delivery, and replace the catalogue "
            "record by hand if the new file is right")


def cross_reference(conn: Any, bucket: str, candidates: list[Candidate]) -> CrossReference:
    known = db.incoming_changes(conn, bucket, ((c.key, c.size, c.etag) for c in candidates))
    result = CrossReference()
    for candidate in candidates:
        record = known.get(candidate.key)
        if record is None:  # catalogued, same size and ETag
            result.known.append(candidate)
            continue
        if record.new:
            result.new.append(candidate)
            continue
        if record.restored:
            result.restored.append((candidate, record.md5))
            continue
        result.known.append(candidate)  # changed: skipped and flagged, never overwritten
        result.problems.append(Problem.make(
            Reason.CHANGED_SINCE_IMPORT, candidate.key, _changed_message(candidate),
            inventory_code=candidate.inventory_code))
    return result
