"""Phase 1: the bucket listing -> candidate files, excluded keys and rejected keys.

No database, no per-key S3 call: only the streamed listing and the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mpr_cli.problems import Problem
from mpr_cli.rules import Rules
from mpr_cli.storage import ObjectInfo
from mpr_cli.validation.inventory import Candidate, classify_key

OnListed = Callable[[int], None]  # told how many keys were listed so far


@dataclass
class Discovery:
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    listed: int = 0
    excluded: int = 0
    etags: dict[str, str] = field(default_factory=dict)  # each rejected key's ETag (mpr_cli.known)


def discover(objects: Iterable[ObjectInfo], rules: Rules, *,
             on_listed: OnListed | None = None, every: int = 1000) -> Discovery:
    """Classify every listed key; `on_listed(n)` is called every `every` keys and at the end."""
    found = Discovery()
    for obj in objects:
        found.listed += 1
        outcome = classify_key(obj.key, obj.size, obj.etag, rules)
        if outcome is None:
            found.excluded += 1
        elif isinstance(outcome, Problem):
            found.problems.append(outcome)
            found.etags[obj.key] = obj.etag
        else:
            found.candidates.append(outcome)
        if on_listed is not None and found.listed % every == 0:
            on_listed(found.listed)
    if on_listed is not None:
        on_listed(found.listed)
    return found
