"""Technical summaries (mpr_cli.summary) from the JSON mpr stores: real mediainfo and ffprobe
output of the same files (tests/unit/data), rationals, scan types, and hostile values."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpr_cli.summary import TechSummary, frame_rate, summary_of

DATA = Path(__file__).parent / "data"
PAIRS = sorted(p.name.removesuffix(".ffprobe.json") for p in DATA.glob("*.ffprobe.json")
               if (DATA / p.name.replace(".ffprobe.", ".mediainfo.")).exists())
COLUMNS = {"container", "duration_s", "video_codec", "width", "height", "display_aspect_ratio",
           "frame_rate", "scan_type", "audio_codec", "channels", "sample_rate", "bit_rate",
           "source"}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def summary(name: str) -> TechSummary:
    made = summary_of(load(name))
    assert made is not None, name
    return made


def test_an_ffprobe_video_summary() -> None:
    assert summary("mov_h264_aac.ffprobe.json") == TechSummary(
        container="mov", duration_s=1.0, video_codec="h264", width=160, height=120,
        display_aspect_ratio="4:3", frame_rate=25.0, scan_type="progressive",
        audio_codec="aac", channels=1, sample_rate=48000, bit_rate=132600, source="ffprobe")


def test_a_mediainfo_video_summary() -> None:
    assert summary("mov_prores_pcm.mediainfo.json") == TechSummary(
        container="mov", duration_s=1.0, video_codec="prores", width=160, height=120,
        display_aspect_ratio="4:3", frame_rate=25.0, scan_type="progressive",
        audio_codec="pcm_s16le", channels=1, sample_rate=48000, bit_rate=3505520,
        source="mediainfo")


def test_an_audio_file_has_no_picture_and_no_scan_type() -> None:
    made = summary("wav_pcm.mediainfo.json")
    assert (made.container, made.audio_codec, made.channels, made.sample_rate) == (
        "wav", "pcm_s16le", 1, 48000)
    assert (made.video_codec, made.width, made.frame_rate, made.scan_type) == (
        None, None, None, None)
    assert "fps" not in made.one_line()


@pytest.mark.parametrize("name", PAIRS)
def test_the_two_tools_agree_on_one_file(name: str) -> None:
    """What both tools state the same way is the same summary, whichever wrote the JSON
    (mediainfo's scan type for AVI and Matroska is its own)."""
    by_ffprobe, by_mediainfo = summary(f"{name}.ffprobe.json"), summary(f"{name}.mediainfo.json")
    same = ("container", "video_codec", "width", "height", "display_aspect_ratio",
            "frame_rate", "channels", "sample_rate")
    assert [getattr(by_ffprobe, f) for f in same] == [getattr(by_mediainfo, f) for f in same]
    assert by_ffprobe.duration_s == pytest.approx(by_mediainfo.duration_s, abs=0.05)
    assert by_mediainfo.audio_codec == by_ffprobe.audio_codec
    assert (by_ffprobe.source, by_mediainfo.source) == ("ffprobe", "mediainfo")


@pytest.mark.parametrize("source", ["ffprobe", "mediainfo"])
def test_interlaced_video(source: str) -> None:
    made = summary(f"mxf_mpeg2_pcm_interlaced.{source}.json")
    assert (made.container, made.video_codec, made.scan_type) == ("mxf", "mpeg2video",
                                                                  "interlaced")


@pytest.mark.parametrize(("field_order", "scan"), [
    ("progressive", "progressive"), ("tt", "interlaced"), ("bb", "interlaced"),
    ("tb", "interlaced"), ("bt", "interlaced"), ("unknown", "unknown"), (None, "unknown"),
    (7, "unknown")])
def test_scan_type_from_ffprobe_field_order(field_order: Any, scan: str) -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    video = next(s for s in document["streams"] if s["codec_type"] == "video")
    video["field_order"] = field_order
    assert summary_of(document) is not None
    assert summary_of(document).scan_type == scan  # type: ignore[union-attr]


@pytest.mark.parametrize(("scan_type", "scan"), [
    ("Progressive", "progressive"), ("Interlaced", "interlaced"), ("MBAFF", "interlaced"),
    ("PAFF", "interlaced"), ("Mixed", "interlaced"), ("", "unknown"), (None, "unknown"),
    (7, "unknown")])
def test_scan_type_from_mediainfo(scan_type: Any, scan: str) -> None:
    document = load("mp4_h264_aac.mediainfo.json")
    video = next(t for t in document["media"]["track"] if t["@type"] == "Video")
    video["ScanType"] = scan_type
    assert summary_of(document).scan_type == scan  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "rate"), [
    ("30000/1001", 29.97), ("24000/1001", 23.976), ("60000/1001", 59.94), ("25/1", 25.0),
    ("25", 25.0), ("25.000", 25.0), (50, 50.0), (29.97, 29.97), ("0/0", None), ("1/0", None),
    ("0", None), ("-25/1", None), ("N/A", None), ("", None), (None, None), (True, None),
    ("inf", None), ("nan", None), ("1e999/1", None), ([25], None), ({"n": 25}, None),
    ("25/1/1", None)])
def test_frame_rates(value: Any, rate: float | None) -> None:
    assert frame_rate(value) == rate


def test_ffprobe_takes_r_frame_rate_when_avg_frame_rate_says_nothing() -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    video = next(s for s in document["streams"] if s["codec_type"] == "video")
    video["avg_frame_rate"], video["r_frame_rate"] = "0/0", "30000/1001"
    assert summary_of(document).frame_rate == 29.97  # type: ignore[union-attr]


def test_mediainfo_frame_rate_from_its_fraction() -> None:
    document = load("mp4_h264_aac.mediainfo.json")
    video = next(t for t in document["media"]["track"] if t["@type"] == "Video")
    video.update(FrameRate="29.970", FrameRate_Num="30000", FrameRate_Den="1001")
    assert summary_of(document).frame_rate == 29.97  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "ratio"), [
    ("1.778", "16:9"), ("1.333", "4:3"), ("1.000", "1:1"), ("2.39", "2.39"), ("16:9", "16:9"),
    ("0:1", None), ("N/A", None), (-1, None), (None, None), ("4:x", None)])
def test_display_aspect_ratio(value: Any, ratio: str | None) -> None:
    document = load("mp4_h264_aac.mediainfo.json")
    video = next(t for t in document["media"]["track"] if t["@type"] == "Video")
    video["DisplayAspectRatio"] = value
    assert summary_of(document).display_aspect_ratio == ratio  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "depth", "sign", "order", "codec"), [
    ("wav_pcm", "16", "Signed", "Little", "pcm_s16le"),
    ("wav_pcm", "24", "Signed", "Big", "pcm_s24be"),
    ("wav_pcm", "8", "Unsigned", None, "pcm_u8"), ("wav_pcm", "8", None, None, "pcm"),
    ("wav_pcm", "32", "Signed", "Little", "pcm_s32le"),
    ("wav_pcm", "24", None, None, "pcm_s24le"),  # WAV: little-endian, signed above 8 bits
    ("wav_pcm", "20", "Signed", "Little", "pcm"), ("wav_pcm", None, None, None, "pcm"),
    ("mxf_mpeg2_pcm_interlaced", "16", None, None, "pcm_s16le"),
    ("mov_prores_pcm", "16", "Signed", None, "pcm"),  # QuickTime: either endianness
    ("mov_prores_pcm", "24", "Unsigned", "Big", "pcm_u24be")])
def test_mediainfo_pcm_named_as_ffprobe_names_it(name: str, depth: Any, sign: Any, order: Any,
                                                  codec: str) -> None:
    document = load(f"{name}.mediainfo.json")
    audio = next(t for t in document["media"]["track"] if t["@type"] == "Audio")
    audio.update(BitDepth=depth, Format_Settings_Sign=sign, Format_Settings_Endianness=order)
    assert summary_of(document).audio_codec == codec  # type: ignore[union-attr]


def test_cover_art_is_not_the_video() -> None:
    document = load("mp3.ffprobe.json")
    document["streams"].insert(0, {"codec_type": "video", "codec_name": "mjpeg", "width": 600,
                                   "height": 600, "disposition": {"attached_pic": 1}})
    made = summary_of(document)
    assert made is not None and (made.video_codec, made.width, made.audio_codec) == (
        None, None, "mp3")


@pytest.mark.parametrize("document", [
    None, [], "text", 3, {"neither": 1}, {"media": "x"}, {"media": {"track": "x"}},
    {"streams": []}, {"format": []}, {"format": {"format_name": ""}}])
def test_what_neither_tool_wrote_is_no_summary(document: Any) -> None:
    assert summary_of(document) is None


@pytest.mark.parametrize(("value", "width"), [
    ("1920", 1920), (1920, 1920), ("1920.0", 1920), ("N/A", None), ("", None), (-1920, None),
    (19.5, None), (True, None), (2**31, None), ("1e400", None), ("nan", None), ([1920], None),
    ({"value": 1920}, None), ("1e3", 1000), (" 1920 ", 1920), ("0x780", None),
    ("1" * 400, None)])
def test_a_value_that_is_not_a_whole_number_in_range_is_none(value: Any,
                                                              width: int | None) -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    video = next(s for s in document["streams"] if s["codec_type"] == "video")
    video["width"] = value
    assert summary_of(document).width == width  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "bit_rate"), [
    (str(2**63 - 1), 2**63 - 1), (2**63 - 1, 2**63 - 1), (str(2**63), None), (2**63, None),
    ("12300000", 12_300_000), ("12300000.0", 12_300_000)])
def test_bit_rates_are_read_exactly_up_to_the_bigint(value: Any, bit_rate: int | None) -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    document["format"]["bit_rate"] = value
    del document["format"]["size"]  # else the size over the duration stands in (below)
    assert summary_of(document).bit_rate == bit_rate  # type: ignore[union-attr]


def test_without_a_bit_rate_the_size_over_the_duration_stands_in() -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    del document["format"]["bit_rate"]
    document["format"].update(size="16575", duration="2.0")
    assert summary_of(document).bit_rate == 66300  # type: ignore[union-attr]
    document["format"]["duration"] = "N/A"
    assert summary_of(document).bit_rate is None  # type: ignore[union-attr]


def test_raw_aac_without_durations_from_mediainfo() -> None:
    """mediainfo gives an ADTS file no duration nor bit rate: frames x samples per frame over
    the sample rate (as ffprobe estimates it), and the size over that."""
    document = load("mp4_h264_aac.mediainfo.json")
    general = next(t for t in document["media"]["track"] if t["@type"] == "General")
    audio = next(t for t in document["media"]["track"] if t["@type"] == "Audio")
    document["media"]["track"] = [general, audio]
    general.update(Format="ADTS", FileSize="12604")
    for track in (general, audio):
        track.pop("Duration", None)
        track.pop("OverallBitRate", None)
    audio.update(FrameCount="48", SamplesPerFrame="1024", SamplingRate="48000")
    made = summary_of(document)
    assert made is not None
    assert (made.container, made.duration_s, made.bit_rate) == ("aac", 1.024, 98469)
    audio["SamplingRate"] = "0"
    assert summary_of(document).duration_s is None  # type: ignore[union-attr]


def test_hostile_text_is_cut_and_loses_its_nul() -> None:
    document = load("mp4_h264_aac.ffprobe.json")
    video = next(s for s in document["streams"] if s["codec_type"] == "video")
    video["codec_name"] = "h264\x00" + "x" * 500
    audio = next(s for s in document["streams"] if s["codec_type"] == "audio")
    audio["codec_name"] = {"not": "text"}
    document["format"]["bit_rate"] = str(2**64)
    document["format"]["duration"] = "-3"
    made = summary_of(document)
    assert made is not None
    assert made.video_codec is not None and "\x00" not in made.video_codec
    assert made.video_codec.startswith("h264x") and len(made.video_codec) == 64
    assert (made.audio_codec, made.bit_rate, made.duration_s) == ("unknown", None, None)


def test_a_document_the_import_would_refuse_has_no_summary() -> None:
    """The import's parser (validation.sidecars) decides what is mediainfo or ffprobe output:
    what it refuses (and so the import never stores) has no summary; the rest is read."""
    document = load("mp4_h264_aac.ffprobe.json")
    document["streams"] = [1, "x"]
    assert summary_of(document) is None
    document["streams"] = [{"codec_type": "audio", "channels": "two"}, {"codec_type": 3}]
    made = summary_of(document)
    assert made is not None
    assert (made.container, made.video_codec, made.audio_codec, made.channels) == (
        "mp4", None, "unknown", None)
    mediainfo = load("mp4_h264_aac.mediainfo.json")
    next(t for t in mediainfo["media"]["track"] if t["@type"] == "Video")["ScanType"] = ["x"]
    assert summary_of(mediainfo) is None


_HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=20), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] + [path]
    return [path]


_DOCS = [load(p.name) for p in sorted(DATA.glob("*.json"))]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(_DOCS))), st.data(), _HOSTILE)
def test_any_value_anywhere_never_raises(which: int, data: st.DataObject, hostile: Any) -> None:
    """Any one value of a real document replaced by anything JSON can hold: a summary or
    None, never an exception, and every value of the column's type."""
    document = copy.deepcopy(_DOCS[which])
    path = data.draw(st.sampled_from(_leaves(document)))
    if not path:
        document = hostile
    else:
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = hostile
    made = summary_of(document)
    if made is not None:
        for column, kind in (("width", int), ("height", int), ("channels", int),
                             ("sample_rate", int), ("bit_rate", int),
                             ("duration_s", float), ("frame_rate", float)):
            value = getattr(made, column)
            assert value is None or (isinstance(value, kind) and value >= 0), column
        assert made.scan_type in (None, "progressive", "interlaced", "unknown")


def test_one_line_and_json() -> None:
    made = TechSummary(container="mov", duration_s=60.0, video_codec="h264", width=1280,
                       height=720, display_aspect_ratio="16:9", frame_rate=25.0,
                       scan_type="progressive", audio_codec="pcm_s16le", channels=2,
                       sample_rate=48000, bit_rate=12_300_000, source="ffprobe")
    assert made.one_line() == ("mov, 00:01:00, h264 1280x720 16:9 25 fps progressive, "
                               "pcm_s16le 2 ch 48 kHz, 12.3 Mb/s")
    assert set(made.to_json()) == COLUMNS == {f.name for f in fields(TechSummary)}
    assert json.loads(json.dumps(made.to_json())) == made.to_json()


def test_one_line_of_an_audio_file_and_of_a_nearly_empty_summary() -> None:
    made = summary("mp3.ffprobe.json")
    assert made.one_line() == "mp3, 00:00:01.03, mp3 1 ch 48 kHz, 66 kb/s"
    bare = TechSummary(None, None, None, None, None, None, None, None, None, None, None, None,
                       "mediainfo")
    assert bare.one_line() == "unknown container"
    long = TechSummary("mkv", 3725.5, None, None, None, None, None, None, "flac", None, 44100,
                       None, "ffprobe")
    assert long.one_line() == "mkv, 01:02:05.50, flac 44.1 kHz"
