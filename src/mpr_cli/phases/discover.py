"""Phases 1 and 2 in one pass: the listing, classified by the rules and walked beside the
catalogue, in constant memory.

Each listed key is excluded, rejected (a Problem) or a candidate file (phase 1, pure:
validation/inventory.py). A candidate is then, by its catalogue row (phases/merge.py pairs
them, the catalogue read in the same order with a server-side cursor):

  no row, or a provisional master            new: put aside in the spill (phases/spill.py)
  catalogued, present, same size and ETag    known: counted and forgotten (not classified
                                             again: it was when it was imported)
  a master catalogued as on tape             restored: its bytes checked before phase 3
  another size or ETag, or back after missing  changed: settled by phases/crossref.py

and a catalogued row that a complete listing did not hold is missing. Nothing here is held in
proportion to the bucket: the new files are on disk, the known ones are only counted. What is
held are the problems, and the restored, changed and missing files (each a file that needs
attention, few in a nightly run).

With an inventory (a listing made earlier), a catalogued file it does not name may have come
since: `still_there` (a HEAD) decides before it is called missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mpr_cli.db import CatalogueRow, MissingFile
from mpr_cli.phases.crossref import CataloguedChange
from mpr_cli.phases.merge import Pair, changed, needs_attention
from mpr_cli.phases.spill import AssetSpill
from mpr_cli.problems import Problem
from mpr_cli.rules import Rules
from mpr_cli.storage import ObjectInfo
from mpr_cli.validation.inventory import Candidate, classify_key

OnListed = Callable[[int], None]  # told how many keys were listed so far


@dataclass
class Survey:
    """What phases 1 and 2 found: counts, and the files that need attention."""

    listed: int = 0
    excluded: int = 0
    known: int = 0  # catalogued and listed (the changed ones too): skipped
    new: int = 0  # put aside in the spill
    problems: list[Problem] = field(default_factory=list)  # phase 1's (rejected keys)
    etags: dict[str, str] = field(default_factory=dict)  # each rejected key's ETag
    restored: list[tuple[Candidate, str | None]] = field(default_factory=list)
    changed: list[CataloguedChange] = field(default_factory=list)
    missing: list[MissingFile] = field(default_factory=list)
    to_verify: int = 0  # bytes that checking the new, restored and changed files may stream


@dataclass(frozen=True)
class Scope:
    """How far the run's listing speaks for the bucket. `complete`: it holds every key under
    the prefix (then an unlisted catalogued file is missing); `excluded`: prefixes the rules
    pass over; `still_there`: asked before an unlisted file is called missing."""

    complete: bool = True
    excluded: tuple[str, ...] = ()
    still_there: Callable[[str], bool] | None = None


class Surveyor:
    """Sorts every pair of (listed object, catalogue row) into a Survey."""

    def __init__(self, rules: Rules, spill: AssetSpill, scope: Scope,
                 streamed: Callable[[Candidate], int]) -> None:
        self.rules, self.spill, self.scope, self.streamed = rules, spill, scope, streamed
        self.found = Survey()

    def take(self, entry: ObjectInfo | None, row: CatalogueRow | None) -> None:
        if entry is None:
            if row is not None:
                self.unlisted(row)
            return
        found = self.found
        found.listed += 1
        if row is not None and not needs_attention(row, entry):
            found.known += 1  # classified when it was imported: not again
            return
        outcome = classify_key(entry.key, entry.size, entry.etag, self.rules)
        if outcome is None:
            found.excluded += 1
        elif isinstance(outcome, Problem):
            found.problems.append(outcome)
            found.etags[entry.key] = entry.etag
        else:
            self.candidate(outcome, entry, row)

    def candidate(self, candidate: Candidate, entry: ObjectInfo,
                  row: CatalogueRow | None) -> None:
        found = self.found
        if row is None or row.provisional:
            self.spill.add(candidate)
            found.new += 1
            found.to_verify += self.streamed(candidate)
        elif not row.in_bucket:
            found.restored.append((candidate, row.md5))
            found.to_verify += self.streamed(candidate)
        else:
            found.known += 1
            change = CataloguedChange(candidate, row.md5, row.size, changed(row, entry),
                                      row.missing, row.differing_etag == entry.etag)
            found.changed.append(change)
            if change.needs_md5():
                found.to_verify += self.streamed(candidate)

    def unlisted(self, row: CatalogueRow) -> None:
        scope = self.scope
        if not (scope.complete and row.in_bucket and not row.missing):
            return
        if row.key.startswith(scope.excluded):
            return
        if scope.still_there is not None and scope.still_there(row.key):
            return
        self.found.missing.append(MissingFile(row.key, row.inventory_code))


def survey(pairs: Iterable[Pair], surveyor: Surveyor, *, on_listed: OnListed | None = None,
           every: int = 1000) -> Survey:
    """Every pair through `surveyor`; `on_listed(n)` every `every` listed keys and at the
    end (where a run may stop: it raises)."""
    found = surveyor.found
    for entry, row in pairs:
        surveyor.take(entry, row)
        if on_listed is not None and entry is not None and found.listed % every == 0:
            on_listed(found.listed)
    if on_listed is not None:
        on_listed(found.listed)
    return found
