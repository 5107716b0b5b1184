"""MIME types and container rules, on the real mediainfo / ffprobe samples in data/."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpr_cli.problems import Phase, Problem, Reason, Severity
from mpr_cli.rules import MediaType
from mpr_cli.validation.containers import (
    Container,
    MediaInfo,
    check_kind,
    check_master,
    check_media_file,
    check_streaming_copy,
)
from mpr_cli.validation.mime import (
    mime_for_container,
    mime_for_media,
    mime_for_sidecar,
)
from mpr_cli.validation.sidecars import parse_metadata_sidecar

DATA = Path(__file__).parent / "data"
SOURCES = ("mediainfo", "ffprobe")
KEY, CODE = "FILE/VO-UMT-14387.mov", "VO-UMT-14387"
V, A = MediaType.VIDEO, MediaType.AUDIO


def _info(stem: str, source: str) -> MediaInfo:
    name = f"{stem}.{source}.json"
    info = parse_metadata_sidecar(name, (DATA / name).read_bytes())
    assert isinstance(info, MediaInfo), info
    return info


def _one_mismatch(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.reason is Reason.CONTAINER_MISMATCH
    assert (problem.phase, problem.severity) == (Phase.INGEST, Severity.ERROR)
    assert (problem.key, problem.inventory_code) == (KEY, CODE)
    return problem


# ----------------------------------------------------------------------------- MIME


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("stem", "mime"),
    [
        ("mov_prores_pcm", "video/quicktime"),
        ("mkv_ffv1_flac", "video/x-matroska"),
        ("mxf_mpeg2_pcm_interlaced", "application/mxf"),
        ("wav_pcm", "audio/wav"),
        ("flac", "audio/flac"),
        ("mp4_h264_aac", "video/mp4"),
        ("mp4_h264_noaudio", "video/mp4"),
        ("m4a_aac_only", "audio/mp4"),
        ("mp3", "audio/mpeg"),
        ("avi_mpeg4_pcm", "video/x-msvideo"),
    ],
)
def test_mime_for_each_container(source: str, stem: str, mime: str) -> None:
    assert mime_for_media(_info(stem, source)) == mime


def test_mime_for_container_directly() -> None:
    assert mime_for_container(Container.MPEG4) == "video/mp4"
    assert mime_for_container(Container.MPEG4, has_video=False) == "audio/mp4"
    assert mime_for_container(Container.QUICKTIME, has_video=False) == "video/quicktime"
    assert mime_for_container(Container.OTHER) is None


@pytest.mark.parametrize(
    ("extension", "mime"),
    [(".json", "application/json"), (".md5", "text/plain"), (".pdf", "application/pdf"),
     (".PDF", "application/pdf"), (".mov", None)],
)
def test_mime_for_sidecars(extension: str, mime: str | None) -> None:
    assert mime_for_sidecar(extension) == mime


# ----------------------------------------------------------------------------- masters


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("extension", "stem"),
    [
        (".mov", "mov_prores_pcm"), (".MOV", "mov_h264_pcm"), (".mkv", "mkv_ffv1_flac"),
        (".mxf", "mxf_mpeg2_pcm_interlaced"), (".avi", "avi_mpeg4_pcm"), (".wav", "wav_pcm"),
        (".flac", "flac"),
    ],
)
def test_masters_in_the_right_container_pass(source: str, extension: str, stem: str) -> None:
    assert check_master(KEY, CODE, extension, _info(stem, source)) == []


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("extension", "stem", "found", "expected"),
    [
        (".mov", "mp4_h264_aac", "MPEG-4", "QuickTime"),
        (".mov", "mkv_ffv1_flac", "Matroska", "QuickTime"),
        (".mkv", "mov_prores_pcm", "QuickTime", "Matroska"),
        (".mxf", "avi_mpeg4_pcm", "AVI", "MXF"),
        (".wav", "flac", "FLAC", "Wave"),
        (".flac", "wav_pcm", "Wave", "FLAC"),
    ],
)
def test_masters_in_the_wrong_container_fail(
    source: str, extension: str, stem: str, found: str, expected: str
) -> None:
    problem = _one_mismatch(check_master(KEY, CODE, extension, _info(stem, source)))
    assert problem.message.startswith(f"master is {found} (")
    assert f"but {extension} means {expected}: rename it" in problem.message


def test_check_master_refuses_a_non_master_extension() -> None:
    with pytest.raises(ValueError, match="not a master extension"):
        check_master(KEY, CODE, ".mp4", _info("mp4_h264_aac", "ffprobe"))


# ----------------------------------------------------------------------------- streaming copies


@pytest.mark.parametrize("source", SOURCES)
def test_good_streaming_copies_pass(source: str) -> None:
    assert check_streaming_copy(KEY, CODE, ".mp4", _info("mp4_h264_aac", source)) == []
    assert check_streaming_copy(KEY, CODE, ".MP3", _info("mp3", source)) == []


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("extension", "stem", "found"),
    [
        (".mp4", "mov_h264_aac", "QuickTime with video h264; audio aac"),
        (".mp4", "mp4_h264_noaudio", "MPEG-4 with video h264"),
        (".mp4", "m4a_aac_only", "MPEG-4 with audio aac"),
        (".mp4", "mov_prores_pcm", "QuickTime with video prores; audio pcm"),
        (".mp4", "mkv_ffv1_flac", "Matroska with video ffv1; audio flac"),
        (".mp3", "mp2_in_mp3", "MPEG Audio with audio mp2"),
        (".mp3", "wav_pcm", "Wave with audio pcm"),
        (".mp3", "m4a_aac_only", "MPEG-4 with audio aac"),
    ],
)
def test_wrong_streaming_copies_say_what_was_found_and_expected(
    source: str, extension: str, stem: str, found: str
) -> None:
    problem = _one_mismatch(check_streaming_copy(KEY, CODE, extension, _info(stem, source)))
    expected = {
        ".mp4": "MPEG-4 with H.264 video and AAC audio",
        ".mp3": "MPEG audio layer 3 (mp3) with no video",
    }[extension]
    assert problem.message == (
        f"streaming copy is {found}; a {extension} must be {expected}: re-encode it"
    )


def test_check_streaming_copy_refuses_a_master_extension() -> None:
    with pytest.raises(ValueError, match="not a streaming copy extension"):
        check_streaming_copy(KEY, CODE, ".mov", _info("mov_prores_pcm", "ffprobe"))


# ----------------------------------------------------------------------------- kind


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("media_type", "stem"),
    [
        (V, "mov_prores_pcm"), (V, "mp4_h264_noaudio"), (V, "mxf_mpeg2_pcm_interlaced"),
        (A, "wav_pcm"), (A, "flac"), (A, "mp3"), (A, "m4a_aac_only"),
    ],
)
def test_kind_matches_the_code(source: str, media_type: MediaType, stem: str) -> None:
    assert check_kind(KEY, CODE, media_type, _info(stem, source)) == []


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("media_type", "stem", "text"),
    [
        (V, "wav_pcm", "VO-UMT-14387 is a video asset but the file is Wave with audio pcm"),
        (V, "m4a_aac_only", "is a video asset but the file is MPEG-4 with audio aac"),
        (A, "mov_prores_pcm", "is an audio asset but the file is QuickTime with video prores"),
        (A, "mp4_h264_noaudio", "is an audio asset but the file is MPEG-4 with video h264"),
    ],
)
def test_kind_mismatch(source: str, media_type: MediaType, stem: str, text: str) -> None:
    problem = _one_mismatch(check_kind(KEY, CODE, media_type, _info(stem, source)))
    assert text in problem.message


def test_a_file_without_streams_fails_both_kinds() -> None:
    empty = MediaInfo(source="ffprobe", container=Container.OTHER, format_name="tty")
    for media_type in (V, A):
        problem = _one_mismatch(check_kind(KEY, CODE, media_type, empty))
        assert "other with no audio or video streams" in problem.message


# ----------------------------------------------------------------------------- all together


def test_check_media_file_reports_one_problem_per_file() -> None:
    good = check_media_file(KEY, CODE, V, ".mp4", _info("mp4_h264_aac", "mediainfo"))
    assert good == []
    assert check_media_file(KEY, CODE, A, ".flac", _info("flac", "ffprobe")) == []
    wrong_kind = check_media_file(KEY, CODE, A, ".mov", _info("mp4_h264_aac", "ffprobe"))
    assert [p.reason for p in wrong_kind] == [Reason.CONTAINER_MISMATCH]
    assert "audio asset" in wrong_kind[0].message
    wrong_container = check_media_file(KEY, CODE, V, ".mov", _info("mp4_h264_aac", "ffprobe"))
    assert [p.reason for p in wrong_container] == [Reason.CONTAINER_MISMATCH]
    assert "means QuickTime" in wrong_container[0].message
