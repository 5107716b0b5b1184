"""The pure parts of mpr_cli.pictures: argv builders, keys, luma, image sizes."""

from __future__ import annotations

import struct
import zlib

import pytest

from mpr_cli.pictures import command
from mpr_cli.pictures.imagesize import image_size
from mpr_cli.pictures.model import PictureKind, picture_key

URL = "https://s3.example/bucket/FILE/VO-X-1.mp4?X-Amz-Signature=abc"


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _inputs(argv: list[str]) -> list[list[str]]:
    """The options of each input: what stands between the previous input and its -i."""
    found, start = [], argv.index("-y") + 1
    for i, arg in enumerate(argv):
        if arg == "-i":
            found.append(argv[start:i + 2])
            start = i + 2
    return found


def test_a_poster_is_a_keyframe_seek_before_the_input_then_thumbnail_scale_and_luma():
    argv = command.poster_argv("/work/in/FILE/VO-X-1.mov", "/work/p.jpg", start_s=6.0)

    assert argv[:4] == ["ffmpeg", "-hide_banner", "-nostdin", "-y"]
    [source] = _inputs(argv)
    assert source == ["-threads", "1", "-noaccurate_seek", "-ss", "6.000",
                      "-protocol_whitelist", "file", "-format_whitelist",
                      "mov,matroska,mxf,avi,wav,flac,mp3", "-i", "/work/in/FILE/VO-X-1.mov"]
    assert _value(argv, "-map") == "0:V:0"
    assert _value(argv, "-vf") == (
        "trim=end_frame=8,thumbnail=n=8,scale=w=iw*sar:h=ih,scale=w=640:h=-2,setsar=1,"
        "signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG")
    assert argv[-13:] == ["-fps_mode", "passthrough", "-frames:v", "1", "-update", "1",
                          "-f", "image2", "-c:v", "mjpeg", "-q:v", "3", "/work/p.jpg"]


def test_a_later_poster_window_seeks_accurately_and_deinterlaces_when_asked():
    argv = command.poster_argv("/m.mov", "/p.jpg", start_s=18.0, accurate=True,
                               deinterlace=True)

    assert "-noaccurate_seek" not in argv
    assert _value(argv, "-ss") == "18.000"
    assert _value(argv, "-vf").startswith("trim=end_frame=8,yadif,thumbnail=n=8,")


def test_a_url_is_read_through_https_only_with_a_read_timeout():
    argv = command.poster_argv(URL, "/p.jpg", start_s=1.5)

    [source] = _inputs(argv)
    assert _value(source, "-protocol_whitelist") == "https,tls,tcp"
    assert _value(source, "-rw_timeout") == "60000000"
    assert _value(source, "-recv_buffer_size") == "131072"  # S3 sends little ffmpeg never reads
    assert source[-2:] == ["-i", URL]


def test_no_seek_when_the_window_starts_at_zero():
    assert "-ss" not in command.poster_argv("/m.mov", "/p.jpg", start_s=0.0)


def test_a_name_that_looks_like_an_option_or_a_protocol_is_a_local_file():
    argv = command.poster_argv("-i.mov", "x:y.jpg", start_s=0.0)

    assert _inputs(argv)[0][-1] == "./-i.mov"
    assert argv[-1] == "./x:y.jpg"


def test_a_contact_sheet_seeks_once_per_tile_and_tiles_them_4_by_3():
    argv = command.contact_sheet_argv("/m.mov", "/s.jpg", duration_s=60.0)

    inputs = _inputs(argv)
    assert len(inputs) == 12
    assert [_value(i, "-ss") for i in inputs] == [
        f"{t:.3f}" for t in (2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 32.5, 37.5, 42.5, 47.5, 52.5,
                             57.5)]
    assert all("-noaccurate_seek" in i for i in inputs)
    graph = _value(argv, "-filter_complex").split(";")
    assert graph[0] == "[0:V:0]trim=end_frame=1,scale=w=iw*sar:h=ih,scale=w=320:h=-2,setsar=1[t0]"
    assert graph[-1] == ("".join(f"[t{i}]" for i in range(12))
                         + "concat=n=12:v=1:a=0,tile=layout=4x3[sheet]")
    assert _value(argv, "-map") == "[sheet]" and _value(argv, "-v") == "error"


def test_a_short_clip_gets_accurate_seeks_so_its_tiles_differ():
    inputs = _inputs(command.contact_sheet_argv("/m.mov", "/s.jpg", duration_s=1.0))

    assert not any("-noaccurate_seek" in i for i in inputs)
    assert _value(inputs[0], "-ss") == "0.042"


def test_a_waveform_draws_the_first_audio_track_in_mono_as_png():
    argv = command.waveform_argv("/a.wav", "/w.png")

    assert "-ss" not in argv
    assert _value(argv, "-filter_complex") == (
        "[0:a:0]aformat=channel_layouts=mono,showwavespic=s=1200x240:colors=0x2f6fb0[wave]")
    assert argv[-3:] == ["-c:v", "png", "/w.png"]


@pytest.mark.parametrize("duration, starts", [
    (60.0, [6.0, 18.0, 30.0, 42.0]), (1.0, [0.1, 0.3, 0.5, 0.7]), (None, [0.0]), (0.0, [0.0])])
def test_poster_windows_start_at_10_30_50_70_percent(duration, starts):
    assert command.poster_starts(duration) == starts


def test_the_luma_is_the_first_one_printed():
    stderr = ("[Parsed_metadata_5 @ 0x55] frame:0    pts:0\n"
              "[Parsed_metadata_5 @ 0x55] lavfi.signalstats.YAVG=12.5\n"
              "[Parsed_metadata_5 @ 0x55] lavfi.signalstats.YAVG=99\n")
    assert command.luma_of(stderr) == 12.5
    assert command.luma_of("no such line") is None


@pytest.mark.parametrize("luma, black", [(0.0, True), (16.0, True), (31.9, True),
                                         (32.0, False), (128.0, False), (None, False)])
def test_black_is_a_mean_luma_under_32(luma, black):
    assert command.is_black(luma) is black


@pytest.mark.parametrize("folder, kind, key", [
    ("FILE", PictureKind.POSTER, "thumbnails/FILE/VO-X-1.jpg"),
    ("BRD/sub", PictureKind.CONTACT_SHEET, "thumbnails/BRD/sub/VO-X-1.sheet.jpg"),
    ("CD", PictureKind.WAVEFORM, "thumbnails/CD/VO-X-1.waveform.png"),
    (".", PictureKind.POSTER, "thumbnails/VO-X-1.jpg"),
    ("", PictureKind.POSTER, "thumbnails/VO-X-1.jpg"),
])
def test_picture_keys(folder, kind, key):
    assert picture_key(folder, "VO-X-1", kind) == key


def test_kinds_carry_their_mime_type():
    assert [k.mime_type for k in PictureKind] == ["image/jpeg", "image/jpeg", "image/png"]


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 3) + b"\x00"
    return b"\xff\xd8" + app0 + dht + sof0 + b"\xff\xd9"


def test_image_size_reads_png_and_jpeg_headers():
    assert image_size(_png(1200, 240)) == ((1200, 240), "image/png")
    assert image_size(_jpeg(640, 360)) == ((640, 360), "image/jpeg")


@pytest.mark.parametrize("data", [b"", b"GIF89a", _png(0, 5), _jpeg(640, 360)[:30],
                                  b"\xff\xd8\xff\xd9"])
def test_image_size_refuses_what_is_no_complete_picture(data):
    assert image_size(data) is None
