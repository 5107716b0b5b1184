"""Migrations against a real PostgreSQL; the schema's constraints hold what the code assumes."""

import psycopg
import pytest

from mpr_cli import db
from mpr_cli.config import load_settings
from mpr_cli.errors import DatabaseError

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
        db.require_migrated(settings)
    assert "mpr db migrate" in info.value.one_line()


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


@pytest.mark.parametrize(
    ("code", "media_type"),
    [("VO-UMT-1438", "video"), ("vo-umt-14387", "video"), ("VO-UMT-14387", "audio"),
     ("AO-UMT-14387", "video")],
)
def test_schema_refuses_bad_assets(database_url, code, media_type):
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        _insert_asset(conn, code, media_type)


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
