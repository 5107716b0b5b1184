"""Transcode presets: the built-ins, a user file adding and replacing, every bad-file case."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from mpr_cli.errors import ConfigError, ExitCode
from mpr_cli.ffmpeg import presets
from mpr_cli.ffmpeg.presets import (
    AudioCodec,
    AudioTracks,
    OutputContainer,
    Preset,
    PresetOrigin,
    SpeedPreset,
    VideoCodec,
    load_presets,
)
from mpr_cli.rules import MediaType

BUILTINS = ("web-720p", "web-1080p", "web-1080p-hevc", "audio-mp3-192", "audio-mp3-320")


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtins_are_present_and_valid() -> None:
    book = load_presets()
    assert book.names() == BUILTINS
    assert book.source == "built-in presets.toml"
    assert all(book.origins[name] is PresetOrigin.BUILTIN for name in BUILTINS)
    assert book.default_for(MediaType.VIDEO).name == "web-720p"
    assert book.default_for(MediaType.AUDIO).name == "audio-mp3-192"


def test_web_720p_is_the_documented_h264_preset() -> None:
    p = load_presets().get("web-720p")
    assert (p.media, p.container, p.extension) == (MediaType.VIDEO, OutputContainer.MP4, ".mp4")
    assert (p.video_codec, p.profile, p.pix_fmt.value, p.crf) == (
        VideoCodec.LIBX264, "high", "yuv420p", 23)
    assert (p.maxrate, p.bufsize, p.preset) == ("3M", "6M", SpeedPreset.MEDIUM)
    assert (p.max_width, p.max_height, p.faststart) == (1280, 720, True)
    assert (p.audio_codec, p.audio_bitrate, p.audio_channels, p.audio_rate) == (
        AudioCodec.AAC, "128k", 2, 48000)


def test_web_1080p_fits_1920x1080_with_a_higher_cap() -> None:
    p = load_presets().get("web-1080p")
    assert (p.max_width, p.max_height, p.maxrate, p.bufsize) == (1920, 1080, "6M", "12M")


@pytest.mark.parametrize(("name", "bitrate"), [("audio-mp3-192", "192k"),
                                               ("audio-mp3-320", "320k")])
def test_mp3_presets_are_cbr_libmp3lame(name: str, bitrate: str) -> None:
    p = load_presets().get(name)
    assert (p.media, p.container, p.extension) == (MediaType.AUDIO, OutputContainer.MP3, ".mp3")
    assert (p.audio_codec, p.audio_bitrate, p.audio_cbr) == (AudioCodec.LIBMP3LAME, bitrate, True)
    assert p.video_codec is None and p.max_width is None and p.faststart is None


def test_presets_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        load_presets().get("web-720p").crf = 18  # type: ignore[misc]


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        load_presets().get("web-480p")
    assert caught.value.message == (
        "unknown preset 'web-480p': choose one of web-720p, web-1080p, web-1080p-hevc, "
        "audio-mp3-192, audio-mp3-320")
    assert caught.value.exit_code is ExitCode.USAGE


def test_user_file_adds_a_preset_with_media_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
[presets.tiny]
description = "small"
media = "video"
max_width = 640
max_height = 360
maxrate = "1M"
bufsize = "2M"
audio_bitrate = "96k"

[presets.voice]
media = "audio"
audio_bitrate = "64k"
audio_channels = 1
audio_rate = 22050
audio_cbr = false
""")
    book = load_presets(path)
    assert book.names() == (*BUILTINS, "tiny", "voice")
    assert book.source == str(path)
    tiny = book.get("tiny")
    assert (tiny.video_codec, tiny.profile, tiny.pix_fmt.value, tiny.crf, tiny.preset) == (
        VideoCodec.LIBX264, "high", "yuv420p", 23, SpeedPreset.MEDIUM)
    assert (tiny.container, tiny.audio_codec, tiny.faststart) == (
        OutputContainer.MP4, AudioCodec.AAC, True)
    voice = book.get("voice")
    assert (voice.container, voice.audio_codec, voice.audio_cbr) == (
        OutputContainer.MP3, AudioCodec.LIBMP3LAME, False)
    assert book.origins["tiny"] is PresetOrigin.USER
    assert book.default_for(MediaType.VIDEO).name == "web-720p"


def test_user_preset_replaces_a_builtin_whole(tmp_path: Path) -> None:
    path = write(tmp_path, """
[presets.web-720p]
media = "video"
video_codec = "libx265"
max_width = 1280
max_height = 720
audio_bitrate = "160k"
""")
    book = load_presets(path)
    p = book.get("web-720p")
    assert (p.video_codec, p.profile, p.maxrate, p.audio_bitrate) == (
        VideoCodec.LIBX265, "main", None, "160k")
    assert book.origins["web-720p"] is PresetOrigin.REPLACES_BUILTIN
    assert book.names() == BUILTINS


def test_user_defaults_replace_the_named_media_only(tmp_path: Path) -> None:
    path = write(tmp_path, '[defaults]\nvideo = "web-1080p"\n')
    book = load_presets(path)
    assert book.default_for(MediaType.VIDEO).name == "web-1080p"
    assert book.default_for(MediaType.AUDIO).name == "audio-mp3-192"


def test_to_dict_is_json_ready(tmp_path: Path) -> None:
    path = write(tmp_path, """
[defaults]
audio = "loud"
[presets.loud]
media = "audio"
audio_bitrate = "256k"
""")
    document = json.loads(json.dumps(load_presets(path).to_dict()))
    assert document["source"] == str(path)
    assert document["defaults"] == {"video": "web-720p", "audio": "loud"}
    by_name = {p["name"]: p for p in document["presets"]}
    assert list(by_name) == [*BUILTINS, "loud"]
    assert by_name["loud"] == {
        "name": "loud", "description": "", "media": "audio", "container": "mp3",
        "audio_codec": "libmp3lame", "audio_bitrate": "256k", "audio_cbr": True,
        "audio_tracks": "merge", "extension": ".mp3", "origin": "user",
    }
    assert by_name["web-720p"]["origin"] == "built-in"
    assert by_name["web-720p"]["max_width"] == 1280


VIDEO = 'media = "video"\nmax_width = 640\nmax_height = 360\naudio_bitrate = "96k"\n'
AUDIO = 'media = "audio"\naudio_bitrate = "96k"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (VIDEO + 'video_codec = "h265x"',
         "video_codec: 'h265x' is not one of libx264, libx265"),
        (VIDEO + 'preset = "turbo"',
         "preset: 'turbo' is not one of ultrafast, superfast, veryfast, faster, fast, medium, "
         "slow, slower, veryslow, placebo"),
        ('media = "film"\naudio_bitrate = "96k"',
         "media: 'film' is not one of video, audio"),
        (VIDEO + "max_widht = 1280", "max_widht: unknown field (did you mean 'max_width'?)"),
        (VIDEO + "crf = 60", "crf: input should be less than or equal to 51 (got 60)"),
        (VIDEO + 'crf = "high"', "crf: input should be a valid integer, unable to parse string "
                                 "as an integer (got 'high')"),
        (VIDEO + 'maxrate = "fast"\nbufsize = "2M"',
         "maxrate: 'fast' is not a bitrate like '3M' or '128k'"),
        (VIDEO + 'maxrate = "1M"', "bufsize: maxrate and bufsize go together: set both or "
                                   "neither"),
        ('media = "video"\nmax_height = 360\naudio_bitrate = "96k"',
         "max_width: required for a video preset"),
        (VIDEO.replace("640", "641"), "max_width: must be an even number, not 641"),
        (VIDEO + 'profile = "main10"',
         "profile: 'main10' is not one of baseline, main, high, high10 (the profiles of libx264)"),
        (VIDEO + 'pix_fmt = "yuv420p10le"',
         "pix_fmt: 'yuv420p10le' does not match profile 'high' (8-bit)"),
        (VIDEO + 'audio_codec = "libmp3lame"',
         "audio_codec: an mp4 preset uses aac, not 'libmp3lame'"),
        (VIDEO + 'container = "mp3"', "container: a video preset makes mp4, not 'mp3'"),
        (VIDEO + "audio_rate = 44000",
         "audio_rate: 44000 is not one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, "
         "44100, 48000, 64000, 88200, 96000 (the rates of aac)"),
        (VIDEO + "audio_cbr = true", "audio_cbr: only for libmp3lame (mp3) presets"),
        (AUDIO + 'video_codec = "libx264"',
         "video_codec: only for video presets (this one has media = \"audio\")"),
        (AUDIO + "audio_channels = 6", "audio_channels: mp3 has at most 2 channels"),
        (AUDIO + "audio_rate = 96000",
         "audio_rate: 96000 is not one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, "
         "44100, 48000 (the rates of libmp3lame)"),
        (AUDIO + 'audio_codec = "aac"', "audio_codec: an mp3 preset uses libmp3lame, not 'aac'"),
        ('media = "audio"', "audio_bitrate: required"),
        (AUDIO + 'name = "other"', "name: comes from the table name [presets.NAME]; remove it"),
        (AUDIO + 'audio_tracks = "all"', "audio_tracks: 'all' is not one of merge, first"),
        (VIDEO + "audio_tracks = 2", "audio_tracks: 2 is not one of merge, first"),
    ],
)
def test_bad_preset_names_file_preset_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, f"[presets.tiny]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_presets(path)
    assert caught.value.message == f"presets file {path}: preset 'tiny': {message}"
    assert caught.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[presets\n", "not valid TOML: "),
        ('prestes = 1\n', "prestes: unknown key (expected one of version, defaults, presets)"),
        ("version = 2\n", "version: unsupported version 2 (this mpr understands 1)"),
        ('presets = "web"\n', "presets: must be a table ([presets])"),
        ("[presets]\ntiny = 3\n", "preset 'tiny': must be a table ([presets.tiny])"),
        ('[presets."Big One"]\n' + AUDIO,
         "preset 'Big One': name: use lower-case letters, digits, '.', '_' and '-' "
         "(starting with a letter or digit)"),
        ('[defaults]\nvideo = "nope"\n',
         "defaults.video: unknown preset 'nope' (choose one of web-720p, web-1080p, "
         "web-1080p-hevc, audio-mp3-192, audio-mp3-320)"),
        ('[defaults]\nvideo = "audio-mp3-320"\n',
         "defaults.video: preset 'audio-mp3-320' is for audio, not video"),
        ('[defaults]\nsubtitles = "x"\n',
         'defaults.subtitles: expected video = "NAME" or audio = "NAME"'),
    ],
)
def test_bad_file_names_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_presets(path)
    assert caught.value.message.startswith(f"presets file {path}: {message}")


def test_missing_file_says_check_mpr_presets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_presets(tmp_path / "absent.toml")
    assert caught.value.one_line() == (
        f"presets file {tmp_path / 'absent.toml'}: not found (check MPR_PRESETS)")


def test_preset_model_validates_when_built_directly() -> None:
    preset = Preset(name="p", media=MediaType.AUDIO, audio_bitrate="128k")
    assert preset.audio_codec is AudioCodec.LIBMP3LAME
    with pytest.raises(pydantic.ValidationError):
        Preset(name="p", media=MediaType.VIDEO, audio_bitrate="128k")


def test_hevc_preset_is_documented_and_names_what_it_makes() -> None:
    hevc = load_presets().get("web-1080p-hevc")
    assert (hevc.video_codec, hevc.profile, hevc.pix_fmt.value) == (
        VideoCodec.LIBX265, "main", "yuv420p")
    assert (hevc.video_made, hevc.audio_made, hevc.audio_tracks) == (
        "hevc", "aac", AudioTracks.MERGE)
    assert load_presets().get("web-720p").video_made == "h264"
    assert load_presets().get("audio-mp3-192").audio_made == "mp3"


def test_audio_tracks_first_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "[presets.tiny]\n" + VIDEO + 'audio_tracks = "first"\n')
    assert load_presets(path).get("tiny").audio_tracks is AudioTracks.FIRST


def test_a_preset_its_output_check_cannot_accept_is_refused_at_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder the output check does not know (as libx265 was, when every HEVC transcode
    failed its check) is refused when the presets load, not after hours of encoding."""
    monkeypatch.delitem(presets.CODEC_MADE, VideoCodec.LIBX265)
    with pytest.raises(ConfigError) as caught:
        load_presets()
    assert caught.value.message == (
        "presets file built-in presets.toml: preset 'web-1080p-hevc': video_codec: 'libx265' "
        "has no output check in this mpr, so no output could pass it: use libx264")
