"""Where `mpr export mets` puts a document: stdout, a file, or the output bucket.

A document is rendered (built and validated, mets.py) before anything is written: an invalid
document is an error (InternalError, exit 1) and is written nowhere. A file is written
atomically (mpr_cli.atomic: the whole document or nothing).

`--to-bucket` writes `<folder>/<code>.mets.xml` into S3_BUCKET_OUT, where `<folder>` is the
folder of the asset's master key: the folder transcodes write the asset's streaming copy to
(`<folder>/<code><ext>`, transcode/stages.py default_output_key), so the document lies beside
the asset's outputs (a master at the top of the bucket gives `<code>.mets.xml`). Writing is
refused when the output bucket is the input bucket (the next import would find a file of no
known role there) and over a key the catalogue holds a file at. Writing the same asset again
replaces its document: an export describes the catalogue as it is now.

`export_prefix` writes the document of every asset with a file under a key prefix; an asset
whose document cannot be made is reported and the others are still written. S3 or the
database failing stops the run (S3Unavailable, DatabaseError: exit 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from mpr_cli import db
from mpr_cli.atomic import atomic_write
from mpr_cli.config import Settings
from mpr_cli.display import visible
from mpr_cli.errors import InternalError, NotCatalogued, UsageError
from mpr_cli.export.mets import AssetRecord, codes_under, load_asset, render
from mpr_cli.storage import Storage

CONTENT_TYPE = "application/xml"


@dataclass(frozen=True)
class Document:
    """One asset's rendered, valid METS document."""

    record: AssetRecord
    data: bytes


@dataclass
class PrefixResult:
    """What `export_prefix` did: the URLs written, and each asset it could not export."""

    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (code, one-line reason)


def document_of(conn: psycopg.Connection[Any], code: str) -> Document:
    """The valid METS document of an asset; NotCatalogued when the catalogue has no such
    asset (or no file of it), InternalError when the schema refuses what mpr built."""
    record = load_asset(conn, code)
    if record is None:
        raise NotCatalogued(f"no asset {visible(code)} in the catalogue",
                            hint="give an inventory code `mpr show` knows, e.g. VO-UMT-14387")
    if not record.files:
        raise NotCatalogued(f"asset {code} has no catalogued file: nothing to describe",
                            hint="import the asset's files first")
    try:
        return Document(record, render(record))
    except InternalError:
        raise
    except Exception as exc:  # metsrw or lxml refusing what mpr gave them: mpr's bug
        raise InternalError(exc) from exc


def write_file(document: Document, path: Path) -> None:
    """The document at `path`, written whole or not at all."""
    atomic_write(path, document.data)


def _refuse_unsafe_target(conn: psycopg.Connection[Any], settings: Settings, key: str) -> None:
    bucket = settings.s3_bucket_out
    if bucket == settings.s3_bucket_in:
        raise UsageError(f"S3_BUCKET_OUT is the input bucket {bucket}: a METS document there "
                         "would be a file of no known role to the next import",
                         hint="set S3_BUCKET_OUT to the output bucket, or use -o FILE")
    row = db.catalogued_files(conn, bucket, [key]).get(key)
    if row is not None:
        raise UsageError(f"s3://{bucket}/{visible(key)} is catalogued as the {row['role']} file "
                         f"of {row['inventory_code']}: the METS document would replace it",
                         hint="move that file, or export with -o FILE")


def write_to_bucket(conn: psycopg.Connection[Any], storage: Storage, settings: Settings,
                    document: Document) -> str:
    """Upload the document beside the asset's outputs; its `s3://` location."""
    key = document.record.mets_key
    _refuse_unsafe_target(conn, settings, key)
    storage.upload_bytes(document.data, settings.s3_bucket_out, key,
                         content_type=CONTENT_TYPE)
    return f"s3://{settings.s3_bucket_out}/{key}"


def export_prefix(conn: psycopg.Connection[Any], storage: Storage, settings: Settings,
                  prefix: str) -> PrefixResult:
    """Every asset with a file under `prefix`, each document to the output bucket; an asset
    that fails is recorded in the result and the others go on. NotCatalogued when no asset
    has a file under `prefix`."""
    codes = codes_under(conn, prefix)
    if not codes:
        raise NotCatalogued(f"no catalogued asset has a file under {visible(prefix)!r}",
                            hint="check the prefix (keys look like BRD/VO-UMT-14387.mov)")
    if settings.s3_bucket_out == settings.s3_bucket_in:
        _refuse_unsafe_target(conn, settings, "")
    result = PrefixResult()
    for code in codes:
        try:
            result.written.append(write_to_bucket(conn, storage, settings,
                                                  document_of(conn, code)))
        except (InternalError, NotCatalogued, UsageError) as exc:
            result.failed.append((code, exc.one_line()))
    return result
