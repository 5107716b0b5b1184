"""The check of a transcode's output against its preset, made from the output's mediainfo
document (the .json sidecar mpr writes anyway) instead of a second ffprobe: both tools must
give it the same facts, and it must accept and refuse the same outputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.transcode.stages import verify_output
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import media_info_from_json

DATA = Path(__file__).parent / "data"


def described(name: str, tool: str) -> MediaInfo:
    return media_info_from_json(json.loads((DATA / f"{name}.{tool}.json").read_text()))


@pytest.mark.parametrize("name", ["mp4_h264_aac", "mp4_h264_noaudio", "m4a_aac_only", "mp3",
                                  "mp2_in_mp3", "mp4_hevc_aac_stereo"])
def test_mediainfo_and_ffprobe_give_the_output_check_the_same_facts(name):
    mediainfo, ffprobe = described(name, "mediainfo"), described(name, "ffprobe")

    assert (mediainfo.container, mediainfo.video_codecs, mediainfo.audio_codecs) == (
        ffprobe.container, ffprobe.video_codecs, ffprobe.audio_codecs)
    assert mediainfo.audio_channels == ffprobe.audio_channels
    assert None not in mediainfo.audio_channels
    assert mediainfo.duration_s == pytest.approx(ffprobe.duration_s, abs=0.05)


@pytest.mark.parametrize(("output", "preset", "master", "refused_because"), [
    ("mp4_h264_aac", "web-720p", "mov_h264_pcm", None),
    ("mp4_h264_noaudio", "web-720p", "mov_h264_pcm", "MPEG-4 with video h264"),
    ("m4a_aac_only", "web-720p", "mov_h264_pcm", "MPEG-4 with audio aac"),
    ("mp3", "audio-mp3-192", "wav_pcm", None),
    ("mp2_in_mp3", "audio-mp3-192", "wav_pcm", "MPEG Audio with audio mp2"),
])
@pytest.mark.parametrize("tool", ["mediainfo", "ffprobe"])
def test_output_is_accepted_or_refused_alike_from_either_document(tool, output, preset, master,
                                                                  refused_because):
    made = described(output, tool)
    source = dataclasses.replace(described(master, "ffprobe"), duration_s=made.duration_s)
    # these outputs are mono, as the mono masters are: the preset keeps the master's channels
    chosen = load_presets().get(preset).model_copy(update={"audio_channels": None})

    if refused_because is None:
        verify_output(made, source, chosen)
        return
    with pytest.raises(FfmpegError) as caught:
        verify_output(made, source, chosen)
    assert caught.value.message == (f"output is {refused_because}, not what preset {preset} "
                                    "makes")


def test_output_shorter_than_its_master_is_refused():
    made = described("mp4_h264_aac", "mediainfo")
    source = dataclasses.replace(described("mov_h264_pcm", "ffprobe"), duration_s=3.0)

    with pytest.raises(FfmpegError, match=r"output lasts 1\.00 s but the master 3\.00 s"):
        verify_output(made, source, keep_channels("web-720p"))


def keep_channels(name: str):
    return load_presets().get(name).model_copy(update={"audio_channels": None})


@pytest.mark.parametrize("tool", ["mediainfo", "ffprobe"])
def test_hevc_output_passes_the_hevc_presets_check(tool):
    """The real output of web-1080p-hevc on a master with two mono tracks: HEVC, stereo."""
    verify_output(described("mp4_hevc_aac_stereo", tool), described("mxf_mpeg2_two_mono",
                                                                     "ffprobe"),
                  load_presets().get("web-1080p-hevc"))


def test_hevc_output_fails_an_h264_presets_check_and_h264_an_hevc_one():
    master = described("mxf_mpeg2_two_mono", "ffprobe")
    with pytest.raises(FfmpegError) as caught:
        verify_output(described("mp4_hevc_aac_stereo", "mediainfo"), master,
                      load_presets().get("web-1080p"))
    assert caught.value.message == ("output is MPEG-4 with video hevc; audio aac, not what "
                                    "preset web-1080p makes")
    h264 = dataclasses.replace(described("mp4_h264_aac", "mediainfo"), duration_s=1.0)
    with pytest.raises(FfmpegError, match="not what preset web-1080p-hevc makes"):
        verify_output(h264, master, keep_channels("web-1080p-hevc"))


@pytest.mark.parametrize("fixed_channels", [True, False])
def test_one_channel_from_two_mono_tracks_is_refused(fixed_channels):
    """What mpr made before: the first mono track on its own; now the copy must carry both
    (with the preset's audio_channels = 2, and without it)."""
    made = dataclasses.replace(described("mp4_h264_aac", "mediainfo"), duration_s=1.0)
    master = described("mxf_mpeg2_two_mono", "ffprobe")
    chosen = load_presets().get("web-720p") if fixed_channels else keep_channels("web-720p")
    with pytest.raises(FfmpegError) as caught:
        verify_output(made, master, chosen)
    assert caught.value.one_line() == (
        "output has 1 audio channel(s); preset web-720p makes 2 from the master's 2 mono "
        "tracks, merged (check the master's audio tracks with ffprobe, or set "
        "audio_tracks = \"first\" in the preset)")


def test_a_copy_without_its_channel_count_is_refused():
    made = described("mp4_hevc_aac_stereo", "mediainfo")
    del made.raw["media"]["track"][2]["Channels"]
    with pytest.raises(FfmpegError, match=r"output has an unknown number of audio channel\(s\)"):
        verify_output(made, described("mxf_mpeg2_two_mono", "ffprobe"),
                      load_presets().get("web-1080p-hevc"))
