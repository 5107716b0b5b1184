"""Migrations against a real PostgreSQL; the schema's constraints hold what the code assumes."""

import os
import subprocess

import psycopg
import pytest

from mpr_cli import db
from mpr_cli.config import load_settings
from mpr_cli.dev.devservices import free_port
from mpr_cli.errors import DatabaseError
from tests.integration.archive import mpr_argv
from tests.integration.processes import reaped
from tests.integration.proxy import Forwarder

pytestmark = pytest.mark.integration


def test_migrations_apply_once_then_nothing(empty_database_url):
    settings = load_settings(env_file=None, database_url=empty_database_url)
    first = db.migrate(settings)
    assert [m.version for m in first] == [m.version for m in db.available_migrations()]
    assert db.migrate(settings) == []
    status = db.migration_status(settings)
    assert status.pending == []
    assert [v for v, _, _ in status.applied] == [m.version for m in first]


def test_status_lists_pending_before_migrate(empty_database_url):
    settings = load_settings(env_file=None, database_url=empty_database_url)
    status = db.migration_status(settings)
    assert status.applied == []
    assert len(status.pending) == len(db.available_migrations()) >= 1
    with pytest.raises(DatabaseError) as info:
        _require_migrated(settings)
    assert "mpr db migrate" in info.value.one_line()


def _require_migrated(settings):
    with db.connect(settings) as conn:
        db.require_migrated_conn(conn)


def test_unreachable_database_is_one_clear_line_without_password():
    settings = load_settings(env_file=None,
                             database_url="postgresql://mpr:hunter2secret@127.0.0.1:1/mpr")
    with pytest.raises(DatabaseError) as info:
        db.migration_status(settings)
    assert "database unreachable" in info.value.message
    assert "hunter2secret" not in info.value.one_line()


def _insert_asset(conn, code, media_type="video"):
    return conn.execute(
        "INSERT INTO assets (inventory_code, media_type) VALUES (%s, %s) RETURNING id",
        (code, media_type),
    ).fetchone()[0]


# What a code looks like is the rules file's to say (sql/005): the schema refuses only what no
# rules file may accept, so that whatever `mpr validate` accepts, `mpr import` can insert.
@pytest.mark.parametrize(
    ("code", "media_type"),
    [("", "video"), ("VO UMT 14387", "video"), ("BRD/VO-UMT-14387", "video"),
     ("VO-UMT-１４３８７", "video"), ("VO-UMT-1438\n", "video"), ("V" * 65, "video"),
     ("VO-UMT-14387", "image")],
)
def test_schema_refuses_bad_assets(database_url, code, media_type):
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        _insert_asset(conn, code, media_type)


@pytest.mark.parametrize("code", ["VO-UMT-14387", "VO-UMT-143870", "FILM_1999.003", "V" * 64])
def test_schema_accepts_any_code_a_rules_file_may_accept(database_url, code):
    with psycopg.connect(database_url) as conn:
        assert _insert_asset(conn, code) > 0


def test_schema_refuses_duplicates(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        asset = _insert_asset(conn, "VO-UMT-14387")
        with pytest.raises(psycopg.errors.UniqueViolation):
            _insert_asset(conn, "VO-UMT-14387")
        row = "INSERT INTO asset_files (asset_id, bucket, key, role, size) VALUES (%s,%s,%s,%s,%s)"
        conn.execute(row, (asset, "in", "BRD/VO-UMT-14387.mov", "master", 10))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(row, (asset, "in", "BRD/VO-UMT-14387.mov", "streaming", 10))
        with pytest.raises(psycopg.errors.UniqueViolation):  # a second master
            conn.execute(row, (asset, "in", "BRD/VO-UMT-14387.mkv", "master", 10))
        conn.execute(row, (asset, "out", "BRD/VO-UMT-14387.mp4", "streaming", 10))
        with pytest.raises(psycopg.errors.UniqueViolation):  # a second streaming copy
            conn.execute(row, (asset, "in", "BRD/VO-UMT-14387.mp4", "streaming", 10))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(row, (asset, "in", "BRD/x.mp4", "thumbnail", 10))


def test_one_live_transcode_job_per_source_and_preset(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        asset = _insert_asset(conn, "VO-UMT-14387")
        job = ("INSERT INTO transcode_jobs (asset_id, inventory_code, media_type, source_bucket,"
               " source_key, preset, output_bucket, output_key) VALUES"
               " (%s, 'VO-UMT-14387', 'video', 'in', 'k.mov', 'web-720p', 'out', 'k.mp4')")
        conn.execute(job, (asset,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(job, (asset,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE transcode_jobs SET status = 'DONE'")


def test_connecting_is_retried_while_postgresql_restarts(services, database_url, tmp_path):
    """The catalogue is away when mpr starts (its port closed, as during a restart) and comes
    back after mpr has logged its first retry: mpr waits for it and completes (exit 0)."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_"))},
           "DATABASE_URL": database_url.replace(f":{services.pg_port}/", f":{port}/"),
           "MPR_DB_RETRY_SECONDS": "120"}
    proc = subprocess.Popen(mpr_argv("db", "status"), env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with reaped(proc):
        first = proc.stderr.readline()  # blocks until mpr says it waits
        assert "database unreachable" in first and "retrying in" in first, first
        assert services.pg_password not in first
        with Forwarder("127.0.0.1", services.pg_port, listen_port=port):  # PostgreSQL is back
            out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err
    assert "applied  001_initial" in out
    assert all("retrying in" in line for line in err.splitlines()), err


def test_database_away_for_longer_than_the_retries_is_exit_4(services, database_url, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_"))},
           "DATABASE_URL": database_url.replace(f":{services.pg_port}/", f":{free_port()}/"),
           "MPR_DB_RETRY_SECONDS": "1"}

    done = subprocess.run(mpr_argv("db", "status"), env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=120)

    assert done.returncode == 4
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: database unreachable: ")
    assert all("retrying in" in line for line in lines[:-1]) and len(lines) >= 2, lines
