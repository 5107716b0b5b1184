"""`mpr show CODE|KEY` as an archivist uses it: a video and an audio asset of the sample
archive, imported (and the audio one transcoded) by the real `mpr`, shown as text and JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import TAPE_CODE, TAPE_MASTER, clean_codes, keys_of, md5_of

pytestmark = pytest.mark.integration

FILE_KEYS = {"bucket", "key", "role", "size", "md5", "mime_type", "in_bucket", "provisional",
             "preset", "imported_at", "import_run_id", "import_run_key", "tech",
             "summary"}
TECH_KEYS = {"container", "video_codecs", "audio_codecs", "duration_s", "width", "height",
             "frame_rate", "audio_channels"}


def pick(archive: SampleArchive, media: str) -> str:
    return next(c for c in clean_codes(archive) if c[0] == media and c != TAPE_CODE)


def shown(run_mpr: Any, name: str) -> dict[str, Any]:
    result = run_mpr("show", name, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture()
def imported(sample_archive, upload, run_mpr) -> tuple[str, str]:
    video, audio = pick(sample_archive, "V"), pick(sample_archive, "A")
    upload(sample_archive.root, keys_of(sample_archive, [video, audio, TAPE_CODE]))
    result = run_mpr("import")
    assert result.returncode == 0, result.stderr
    return video, audio


def test_show_a_video_asset_as_json_and_text(imported, sample_archive, run_mpr,
                                             buckets) -> None:
    video, _ = imported
    view = shown(run_mpr, video)
    assert (view["inventory_code"], view["media_type"]) == (video, "video")
    assert set(view) == {"inventory_code", "media_type", "created_at", "files", "jobs",
                         "problems", "events", "pictures"}
    by_key = {f["key"]: f for f in view["files"]}
    assert set(by_key) == set(keys_of(sample_archive, [video]))
    for key, f in by_key.items():
        assert set(f) == FILE_KEYS
        assert (f["bucket"], f["in_bucket"], f["size"]) == (
            buckets[0], True, (sample_archive.root / key).stat().st_size)
        assert f["md5"] == md5_of(sample_archive.root / key)
        assert f["import_run_id"] is not None and f["import_run_key"]
    assert view["files"][0]["role"] == "master"
    master = view["files"][0]["tech"]
    assert set(master) == TECH_KEYS
    assert master["video_codecs"] and master["width"] > 0 and master["height"] > 0
    assert master["frame_rate"] > 0 and master["duration_s"] > 0
    streaming = next(f for f in view["files"] if f["role"] == "streaming")
    assert streaming["mime_type"] == "video/mp4" and streaming["tech"]["video_codecs"]
    assert (view["jobs"], view["problems"]) == ([], [])

    # a key finds its asset; the text names every file and the technical summary
    assert shown(run_mpr, streaming["key"]) == view
    text = run_mpr("show", video)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{video} (video), catalogued ")
    assert all(any(key in line for line in lines) for key in by_key)
    [master_line] = [x for x in lines if x.startswith("  master ") and "fps" in x]
    assert f"{master['width']}x{master['height']}" in master_line
    assert lines[lines.index("transcode jobs:") + 1] == "  none"
    assert view["pictures"] == []  # an import makes none by default (MPR_PICTURES)
    assert lines[lines.index("pictures:") + 1] == "  none (mpr thumbnails --missing makes them)"


def test_show_an_audio_asset_with_its_transcode_job(imported, sample_archive, run_mpr) -> None:
    _, audio = imported
    master_key = next(f["key"] for f in shown(run_mpr, audio)["files"] if f["role"] == "master")
    made = run_mpr("transcode", master_key, "--force")
    assert made.returncode == 0, made.stderr

    view = shown(run_mpr, master_key)
    assert (view["inventory_code"], view["media_type"]) == (audio, "audio")
    tech = view["files"][0]["tech"]
    assert tech["audio_codecs"] and tech["video_codecs"] == []
    assert tech["audio_channels"] and all(n >= 1 for n in tech["audio_channels"])
    [job] = view["jobs"]
    assert (job["status"], job["source_key"]) == ("COMPLETED", master_key)
    streaming = next(f for f in view["files"] if f["role"] == "streaming")
    assert streaming["preset"] == job["preset"] and streaming["tech"]["audio_codecs"]

    lines = run_mpr("show", audio).stdout.splitlines()
    jobs = lines.index("transcode jobs:")
    assert lines[jobs + 1].split()[:2] == [str(job["id"]), "COMPLETED"]


def test_show_a_tape_master_and_unknown_names(imported, run_mpr) -> None:
    tape = shown(run_mpr, TAPE_CODE)
    master = next(f for f in tape["files"] if f["role"] == "master")
    assert (master["key"], master["in_bucket"]) == (TAPE_MASTER, False)
    assert "on tape" in run_mpr("show", TAPE_MASTER).stdout

    unknown = run_mpr("show", "VO-NON-00001")
    assert unknown.returncode == 1 and unknown.stdout == ""
    [line] = unknown.stderr.splitlines()
    assert line.startswith("error: no asset VO-NON-00001 in the catalogue")
    malformed = run_mpr("show", "BRD/VO\nX")
    assert malformed.returncode == 2
    [line] = malformed.stderr.splitlines()
    assert "\\n" in line and "is not an inventory code or a key" in line
