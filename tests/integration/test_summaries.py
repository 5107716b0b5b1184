"""Technical summaries (sql/012, mpr_cli.summary) against real PostgreSQL and SeaweedFS: the
sample archive's good assets imported by the real `mpr`, each master's and streaming copy's
summary (as `mpr show --json` gives it) compared with ffprobe run here on the same file; a
copy made by `mpr transcode` gets the summary of what it made; summaries lost (deleted, or a
catalogue from before sql/012) come back with `mpr db backfill-summaries` / `mpr db migrate`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mpr_cli import db, summary
from mpr_cli.dev.sample import SampleArchive, build_extended_archive
from mpr_cli.rules import Role
from mpr_cli.summary import TechSummary
from tests.integration.archive import TAPE_CODE, TAPE_MASTER, clean_codes, keys_of, query

pytestmark = pytest.mark.integration

SUMMARISED = ("master", "streaming")


def ffprobe(path: Path) -> dict[str, Any]:
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
            "-show_streams", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def shown(run_mpr: Any, code: str) -> dict[str, Any]:
    result = run_mpr("show", code, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def summaries(run_mpr: Any, codes: list[str]) -> dict[str, dict[str, Any]]:
    """key -> the summary `mpr show --json` gives each master and streaming copy of `codes`."""
    return {f["key"]: f["summary"] for code in codes for f in shown(run_mpr, code)["files"]
            if f["role"] in SUMMARISED}


def assert_like_ffprobe(summary: dict[str, Any] | None, path: Path, *,
                        timed: bool = True) -> None:
    """The summary says what ffprobe says of the file: duration (within 0.05 s), codecs,
    picture size, sample rate and channels of the first video and audio stream. Not `timed`:
    the stored document gives no duration nor bit rate, and the summary says none."""
    assert summary is not None, path.name
    probed = ffprobe(path)
    streams = [s for s in probed["streams"]
               if not s.get("disposition", {}).get("attached_pic")]
    video = next((s for s in streams if s["codec_type"] == "video"), None)
    audio = next((s for s in streams if s["codec_type"] == "audio"), None)
    if not timed:
        assert (summary["duration_s"], summary["bit_rate"]) == (None, None)
    else:
        assert summary["duration_s"] == pytest.approx(float(probed["format"]["duration"]),
                                                      abs=0.05)
        assert summary["bit_rate"] and summary["bit_rate"] > 0
    if video is None:
        assert (summary["video_codec"], summary["width"], summary["scan_type"]) == (
            None, None, None)
    else:
        assert (summary["video_codec"], summary["width"], summary["height"]) == (
            video["codec_name"], video["width"], video["height"]), path.name
        assert summary["scan_type"] in ("progressive", "interlaced", "unknown")
        assert summary["frame_rate"] and summary["frame_rate"] > 0
    assert audio is not None, path.name
    assert (summary["audio_codec"], summary["sample_rate"], summary["channels"]) == (
        audio["codec_name"], int(audio["sample_rate"]), audio["channels"]), path.name
    assert summary["container"]


@pytest.fixture()
def imported(sample_archive: SampleArchive, upload: Any, run_mpr: Any) -> list[str]:
    """Every good asset of the sample (its video and audio formats) and the tape master's."""
    codes = [*clean_codes(sample_archive), TAPE_CODE]
    upload(sample_archive.root, keys_of(sample_archive, codes))
    result = run_mpr("import")
    assert result.returncode == 0, result.stderr
    return codes


def test_import_summarises_every_master_and_streaming_copy_like_ffprobe(
        imported: list[str], sample_archive: SampleArchive, run_mpr: Any) -> None:
    found = summaries(run_mpr, imported)
    on_disk = {key: s for key, s in found.items() if (sample_archive.root / key).is_file()}
    assert set(found) - set(on_disk) == {TAPE_MASTER}
    for key, found_summary in on_disk.items():
        assert_like_ffprobe(found_summary, sample_archive.root / key)
    extensions = {key.rsplit(".", 1)[-1] for key in on_disk}
    assert {"mov", "mkv", "mxf", "wav", "flac", "mp4", "mp3"} <= extensions
    assert {s["source"] for s in on_disk.values()} == {"ffprobe", "mediainfo"}
    # the tape master is summarised from its sidecar alone
    tape = found[TAPE_MASTER]
    assert tape is not None and tape["video_codec"] and tape["width"]


def test_the_extended_profiles_formats_are_summarised_like_ffprobe(
        tmp_path_factory: pytest.TempPathFactory, upload: Any, run_mpr: Any,
        service_env: dict[str, str]) -> None:
    """One delivery per format of the extended rules (webm, flv, wmv, m4v, ogg, m4a, aac
    streaming copies; mkv, avi, mov, wav, flac masters). A streaming copy's stored document is
    the import's header-only mediainfo parse of it: for raw AAC (ADTS) that gives neither a
    duration nor a bit rate (ffprobe estimates both from the whole file), so its summary has
    none rather than a guess."""
    archive = build_extended_archive(tmp_path_factory.mktemp("formats") / "bucket")
    upload(archive.root)
    result = run_mpr("import", env={**service_env, "MPR_RULES": "extended"})
    assert result.returncode == 0, result.stderr
    codes = sorted({f.inventory_code for f in archive.files if f.inventory_code})
    found = summaries(run_mpr, codes)
    assert len(found) == 2 * len(codes)
    for key, found_summary in found.items():
        assert_like_ffprobe(found_summary, archive.root / key, timed=not key.endswith(".aac"))


def test_show_prints_each_summary_in_one_line(imported: list[str], run_mpr: Any) -> None:
    code = next(c for c in imported if c.startswith("V") and c != TAPE_CODE)
    view = shown(run_mpr, code)
    text = run_mpr("show", code)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    technical = lines[lines.index("technical:") + 1:lines.index("transcode jobs:")]
    for role, line in zip(SUMMARISED, technical, strict=True):
        summary = next(f["summary"] for f in view["files"] if f["role"] == role)
        assert line == f"  {role:<10} {TechSummary(**summary).one_line()}"
        assert f"{summary['width']}x{summary['height']}" in line and " fps " in line


@pytest.mark.parametrize("media", ["A", "V"])
def test_a_transcoded_copy_gets_the_summary_of_what_was_made(
        media: str, imported: list[str], run_mpr: Any, s3_admin: Any, tmp_path: Path) -> None:
    code = next(c for c in imported if c.startswith(media) and c != TAPE_CODE)
    master = next(f for f in shown(run_mpr, code)["files"] if f["role"] == "master")
    made = run_mpr("transcode", master["key"], "--force")
    assert made.returncode == 0, made.stderr

    copy = next(f for f in shown(run_mpr, code)["files"] if f["role"] == "streaming")
    assert copy["preset"] is not None
    local = tmp_path / copy["key"].rsplit("/", 1)[-1]
    s3_admin.download_file(copy["bucket"], copy["key"], str(local))
    assert_like_ffprobe(copy["summary"], local)
    assert copy["summary"]["duration_s"] == pytest.approx(master["summary"]["duration_s"],
                                                          abs=0.1)


def test_backfill_summarises_the_files_that_have_none(imported: list[str], run_mpr: Any,
                                                      database_url: str) -> None:
    before = summaries(run_mpr, imported)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM media_summaries")
    assert set(summaries(run_mpr, imported).values()) == {None}
    text = run_mpr("show", imported[0]).stdout
    assert "no technical summary yet: run `mpr db backfill-summaries`" in text

    done = run_mpr("db", "backfill-summaries")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"technical summaries: {len(before)} filled; 0 ")
    assert summaries(run_mpr, imported) == before
    again = run_mpr("db", "backfill-summaries")
    assert again.stdout.startswith("technical summaries: 0 filled; 0 ")


def test_migrate_summarises_a_catalogue_from_before_sql_012(imported: list[str], run_mpr: Any,
                                                            database_url: str) -> None:
    """The catalogue as it was before sql/012 (no table, no trigger, 012 not recorded):
    `mpr db migrate` applies it and back-fills every master and streaming copy."""
    before = summaries(run_mpr, imported)
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TABLE media_summaries")
        conn.execute("DROP FUNCTION media_summaries_forget() CASCADE")
        conn.execute("DELETE FROM schema_migrations WHERE version = 12")
    migrated = run_mpr("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines() == [
        "applied 012_media_summaries",
        f"technical summaries: {len(before)} filled; 0 master(s) or streaming copies have "
        "stored metadata that gives none"]
    assert summaries(run_mpr, imported) == before


def test_a_changed_document_loses_its_summary_until_it_is_summarised_again(
        imported: list[str], run_mpr: Any, database_url: str) -> None:
    """The trigger of sql/012: a summary never describes an older tech_metadata."""
    rows = query(database_url, "SELECT f.id, f.key FROM asset_files f JOIN media_summaries m "
                               "ON m.file_id = f.id ORDER BY f.id LIMIT 2")
    changed, untouched = rows
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE asset_files SET tech_metadata = tech_metadata WHERE id = %s",
                     [untouched["id"]])
        conn.execute("UPDATE asset_files SET tech_metadata = jsonb_set(tech_metadata, "
                     "'{mpr_test}', '1') WHERE id = %s", [changed["id"]])
    left = {r["file_id"] for r in query(database_url, "SELECT file_id FROM media_summaries")}
    assert untouched["id"] in left and changed["id"] not in left
    done = run_mpr("db", "backfill-summaries")
    assert done.stdout.startswith("technical summaries: 1 filled; 0 ")


def test_hostile_values_are_stored_in_range_and_shown_escaped(database_url: str,
                                                              run_mpr: Any) -> None:
    """A stored document at the edges of every column: what fits is kept, what does not is
    null, and nothing of it reaches a terminal unescaped."""
    document = json.loads((Path(__file__).parent.parent / "unit" / "data" /
                           "mp4_h264_aac.ffprobe.json").read_text())
    video = next(s for s in document["streams"] if s["codec_type"] == "video")
    audio = next(s for s in document["streams"] if s["codec_type"] == "audio")
    video.update(codec_name="h264\x1b[31mRED" + "x" * 100, width=2**31 - 1, height=2**31,
                 avg_frame_rate="1e308/1e-308", r_frame_rate="0/0", field_order="tt")
    audio.update(channels="N/A", sample_rate=-48000, codec_name="aac")
    document["format"].update(bit_rate=str(2**63 - 1), duration="1e14")
    row = db.FileRow("VO-HST-00099", "in", "BRD/VO-HST-00099.mp4", Role.STREAMING, True, 1,
                     "e", None, "video/mp4", document)
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        db.insert_files(conn, None, [("VO-HST-00099", "video")], [row])
        assert summary.fill(conn, [("in", row.key)]) == 1
    [stored] = query(database_url, "SELECT m.* FROM media_summaries m JOIN asset_files f "
                                   "ON f.id = m.file_id WHERE f.key = %s", [row.key])
    assert (stored["width"], stored["height"], stored["frame_rate"], stored["scan_type"]) == (
        2**31 - 1, None, None, "interlaced")
    assert (stored["channels"], stored["sample_rate"], stored["bit_rate"]) == (
        None, None, 2**63 - 1)
    assert stored["duration_s"] == 1e14 and len(stored["video_codec"]) == summary.MAX_TEXT

    text = run_mpr("show", "VO-HST-00099")
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "RED" in text.stdout


def test_a_summary_the_catalogue_refuses_never_fails_its_file(
        database_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Were a summary refused (here: a scan type its CHECK forbids), the file is still written
    in the same transaction, without a summary, and a warning says how to fill it later."""
    refused = TechSummary("mp4", 1.0, "h264", 1, 1, None, None, "sideways", None, None, None,
                          None, "ffprobe")
    monkeypatch.setattr(summary, "summary_of", lambda document: refused)
    row = db.FileRow("VO-HST-00098", "in", "BRD/VO-HST-00098.mp4", Role.STREAMING, True, 1,
                     "e", None, "video/mp4", {"format": {"format_name": "mov"}})
    with psycopg.connect(database_url, row_factory=dict_row) as conn, conn.transaction():
        db.insert_files(conn, None, [("VO-HST-00098", "video")], [row])
        assert summary.fill(conn, [("in", row.key)]) == 0
        conn.execute("SELECT 1")  # the transaction goes on
    assert query(database_url, "SELECT key FROM asset_files") == [{"key": row.key}]
    assert query(database_url, "SELECT file_id FROM media_summaries") == []
    assert "run `mpr db backfill-summaries` later" in caplog.text
