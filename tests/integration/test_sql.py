"""The SQL of mpr against a real PostgreSQL: every named query of queries.sql is described,
uses one parameter style and is accepted by the migrated schema; the migrations produce the
schema that sql/schema.sql describes (procrastinate keeps the same pair and diffs them)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from mpr_cli import db

pytestmark = pytest.mark.integration

_NAMED = re.compile(r"%\((\w+)\)s")
_POSITIONAL = re.compile(r"(?<!%)%s")  # `%%s` is a literal `%s` (a format() pattern)
_EXPLAINABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def _statement(sql: str) -> str:
    """The query without its comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def _first_word(sql: str) -> str:
    return _statement(sql).split(maxsplit=1)[0].upper()


def test_every_query_has_a_description_under_its_name():
    undescribed = [name for name, sql in db.queries().items()
                   if not sql.startswith("-- ") or len(sql.splitlines()[0]) < 10]
    assert undescribed == []


def test_every_query_passes_its_parameters_by_name():
    positional = [name for name, sql in db.queries().items()
                  if _POSITIONAL.search(_statement(sql))]
    assert positional == []


def test_every_query_is_used_by_mpr():
    """A query no module names is dead (as `asset_ids` was): remove it with its last caller."""
    code = "\n".join(p.read_text() for p in Path(db.__file__).parent.rglob("*.py"))
    unused = [name for name in db.queries() if f'"{name}"' not in code]
    assert unused == []


def test_every_named_query_is_accepted_by_the_migrated_schema(database_url):
    """Each query prepared and planned (EXPLAIN, never run) with every parameter NULL; the
    statements EXPLAIN cannot take (DDL, COPY) run inside the same rolled-back transaction,
    first, so that the queries over the session's temporary tables find them."""
    queries = db.queries()
    setup = {name: sql for name, sql in queries.items()
             if _first_word(sql) not in _EXPLAINABLE}
    refused = {}
    with psycopg.connect(database_url) as conn:
        for sql in setup.values():
            if _first_word(sql) == "COPY":
                with conn.cursor() as cur, cur.copy(sql):
                    pass
            else:
                conn.execute(sql)
        for name, sql in queries.items():
            if name in setup:
                continue
            params = dict.fromkeys(_NAMED.findall(sql))
            try:
                with conn.transaction():
                    conn.execute("EXPLAIN " + _statement(sql), params or None, prepare=True)
            except psycopg.Error as exc:
                refused[name] = str(exc).splitlines()[0]
        conn.rollback()
    assert refused == {}
    assert len(queries) - len(setup) >= 30


_CATALOGUE = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, is_nullable,
               column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype,
               pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1, 2""",
    "sequences": """
        SELECT sequence_name, data_type FROM information_schema.sequences
        WHERE sequence_schema = 'public' ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
}


def _catalogue(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {part: conn.execute(sql).fetchall() for part, sql in _CATALOGUE.items()}


def test_the_migrations_produce_the_schema_of_schema_sql(database_url, empty_database_url):
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute((db.sql_dir() / "schema.sql").read_text())

    migrated, described = _catalogue(database_url), _catalogue(empty_database_url)

    assert migrated["columns"], "the migrated database has no tables"
    for part in _CATALOGUE:
        only_migrated = sorted(set(migrated[part]) - set(described[part]), key=str)
        only_described = sorted(set(described[part]) - set(migrated[part]), key=str)
        assert (part, only_migrated, only_described) == (part, [], [])
