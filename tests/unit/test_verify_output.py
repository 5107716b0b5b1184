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
from mpr_cli.transcode import verify_output
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import media_info_from_json

DATA = Path(__file__).parent / "data"


def described(name: str, tool: str) -> MediaInfo:
    return media_info_from_json(json.loads((DATA / f"{name}.{tool}.json").read_text()))


@pytest.mark.parametrize("name", ["mp4_h264_aac", "mp4_h264_noaudio", "m4a_aac_only", "mp3",
                                  "mp2_in_mp3"])
def test_mediainfo_and_ffprobe_give_the_output_check_the_same_facts(name):
    mediainfo, ffprobe = described(name, "mediainfo"), described(name, "ffprobe")

    assert (mediainfo.container, mediainfo.video_codecs, mediainfo.audio_codecs) == (
        ffprobe.container, ffprobe.video_codecs, ffprobe.audio_codecs)
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
    chosen = load_presets().get(preset)

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
        verify_output(made, source, load_presets().get("web-720p"))
