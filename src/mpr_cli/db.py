"""The only module that talks to PostgreSQL (psycopg 3).

SQL lives in `sql/NNN_*.sql` (migrations; `sql/schema.sql` describes the schema they leave)
and `queries.sql` (named queries: a `-- name: x` header, a one-line description, `%(name)s`
parameters). Every statement is parameterised; nothing is built by string formatting. Every
psycopg error that leaves this module's connections is turned into a DatabaseError in one
place, `wrap_database_errors`, its text scrubbed of secrets; only a batch the catalogue
refuses is told apart before that, as RowsRefused (one asset's problem, `insert_files`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from mpr_cli.config import Settings
from mpr_cli.errors import DatabaseError, RowsRefused, describe
from mpr_cli.rules import Role
from mpr_cli.secrets import scrub_first_line

MIGRATION_LOCK = 7_230_001  # pg_advisory_lock keys, one per purpose
IMPORT_LOCK = 7_230_002
log = logging.getLogger("mpr.db")

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def sql_dir() -> Path:
    """Migrations: packaged as mpr_cli/sql in a wheel, `sql/` at the top of a checkout."""
    packaged = Path(__file__).parent / "sql"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "sql"


@cache
def queries() -> dict[str, str]:
    text = (Path(__file__).parent / "queries.sql").read_text()
    parts = _HEADER.split(text)[1:]
    return {name: body.strip() for name, body in zip(parts[::2], parts[1::2], strict=True)}


def query(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in queries.sql") from None


def json_value(value: Any) -> Any:
    """A value read from the catalogue as the --json outputs show it: times in ISO 8601, enums
    as their text, everything else as it is."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Enum) else value


def _one(cursor: Any) -> Any:
    """The row of a query that always returns one (a RETURNING insert, a SELECT of a fact)."""
    row = cursor.fetchone()
    if row is None:
        raise DatabaseError("the catalogue returned no row where one was expected",
                            hint="run `mpr db status`; the schema may have been changed by hand")
    return row


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection with dict rows; psycopg errors become DatabaseError (no secrets).

    Connecting is retried for MPR_DB_RETRY_SECONDS (a PostgreSQL restart or failover takes
    seconds), with a logged, doubling backoff. Statements are not retried here: a lost
    connection mid-transaction cannot be resumed, so the caller's unit of work fails whole
    (and is rolled back by the server) and the run's own resumption takes over."""
    with wrap_database_errors(settings, {psycopg.Error: "database unreachable"},
                              hint="check DATABASE_URL (or DB_HOST/DB_PORT) and that "
                                   "PostgreSQL is running"):
        conn = _connect_retrying(settings, autocommit)
    with wrap_database_errors(settings), conn:
        yield conn


# What a psycopg error escaping a unit of work is called: the first class of the error's MRO
# found here names it (every psycopg error derives from psycopg.Error).
IN_USE: Mapping[type[psycopg.Error], str] = {
    psycopg.OperationalError: "database connection lost",
    psycopg.Error: "database error",
}


@contextmanager
def wrap_database_errors(settings: Settings,
                         messages: Mapping[type[psycopg.Error], str] = IN_USE, *,
                         hint: str | None = None) -> Iterator[None]:
    """Any psycopg error raised inside leaves as one DatabaseError: "<message>: <the error's
    first line, secrets scrubbed>", the message chosen by class from `messages` (which must
    cover psycopg.Error). Every place that turns psycopg errors into mpr's errors goes
    through here, as procrastinate's connector wraps every psycopg error once."""
    try:
        yield
    except psycopg.Error as exc:
        what = next(messages[k] for k in type(exc).__mro__ if k in messages)
        raise DatabaseError(f"{what}: {_scrub(str(exc), settings)}", hint=hint) from None


def _connect_retrying(settings: Settings, autocommit: bool) -> psycopg.Connection[Any]:
    def open_one() -> psycopg.Connection[Any]:
        return psycopg.connect(settings.conninfo(), autocommit=autocommit, row_factory=dict_row,
                               connect_timeout=10, application_name="mpr")

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("database unreachable (%s); retrying in %.1f s",
                    _scrub(str(error), settings),
                    state.next_action.sleep if state.next_action is not None else 0.0)

    retrying = Retrying(retry=retry_if_exception_type(psycopg.OperationalError),
                        stop=stop_after_delay(settings.db_retry_seconds),
                        wait=wait_exponential(multiplier=0.5, max=8),
                        before_sleep=waiting, reraise=True)
    return retrying(open_one)


def _scrub(text: str, settings: Settings) -> str:
    """The first line of a psycopg error's text without this process's secrets."""
    return scrub_first_line(text, settings.secret_values())


# ---------------------------------------------------------------- migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[tuple[int, str, Any]]
    pending: list[Migration]


def available_migrations() -> list[Migration]:
    found = []
    for path in sorted(sql_dir().glob("*.sql")):
        match = _MIGRATION.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    return found


def _applied(conn: psycopg.Connection[Any]) -> list[tuple[int, str, Any]]:
    conn.execute(query("create_migrations_table"))
    rows = conn.execute(query("applied_migrations")).fetchall()
    return [(r["version"], r["name"], r["applied_at"]) for r in rows]


def migration_status(settings: Settings) -> MigrationStatus:
    with connect(settings) as conn:
        applied = _applied(conn)
    done = {version for version, _, _ in applied}
    return MigrationStatus(applied, [m for m in available_migrations() if m.version not in done])


def migrate(settings: Settings) -> list[Migration]:
    """Apply pending migrations, each in its own transaction. Idempotent and lock-guarded."""
    applied_now = []
    with connect(settings, autocommit=True) as conn:
        conn.execute(query("lock"), {"key": MIGRATION_LOCK})
        try:
            with wrap_database_errors(settings, {psycopg.Error: "migration failed"}):
                done = {version for version, _, _ in _applied(conn)}
                for migration in available_migrations():
                    if migration.version in done:
                        continue
                    with conn.transaction():
                        conn.execute(migration.path.read_text())  # trusted file from mpr
                        conn.execute(query("record_migration"),
                                     {"version": migration.version, "name": migration.name})
                    applied_now.append(migration)
        finally:
            conn.execute(query("unlock"), {"key": MIGRATION_LOCK})
    return applied_now


# ---------------------------------------------------------------- catalogue: import


@dataclass(frozen=True)
class ExistingAsset:
    id: int
    inventory_code: str
    has_master: bool
    has_streaming: bool
    md5s: dict[str, str]  # key -> MD5 of each catalogued file that has one


@dataclass(frozen=True)
class FileRow:
    """One asset_files row to insert (the asset is named by its inventory code)."""

    inventory_code: str
    bucket: str
    key: str
    role: Role  # written as its value (asset_files.role is text)
    in_bucket: bool
    size: int | None
    etag: str | None
    md5: str | None
    mime_type: str | None
    tech_metadata: dict[str, Any] | None
    provisional: bool = False  # a master registered by `mpr transcode KEY`, not yet imported


class CatalogueRow(NamedTuple):
    """What the catalogue holds of one key of a bucket, as an import compares it with the
    listing (phases/merge.py); a named tuple, made from each row as it comes (one per
    catalogued file: cheap to build matters)."""

    key: str
    size: int | None
    etag: str | None
    md5: str | None
    provisional: bool  # a master registered by `mpr transcode KEY`: checked as if new
    in_bucket: bool  # False: a master catalogued from its sidecars (on tape)
    missing: bool  # recorded as missing from its bucket (sql/008)
    differing_etag: str | None  # the ETag whose bytes an earlier run read and found other
    inventory_code: str


@dataclass(frozen=True, slots=True)
class MissingFile:
    """A catalogued object a complete listing no longer holds (first noticed now)."""

    key: str
    inventory_code: str


CATALOGUE_ROWS_AT_ONCE = 5000  # rows the server-side cursor hands over per round trip


def catalogue_rows(conn: psycopg.Connection[Any], bucket: str,
                   prefix: str) -> Iterator[CatalogueRow]:
    """The catalogue's files of `bucket` under `prefix` in byte order of the key, through a
    server-side cursor (memory: one round trip's rows). Needs the caller's transaction."""
    with conn.cursor("catalogue_walk", row_factory=tuple_row) as cur:
        cur.itersize = CATALOGUE_ROWS_AT_ONCE
        cur.execute(query("catalogue_in_listing_order"), {"bucket": bucket, "prefix": prefix})
        yield from map(CatalogueRow._make, cur)


def catalogued_siblings(conn: psycopg.Connection[Any], bucket: str,
                        codes: list[str]) -> list[tuple[str, int, str]]:
    """(key, size, ETag) of the files of these assets catalogued as present in `bucket` (not
    provisional, not recorded missing): the files already there beside a delivery's new ones."""
    rows = conn.execute(query("catalogued_siblings"), {"bucket": bucket, "codes": codes})
    return [(r["key"], r["size"], r["etag"] or "") for r in rows]


def mark_missing(conn: psycopg.Connection[Any], bucket: str, keys: list[str]) -> int:
    """Record these catalogued objects as missing since now (those not recorded already)."""
    with conn.transaction():
        return conn.execute(query("mark_missing"), {"bucket": bucket, "keys": keys}).rowcount


def note_differing(conn: psycopg.Connection[Any], bucket: str,
                   objects: list[tuple[str, str]]) -> None:
    """Catalogued objects (key, ETag) whose bytes were read and differ from the catalogued
    MD5: the ETag is kept so that later runs do not read them again."""
    with conn.transaction():
        conn.execute(query("note_differing"), {"bucket": bucket,
                                               "keys": [key for key, _ in objects],
                                               "etags": [etag for _, etag in objects]})


@dataclass(frozen=True)
class Provenance:
    """Who updates a catalogued file in place: the command, and its run (asset_file_history)."""

    command: str  # import, nightly or replace
    run_key: str | None = None
    run_id: int | None = None


def keep_history(conn: psycopg.Connection[Any], bucket: str, key: str,
                 by: Provenance) -> bool:
    """Copy a catalogued file's current values into asset_file_history (caller's transaction);
    False when the key is not catalogued."""
    params = {"bucket": bucket, "key": key, "command": by.command, "run_key": by.run_key,
              "run_id": by.run_id}
    return conn.execute(query("keep_file_history"), params).fetchone() is not None


def refresh_files(conn: psycopg.Connection[Any], bucket: str,
                  objects: Iterable[tuple[str, int, str]], by: Provenance) -> int:
    """Catalogued objects listed with their catalogued bytes (key, size, ETag): the new size
    and ETag recorded, present again, the old values kept in history; one transaction."""
    done = 0
    with conn.transaction():
        for key, size, etag in objects:
            if keep_history(conn, bucket, key, by):
                conn.execute(query("refresh_file"),
                             {"bucket": bucket, "key": key, "size": size, "etag": etag})
                done += 1
    return done


@dataclass(frozen=True)
class AssetRef:
    id: int
    inventory_code: str
    media_type: str


@dataclass(frozen=True)
class CataloguedFile:
    """One asset_files row as `mpr replace` compares it with the bucket."""

    bucket: str
    key: str
    role: Role
    in_bucket: bool
    size: int | None
    etag: str | None
    md5: str | None
    provisional: bool
    missing_since: datetime | None


def file_asset(conn: psycopg.Connection[Any], bucket: str, key: str) -> AssetRef | None:
    """The asset a catalogued key of `bucket` belongs to, or None."""
    row = conn.execute(query("file_asset"), {"bucket": bucket, "key": key}).fetchone()
    return None if row is None else AssetRef(row["id"], row["inventory_code"], row["media_type"])


def asset_file_rows(conn: psycopg.Connection[Any], asset_id: int) -> list[CataloguedFile]:
    """Every catalogued file of an asset, in any bucket, by key."""
    rows = conn.execute(query("asset_file_rows"), {"asset_id": asset_id}).fetchall()
    return [CataloguedFile(r["bucket"], r["key"], Role(r["role"]), r["in_bucket"], r["size"],
                           r["etag"], r["md5"], r["provisional"], r["missing_since"])
            for r in rows]


def replace_file(conn: psycopg.Connection[Any], row: FileRow) -> bool:
    """A catalogued file's row now describes `row` (caller's transaction, after
    `keep_history`); False when the key is not catalogued."""
    tech = None if row.tech_metadata is None else Jsonb(row.tech_metadata)
    params = {"bucket": row.bucket, "key": row.key, "role": Role(row.role).value,
              "size": row.size, "etag": row.etag, "md5": row.md5, "mime_type": row.mime_type,
              "tech_metadata": tech}
    return conn.execute(query("replace_file"), params).fetchone() is not None


def mark_restored(conn: psycopg.Connection[Any], bucket: str, key: str, size: int,
                  etag: str) -> bool:
    params = {"size": size, "etag": etag, "bucket": bucket, "key": key}
    return conn.execute(query("mark_restored"), params).rowcount > 0


def existing_assets(conn: psycopg.Connection[Any], codes: list[str]) -> dict[str, ExistingAsset]:
    rows = conn.execute(query("existing_assets"), {"codes": codes}).fetchall()
    return {r["inventory_code"]: ExistingAsset(**r) for r in rows}


def insert_files(conn: psycopg.Connection[Any], run_id: int | None,
                 assets: list[tuple[str, str]], files: list[FileRow]) -> tuple[int, int]:
    """Insert assets (code, media type) and their files in the caller's transaction.

    Returns (assets inserted, files inserted). Rows already present are left untouched.
    RowsRefused when the catalogue refuses a value (the caller's transaction is then
    aborted: roll it back); a lost connection stays an OperationalError.
    """
    try:
        return _insert_files(conn, run_id, assets, files)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        raise RowsRefused(describe(exc), hint="the catalogue refused them",
                          duplicate=isinstance(exc, psycopg.errors.UniqueViolation)) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:  # encoding a value
        raise RowsRefused(describe(exc),
                          hint="a value could not be sent to the catalogue") from None


def _insert_files(conn: psycopg.Connection[Any], run_id: int | None,
                  assets: list[tuple[str, str]], files: list[FileRow]) -> tuple[int, int]:
    params = {"run_id": run_id, "codes": [code for code, _ in assets],
              "media_types": [media for _, media in assets]}
    new_assets = conn.execute(query("insert_assets"), params).fetchall()
    conn.execute(query("create_staged_files"))
    with conn.cursor() as cur, cur.copy(query("copy_staged_files")) as copy:
        for f in files:
            copy.write_row((f.inventory_code, f.bucket, f.key, Role(f.role).value, f.in_bucket,
                            f.size, f.etag, f.md5, f.mime_type,
                            None if f.tech_metadata is None else Jsonb(f.tech_metadata),
                            f.provisional))
    inserted = conn.execute(query("insert_staged_files"),
                            {"run_id": run_id}).fetchall()
    conn.execute(query("truncate_staged_files"))
    return len(new_assets), len(inserted)


def start_run(conn: psycopg.Connection[Any], command: str, mode: str, prefix: str,
              run_key: str | None = None) -> int:
    params = {"command": command, "mode": mode, "prefix": prefix,
              "host": socket.gethostname(), "pid": os.getpid(), "run_key": run_key}
    row = _one(conn.execute(query("start_run"), params))
    conn.execute(query("abandon_stale_runs"), {"current": row["id"]})
    return int(row["id"])


def finish_run(conn: psycopg.Connection[Any], run_id: int, status: str,
               counts: dict[str, Any], report: dict[str, Any]) -> None:
    conn.execute(query("finish_run"), {"status": status, "counts": Jsonb(counts),
                                        "report": Jsonb(report), "id": run_id})


def update_run_report(conn: psycopg.Connection[Any], run_id: int,
                      report: dict[str, Any]) -> None:
    conn.execute(query("update_run_report"), {"report": Jsonb(report), "id": run_id})


def list_runs(conn: psycopg.Connection[Any], limit: int) -> list[dict[str, Any]]:
    return list(conn.execute(query("list_runs"), {"limit": limit}).fetchall())


def get_run(conn: psycopg.Connection[Any], id_or_key: str) -> dict[str, Any] | None:
    """A run by its id or run key; `last` is the newest run."""
    if id_or_key == "last":
        return conn.execute(query("last_run")).fetchone()
    return conn.execute(query("get_run"), {"id_or_key": id_or_key}).fetchone()


@contextmanager
def import_lock(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """Hold the catalogue's import lock (a session advisory lock) on a connection of its own.

    A second import gets a DatabaseError naming the run that holds it.
    """
    with connect(settings, autocommit=True) as conn:
        if not _one(conn.execute(query("try_lock"), {"key": IMPORT_LOCK}))["locked"]:
            running = conn.execute(query("running_run")).fetchone()
            holder = (f"run {running['id']} started {running['started_at']:%Y-%m-%d %H:%M:%S} "
                      f"on {running['host']} (pid {running['pid']})") if running else "another run"
            raise ImportLocked(f"another import is running on this catalogue: {holder}",
                               hint="wait for it to finish; nothing was changed")
        try:
            yield conn
        finally:
            conn.execute(query("unlock"), {"key": IMPORT_LOCK})


class ImportLocked(DatabaseError):
    pass


def require_migrated_conn(conn: psycopg.Connection[Any]) -> None:
    """Raise unless every migration is applied. Reads only (safe in a dry run)."""
    tracked = _one(conn.execute(query("migrations_table_exists")))["present"]
    done = set()
    if tracked:
        done = {r["version"] for r in conn.execute(query("applied_migrations")).fetchall()}
    pending = [m for m in available_migrations() if m.version not in done]
    if pending:
        raise DatabaseError(
            f"database schema is not up to date ({len(pending)} migration(s) pending)",
            hint="run `mpr db migrate`",
        )


# ---------------------------------------------------------------- catalogue: transcode outputs
# (the job table is transcode/jobs.py's)


def asset_by_code(conn: psycopg.Connection[Any], code: str) -> dict[str, Any] | None:
    return conn.execute(query("asset_by_code"), {"code": code}).fetchone()


@dataclass(frozen=True)
class StreamingCopy:
    """An asset's streaming copy as the catalogue records it."""

    bucket: str
    key: str
    etag: str | None
    preset: str | None  # None: delivered with the asset, not made by mpr


def recorded_output(conn: psycopg.Connection[Any], code: str) -> StreamingCopy | None:
    """The asset's streaming copy, or None when it has none."""
    row = conn.execute(query("recorded_output"), {"code": code}).fetchone()
    return None if row is None else StreamingCopy(row["bucket"], row["key"], row["etag"],
                                                   row["preset"])


def catalogued_files(conn: psycopg.Connection[Any], bucket: str,
                     keys: list[str]) -> dict[str, dict[str, Any]]:
    """key -> what the catalogue records there (role, preset, the asset's inventory code)."""
    rows = conn.execute(query("catalogued_files"), {"bucket": bucket, "keys": keys}).fetchall()
    return {r["key"]: r for r in rows}


def upsert_output_file(conn: psycopg.Connection[Any], **row: Any) -> int | None:
    """An output row in the caller's transaction: a streaming row replaces the asset's one
    streaming row; None when the key is catalogued for another asset or in another role (the
    transaction is then aborted: the caller must roll it back)."""
    tech = row.get("tech_metadata")
    row["tech_metadata"] = None if tech is None else Jsonb(tech)
    try:
        if row["role"] == "streaming":
            replaced = conn.execute(query("replace_streaming_file"), row).fetchone()
            if replaced is not None:
                return int(replaced["id"])
        found = conn.execute(query("upsert_output_file"), row).fetchone()
    except psycopg.errors.UniqueViolation:
        return None
    return None if found is None else int(found["id"])
