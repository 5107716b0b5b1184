"""The import's streamed phases 1 and 2, pure or on a local SQLite spill: the listing walked
beside the catalogue (phases/merge.py), the survey of each pair (phases/discover.py) and the
new files grouped by asset on disk (phases/spill.py)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest

from mpr_cli.db import CatalogueRow, MissingFile
from mpr_cli.phases.discover import Scope, Surveyor, survey
from mpr_cli.phases.merge import merged
from mpr_cli.phases.spill import AssetSpill
from mpr_cli.problems import Reason
from mpr_cli.rules import load_rules
from mpr_cli.storage import ObjectInfo

RULES = load_rules()
WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def obj(key: str, size: int = 10, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, size, etag, WHEN)


def row(key: str, size: int = 10, etag: str = "e", *, in_bucket: bool = True,
        missing: bool = False, provisional: bool = False, code: str = "VO-SMP-00001",
        md5: str | None = None) -> CatalogueRow:
    return CatalogueRow(key, size, etag, md5, provisional, in_bucket, missing, None, code)


def pairs(listing: list[str], rows: list[str]) -> list[tuple[str | None, str | None]]:
    return [(e.key if e else None, r.key if r else None)
            for e, r in merged([obj(k) for k in listing], [row(k) for k in sorted(rows)])]


def test_a_listing_in_byte_order_pairs_every_key_with_its_row():
    assert pairs(["a", "b", "d"], ["b", "c", "d", "e"]) == [
        ("a", None), ("b", "b"), ("d", "d"), (None, "c"), (None, "e")]


def test_seaweedfs_order_a_folder_before_the_names_between_still_pairs():
    """SeaweedFS lists CD/X/ before CD/X.md5 ('.' sorts before '/'): nothing is new or missing
    that is in both."""
    listing = ["CD/X/a.json", "CD/X/b.json", "CD/X.md5", "CD/X.wav", "CD/Y.wav"]
    assert sorted(pairs(listing, listing)) == sorted((k, k) for k in listing)
    got = pairs(listing, ["CD/X.md5", "CD/X/b.json", "CD/Z.wav"])
    assert ("CD/X.md5", "CD/X.md5") in got and ("CD/X/b.json", "CD/X/b.json") in got
    assert ("CD/X/a.json", None) in got and ("CD/X.wav", None) in got
    assert (None, "CD/Z.wav") in got and len(got) == 6


def test_a_listing_that_fails_calls_no_row_unlisted():
    def failing():
        yield obj("a")
        raise OSError("cut")

    seen = []
    with pytest.raises(OSError):
        for pair in merged(failing(), [row("a"), row("b")]):
            seen.append(pair)
    assert [(e.key if e else None, r.key if r else None) for e, r in seen] == [("a", "a")]


def survey_of(listing: list[ObjectInfo], rows: list[CatalogueRow], spill: AssetSpill,
              scope: Scope | None = None):
    surveyor = Surveyor(RULES, spill, scope or Scope(), lambda c: c.size)
    return survey(merged(listing, sorted(rows, key=lambda r: r.key)), surveyor)


def test_the_survey_sorts_keys_by_what_the_catalogue_holds(tmp_path):
    listing = [obj("BRD/VO-SMP-00001.mov", 5), obj("BRD/VO-SMP-00001.md5"),
               obj("BRD/VO-SMP-00002.mov", 7, "new-etag"), obj("BRD/VO-SMP-00003.mov", 9),
               obj("BRD/VO-SMP-00004.mov"), obj("BRD/bad name.mov"), obj("UMT/x.mov"),
               obj("BRD/VO-SMP-00006.mov", 3)]
    rows = [row("BRD/VO-SMP-00001.md5"),
            row("BRD/VO-SMP-00002.mov", 7, md5="a" * 32),
            row("BRD/VO-SMP-00003.mov", None, None, in_bucket=False, md5="b" * 32),
            row("BRD/VO-SMP-00004.mov", provisional=True),
            row("BRD/VO-SMP-00005.mov", code="VO-SMP-00005"),
            row("BRD/VO-SMP-00007.mov", missing=True), row("UMT/y.mov")]
    with AssetSpill(RULES, tmp_path) as spill:
        found = survey_of(listing, rows, spill, Scope(True, RULES.exclude_prefixes))
        groups = [(code, [c.key for c in files]) for code, files in spill.groups()]
    assert (found.listed, found.excluded, found.new, found.known) == (8, 1, 3, 2)
    assert [p.reason for p in found.problems] == [Reason.INVALID_INVENTORY_CODE]
    assert found.etags == {"BRD/bad name.mov": "e"}
    assert [(c.key, md5) for c, md5 in found.restored] == [("BRD/VO-SMP-00003.mov", "b" * 32)]
    assert [c.candidate.key for c in found.changed] == ["BRD/VO-SMP-00002.mov"]
    assert found.missing == [MissingFile("BRD/VO-SMP-00005.mov", "VO-SMP-00005")]
    assert groups == [("VO-SMP-00001", ["BRD/VO-SMP-00001.mov"]),
                      ("VO-SMP-00004", ["BRD/VO-SMP-00004.mov"]),
                      ("VO-SMP-00006", ["BRD/VO-SMP-00006.mov"])]
    assert found.to_verify == (5 + 10 + 3) + 9 + 7  # new, restored, changed media files


def test_an_incomplete_listing_or_a_file_still_there_is_not_missing(tmp_path):
    rows = [row("BRD/VO-SMP-00005.mov"), row("BRD/VO-SMP-00006.mov")]
    with AssetSpill(RULES, tmp_path) as spill:
        assert survey_of([], rows, spill, Scope(complete=False)).missing == []
        there = survey_of([], rows, spill,
                          Scope(still_there=lambda key: key.endswith("5.mov")))
    assert [m.key for m in there.missing] == ["BRD/VO-SMP-00006.mov"]


def test_an_assets_files_in_several_folders_come_back_together(tmp_path):
    """A master under BRD/, its checksum under FILE/2019/, another asset between them."""
    listing = [obj("BRD/VO-SMP-00001.mov"), obj("BRD/VO-SMP-00002.mov"),
               obj("DVD/VO-SMP-00002.md5"), obj("FILE/2019/VO-SMP-00001.mov.md5")]
    with AssetSpill(RULES, tmp_path) as spill:
        survey_of(listing, [], spill)
        assert spill.assets() == 2
        groups = [(code, [c.key for c in files]) for code, files in spill.groups()]
        assert spill.etags(["DVD/VO-SMP-00002.md5", "nope"]) == {"DVD/VO-SMP-00002.md5": "e"}
    assert groups == [("VO-SMP-00001", ["BRD/VO-SMP-00001.mov",
                                        "FILE/2019/VO-SMP-00001.mov.md5"]),
                      ("VO-SMP-00002", ["BRD/VO-SMP-00002.mov", "DVD/VO-SMP-00002.md5"])]
    assert not spill.folder.exists()  # removed when closed


def test_the_spill_holds_new_files_on_disk_not_in_memory(tmp_path):
    """100,000 new keys surveyed: Python's own allocations stay a few MiB (holding them as
    Candidates would take well over 50 MiB)."""
    keys = (obj(f"BRD/VO-S{n // 100000:02d}-{n % 100000:05d}.mov", n) for n in range(100_000))
    tracemalloc.start()
    try:
        with AssetSpill(RULES, tmp_path) as spill:
            found = survey(merged(keys, []), Surveyor(RULES, spill, Scope(), lambda c: 0))
            _, peak = tracemalloc.get_traced_memory()
            assert spill.assets() == 100_000
    finally:
        tracemalloc.stop()
    assert found.new == 100_000
    assert peak < 8 * 1024 * 1024


def test_the_listing_concurrency_is_one_thread_per_carrier_folder_at_most_8():
    from mpr_cli.config import load_settings
    from mpr_cli.phases.sources import list_concurrency

    settings = load_settings(env_file=None, database_url="postgresql://x@127.0.0.1/x")
    assert list_concurrency(settings, RULES) == min(8, len(RULES.folders))
    chosen = load_settings(env_file=None, database_url="postgresql://x@127.0.0.1/x",
                           list_concurrency=3)
    assert list_concurrency(chosen, RULES) == 3


@pytest.mark.parametrize("command", ["import", "validate", "nightly"])
def test_a_bad_inventory_max_age_is_a_usage_error(tmp_path, monkeypatch, command):
    from tests.unit.clirun import runner_in

    run = runner_in(tmp_path, monkeypatch)
    result = run(command, "--inventory", "s3://inv/m.json", "--inventory-max-age", "soon")
    assert result.exit_code == 2
    assert "--inventory-max-age" in result.stderr and "Traceback" not in result.stderr
