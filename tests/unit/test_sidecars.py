"""Sidecars: checksum files, metadata JSON (real mediainfo / ffprobe samples), QC reports.

The JSON samples under data/ are real outputs of `pymediainfo` (the `mediainfo --Output=JSON`
form) and `ffprobe -v error -print_format json -show_format -show_streams` for 1-second files
made with ffmpeg's lavfi test sources.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpr_cli.problems import Phase, Problem, Reason, Severity
from mpr_cli.validation.containers import Container, MediaInfo
from mpr_cli.validation.sidecars import (
    MASTER,
    check_qc_report,
    parse_checksum_sidecar,
    parse_metadata_sidecar,
)

DATA = Path(__file__).parent / "data"
HASH = "d41d8cd98f00b204e9800998ecf8427e"
HASH2 = "0123456789abcdef0123456789abcdef"


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _info(name: str) -> MediaInfo:
    result = parse_metadata_sidecar(name, _sample(name))
    assert isinstance(result, MediaInfo), result
    return result


# ----------------------------------------------------------------------------- checksums


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("VO-UMT-14387.mov.md5", f"{HASH}  VO-UMT-14387.mov\n", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.mov.md5", f"{HASH} *VO-UMT-14387.mov\n", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.mov.md5", f"{HASH} VO-UMT-14387.mov", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.mov.md5", f"{HASH.upper()}  VO-UMT-14387.mov\r\n",
         {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.md5", f"{HASH}  ./BRD/2019/VO-UMT-14387.mov\n",
         {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.md5", f"MD5 (VO-UMT-14387.mov) = {HASH}\n", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.md5",
         f"# made by md5sum\n\n{HASH}  VO-UMT-14387.mov\n{HASH2} *VO-UMT-14387.mp4\n\n",
         {"VO-UMT-14387.mov": HASH, "VO-UMT-14387.mp4": HASH2}),
        ("VO-UMT-14387.mov.md5", f"{HASH}\n", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.mov.md5", f"  {HASH.upper()}  ", {"VO-UMT-14387.mov": HASH}),
        ("VO-UMT-14387.md5", HASH, {MASTER: HASH}),
        ("VO-UMT-14387_master.md5", HASH, {MASTER: HASH}),
        ("VO-UMT-14387.md5", f"\ufeff{HASH}  VO-UMT-14387.mov\n", {"VO-UMT-14387.mov": HASH}),
    ],
)
def test_checksum_formats(name: str, data: str, expected: dict[str, str]) -> None:
    assert parse_checksum_sidecar(name, data.encode()) == expected


CERTUTIL_WIN10 = (  # `certutil -hashfile C:\...\VO-UMT-14387.mov MD5 > VO-UMT-14387.mov.md5`
    "MD5 hash of C:\\Users\\lab\\Desktop\\out\\VO-UMT-14387.mov:\r\n"
    f"{HASH}\r\n"
    "CertUtil: -hashfile command completed successfully.\r\n"
)
CERTUTIL_WIN7 = (  # Windows 7 / Server 2008 R2: "of file", the hash in byte pairs
    "MD5 hash of file D:\\digitisation\\BRD\\VO-UMT-14387.mov:\r\n"
    "d4 1d 8c d9 8f 00 b2 04 e9 80 09 98 ec f8 42 7e\r\n"
    "CertUtil: -hashfile command completed successfully.\r\n"
)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        pytest.param("VO-UMT-14387.mov.md5", CERTUTIL_WIN10.encode(),
                     {"VO-UMT-14387.mov": HASH}, id="certutil"),
        pytest.param("VO-UMT-14387.mov.md5", CERTUTIL_WIN7.encode("cp850"),
                     {"VO-UMT-14387.mov": HASH}, id="certutil-byte-pairs"),
        pytest.param("VO-UMT-14387.mov.md5", CERTUTIL_WIN10.encode("utf-16"),
                     {"VO-UMT-14387.mov": HASH}, id="certutil-through-powershell-utf16"),
        pytest.param("VO-UMT-14387.md5",
                     f"MD5 (BRD/VO-UMT-14387.mov) = {HASH}\nMD5 (BRD/VO-UMT-14387.mp4) = "
                     f"{HASH2}\n".encode(),
                     {"VO-UMT-14387.mov": HASH, "VO-UMT-14387.mp4": HASH2}, id="rhash-bsd"),
        pytest.param("VO-UMT-14387.md5",
                     f"{HASH}\tVO-UMT-14387.mov\n{HASH2}\tVO-UMT-14387.mp4\n".encode(),
                     {"VO-UMT-14387.mov": HASH, "VO-UMT-14387.mp4": HASH2}, id="tab"),
        pytest.param("VO-UMT-14387.mov.md5", f"\ufeff{HASH}\r\n".encode(),
                     {"VO-UMT-14387.mov": HASH}, id="bare-hash-with-bom"),
        pytest.param("VO-UMT-14387.md5", f"\ufeff{HASH.upper()}".encode(), {MASTER: HASH},
                     id="bare-master-hash-with-bom"),
        pytest.param("VO-UMT-14387.md5",
                     f"{HASH} *VO-UMT-14387.mov\r\n{HASH2} *VO-UMT-14387.mp4\r\n".encode(),
                     {"VO-UMT-14387.mov": HASH, "VO-UMT-14387.mp4": HASH2}, id="crlf"),
    ],
)
def test_lab_checksum_formats(name: str, data: bytes, expected: dict[str, str]) -> None:
    assert parse_checksum_sidecar(name, data) == expected


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "holds no checksum"),
        (b"\n# only a comment\n", "holds no checksum"),
        (f"{HASH[:-1]}  VO-UMT-14387.mov\n".encode(), "line 1: 'd41d8cd98f00b204e9800998ecf8427' is"
         " 31 hex digits; an MD5 has 32"),
        (f"{HASH}0  VO-UMT-14387.mov\n".encode(), "line 1: "),
        (f"{HASH[:-2]}zz  VO-UMT-14387.mov".encode(), "line 1: 'd41d8cd98f00b204e9800998ecf84"
         "2zz' is not hexadecimal"),
        (f"{HASH}  VO-UMT-14387.mov\n\nhello world\n".encode(), "line 3: 'hello world' is not an"
         " md5sum line"),
        (f"{HASH}\n{HASH2}\n".encode(), "line 1: no file name after the hash"),
        (b"\x80\x81 garbage", "is not UTF-8 text"),
        (b"SHA1 hash of VO-UMT-14387.mov:\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"
         b"CertUtil: -hashfile command completed successfully.\r\n",
         "line 1: certutil made a SHA1 hash; run `certutil -hashfile FILE MD5` for an MD5"),
        (b"CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\n"
         b"CertUtil: The system cannot find the file specified.\r\n",
         "line 1: certutil failed ('CertUtil: -hashfile command FAILED: 0x80070002"),
        (b"MD5 hash of VO-UMT-14387.mov:\r\nCertUtil: -hashfile command completed "
         b"successfully.\r\n", "line 2: 'CertUtil: -hashfile command completed successfully.'"
         " under certutil's \"hash of VO-UMT-14387.mov:\" is not an MD5"),
        (b"MD5 hash of VO-UMT-14387.mov:\r\n",
         "line 1: no hash after certutil's \"hash of VO-UMT-14387.mov:\" line"),
        (f"{HASH}  VO-UMT-14387.mov\n{HASH2}  VO-UMT-14387.mov\n".encode(),
         "line 2: VO-UMT-14387.mov is listed twice with different hashes"),
        (b"%PDF-1.4 not a checksum", "line 1: '%PDF-1.4 not a checksum' is not an md5sum line"),
    ],
)
def test_bad_checksum_files_say_which_line_is_wrong(data: bytes, why: str) -> None:
    problem = parse_checksum_sidecar("VO-UMT-14387.mov.md5", data, key="BRD/VO-UMT-14387.mov.md5",
                                     inventory_code="VO-UMT-14387")
    assert isinstance(problem, Problem)
    assert problem.reason is Reason.INVALID_CHECKSUM_SIDECAR
    assert (problem.key, problem.inventory_code) == ("BRD/VO-UMT-14387.mov.md5", "VO-UMT-14387")
    assert (problem.phase, problem.severity) == (Phase.INGEST, Severity.ERROR)
    assert why in problem.message
    assert problem.message.startswith("checksum file VO-UMT-14387.mov.md5")
    assert "\n" not in problem.message


def test_a_problem_defaults_to_the_sidecar_name_as_key() -> None:
    problem = parse_checksum_sidecar("VO-UMT-14387.md5", b"nope")
    assert isinstance(problem, Problem) and problem.key == "VO-UMT-14387.md5"


# ----------------------------------------------------------------------------- metadata

SAMPLES = [
    # sample stem, container, video codecs, audio codecs
    ("mov_prores_pcm", Container.QUICKTIME, ("prores",), ("pcm",)),
    ("mov_h264_pcm", Container.QUICKTIME, ("h264",), ("pcm",)),
    ("mov_h264_aac", Container.QUICKTIME, ("h264",), ("aac",)),
    ("mkv_ffv1_flac", Container.MATROSKA, ("ffv1",), ("flac",)),
    ("mxf_mpeg2_pcm_interlaced", Container.MXF, ("mpeg2video",), ("pcm",)),
    ("avi_mpeg4_pcm", Container.AVI, ("mpeg4",), ("pcm",)),
    ("mp4_h264_aac", Container.MPEG4, ("h264",), ("aac",)),
    ("mp4_h264_noaudio", Container.MPEG4, ("h264",), ()),
    ("m4a_aac_only", Container.MPEG4, (), ("aac",)),
    ("wav_pcm", Container.WAVE, (), ("pcm",)),
    ("flac", Container.FLAC, (), ("flac",)),
    ("mp3", Container.MPEG_AUDIO, (), ("mp3",)),
    ("mp2_in_mp3", Container.MPEG_AUDIO, (), ("mp2",)),
]


@pytest.mark.parametrize("source", ["mediainfo", "ffprobe"])
@pytest.mark.parametrize(("stem", "container", "video", "audio"), SAMPLES)
def test_real_metadata_sidecars(
    source: str, stem: str, container: Container, video: tuple[str, ...], audio: tuple[str, ...]
) -> None:
    info = _info(f"{stem}.{source}.json")
    assert info.source == source
    assert (info.container, info.video_codecs, info.audio_codecs) == (container, video, audio)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert info.size and info.size > 1000
    if video:
        assert (info.width, info.height) == (160, 120)
    else:
        assert (info.width, info.height, info.interlaced) == (None, None, None)


@pytest.mark.parametrize("stem", [s[0] for s in SAMPLES])
def test_mediainfo_and_ffprobe_agree_on_the_same_file(stem: str) -> None:
    mediainfo, ffprobe = _info(f"{stem}.mediainfo.json"), _info(f"{stem}.ffprobe.json")
    assert mediainfo.file_name == ffprobe.file_name
    assert mediainfo.file_name is not None and mediainfo.file_name.startswith(("VO-TST", "AO-TST"))
    same = ("container", "size", "video_codecs", "audio_codecs", "width", "height")
    assert [getattr(mediainfo, f) for f in same] == [getattr(ffprobe, f) for f in same]
    if None not in (mediainfo.interlaced, ffprobe.interlaced):  # a tool may not know
        assert mediainfo.interlaced == ffprobe.interlaced
    assert mediainfo.duration_s == pytest.approx(ffprobe.duration_s, abs=0.05)


def test_interlacing_is_read_from_both_tools() -> None:
    for source in ("mediainfo", "ffprobe"):
        assert _info(f"mxf_mpeg2_pcm_interlaced.{source}.json").interlaced is True
        assert _info(f"mov_prores_pcm.{source}.json").interlaced is False


def test_raw_formats_and_the_original_json_are_kept() -> None:
    name = "mov_prores_pcm.ffprobe.json"
    info = _info(name)
    assert info.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.raw == json.loads(_sample(name))
    assert _info("mov_prores_pcm.mediainfo.json").format_name == "MPEG-4"


def test_full_mediainfo_output_is_accepted_too() -> None:
    info = _info("mp4_h264_aac.mediainfo-full.json")
    assert (info.container, info.video_codecs, info.audio_codecs) == (
        Container.MPEG4, ("h264",), ("aac",))


def test_ffprobe_cover_art_is_not_a_video_stream() -> None:
    document = json.loads(_sample("mp3.ffprobe.json"))
    document["streams"].append({"codec_type": "video", "codec_name": "mjpeg",
                                "disposition": {"attached_pic": 1}})
    info = parse_metadata_sidecar("x.json", json.dumps(document).encode())
    assert isinstance(info, MediaInfo) and info.video_codecs == ()


def test_a_mov_without_ftyp_brand_is_quicktime_and_an_mp4_named_one_mpeg4() -> None:
    document = json.loads(_sample("mov_h264_pcm.ffprobe.json"))
    del document["format"]["tags"]["major_brand"]
    info = parse_metadata_sidecar("x.json", json.dumps(document).encode())
    assert isinstance(info, MediaInfo) and info.container is Container.QUICKTIME
    document["format"]["filename"] = "VO-TST-00006.mp4"
    info = parse_metadata_sidecar("x.json", json.dumps(document).encode())
    assert isinstance(info, MediaInfo) and info.container is Container.MPEG4


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not json at all", "is not JSON (Expecting value: line 1 column 1"),
        (b"\xff\xfe garbage", "is not JSON"),
        (b"", "is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),
        (b"[1, 2]", "is a JSON list (2 items); expected one object"),
        (b'"text"', "is a JSON str; expected an object"),
        (b'{"hello": "world"}', "is neither `mediainfo --Output=JSON` nor `ffprobe"),
        (b'{"streams": []}', 'is ffprobe output without "format" (use -show_format)'),
        (b'{"streams": [], "format": {"filename": "x.mov"}}',
         "is ffprobe output without a container format (format_name)"),
        (b'{"media": null}', "is mediainfo output for a file mediainfo could not read"),
        (b'{"media": {"@ref": "x", "track": [{"@type": "Video", "Format": "AVC"}]}}',
         "is mediainfo output without a container format (General track)"),
        (b'{"media": {"track": "nonsense"}}', "has an unexpected shape"),
        (b'{"format": "mov"}', "is ffprobe output without a container format"),
    ],
)
def test_invalid_metadata_sidecars(data: bytes, why: str) -> None:
    problem = parse_metadata_sidecar("VO-UMT-14387.json", data, key="FILE/VO-UMT-14387.json",
                                     inventory_code="VO-UMT-14387")
    assert isinstance(problem, Problem)
    assert problem.reason is Reason.INVALID_METADATA_SIDECAR
    assert problem.key == "FILE/VO-UMT-14387.json"
    assert problem.message.startswith(f"metadata file VO-UMT-14387.json {why}")
    assert "regenerate it with `mediainfo --Output=JSON FILE`" in problem.message
    assert "\n" not in problem.message


def test_ffprobe_output_without_streams_says_to_add_show_streams() -> None:
    """`ffprobe -print_format json -show_format FILE` only: no "streams" at all, which is
    not a file without streams (that would be "streams": [])."""
    document = json.loads(_sample("mov_h264_aac.ffprobe.json"))
    del document["streams"]
    problem = parse_metadata_sidecar("VO-UMT-14387.json", json.dumps(document).encode())
    assert isinstance(problem, Problem), problem
    assert problem.reason is Reason.INVALID_METADATA_SIDECAR
    assert problem.message.startswith("metadata file VO-UMT-14387.json is ffprobe output "
                                      "without streams (run ffprobe with -show_streams)")


# ----------------------------------------------------------------------------- QC reports


def test_a_pdf_qc_report_passes() -> None:
    assert check_qc_report("VO-UMT-14387_qc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") is None
    assert check_qc_report("VO-UMT-14387_qc.pdf", b"\r\n%PDF-1.4\n") is None  # junk before header


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"", "is empty"),
        (b"PK\x03\x04 a zip file", "is not a PDF (no %PDF- header)"),
        (b"<html>%PDF-</html>".rjust(2000), "is not a PDF (no %PDF- header)"),
    ],
)
def test_a_qc_report_that_is_not_a_pdf(head: bytes, why: str) -> None:
    problem = check_qc_report("VO-UMT-14387_qc.pdf", head, key="FILE/VO-UMT-14387_qc.pdf")
    assert isinstance(problem, Problem)
    assert problem.reason is Reason.INVALID_QC_REPORT
    assert problem.message == f"QC report VO-UMT-14387_qc.pdf {why}: upload the report as a PDF"
    assert problem.key == "FILE/VO-UMT-14387_qc.pdf"
