"""Where a run's list of objects comes from: the bucket's listing, or an S3 Inventory.

- The listing (the default): the carrier folders listed concurrently (mpr_cli.listing), one
  stream in the server's order. `MPR_LIST_CONCURRENCY` threads, by default one per carrier
  folder of the rules, at most 8. A complete listing speaks for the bucket: a catalogued file
  it does not hold is missing.
- An inventory (`--inventory URI`, mpr_cli.s3inventory): the objects an S3 Inventory report
  names, in byte order, read from its gzip CSV files instead of listing; the way to import a
  bucket of 100 million objects. It is checked first: made for this bucket, and no older than
  `--inventory-max-age`. It was made earlier than the run, so a catalogued file it does not
  name may have come since: a HEAD decides before it is called missing. A key it names that the
  bucket no longer has is missing_object when phase 3 reads it (never a crash).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mpr_cli import s3inventory
from mpr_cli.config import Settings
from mpr_cli.errors import InventoryError
from mpr_cli.listing import list_objects
from mpr_cli.phases.discover import Scope
from mpr_cli.rules import Rules
from mpr_cli.storage import ObjectInfo, Storage

MAX_LIST_CONCURRENCY = 8
DEFAULT_INVENTORY_MAX_AGE = timedelta(hours=48)


@dataclass(frozen=True)
class InventoryChoice:
    """`--inventory URI` and `--inventory-max-age`."""

    uri: str
    max_age: timedelta = DEFAULT_INVENTORY_MAX_AGE


def list_concurrency(settings: Settings, rules: Rules) -> int:
    """MPR_LIST_CONCURRENCY, else one thread per carrier folder of the rules, at most 8."""
    if settings.list_concurrency:
        return settings.list_concurrency
    return max(1, min(MAX_LIST_CONCURRENCY, len(rules.folders)))


def latest_manifest(storage: Storage, folder: str) -> str:
    """The newest manifest.json under an inventory's folder (`s3://dest/prefix/source/config/`:
    AWS names each report's folder by its date, `YYYY-MM-DDTHH-MMZ`, so the newest sorts last):
    what a nightly cron line gives, since the manifest's own key changes every day."""
    bucket, _, prefix = folder.removeprefix("s3://").partition("/")
    found = [obj.key for obj in list_objects(storage, bucket, prefix, concurrency=1)
             if obj.key.endswith("/manifest.json")]
    if not found:
        raise InventoryError(f"no manifest.json under {folder}",
                             hint="give the inventory's folder (prefix/source-bucket/config-ID/) "
                                  "or its manifest.json")
    return f"s3://{bucket}/{max(found)}"


class ObjectSource:
    """The objects under `prefix` of the input bucket, from a listing or an inventory."""

    def __init__(self, settings: Settings, storage: Storage, rules: Rules, prefix: str,
                 inventory: InventoryChoice | None = None) -> None:
        self.settings, self.storage, self.rules, self.prefix = settings, storage, rules, prefix
        self.choice = inventory
        self.manifest: s3inventory.Manifest | None = None

    def open(self, now: datetime | None = None) -> None:
        """Read and check the inventory's manifest (nothing to do for a listing): made for
        the input bucket, and fresh enough (InventoryError / InventoryStale, exit 2)."""
        if self.choice is None:
            return
        uri = self.choice.uri
        if uri.startswith("s3://") and uri.endswith("/"):
            uri = latest_manifest(self.storage, uri)
        manifest = s3inventory.read_manifest(uri, self.storage)
        bucket = self.settings.s3_bucket_in
        if manifest.source_bucket != bucket:
            raise InventoryError(
                f"inventory {self.choice.uri} lists bucket {manifest.source_bucket}, not the "
                f"input bucket {bucket}", hint="give the inventory of S3_BUCKET_IN")
        s3inventory.check_fresh(manifest, self.choice.max_age, now or datetime.now(UTC))
        self.manifest = manifest

    def describe(self) -> dict[str, Any] | None:
        """The inventory a run read, for its report (None for a listing)."""
        manifest = self.manifest
        if manifest is None:
            return None
        age = manifest.age(datetime.now(UTC))
        return {"manifest": manifest.location, "created": manifest.created.isoformat(),
                "age_s": int(age.total_seconds()), "age": s3inventory.describe_age(age),
                "files": len(manifest.files)}

    def objects(self) -> Iterator[ObjectInfo]:
        if self.manifest is None:
            yield from list_objects(
                self.storage, self.settings.s3_bucket_in, self.prefix,
                concurrency=list_concurrency(self.settings, self.rules))
            return
        with tempfile.TemporaryDirectory(prefix="mpr-inventory-",
                                         dir=self.settings.temp_dir) as scratch:
            for obj in s3inventory.manifest_objects(self.manifest, self.storage,
                                                    scratch=Path(scratch)):
                if obj.key.startswith(self.prefix):
                    yield obj

    def scope(self) -> Scope:
        """How far the objects speak for the bucket (missing files)."""
        if self.manifest is None:
            return Scope(True, self.rules.exclude_prefixes)
        bucket = self.settings.s3_bucket_in
        return Scope(True, self.rules.exclude_prefixes,
                     still_there=lambda key: self.storage.head(bucket, key) is not None)
