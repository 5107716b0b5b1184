"""Formats as data: the extended rules profile (MPR_RULES=extended) imports real deliveries of
the formats the shipped rules refuse (.webm, .m4v, .flv, .wmv, .ogg, .m4a, .aac), each one
made by ffmpeg at test time with its metadata from mediainfo or ffprobe, against real
PostgreSQL and SeaweedFS; the shipped rules still refuse them in phase 1."""

from __future__ import annotations

import pytest

from mpr_cli.dev.media import generate_media
from mpr_cli.dev.sample import SampleArchive, build_extended_archive
from tests.integration.archive import catalogue, md5_of

pytestmark = pytest.mark.integration

# the streaming copy of each asset: its key, and the MIME type the profile gives it
STREAMING = {
    "FILE/VO-FMT-00001.webm": "video/webm",  # VP9 + Opus
    "BRD/VO-FMT-00002.webm": "video/webm",  # VP8 + Vorbis
    "DVD/VO-FMT-00003.m4v": "video/x-m4v",
    "FILE/VO-FMT-00004.flv": "video/x-flv",
    "BRD/VO-FMT-00005.wmv": "video/x-ms-wmv",
    "CD/AO-FMT-00001.ogg": "audio/ogg",
    "DAT/AO-FMT-00002.m4a": "audio/mp4",
    "FILE/AO-FMT-00003.aac": "audio/aac",
}
MASTERS = {
    "FILE/VO-FMT-00001.mkv": "video/x-matroska", "BRD/VO-FMT-00002.mov": "video/quicktime",
    "DVD/VO-FMT-00003.mov": "video/quicktime", "FILE/VO-FMT-00004.avi": "video/x-msvideo",
    "BRD/VO-FMT-00005.mkv": "video/x-matroska", "CD/AO-FMT-00001.wav": "audio/wav",
    "DAT/AO-FMT-00002.flac": "audio/flac", "FILE/AO-FMT-00003.wav": "audio/wav",
}
SIDECAR_MIME = {"metadata": "application/json", "checksum": "text/plain",
                "qc_report": "application/pdf"}


@pytest.fixture(scope="module")
def extended_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_extended_archive(tmp_path_factory.mktemp("formats") / "bucket", duration=1.0)


def test_the_extended_profile_imports_every_new_format(extended_archive, upload, mpr_report,
                                                       service_env, database_url):
    upload(extended_archive.root)

    out = mpr_report("import", env={**service_env, "MPR_RULES": "extended"})

    assert out.returncode == 0, out.stderr
    assert out.report["problems"] == []
    files = len(extended_archive.files)
    assert (out.counts["inserted_assets"], out.counts["inserted_files"]) == (8, files)
    rows = catalogue(database_url)
    assert set(rows) == {f.key for f in extended_archive.files}
    for key, mime in {**STREAMING, **MASTERS}.items():
        row = rows[key]
        role = "streaming" if key in STREAMING else "master"
        assert (row["role"], row["mime_type"], row["in_bucket"]) == (role, mime, True), key
        assert row["md5"] == md5_of(extended_archive.root / key), key
        assert row["has_tech"], key
    for row in rows.values():
        if row["role"] in SIDECAR_MIME:
            assert row["mime_type"] == SIDECAR_MIME[row["role"]], row["key"]
    assert {r["inventory_code"]: r["media_type"] for r in rows.values()} == {
        **{f"VO-FMT-0000{i}": "video" for i in range(1, 6)},
        **{f"AO-FMT-0000{i}": "audio" for i in range(1, 4)}}


def test_the_shipped_rules_still_refuse_the_new_extensions(extended_archive, upload,
                                                           mpr_report, database_url):
    upload(extended_archive.root)

    out = mpr_report("import")

    assert out.returncode == 1
    reasons = {p["key"]: (p["reason"], p["phase"]) for p in out.report["problems"]}
    for key in STREAMING:
        assert reasons[key] == ("unsupported_extension", 1), key
    assert "extension '.webm' is not supported" in next(
        p["message"] for p in out.report["problems"] if p["key"] == "FILE/VO-FMT-00001.webm")
    # their metadata sidecars describe a file that is not accepted: the assets wait for it
    assert {reasons[f"{key}.json"][0] for key in STREAMING} == {"orphan_sidecar"}
    assert not set(STREAMING) & set(catalogue(database_url))


def test_a_streaming_copy_with_the_wrong_codecs_is_refused(extended_archive, upload,
                                                           mpr_report, s3_admin, buckets,
                                                           service_env, database_url, tmp_path):
    """A .webm that is really H.264 + AAC in Matroska: the profile's codec lists refuse it,
    and the other assets are imported."""
    upload(extended_archive.root)
    wrong = tmp_path / "h264.mkv"
    generate_media(wrong, "mkv_h264", duration=1.0)
    s3_admin.upload_file(str(wrong), buckets[0], "FILE/VO-FMT-00001.webm")

    out = mpr_report("import", env={**service_env, "MPR_RULES": "extended"})

    assert out.returncode == 1
    mismatches = [p for p in out.report["problems"] if p["reason"] == "container_mismatch"]
    assert [p["key"] for p in mismatches] == ["FILE/VO-FMT-00001.webm"]
    assert mismatches[0]["message"] == (
        "streaming copy is Matroska with video h264; audio aac; a .webm must be Matroska with "
        "VP9/VP8 video and Opus/Vorbis audio: re-encode it")
    codes = {r["inventory_code"] for r in catalogue(database_url).values()}
    assert codes == {f"VO-FMT-0000{i}" for i in range(2, 6)} | {
        f"AO-FMT-0000{i}" for i in range(1, 4)}
