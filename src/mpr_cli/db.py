"""The only module that talks to PostgreSQL (psycopg 3).

SQL lives in `sql/NNN_*.sql` (migrations) and `queries.sql` (named queries, `-- name: x`
headers). Every statement is parameterised; nothing is built by string formatting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from mpr_cli.config import Settings
from mpr_cli.errors import DatabaseError

MIGRATION_LOCK = 7_230_001  # pg_advisory_lock keys, one per purpose
IMPORT_LOCK = 7_230_002

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


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection with dict rows; psycopg errors become DatabaseError (no secrets)."""
    try:
        conn = psycopg.connect(
            settings.conninfo(), autocommit=autocommit, row_factory=dict_row, connect_timeout=10,
            application_name="mpr",
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"database unreachable: {_scrub(str(exc), settings)}",
            hint="check DATABASE_URL (or DB_HOST/DB_PORT) and that PostgreSQL is running",
        ) from None
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"database connection lost: {_scrub(str(exc), settings)}") from None


def _scrub(text: str, settings: Settings) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    for secret in settings.secret_values():
        first = first.replace(secret, "****")
    return first


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
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            done = {version for version, _, _ in _applied(conn)}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text())  # trusted file shipped with mpr
                    conn.execute(query("record_migration"), (migration.version, migration.name))
                applied_now.append(migration)
        except psycopg.Error as exc:
            raise DatabaseError(f"migration failed: {str(exc).splitlines()[0]}") from None
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied_now


def require_migrated(settings: Settings) -> None:
    status = migration_status(settings)
    if status.pending:
        raise DatabaseError(
            f"database schema is not up to date ({len(status.pending)} migration(s) pending)",
            hint="run `mpr db migrate`",
        )
