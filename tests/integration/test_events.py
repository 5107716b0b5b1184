"""Preservation events against real PostgreSQL, SeaweedFS and ffmpeg: what `mpr import`,
`mpr transcode`, `mpr replace` and a vanished or restored object leave in the append-only
`events` table, that the database refuses to change or remove them, that dry runs leave
none, and how `mpr events` and `mpr show` list them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg
import psycopg.rows
import pytest

from mpr_cli import __version__, events
from mpr_cli.dev.sample import SampleArchive, generate_media
from tests.integration.archive import (
    TAPE_CODE,
    TAPE_MASTER,
    keys_of,
    md5_of,
    query,
    upload_tree,
)
from tests.integration.transcoding import (
    AUDIO_CODE,
    VIDEO_CODE,
    build_awaiting_archive,
    master_key,
    output_key,
    put_catalogued,
)

pytestmark = pytest.mark.integration

AUDIO_MASTER = master_key(AUDIO_CODE)
AUDIO_CHECKSUMS = f"CD/{AUDIO_CODE}.md5"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("events") / "bucket", 2)


def events_of(database_url: str, key: str | None = None) -> list[dict[str, Any]]:
    return query(database_url, "SELECT * FROM events WHERE %s::text IS NULL OR key = %s "
                               "ORDER BY id", (key, key))


def types_by_key(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        found.setdefault(row["key"], []).append((row["event_type"], row["outcome"]))
    return found


def damaged(data: bytes) -> bytes:
    copy = bytearray(data)
    copy[len(copy) // 2] ^= 0xFF
    return bytes(copy)


# -- import ---------------------------------------------------------------------------------------


def test_an_import_records_the_events_of_each_file_it_inserted(archive, cat, run_mpr,
                                                              database_url):
    put_catalogued(run_mpr, cat, archive, [VIDEO_CODE])
    rows = events_of(database_url)
    files = {f["key"]: f for f in cat.files(VIDEO_CODE)}
    master = master_key(VIDEO_CODE)
    found = types_by_key(rows)
    assert set(found) == set(files)  # every file inserted, nothing else
    assert found[master] == [("format identification", "success"),
                             ("message digest calculation", "success"),
                             ("validation", "success"), ("ingestion", "success")]
    for key in set(files) - {master}:  # sidecars: validated and ingested, no checks of bytes
        assert found[key] == [("validation", "success"), ("ingestion", "success")]
    [run] = query(database_url, "SELECT run_key FROM import_runs")
    [asset] = query(database_url, "SELECT id FROM assets")
    for row in rows:
        assert row["agent"].startswith(f"mpr {__version__} on ")
        assert (row["asset_id"], row["inventory_code"], row["run_key"]) == (
            asset["id"], VIDEO_CODE, run["run_key"])
        assert row["bucket"] == cat.bucket_in and row["etag"] == files[row["key"]]["etag"]
    assert len({row["event_uuid"] for row in rows}) == len(rows)
    [digest] = [r for r in rows if r["event_type"] == "message digest calculation"]
    assert files[master]["md5"] in digest["detail"]

    again = run_mpr("import")  # nothing new: nothing inserted, no event
    assert again.returncode == 0, again.stderr
    assert len(events_of(database_url)) == len(rows)


def test_a_dry_run_records_no_event(archive, cat, run_mpr, database_url, s3_admin):
    upload_tree(s3_admin, cat.bucket_in, archive.root, keys_of(archive, [VIDEO_CODE]))
    dry = run_mpr("import", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert events_of(database_url) == []


# -- the database refuses changes -----------------------------------------------------------------


@pytest.mark.parametrize("statement", ["UPDATE events SET outcome = 'failure'",
                                       "DELETE FROM events", "TRUNCATE events"])
def test_the_database_refuses_to_change_or_remove_events(statement, archive, cat, run_mpr,
                                                         database_url):
    put_catalogued(run_mpr, cat, archive, [AUDIO_CODE])
    before = events_of(database_url)
    verb = statement.split()[0]
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    assert f"events are append-only: {verb} on events refused" in str(refused.value)
    assert events_of(database_url) == before and before


def test_record_fills_in_the_catalogue_and_keeps_a_nul_out_of_the_text(archive, cat, run_mpr,
                                                                      database_url):
    """events.record on its own: a NUL from a hostile header is kept as text, not refused;
    asset, code and ETag come from the catalogue when not given; for_file reads them back."""
    put_catalogued(run_mpr, cat, archive, [AUDIO_CODE])
    [master] = cat.files(AUDIO_CODE, "master")
    odd = events.NewEvent(events.EventType.VALIDATION, events.Outcome.WARNING, "a\x00b",
                          cat.bucket_in, AUDIO_MASTER)
    elsewhere = events.NewEvent(events.EventType.DELETION, events.Outcome.FAILURE, "gone",
                                "another-bucket", AUDIO_MASTER)
    with psycopg.connect(database_url) as conn:
        assert events.record(conn, [odd, elsewhere]) == 2
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        last = events.for_file(conn, cat.bucket_in, AUDIO_MASTER)[-1]
        [other] = events.for_file(conn, "another-bucket", AUDIO_MASTER)
    assert (last.detail, last.asset_id, last.inventory_code, last.etag) == (
        "a\\0b", master["asset_id"], AUDIO_CODE, master["etag"])
    assert (other.asset_id, other.inventory_code, other.etag) == (None, None, None)


# -- transcode ------------------------------------------------------------------------------------


def test_a_transcode_records_the_creation_of_the_streaming_copy(archive, cat, run_mpr,
                                                               database_url):
    put_catalogued(run_mpr, cat, archive, [AUDIO_CODE])
    done = run_mpr("transcode", AUDIO_MASTER)
    assert done.returncode == 0, done.stdout + done.stderr

    [made] = [r for r in events_of(database_url) if r["event_type"] == "creation"]
    [copy] = cat.files(AUDIO_CODE, "streaming")
    assert (made["key"], made["bucket"], made["outcome"]) == (
        output_key(AUDIO_CODE), cat.bucket_out, "success")
    assert (made["asset_id"], made["inventory_code"], made["etag"]) == (
        copy["asset_id"], AUDIO_CODE, copy["etag"])
    assert "audio-mp3-192" in made["detail"] and copy["md5"] in made["detail"]


def test_a_master_registered_by_transcode_records_its_provisional_ingestion(archive, cat,
                                                                           run_mpr,
                                                                           database_url,
                                                                           s3_admin):
    upload_tree(s3_admin, cat.bucket_in, archive.root, [AUDIO_MASTER])
    done = run_mpr("transcode", AUDIO_MASTER)
    assert done.returncode == 0, done.stdout + done.stderr
    found = types_by_key(events_of(database_url))
    assert found[AUDIO_MASTER] == [("message digest calculation", "success"),
                                   ("ingestion", "warning")]
    assert found[output_key(AUDIO_CODE)] == [("creation", "success")]


# -- replace, missing, restored -------------------------------------------------------------------


def test_other_bytes_are_a_failed_fixity_check_and_replace_records_replacement(
        archive, cat, run_mpr, database_url, s3_admin):
    put_catalogued(run_mpr, cat, archive, [AUDIO_CODE])
    imported = len(events_of(database_url))
    data = damaged((archive.root / AUDIO_MASTER).read_bytes())
    s3_admin.put_object(Bucket=cat.bucket_in, Key=AUDIO_MASTER, Body=data)
    assert run_mpr("import").returncode == 0  # changed_since_import: a warning
    [changed] = events_of(database_url)[imported:]
    assert (changed["event_type"], changed["outcome"], changed["key"]) == (
        "fixity check", "failure", AUDIO_MASTER)

    old_md5 = md5_of(archive.root / AUDIO_MASTER)
    new_md5 = hashlib.md5(data).hexdigest()
    sidecar = (archive.root / AUDIO_CHECKSUMS).read_text().replace(old_md5, new_md5)
    s3_admin.put_object(Bucket=cat.bucket_in, Key=AUDIO_CHECKSUMS, Body=sidecar.encode())
    assert run_mpr("replace", AUDIO_MASTER, "--dry-run").returncode == 0
    assert len(events_of(database_url)) == imported + 1  # a dry run records nothing

    done = run_mpr("replace", AUDIO_MASTER)
    assert done.returncode == 0, done.stdout + done.stderr
    found = types_by_key(events_of(database_url)[imported + 1:])
    assert ("replacement", "success") in found[AUDIO_MASTER]
    assert ("message digest calculation", "success") in found[AUDIO_MASTER]
    assert found[AUDIO_CHECKSUMS] == [("replacement", "success")]
    [replaced] = [r for r in events_of(database_url, AUDIO_MASTER)
                  if r["event_type"] == "replacement"]
    assert f"MD5 {old_md5} -> {new_md5}" in replaced["detail"]
    assert replaced["etag"] == cat.files(AUDIO_CODE, "master")[0]["etag"]


def test_a_vanished_object_records_a_deletion_and_its_return_a_recovery(archive, cat, run_mpr,
                                                                       database_url, s3_admin):
    put_catalogued(run_mpr, cat, archive, [AUDIO_CODE])
    imported = len(events_of(database_url))
    s3_admin.delete_object(Bucket=cat.bucket_in, Key=AUDIO_MASTER)

    assert run_mpr("import", "--dry-run").returncode == 1  # reported, nothing recorded
    assert len(events_of(database_url)) == imported
    assert run_mpr("import").returncode == 1
    assert run_mpr("import").returncode == 0  # recorded already: no second event
    [gone] = events_of(database_url)[imported:]
    assert (gone["event_type"], gone["outcome"], gone["key"], gone["inventory_code"]) == (
        "deletion", "failure", AUDIO_MASTER, AUDIO_CODE)
    assert "mpr did not delete it" in gone["detail"]

    s3_admin.put_object(Bucket=cat.bucket_in, Key=AUDIO_MASTER,
                        Body=(archive.root / AUDIO_MASTER).read_bytes())
    assert run_mpr("import").returncode == 0
    [back] = events_of(database_url)[imported + 1:]
    assert (back["event_type"], back["outcome"], back["key"]) == (
        "recovery", "success", AUDIO_MASTER)


def test_a_tape_master_is_ingested_from_its_sidecars_and_recovered_into_the_bucket(
        sample_archive, upload, run_mpr, database_url, s3_admin, buckets, tmp_path):
    upload(sample_archive.root, keys_of(sample_archive, [TAPE_CODE]))
    assert run_mpr("import").returncode == 0
    [*checked, ingested] = events_of(database_url, TAPE_MASTER)
    assert [(r["event_type"], r["outcome"]) for r in checked] == [("validation", "success")]
    assert ingested["event_type"] == "ingestion" and "on tape" in ingested["detail"]
    assert ingested["etag"] is None  # no object: nothing was read, no digest, no format

    restored = tmp_path / "VO-TAP-00001.mov"
    generate_media(restored, "prores")  # bit-exact: the master its sidecars describe
    s3_admin.put_object(Bucket=buckets[0], Key=TAPE_MASTER, Body=restored.read_bytes())
    assert run_mpr("import").returncode == 0
    back = events_of(database_url, TAPE_MASTER)[-1]
    assert (back["event_type"], back["outcome"], back["inventory_code"]) == (
        "recovery", "success", TAPE_CODE)
    assert back["etag"] == query(database_url, "SELECT etag FROM asset_files WHERE key = %s",
                                 (TAPE_MASTER,))[0]["etag"]


# -- mpr events and mpr show ----------------------------------------------------------------------


def listed(run_mpr, *args: str) -> list[dict[str, Any]]:
    out = run_mpr("events", "--json", *args)
    assert out.returncode == 0, out.stderr
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


def test_mpr_events_filters_and_mpr_show_lists_an_assets_events(archive, cat, run_mpr,
                                                               database_url, s3_admin):
    put_catalogued(run_mpr, cat, archive, [VIDEO_CODE, AUDIO_CODE])
    s3_admin.delete_object(Bucket=cat.bucket_in, Key=AUDIO_MASTER)
    assert run_mpr("import").returncode == 1
    every = listed(run_mpr, "--limit", "1000")
    assert [e["event_uuid"] for e in every] == [str(r["event_uuid"])
                                                for r in events_of(database_url)]

    [failed] = listed(run_mpr, "--outcome", "failure")
    assert (failed["event_type"], failed["key"]) == ("deletion", AUDIO_MASTER)
    assert listed(run_mpr, "--type", "missing") == [failed]
    digests = listed(run_mpr, "--type", "message-digest-calculation")
    assert {e["key"] for e in digests} == {AUDIO_MASTER, master_key(VIDEO_CODE)}
    assert {e["inventory_code"] for e in listed(run_mpr, "--prefix", "CD/")} == {AUDIO_CODE}
    assert listed(run_mpr, "--since", "2000-01-01") == every[-100:]
    assert listed(run_mpr, "--since", "1h", "--limit", "2") == every[-2:]
    assert listed(run_mpr, "--since", "2999-01-01") == []

    bad = run_mpr("events", "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr

    shown = run_mpr("show", AUDIO_CODE, "--json")
    assert shown.returncode == 0, shown.stderr
    mine = [e for e in every if e["inventory_code"] == AUDIO_CODE]
    assert json.loads(shown.stdout)["events"] == mine
    text = run_mpr("show", AUDIO_CODE).stdout.splitlines()
    start = text.index("events (oldest first):")
    assert len(text[start + 1:]) == len(mine)
    assert "deletion" in text[-1] and "failure" in text[-1] and AUDIO_MASTER in text[-1]
    plain = run_mpr("events", "--outcome", "failure")
    assert plain.returncode == 0 and plain.stdout.count("\n") == 1
    assert "deletion" in plain.stdout and AUDIO_MASTER in plain.stdout
