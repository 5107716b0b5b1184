"""`mpr show --json`'s `tech` from stored metadata (real mediainfo / ffprobe samples); the
text line is mpr_cli.summary's (tests/unit/test_summary.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpr_cli.catalogue import summarise

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("source", ["mediainfo", "ffprobe"])
def test_a_video_summary_has_picture_frame_rate_and_sound(source: str) -> None:
    tech = summarise(json.loads((DATA / f"mov_h264_aac.{source}.json").read_text()))
    assert tech is not None
    assert tech.video_codecs and tech.audio_codecs
    assert tech.width and tech.height and tech.frame_rate and tech.frame_rate > 0
    assert tech.duration_s and tech.duration_s > 0
    assert all(channels for channels in tech.audio_channels)


def test_the_two_tools_agree_on_the_summary_of_one_file() -> None:
    by_tool = [summarise(json.loads((DATA / f"mov_h264_aac.{tool}.json").read_text()))
               for tool in ("mediainfo", "ffprobe")]
    assert by_tool[0] is not None and by_tool[1] is not None
    assert (by_tool[0].width, by_tool[0].height, by_tool[0].frame_rate) == (
        by_tool[1].width, by_tool[1].height, by_tool[1].frame_rate)


def test_an_audio_summary_has_no_picture() -> None:
    tech = summarise(json.loads((DATA / "flac.ffprobe.json").read_text()))
    assert tech is not None and tech.video_codecs == () and tech.frame_rate is None
    assert tech.width is None and tech.height is None


@pytest.mark.parametrize("document", [None, [], {"neither": 1}, "text", {"media": "x"}])
def test_no_or_unreadable_metadata_is_no_summary(document: object) -> None:
    assert summarise(document) is None
