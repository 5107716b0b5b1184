"""`mpr transcode KEY` and `mpr presets` as a user runs them: the real script in a subprocess,
against real PostgreSQL, SeaweedFS and ffmpeg.

Masters come from the sample archive (`awaiting` assets: a master and its sidecars, no
streaming copy yet), generated once per module; each test uploads what it needs into its own
fresh input bucket, imports it with `mpr import` when the test is about catalogued masters,
and checks what lands in the output bucket by downloading and probing it.

The helpers shared with the other transcode tests are in transcoding.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mpr_cli.dev.sample import SampleArchive, md5_file
from tests.integration.archive import upload_tree
from tests.integration.transcoding import (
    AUDIO_CODE,
    VIDEO_CODE,
    VIDEO_MASTER,
    build_awaiting_archive,
    completed_ids,
    ffprobe,
    leftover_workdirs,
    master_key,
    md5_bytes,
    output_key,
    put_catalogued,
    top_level_boxes,
)

pytestmark = pytest.mark.integration

# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("transcode") / "bucket", 2)


# -- one master, end to end ----------------------------------------------------------------------

EXPECT = {
    "video": {"code": VIDEO_CODE, "preset": "web-720p", "mime": "video/mp4",
              "codecs": ["h264", "aac"], "format": "mov,mp4,m4a,3gp,3g2,mj2",
              "general": "MPEG-4", "tracks": {"Video": "AVC", "Audio": "AAC"}},
    "audio": {"code": AUDIO_CODE, "preset": "audio-mp3-192", "mime": "audio/mpeg",
              "codecs": ["mp3"], "format": "mp3",
              "general": "MPEG Audio", "tracks": {"Audio": "MPEG Audio"}},
}


@pytest.mark.parametrize("media", ["video", "audio"])
def test_master_becomes_a_verified_streaming_copy(media, archive, run_mpr, cat, tmp_path,
                                                  service_env):
    want = EXPECT[media]
    code = want["code"]
    key, out_key = master_key(code), output_key(code)
    put_catalogued(run_mpr, cat, archive, [code])

    done = run_mpr("transcode", key)

    assert done.returncode == 0, done.stdout + done.stderr
    [job_id] = completed_ids(done.stdout)
    assert "1 completed, 0 failed, 0 cancelled" in done.stdout
    assert cat.output_keys() == {out_key, out_key + ".md5", out_key + ".json"}

    # the streaming copy, probed from the output bucket
    local = cat.download(out_key, tmp_path / Path(out_key).name)
    data = local.read_bytes()
    made = ffprobe(local)
    assert made["format"]["format_name"] == want["format"]
    assert [s["codec_name"] for s in made["streams"]] == want["codecs"]
    master = ffprobe(archive.root / key)
    expected_s, got_s = float(master["format"]["duration"]), float(made["format"]["duration"])
    assert abs(got_s - expected_s) <= max(0.01 * expected_s, 0.5), (got_s, expected_s)
    if media == "video":
        boxes = dict(top_level_boxes(data))
        assert boxes["moov"] < boxes["mdat"], f"moov must come first (faststart): {boxes}"
    assert cat.head_out(out_key)["ContentType"] == want["mime"]

    # the sidecars
    md5 = md5_bytes(data)
    name = Path(out_key).name
    sidecar = cat.download(out_key + ".md5", tmp_path / (name + ".md5"))
    assert sidecar.read_text() == f"{md5}  {name}\n"
    check = subprocess.run(["md5sum", "-c", sidecar.name], cwd=tmp_path, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0 and check.stdout.strip() == f"{name}: OK", check
    described = json.loads(cat.download(out_key + ".json", tmp_path / "mi.json").read_text())
    assert described["media"]["@ref"] == name
    tracks = {t["@type"]: t for t in described["media"]["track"]}
    assert tracks["General"]["Format"] == want["general"]
    assert int(tracks["General"]["FileSize"]) == len(data)
    assert {kind: tracks[kind]["Format"] for kind in want["tracks"]} == want["tracks"]
    assert cat.head_out(out_key + ".json")["ContentType"] == "application/json"

    # the catalogue
    asset_id = cat.files(code, "master")[0]["asset_id"]
    [row] = cat.files(code, "streaming")
    assert (row["bucket"], row["key"], row["preset"]) == (cat.bucket_out, out_key, want["preset"])
    assert (row["md5"], row["size"], row["mime_type"]) == (md5, len(data), want["mime"])
    assert row["etag"] == cat.head_out(out_key)["ETag"].strip('"')
    assert row["tech_metadata"] == described
    sidecar_rows = {r["key"]: r for r in cat.files(code) if r["bucket"] == cat.bucket_out}
    assert {k: r["role"] for k, r in sidecar_rows.items()} == {
        out_key: "streaming", out_key + ".md5": "checksum", out_key + ".json": "metadata"}
    job = cat.job(job_id)
    assert (job["status"], job["attempts"], job["progress"]) == ("COMPLETED", 1, 100)
    assert (job["asset_id"], job["source_key"], job["output_bucket"], job["output_key"],
            job["preset"]) == (asset_id, key, cat.bucket_out, out_key, want["preset"])
    assert job["error"] is None and job["stderr_tail"] is None
    assert len(cat.jobs()) == 1
    assert leftover_workdirs(service_env) == []


def test_second_run_does_nothing_force_redoes_it_and_a_lost_copy_is_made_again(archive,
                                                                                run_mpr, cat):
    put_catalogued(run_mpr, cat, archive, [VIDEO_CODE])
    out_key = output_key(VIDEO_CODE)
    assert run_mpr("transcode", VIDEO_MASTER).returncode == 0
    first = cat.head_out(out_key)

    again = run_mpr("transcode", VIDEO_MASTER)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "already transcoded" in " ".join(again.stdout.split())
    assert completed_ids(again.stdout) == []
    assert len(cat.jobs()) == 1
    assert cat.head_out(out_key)["LastModified"] == first["LastModified"]

    forced = run_mpr("transcode", VIDEO_MASTER, "--force")

    assert forced.returncode == 0, forced.stdout + forced.stderr
    [forced_id] = completed_ids(forced.stdout)
    jobs = cat.jobs()
    assert [j["id"] for j in jobs] == [jobs[0]["id"], forced_id]
    assert {(j["status"], j["attempts"]) for j in jobs} == {("COMPLETED", 1)}
    assert cat.head_out(out_key)["LastModified"] >= first["LastModified"]
    [row] = cat.files(VIDEO_CODE, "streaming")
    assert row["etag"] == cat.head_out(out_key)["ETag"].strip('"')

    # recorded, but no longer in the bucket: "already transcoded" would be a lie
    cat.s3.delete_object(Bucket=cat.bucket_out, Key=out_key)

    lost = run_mpr("transcode", VIDEO_MASTER)

    assert lost.returncode == 0, lost.stdout + lost.stderr
    assert len(completed_ids(lost.stdout)) == 1 and len(cat.jobs()) == 3
    [row] = cat.files(VIDEO_CODE, "streaming")
    assert row["etag"] == cat.head_out(out_key)["ETag"].strip('"')


def test_master_never_imported_is_registered_from_its_own_probe(archive, run_mpr, cat):
    upload_tree(cat.s3, cat.bucket_in, archive.root, [VIDEO_MASTER])  # no sidecars, no import
    assert cat.rows("SELECT * FROM assets") == []

    done = run_mpr("transcode", VIDEO_MASTER)

    assert done.returncode == 0, done.stdout + done.stderr
    [job_id] = completed_ids(done.stdout)
    [asset] = cat.rows("SELECT * FROM assets")
    assert (asset["inventory_code"], asset["media_type"]) == (VIDEO_CODE, "video")
    [master] = cat.files(VIDEO_CODE, "master")
    head = cat.s3.head_object(Bucket=cat.bucket_in, Key=VIDEO_MASTER)
    local = archive.root / VIDEO_MASTER
    assert (master["bucket"], master["key"], master["in_bucket"]) == (cat.bucket_in,
                                                                      VIDEO_MASTER, True)
    assert master["md5"] == md5_file(local)
    assert master["size"] == local.stat().st_size == head["ContentLength"]
    assert master["etag"] == head["ETag"].strip('"')
    assert master["mime_type"] == "video/quicktime"
    assert master["tech_metadata"]
    assert cat.job(job_id)["asset_id"] == asset["id"]
    assert [r["key"] for r in cat.files(VIDEO_CODE, "streaming")] == [output_key(VIDEO_CODE)]


def test_video_master_with_an_audio_preset_is_refused(archive, run_mpr, cat):
    upload_tree(cat.s3, cat.bucket_in, archive.root, [VIDEO_MASTER])

    done = run_mpr("transcode", VIDEO_MASTER, "--preset", "audio-mp3-192")

    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "audio-mp3-192" in message and "video" in message
    assert cat.jobs() == [] and cat.rows("SELECT * FROM assets") == []
    assert cat.output_keys() == set()


# -- presets (list and show need no server: tests/unit/test_cli.py) ------------------------------

BAD_PRESETS = {  # case -> (file, preset named, field named, the command that reads it)
    "bad-codec": ("[presets.tiny]\nmedia = \"video\"\nvideo_codec = \"h265x\"\n"
                  "max_width = 640\nmax_height = 360\naudio_bitrate = \"96k\"\n",
                  "tiny", "video_codec", ("transcode", VIDEO_MASTER)),
    "odd-width": ("[presets.small]\nmedia = \"video\"\nmax_width = 641\nmax_height = 360\n"
                  "audio_bitrate = \"96k\"\n", "small", "max_width", ("presets", "list")),
    "unknown-field": ("[presets.voice]\nmedia = \"audio\"\naudio_bitrate = \"64k\"\n"
                      "bitrate = \"64k\"\n", "voice", "bitrate", ("presets", "show", "web-720p")),
}


@pytest.mark.parametrize("case", sorted(BAD_PRESETS))
def test_bad_presets_file_exits_2_naming_preset_and_field(case, run_mpr, service_env,
                                                          tmp_path, cat):
    text, preset, field, args = BAD_PRESETS[case]
    path = tmp_path / "presets.toml"
    path.write_text(text)

    done = run_mpr(*args, env={**service_env, "MPR_PRESETS": str(path)})

    assert done.returncode == 2, (done.stdout, done.stderr)
    message = " ".join(done.stderr.split())
    assert str(path) in message and f"preset '{preset}'" in message, message
    assert f"{field}:" in message, message
    assert done.stdout == "" and cat.jobs() == []
