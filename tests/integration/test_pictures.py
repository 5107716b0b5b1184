"""Pictures (mpr_cli.pictures) as a user gets them: `mpr transcode`, `mpr thumbnails` and
`mpr import` with MPR_PICTURES=on, run as subprocesses against real PostgreSQL, SeaweedFS and
ffmpeg. Every picture is downloaded and probed (ffprobe: mjpeg or png of the documented size);
the bad inputs (black first frames, a one-second clip, audio in a video container, no
decodable frame) are made with ffmpeg's lavfi sources.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mpr_cli import db
from mpr_cli.config import PicturesMode
from mpr_cli.ffmpeg.probe import probe
from mpr_cli.pictures.fill import after_import
from mpr_cli.pictures.model import POSTER_WIDTH, SHEET_COLUMNS, TILE_WIDTH, WAVEFORM_SIZE
from mpr_cli.problems import Severity
from mpr_cli.report import Report, RunStatus
from mpr_cli.rules import Role
from mpr_cli.storage import Storage
from mpr_cli.validation.mime import mime_for_media
from tests.integration.archive import keys_of, upload_tree
from tests.integration.transcoding import (
    AUDIO_CODE,
    VIDEO_CODE,
    build_awaiting_archive,
    ffprobe,
    master_key,
    put_catalogued,
)

pytestmark = pytest.mark.integration

SHEET_WIDTH = SHEET_COLUMNS * TILE_WIDTH
BLACK, ONE_SECOND, AUDIO_ONLY, BROKEN, GOOD = (
    "VO-PIC-00001", "VO-PIC-00002", "VO-PIC-00003", "VO-PIC-00004", "VO-PIC-00005")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def make_black_start(path: Path) -> Path:
    """6 s of black, then 6 s of test pattern; one keyframe every 10 s (x264 -g 250), so the
    window at 10 % and the one at 30 % both start on the black keyframe at 0 s."""
    ffmpeg("-f", "lavfi", "-i", "color=black:s=320x240:r=25:d=6,format=yuv420p[a];"
           "testsrc2=s=320x240:r=25:d=6,format=yuv420p[b];[a][b]concat=n=2:v=1:a=0",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-movflags", "+faststart",
           "-f", "mp4", str(path))
    return path


def make_clip(path: Path, seconds: float) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds:g}",
           "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart",
           "-f", "mp4", str(path))
    return path


def make_audio_only(path: Path) -> Path:
    """A .mp4 holding only an AAC track (a video's extension, no video stream)."""
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
           "-f", "mp4", str(path))
    return path


def make_undecodable(path: Path) -> Path:
    """A faststart MP4 whose index is intact and whose frames are all zero bytes."""
    make_clip(path, 2)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    path.write_bytes(bytes(data))
    return path


def catalogue(settings: Any, cat: Any, files: dict[str, Path], run_id: int | None = None) -> None:
    """Each file uploaded to the input bucket as FILE/<code>.mp4 and catalogued as the
    streaming copy of a video asset, with its ffprobe document (as an import leaves it), by
    import run `run_id` when given."""
    rows = []
    for code, path in files.items():
        key = f"FILE/{code}.mp4"
        cat.s3.upload_file(str(path), cat.bucket_in, key)
        info = probe(path)
        etag = cat.s3.head_object(Bucket=cat.bucket_in, Key=key)["ETag"].strip('"')
        rows.append(db.FileRow(code, cat.bucket_in, key, Role.STREAMING, True,
                               path.stat().st_size, etag, None, mime_for_media(info), info.raw))
    with db.connect(settings) as conn, conn.transaction():
        db.insert_files(conn, run_id, [(code, "video") for code in files], rows)


def pictures(cat: Any) -> dict[tuple[str, str], dict[str, Any]]:
    rows = cat.rows("""SELECT a.inventory_code, p.* FROM asset_pictures p
                       JOIN assets a ON a.id = p.asset_id""")
    return {(r["inventory_code"], r["kind"]): r for r in rows}


def probed(cat: Any, key: str, tmp_path: Path) -> tuple[str, int, int]:
    """(codec, width, height) of a picture in the output bucket, as ffprobe decodes it."""
    path = cat.download(key, tmp_path / key.replace("/", "_"))
    [stream] = ffprobe(path)["streams"]
    return stream["codec_name"], stream["width"], stream["height"]


def mean_luma(path: Path) -> float:
    """The picture's mean luma (0-255), decoded by ffmpeg's signalstats."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-i", str(path), "-vf",
                           "signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=60)
    return float(re.findall(r"YAVG=([0-9.]+)", done.stderr)[0])


def thumbnails(run_mpr: Any, *args: str) -> dict[str, Any]:
    done = run_mpr("thumbnails", "--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- made while transcoding ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_awaiting_archive(tmp_path_factory.mktemp("pictures") / "bucket", 2)


def test_a_transcode_makes_the_poster_and_sheet_of_a_video_and_the_waveform_of_audio(
        archive, run_mpr, cat, tmp_path):
    put_catalogued(run_mpr, cat, archive, [VIDEO_CODE, AUDIO_CODE])
    for code in (VIDEO_CODE, AUDIO_CODE):
        done = run_mpr("transcode", master_key(code))
        assert done.returncode == 0, done.stdout + done.stderr

    poster, sheet = f"thumbnails/FILE/{VIDEO_CODE}.jpg", f"thumbnails/FILE/{VIDEO_CODE}.sheet.jpg"
    wave = f"thumbnails/CD/{AUDIO_CODE}.waveform.png"
    assert cat.picture_keys() == {poster, sheet, wave}
    # the sample's masters are 320x240 (4:3)
    assert probed(cat, poster, tmp_path) == ("mjpeg", POSTER_WIDTH, POSTER_WIDTH * 3 // 4)
    assert probed(cat, sheet, tmp_path) == ("mjpeg", SHEET_WIDTH, 3 * TILE_WIDTH * 3 // 4)
    assert probed(cat, wave, tmp_path) == ("png", *WAVEFORM_SIZE)
    assert cat.head_out(poster)["ContentType"] == "image/jpeg"
    assert cat.head_out(wave)["ContentType"] == "image/png"
    rows = pictures(cat)
    assert {k: (r["key"], r["mime_type"], r["width"], r["height"], r["source_key"])
            for k, r in rows.items()} == {
        (VIDEO_CODE, "poster"): (poster, "image/jpeg", 640, 480, master_key(VIDEO_CODE)),
        (VIDEO_CODE, "contact_sheet"): (sheet, "image/jpeg", 1280, 720, master_key(VIDEO_CODE)),
        (AUDIO_CODE, "waveform"): (wave, "image/png", 1200, 240, master_key(AUDIO_CODE)),
    }
    assert rows[(VIDEO_CODE, "poster")]["size"] == cat.head_out(poster)["ContentLength"]
    shown = json.loads(run_mpr("show", VIDEO_CODE, "--json").stdout)["pictures"]
    assert [(p["kind"], p["key"]) for p in shown] == [("poster", poster),
                                                      ("contact_sheet", sheet)]
    text = run_mpr("show", VIDEO_CODE).stdout
    assert f"  poster         s3://{cat.bucket_out}/{poster} (640x480)" in text.splitlines()


def test_with_pictures_off_a_transcode_makes_none(archive, run_mpr, cat, service_env):
    put_catalogued(run_mpr, cat, archive, [VIDEO_CODE])

    done = run_mpr("transcode", master_key(VIDEO_CODE),
                   env={**service_env, "MPR_PICTURES": "off"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert cat.picture_keys() == set() and pictures(cat) == {}


# -- mpr thumbnails: bad input ------------------------------------------------------------------


def test_bad_inputs_give_a_sensible_picture_or_a_warning(run_mpr, cat, settings, tmp_path):
    catalogue(settings, cat, {
        BLACK: make_black_start(tmp_path / "black.mp4"),
        ONE_SECOND: make_clip(tmp_path / "one.mp4", 1),
        AUDIO_ONLY: make_audio_only(tmp_path / "audio.mp4"),
        BROKEN: make_undecodable(tmp_path / "broken.mp4"),
    })

    result = thumbnails(run_mpr)

    assert result["assets"] == 4
    made = {(p["inventory_code"], p["kind"]) for p in result["pictures"]}
    assert made == {(BLACK, "poster"), (BLACK, "contact_sheet"), (ONE_SECOND, "poster"),
                    (ONE_SECOND, "contact_sheet"), (AUDIO_ONLY, "waveform")}
    assert set(pictures(cat)) == made
    poster = cat.download(f"thumbnails/FILE/{BLACK}.jpg", tmp_path / "poster.jpg")
    assert mean_luma(poster) > 60  # the test pattern, not the black start (0-16)
    assert probed(cat, f"thumbnails/FILE/{ONE_SECOND}.jpg", tmp_path) == ("mjpeg", 640, 480)
    assert probed(cat, f"thumbnails/FILE/{ONE_SECOND}.sheet.jpg", tmp_path) == (
        "mjpeg", 1280, 720)
    assert probed(cat, f"thumbnails/FILE/{AUDIO_ONLY}.waveform.png", tmp_path) == (
        "png", 1200, 240)
    # the part in parentheses is ffmpeg's own last decoding error, when its stderr tail has
    # one: the contact sheet's 12 inputs print theirs in whatever order their threads run
    warned = {(w["inventory_code"], w["message"].split(" (")[0]) for w in result["warnings"]}
    src = f"s3://{cat.bucket_in}/FILE"
    assert warned == {
        (AUDIO_ONLY, f"{src}/{AUDIO_ONLY}.mp4: it has no video stream, only audio: a "
                     "waveform instead of a poster"),
        (BROKEN, f"{src}/{BROKEN}.mp4: no poster: no frame of it could be decoded"),
        (BROKEN, f"{src}/{BROKEN}.mp4: no contact sheet: no frame of it could be decoded"),
    }


def test_thumbnails_prints_each_warning_and_a_summary(run_mpr, cat, settings, tmp_path):
    catalogue(settings, cat, {AUDIO_ONLY: make_audio_only(tmp_path / "audio.mp4"),
                              GOOD: make_clip(tmp_path / "good.mp4", 3)})

    done = run_mpr("thumbnails")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"warning: s3://{cat.bucket_in}/FILE/{AUDIO_ONLY}.mp4: it has no video stream, only "
        "audio: a waveform instead of a poster",
        "2 asset(s): 3 picture(s) made, 1 warning(s)",
    ]


# -- mpr thumbnails --missing -------------------------------------------------------------------


def test_missing_makes_only_the_pictures_an_asset_lacks(run_mpr, cat, settings, tmp_path):
    catalogue(settings, cat, {GOOD: make_clip(tmp_path / "good.mp4", 3),
                              ONE_SECOND: make_clip(tmp_path / "one.mp4", 1),
                              AUDIO_ONLY: make_audio_only(tmp_path / "audio.mp4")})
    assert thumbnails(run_mpr)["assets"] == 3
    before = pictures(cat)
    cat.rows("DELETE FROM asset_pictures p USING assets a WHERE a.id = p.asset_id "
             "AND a.inventory_code = %s AND p.kind = 'contact_sheet' RETURNING p.id", (GOOD,))
    cat.s3.delete_object(Bucket=cat.bucket_out, Key=f"thumbnails/FILE/{GOOD}.sheet.jpg")

    result = thumbnails(run_mpr, "--missing")

    assert result["assets"] == 1  # the audio-only one has its waveform: not missing
    assert {(p["inventory_code"], p["kind"]) for p in result["pictures"]} == {
        (GOOD, "poster"), (GOOD, "contact_sheet")}
    after = pictures(cat)
    assert set(after) == set(before)
    unchanged = {k for k in before if k[0] != GOOD}
    assert {k: after[k]["created_at"] for k in unchanged} == {
        k: before[k]["created_at"] for k in unchanged}
    assert f"thumbnails/FILE/{GOOD}.sheet.jpg" in cat.picture_keys()
    assert thumbnails(run_mpr, "--missing")["assets"] == 0


def test_prefix_limits_the_assets(run_mpr, cat, settings, tmp_path):
    catalogue(settings, cat, {GOOD: make_clip(tmp_path / "good.mp4", 3),
                              ONE_SECOND: make_clip(tmp_path / "one.mp4", 1)})

    result = thumbnails(run_mpr, "--prefix", f"FILE/{GOOD}")

    assert {p["inventory_code"] for p in result["pictures"]} == {GOOD}


# -- at import ----------------------------------------------------------------------------------


def _import_ok(run_mpr: Any, cat: Any, sample_archive: Any, env: dict[str, str]) -> Any:
    upload_tree(cat.s3, cat.bucket_in, sample_archive.root,
                keys_of(sample_archive, sample_archive.assets_ok))
    return run_mpr("import", "--report", "-", env=env)


def test_an_import_with_pictures_on_makes_them_from_the_streaming_copies(
        run_mpr, cat, sample_archive, service_env, tmp_path):
    done = _import_ok(run_mpr, cat, sample_archive, {**service_env, "MPR_PICTURES": "on"})

    assert done.returncode == 0, done.stdout + done.stderr
    streaming = {r["inventory_code"]: (r["key"], r["media_type"]) for r in cat.rows(
        """SELECT a.inventory_code, a.media_type, f.key FROM asset_files f
           JOIN assets a ON a.id = f.asset_id WHERE f.role = 'streaming'""")}
    assert streaming, "the sample archive has delivered streaming copies"
    expected = {(code, kind) for code, (_, media) in streaming.items()
                for kind in (("poster", "contact_sheet") if media == "video" else ("waveform",))}
    rows = pictures(cat)
    assert set(rows) == expected
    assert {r["source_key"] for r in rows.values()} == {key for key, _ in streaming.values()}
    report = json.loads(done.stdout)
    assert [p for p in report["problems"] if p["reason"] == "picture_failed"] == []
    some_poster = next(r for r in rows.values() if r["kind"] == "poster")
    assert probed(cat, some_poster["key"], tmp_path)[:2] == ("mjpeg", 640)


def test_an_import_makes_no_pictures_by_default(run_mpr, cat, sample_archive, service_env):
    done = _import_ok(run_mpr, cat, sample_archive, service_env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert pictures(cat) == {} and cat.picture_keys() == set()


def test_a_picture_an_import_cannot_make_is_a_warning_in_its_report(cat, settings, tmp_path):
    with db.connect(settings, autocommit=True) as conn:
        run_id = db.start_run(conn, "import", "normal", "")
    catalogue(settings, cat, {GOOD: make_clip(tmp_path / "good.mp4", 3),
                              BROKEN: make_undecodable(tmp_path / "broken.mp4")}, run_id)
    report = Report("import", run_id=run_id)
    on = settings.model_copy(update={"pictures": PicturesMode.ON})

    with db.connect(on, autocommit=True) as conn:
        after_import(on, Storage(on), conn, report)

    assert report.status is RunStatus.COMPLETED
    assert [(p.reason.value, p.severity, p.key, p.inventory_code) for p in report.problems] == [
        ("picture_failed", Severity.WARNING, f"FILE/{BROKEN}.mp4", BROKEN)] * 2
    assert report.counts.errors == 0 and report.counts.warnings == 2
    assert set(pictures(cat)) == {(GOOD, "poster"), (GOOD, "contact_sheet")}
