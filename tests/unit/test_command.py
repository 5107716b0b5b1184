"""ffmpeg argv building (pure): scaling, deinterlacing, stream mapping, options, errors."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.command import (
    AudioPlan,
    build_decode_check_argv,
    build_transcode_argv,
    describe_argv,
    input_restrictions,
    plan_audio,
    preset_command,
    refusal,
    threads_per_job,
)
from mpr_cli.ffmpeg.presets import Preset, load_presets
from mpr_cli.rules import MediaType
from mpr_cli.validation.containers import Container, MediaInfo

BOOK = load_presets()
OUT = Path("/tmp/out/VO-UMT-14387.mp4.part")


def video_info(width: int, height: int, *, interlaced: bool = False,
               audio: tuple[str, ...] = ("pcm",)) -> MediaInfo:
    return MediaInfo(source="ffprobe", container=Container.QUICKTIME, format_name="mov",
                     duration_s=2.0, file_name="VO-UMT-14387.mov", video_codecs=("prores",),
                     audio_codecs=audio, width=width, height=height, interlaced=interlaced)


DEMUXERS = "mov,matroska,mxf,avi,wav,flac,mp3"


def with_tracks(info: MediaInfo, *channels: int | None) -> MediaInfo:
    """`info` with one audio track per entry of `channels`, as ffprobe's document says them."""
    streams = [{"codec_type": "video"}] if info.has_video else []
    streams += [{"codec_type": "audio", "channels": count} for count in channels]
    return dataclasses.replace(info, audio_codecs=("pcm",) * len(channels),
                               raw={"format": {}, "streams": streams})


WAV = MediaInfo(source="ffprobe", container=Container.WAVE, format_name="wav", duration_s=2.0,
                file_name="AO-UMT-00001.wav", audio_codecs=("pcm",))


def option(argv: list[str], name: str) -> str:
    """The value after option `name` (which must appear exactly once)."""
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def maps(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-map"]


def web(name: str = "web-720p", info: MediaInfo | None = None, **kwargs) -> list[str]:
    return build_transcode_argv("/in/VO-UMT-14387.mov", OUT, BOOK.get(name), info, **kwargs)


def test_web_720p_on_a_1080p_progressive_source() -> None:
    argv = web(info=video_info(1920, 1080))
    assert argv[:5] == ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress"]
    assert option(argv, "-i") == "/in/VO-UMT-14387.mov"
    assert argv[-1] == str(OUT)
    graph = option(argv, "-filter_complex")
    assert graph == (
        "[0:V:0]scale=h=ih:w=iw*sar[s0];"
        "[s0]scale=force_divisible_by=2:force_original_aspect_ratio=decrease"
        r":h=min(720\,ih):w=min(1280\,iw)[s1];"
        "[s1]setsar=1[s2]"
    )
    assert "yadif" not in graph and "bwdif" not in graph
    assert maps(argv) == ["[s2]", "0:a:0"]
    expected = {
        "-f": "mp4", "-c:v": "libx264", "-profile:v": "high", "-pix_fmt": "yuv420p",
        "-crf": "23", "-maxrate": "3M", "-bufsize": "6M", "-preset": "medium",
        "-c:a": "aac", "-b:a": "128k", "-ac": "2", "-ar": "48000", "-movflags": "+faststart",
    }
    assert {name: option(argv, name) for name in expected} == expected


def test_progress_goes_to_stdout_without_stats() -> None:
    argv = web(info=video_info(1920, 1080))
    assert option(argv, "-progress") == "pipe:1"
    assert "-nostats" in argv
    quiet = web(info=video_info(1920, 1080), progress=False)
    assert "-progress" not in quiet and "-nostats" not in quiet


def test_interlaced_pal_source_is_deinterlaced_first() -> None:
    graph = option(web(info=video_info(720, 576, interlaced=True)), "-filter_complex")
    assert graph.startswith("[0:V:0]bwdif=mode=send_frame[s0];[s0]scale=h=ih:w=iw*sar[s1];")


def test_the_preset_chooses_the_deinterlacer(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        '[presets.sd]\nmedia = "video"\nmax_width = 720\nmax_height = 576\n'
        'deinterlace = "yadif"\naudio_bitrate = "96k"\n')
    preset = load_presets(tmp_path / "p.toml").get("sd")
    argv = build_transcode_argv("in.mov", OUT, preset, video_info(720, 576, interlaced=True))
    assert option(argv, "-filter_complex").startswith("[0:V:0]yadif=mode=send_frame[s0];")


def test_small_source_is_never_upscaled() -> None:
    graph = option(web(info=video_info(320, 240)), "-filter_complex")
    # the box is min(box, input): a 320x240 picture keeps 320x240
    assert r"h=min(720\,ih):w=min(1280\,iw)" in graph
    assert "force_original_aspect_ratio=decrease" in graph


def test_web_1080p_uses_its_box_and_cap() -> None:
    argv = web("web-1080p", info=video_info(3840, 2160))
    assert r"h=min(1080\,ih):w=min(1920\,iw)" in option(argv, "-filter_complex")
    assert (option(argv, "-maxrate"), option(argv, "-bufsize")) == ("6M", "12M")


def test_unknown_source_maps_audio_optionally_and_does_not_deinterlace() -> None:
    argv = web(info=None)
    assert maps(argv)[1] == "0:a:0?"
    assert "bwdif" not in option(argv, "-filter_complex")


def test_video_without_audio_is_encoded_without_audio() -> None:
    argv = web(info=video_info(1920, 1080, audio=()))
    assert maps(argv) == ["[s2]"]
    assert "-an" in argv and "-c:a" not in argv and "-b:a" not in argv


def test_audio_preset_drops_video_and_is_cbr_mp3() -> None:
    argv = build_transcode_argv("/in/AO-UMT-00001.wav", Path("/tmp/a.mp3.part"),
                                BOOK.get("audio-mp3-192"), WAV)
    assert maps(argv) == ["0:a:0"]
    assert "-vn" in argv and "-filter_complex" not in argv and "-c:v" not in argv
    assert {n: option(argv, n) for n in ("-f", "-c:a", "-b:a", "-ac")} == {
        "-f": "mp3", "-c:a": "libmp3lame", "-b:a": "192k", "-ac": "2"}
    assert "-abr" not in argv and "-movflags" not in argv and "-ar" not in argv


def test_audio_preset_on_a_video_master_takes_its_audio() -> None:
    argv = build_transcode_argv("/in/VO.mov", OUT, BOOK.get("audio-mp3-320"),
                                video_info(1920, 1080))
    assert maps(argv) == ["0:a:0"] and "-vn" in argv and option(argv, "-b:a") == "320k"


def test_abr_mp3_when_the_preset_is_not_cbr() -> None:
    preset = Preset(name="voice", media=MediaType.AUDIO, audio_bitrate="64k", audio_cbr=False)
    argv = build_transcode_argv("in.wav", Path("out.mp3"), preset, WAV)
    assert option(argv, "-abr") == "1"


def test_x265_gets_the_hvc1_tag() -> None:
    preset = Preset(name="hevc", media=MediaType.VIDEO, video_codec="libx265",
                    max_width=1280, max_height=720, audio_bitrate="128k")
    argv = build_transcode_argv("in.mov", OUT, preset, video_info(1920, 1080))
    assert (option(argv, "-c:v"), option(argv, "-profile:v"), option(argv, "-tag:v")) == (
        "libx265", "main", "hvc1")


def test_threads_cap_decoder_and_encoder() -> None:
    argv = web(info=video_info(1920, 1080), threads=3)
    assert argv.count("-threads") == 2
    assert argv[argv.index("-threads") + 2] == "-i"  # the input's, then the output's
    assert "-threads" not in web(info=video_info(1920, 1080))


@pytest.mark.parametrize("source", ["/in/VO-UMT 14387; rm -rf ~.mov",
                                    "/in/$(touch x) `id` | cat > y & .mov"])
def test_source_with_shell_metacharacters_stays_one_element(source: str) -> None:
    argv = build_transcode_argv(source, OUT, BOOK.get("web-720p"), video_info(640, 480))
    assert option(argv, "-i") == source
    assert shlex.split(describe_argv(argv)) == argv


@pytest.mark.parametrize(("name", "expected"), [("-rf.mov", "./-rf.mov"),
                                                ("VO:1.mov", "./VO:1.mov"),
                                                ("plain.mov", "plain.mov")])
def test_relative_names_cannot_be_options_or_protocols(name: str, expected: str) -> None:
    argv = build_transcode_argv(name, Path(name), BOOK.get("web-720p"), None)
    assert option(argv, "-i") == expected
    assert argv[-1] == expected


def test_url_source_has_a_read_timeout_and_its_signature_is_never_logged() -> None:
    url = "https://s3.local/in/VO-UMT-14387.mov?X-Amz-Signature=secret123"
    argv = build_transcode_argv(url, OUT, BOOK.get("web-720p"), None)
    assert option(argv, "-i") == url
    assert option(argv, "-rw_timeout") == "60000000"
    shown = describe_argv(argv)
    assert "secret123" not in shown and "VO-UMT-14387.mov?<redacted>" in shown


def test_video_preset_on_audio_only_source_names_file_and_preset() -> None:
    with pytest.raises(FfmpegError) as caught:
        build_transcode_argv("/in/AO-UMT-00001.wav", OUT, BOOK.get("web-720p"), WAV)
    assert caught.value.message == "AO-UMT-00001.wav has no video stream; preset web-720p needs one"


def test_audio_preset_on_silent_source_names_file_and_preset() -> None:
    silent = video_info(640, 480, audio=())
    with pytest.raises(FfmpegError) as caught:
        build_transcode_argv("/in/x.mov", OUT, BOOK.get("audio-mp3-192"), silent)
    assert caught.value.message == (
        "VO-UMT-14387.mov has no audio stream; preset audio-mp3-192 needs one")


def test_preset_command_uses_placeholders() -> None:
    shown = preset_command(BOOK.get("audio-mp3-192"))
    assert shown == ("ffmpeg -hide_banner -nostdin -y -progress pipe:1 -nostats "
                     f"-format_whitelist {DEMUXERS} -protocol_whitelist file -i INPUT "
                     "-map 0:a:0 -f mp3 -ac 2 -b:a 192k -c:a libmp3lame -vn OUTPUT")
    assert " -i INPUT " in preset_command(BOOK.get("web-720p"))


def test_decode_check_reads_every_stream_into_null() -> None:
    assert build_decode_check_argv(Path("/in/VO-UMT-14387.mov")) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-format_whitelist", DEMUXERS,
        "-protocol_whitelist", "file", "-i", "/in/VO-UMT-14387.mov",
        "-map", "0:V?", "-map", "0:a?", "-f", "null", "-",
    ]
    with_progress = build_decode_check_argv("/in/x.mov", progress=True)
    assert option(with_progress, "-progress") == "pipe:1"


@pytest.mark.parametrize(("workers", "cores", "expected"),
                         [(1, 8, 8), (2, 8, 4), (3, 8, 2), (8, 8, 1), (16, 8, 1), (0, 4, 4)])
def test_threads_per_job_shares_the_cores(workers: int, cores: int, expected: int) -> None:
    assert threads_per_job(workers, cores) == expected


def test_threads_per_job_defaults_to_this_machine() -> None:
    assert threads_per_job(1) >= 1


# ------------------------------------------------------------------------- what ffmpeg may open


def test_a_local_master_is_read_through_the_file_protocol_and_master_demuxers_only() -> None:
    argv = web(info=video_info(1920, 1080))
    assert option(argv, "-protocol_whitelist") == "file"
    assert option(argv, "-format_whitelist") == DEMUXERS
    assert argv.index("-format_whitelist") < argv.index("-i")  # input options, not output's


@pytest.mark.parametrize(("url", "protocols"), [
    ("https://s3.example.com/in/VO.mov?X-Amz-Signature=s", "https,tls,tcp"),
    ("http://127.0.0.1:8333/in/VO.mov?X-Amz-Signature=s", "http,tcp"),
])
def test_a_presigned_url_is_read_through_its_own_scheme_only(url: str, protocols: str) -> None:
    argv = build_transcode_argv(url, OUT, BOOK.get("web-720p"), None)
    assert option(argv, "-protocol_whitelist") == protocols
    assert "file" not in protocols.split(",")
    assert input_restrictions(url)["format_whitelist"] == DEMUXERS


def test_refusal_names_what_the_input_really_is() -> None:
    hls = ("[hls @ 0x55a5de0b9280] Format not on whitelist 'mov,matroska,mxf'\n"
           "/in/VO-X.mov: Invalid argument")
    assert refusal(hls) == (f"it is a hls file, not a media container mpr reads "
                            f"({DEMUXERS.replace(',', ', ')})")
    protocol = "[http @ 0x1] Protocol 'http' not on whitelist 'file'!\nx.mov: Invalid argument"
    assert refusal(protocol) == ("it names a http resource, and ffmpeg may open only the file "
                                 "it was given")
    assert refusal("x.mov: Invalid data found when processing input") is None


# ------------------------------------------------------------------------- audio tracks


def test_two_mono_tracks_become_left_and_right_of_one_stream() -> None:
    info = with_tracks(video_info(1920, 1080), 1, 1)
    argv = web(info=info)
    assert option(argv, "-filter_complex").endswith(
        "[0:a:0][0:a:1]join=channel_layout=stereo:inputs=2[s3]")
    assert maps(argv) == ["[s2]", "[s3]"]
    assert plan_audio(BOOK.get("web-720p"), info) == AudioPlan((0, 1), 2)


@pytest.mark.parametrize(("tracks", "pan"), [
    (3, "stereo|c0<c0+c2|c1<c1"),
    (4, "stereo|c0<c0+c2|c1<c1+c3"),
    (8, "stereo|c0<c0+c2+c4+c6|c1<c1+c3+c5+c7"),
])
def test_more_mono_tracks_are_downmixed_odd_left_even_right(tracks: int, pan: str) -> None:
    argv = web(info=with_tracks(video_info(1920, 1080), *[1] * tracks))
    inputs = "".join(f"[0:a:{i}]" for i in range(tracks))
    assert option(argv, "-filter_complex").endswith(
        f"{inputs}amerge=inputs={tracks}[s3];[s3]pan={pan}[s4]")
    assert maps(argv) == ["[s2]", "[s4]"]


def test_a_stereo_first_track_stays_as_it_is() -> None:
    info = with_tracks(video_info(1920, 1080), 2, 1, 1)
    argv = web(info=info)
    assert maps(argv) == ["[s2]", "0:a:0"] and "join" not in option(argv, "-filter_complex")
    assert plan_audio(BOOK.get("web-720p"), info).tracks == (0,)


def test_only_the_mono_tracks_are_merged() -> None:
    info = with_tracks(video_info(1920, 1080), 1, 2, 1)  # a stereo mix between two monos
    assert plan_audio(BOOK.get("web-720p"), info).tracks == (0, 2)


def test_audio_tracks_first_keeps_the_old_mapping(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[presets.one]\nmedia = "video"\nmax_width = 640\n'
                                     'max_height = 360\naudio_bitrate = "96k"\n'
                                     'audio_tracks = "first"\n')
    preset = load_presets(tmp_path / "p.toml").get("one")
    info = with_tracks(video_info(1920, 1080), 1, 1)
    argv = build_transcode_argv("/in/VO.mov", OUT, preset, info)
    assert maps(argv) == ["[s2]", "0:a:0"]
    assert plan_audio(preset, info) == AudioPlan((0,), 1)  # no audio_channels: mono stays


def test_an_audio_preset_merges_mono_tracks_too() -> None:
    info = with_tracks(WAV, 1, 1)
    argv = build_transcode_argv("/in/AO.mxf", Path("/tmp/a.mp3"), BOOK.get("audio-mp3-192"),
                                info)
    assert option(argv, "-filter_complex") == (
        "[0:a:0][0:a:1]join=channel_layout=stereo:inputs=2[s0]")
    assert maps(argv) == ["[s0]"] and "-vn" in argv


def test_unknown_channel_counts_keep_the_first_track() -> None:
    info = video_info(1920, 1080, audio=("pcm", "pcm"))  # no document: channels unknown
    assert info.audio_channels == (None, None)
    assert plan_audio(BOOK.get("web-720p"), info) == AudioPlan((0,), 2)
    assert maps(web(info=info)) == ["[s2]", "0:a:0"]
