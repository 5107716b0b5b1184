"""Technical summaries (sql/012 media_summaries): what a person asks of a master or a streaming
copy, as typed values derived from the mediainfo or ffprobe JSON the catalogue stores for it
(asset_files.tech_metadata).

- `summary_of(document)`: the summary of one stored document, None when it is neither tool's
  output (what validation.sidecars.media_info_from_json, the import's parser, refuses, and so
  the import never stores). Never raises on odd JSON: a value that is not a number (or is out
  of the catalogue's range: negative, NaN, infinite, too large for its column) is None; text
  is cut to MAX_TEXT characters and loses NUL characters.
- Values: `container` mpr's short family name ("mov", "mp4", "matroska", "mxf", "wav", ...;
  QuickTime and MPEG-4 told apart as validation.sidecars does); codecs are ffprobe's names
  (mediainfo's formats mapped to them; PCM with its sample format, e.g. "pcm_s16le", when
  mediainfo gives bit depth, sign and endianness); the first video and the first audio stream
  are summarised (cover art ignored); `frame_rate` in frames per second, rounded to 3
  decimals ("30000/1001" -> 29.97); `scan_type` "progressive", "interlaced" or "unknown" for
  a file with video (ffprobe's field_order, mediainfo's ScanType), None without video;
  `display_aspect_ratio` as "16:9" (mediainfo's decimal turned into the nearest small ratio);
  `bit_rate` the overall bit rate in bit/s.
- `fill(conn, files)`: the summaries of the given files (bucket, key) that have none, written
  in the caller's transaction (the import's batch, the transcode's record); `backfill(conn)`
  fills every master and streaming copy that has none (files catalogued before sql/012), in
  batches of their own transactions (`mpr db backfill-summaries`). A file whose tech_metadata
  changes loses its summary (the trigger of sql/012); the writer fills it again.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import psycopg

from mpr_cli import db
from mpr_cli.errors import describe
from mpr_cli.rules import Container
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import InvalidMetadata, media_info_from_json

MAX_TEXT = 64
MAX_INT = 2**31 - 1  # integer columns
MAX_BIGINT = 2**63 - 1
BACKFILL_BATCH = 500
log = logging.getLogger("mpr.summary")
SUMMARISED_ROLES = ("master", "streaming")

_SHORT = {
    Container.QUICKTIME: "mov", Container.MPEG4: "mp4", Container.MATROSKA: "matroska",
    Container.MXF: "mxf", Container.WAVE: "wav", Container.FLAC: "flac",
    Container.MPEG_AUDIO: "mp3", Container.AVI: "avi", Container.OGG: "ogg",
    Container.ADTS: "aac", Container.FLV: "flv", Container.ASF: "asf",
}
_FF_INTERLACED = ("tt", "bb", "tb", "bt")
_DIGITS = re.compile(r"[0-9]{1,19}")
_MI_INTERLACED = ("interlaced", "mbaff", "paff", "mixed")


@dataclass(frozen=True)
class TechSummary:
    """One file's technical summary (None: the document does not say, or not as a number)."""

    container: str | None
    duration_s: float | None
    video_codec: str | None
    width: int | None
    height: int | None
    display_aspect_ratio: str | None
    frame_rate: float | None
    scan_type: str | None  # progressive | interlaced | unknown; None without video
    audio_codec: str | None
    channels: int | None
    sample_rate: int | None
    bit_rate: int | None  # overall, bit/s
    source: str  # ffprobe | mediainfo

    def to_json(self) -> dict[str, Any]:
        """The summary as `mpr show --json` has it under each file ("summary")."""
        return asdict(self)

    def one_line(self) -> str:
        """"mov, 00:01:00, h264 1280x720 16:9 25 fps progressive, pcm_s16le 2 ch 48 kHz,
        12.3 Mb/s": the parts the document gives, in that order (text not yet escaped)."""
        parts = [self.container or "unknown container", _clock(self.duration_s)]
        if self.video_codec is not None:
            parts.append(_joined(self.video_codec, _size(self.width, self.height),
                                 self.display_aspect_ratio, _fps(self.frame_rate),
                                 self.scan_type))
        if self.audio_codec is not None:
            parts.append(_joined(self.audio_codec,
                                 None if self.channels is None else f"{self.channels} ch",
                                 _khz(self.sample_rate)))
        parts.append(_rate(self.bit_rate))
        return ", ".join(p for p in parts if p)


def _joined(*values: str | None) -> str:
    return " ".join(v for v in values if v)


def _clock(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole, hundredths = divmod(round(seconds * 100), 100)
    clock = f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    return f"{clock}.{hundredths:02d}" if hundredths else clock


def _size(width: int | None, height: int | None) -> str | None:
    return None if width is None or height is None else f"{width}x{height}"


def _fps(rate: float | None) -> str | None:
    return None if rate is None else f"{rate:g} fps"


def _khz(rate: int | None) -> str | None:
    return None if rate is None else f"{rate / 1000:g} kHz"


def _rate(bits: int | None) -> str | None:
    if bits is None:
        return None
    if bits >= 1_000_000:
        return f"{bits / 1_000_000:.1f} Mb/s"
    return f"{bits / 1000:.0f} kb/s"


# ----------------------------------------------------------------------------- extraction


def summary_of(tech_metadata: Any) -> TechSummary | None:
    """The summary of a stored mediainfo or ffprobe document; None when it is neither."""
    if not isinstance(tech_metadata, dict):
        return None
    try:
        info = media_info_from_json(tech_metadata)
        if info.source == "mediainfo":
            return _from_mediainfo(info)
        return _from_ffprobe(info)
    except (InvalidMetadata, TypeError, ValueError, KeyError, AttributeError, RecursionError):
        return None


def _from_ffprobe(info: MediaInfo) -> TechSummary:
    raw = info.raw
    fmt = _dict(raw.get("format"))
    streams = [_dict(s) for s in _list(raw.get("streams"))]
    streams = [s for s in streams if not _dict(s.get("disposition")).get("attached_pic")]
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    v, a = video or {}, audio or {}
    field_order = _text(v.get("field_order"))
    duration = _seconds(fmt.get("duration"))
    return TechSummary(
        container=_container(info), duration_s=duration,
        video_codec=None if video is None else _text(v.get("codec_name")) or "unknown",
        width=_count(v.get("width")), height=_count(v.get("height")),
        display_aspect_ratio=_ratio_text(v.get("display_aspect_ratio")),
        frame_rate=frame_rate(v.get("avg_frame_rate")) or frame_rate(v.get("r_frame_rate")),
        scan_type=None if video is None else (
            "progressive" if field_order == "progressive" else
            "interlaced" if field_order in _FF_INTERLACED else "unknown"),
        audio_codec=None if audio is None else _text(a.get("codec_name")) or "unknown",
        channels=_count(a.get("channels")), sample_rate=_count(a.get("sample_rate")),
        bit_rate=_count(fmt.get("bit_rate"), MAX_BIGINT) or _average(fmt.get("size"), duration),
        source="ffprobe")


def _from_mediainfo(info: MediaInfo) -> TechSummary:
    tracks = [_dict(t) for t in _list(_dict(info.raw.get("media")).get("track"))]
    general = next((t for t in tracks if t.get("@type") == "General"), {})
    video = next((t for t in tracks if t.get("@type") == "Video"), None)
    audio = next((t for t in tracks if t.get("@type") == "Audio"), None)
    v, a = video or {}, audio or {}
    scan = (_text(v.get("ScanType")) or "").lower()
    rate = frame_rate(v.get("FrameRate"))
    if v.get("FrameRate_Num") is not None:
        rate = frame_rate(f"{v.get('FrameRate_Num')}/{v.get('FrameRate_Den')}") or rate
    container, duration = _container(info), _mi_duration(general, v, a)
    return TechSummary(
        container=container, duration_s=duration,
        video_codec=_first(info.video_codecs) if video is not None else None,
        width=_count(v.get("Width")), height=_count(v.get("Height")),
        display_aspect_ratio=_ratio_text(v.get("DisplayAspectRatio")),
        frame_rate=rate,
        scan_type=None if video is None else (
            "progressive" if scan == "progressive" else
            "interlaced" if scan in _MI_INTERLACED else "unknown"),
        audio_codec=None if audio is None else _mi_audio(a, _first(info.audio_codecs), container),
        channels=_count(a.get("Channels")), sample_rate=_count(a.get("SamplingRate")),
        bit_rate=(_count(general.get("OverallBitRate"), MAX_BIGINT)
                  or _average(general.get("FileSize"), duration)), source="mediainfo")


def _mi_duration(general: dict[str, Any], video: dict[str, Any],
                 audio: dict[str, Any]) -> float | None:
    """The General track's duration, else a stream's; for raw audio (ADTS, where mediainfo
    gives none) its frames times samples per frame over the sample rate, as ffprobe does."""
    for value in (general.get("Duration"), video.get("Duration"), audio.get("Duration")):
        if _seconds(value) is not None:
            return _seconds(value)
    frames, samples = _count(audio.get("FrameCount")), _count(audio.get("SamplesPerFrame"))
    rate = _count(audio.get("SamplingRate"))
    if frames is None or samples is None or not rate:
        return None
    return round(frames * samples / rate, 6)


def _average(size: Any, duration: float | None) -> int | None:
    """The overall bit rate from the file's size and duration, when the tool gives none."""
    size_bytes = _count(size, MAX_BIGINT)
    if size_bytes is None or not duration:
        return None
    return _count(round(size_bytes * 8 / duration), MAX_BIGINT)


def _mi_audio(track: dict[str, Any], codec: str | None, container: str | None) -> str:
    """mediainfo's PCM with its sample format as ffprobe names it (pcm_s16le): bit depth,
    sign (more than 8 bits: signed unless it says Unsigned) and endianness (WAV and MXF PCM
    are little-endian by their specifications when it does not say); else "pcm"."""
    if codec != "pcm":
        return _clean(codec or "unknown")
    depth = _count(track.get("BitDepth"))
    stated = {"Signed": "s", "Unsigned": "u"}.get(str(track.get("Format_Settings_Sign")))
    if depth == 8:
        return f"pcm_{stated}8" if stated is not None else "pcm"
    order = {"Little": "le", "Big": "be"}.get(str(track.get("Format_Settings_Endianness")))
    order = order or ("le" if container in ("wav", "mxf") else None)
    if depth in (16, 24, 32) and order is not None:
        return f"pcm_{stated or 's'}{depth}{order}"
    return "pcm"


def _container(info: MediaInfo) -> str | None:
    short = _SHORT.get(info.container)
    if short is not None:
        return short
    return _text(info.format_name.split(",")[0].lower()) if info.format_name else None


def _first(codecs: tuple[str, ...]) -> str | None:
    return _clean(codecs[0]) if codecs else None


def frame_rate(value: Any) -> float | None:
    """"25", "25.000", 25 or "30000/1001" as frames per second rounded to 3 decimals (29.97);
    None for anything else ("0/0", "N/A", a negative or infinite rate)."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        top, _, bottom = str(value).partition("/")
        rate = float(top) / float(bottom) if bottom else float(top)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return round(rate, 3) if math.isfinite(rate) and 0 < rate < 1_000_000 else None


def _seconds(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and number >= 0 else None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and abs(number) < 1e15 else None


def _count(value: Any, limit: int = MAX_INT) -> int | None:
    """A whole non-negative number that fits the column (48000, "48000", "2.0"), else None;
    digits are read exactly (a bit rate near the bigint's limit stays what it says)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        decimal = _float(value)
        if decimal is None or decimal != int(decimal):
            return None
        number = int(decimal)
    return number if 0 <= number <= limit else None


def _ratio_text(value: Any) -> str | None:
    """"16:9" as it is; mediainfo's "1.778" as the nearest ratio with a small denominator
    ("16:9"), else the decimal; "0:1", "N/A" and the like None."""
    if isinstance(value, str) and ":" in value:
        top, _, bottom = value.partition(":")
        width, height = _count(top), _count(bottom)
        return f"{width}:{height}" if width and height else None
    number = _float(value)
    if number is None or number <= 0:
        return None
    near = Fraction(number).limit_denominator(16)
    if abs(float(near) - number) < 0.005:
        return f"{near.numerator}:{near.denominator}"
    return f"{number:.3g}"


def _text(value: Any) -> str | None:
    return _clean(value) if isinstance(value, str) and value.strip() else None


def _clean(text: str) -> str:
    return text.replace("\x00", "").strip()[:MAX_TEXT]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


# ----------------------------------------------------------------------------- catalogue

_COLUMNS = ("container", "duration_s", "video_codec", "width", "height",
            "display_aspect_ratio", "frame_rate", "scan_type", "audio_codec", "channels",
            "sample_rate", "bit_rate", "source")


def for_asset(conn: psycopg.Connection[Any], asset_id: int) -> dict[int, TechSummary]:
    """The summaries of an asset's files, by file id (a file without one is absent)."""
    rows = conn.execute(db.query("summaries_of_asset"), {"asset_id": asset_id}).fetchall()
    return {int(r["file_id"]): TechSummary(**{c: r[c] for c in _COLUMNS}) for r in rows}


def store(conn: psycopg.Connection[Any], summaries: dict[int, TechSummary]) -> int:
    """Write (or replace) these summaries, by file id, in the caller's transaction."""
    if not summaries:
        return 0
    params: dict[str, list[Any]] = {"file_ids": list(summaries)}
    for column in _COLUMNS:
        params[column + "s"] = [getattr(s, column) for s in summaries.values()]
    return conn.execute(db.query("store_summaries"), params).rowcount


def fill(conn: psycopg.Connection[Any], files: Iterable[tuple[str, str]]) -> int:
    """The missing summaries of these catalogued files (bucket, key), masters and streaming
    copies with stored metadata, written in the caller's transaction; how many. A summary
    never fails the change it belongs to: were the catalogue to refuse one (a value no check
    here foresaw), the savepoint is rolled back, a warning logged, and the back-fill retries."""
    pairs = list(files)
    if not pairs:
        return 0
    try:
        with conn.transaction():  # a savepoint inside the caller's transaction
            rows = conn.execute(db.query("summaries_missing_at"),
                                {"buckets": [b for b, _ in pairs],
                                 "keys": [k for _, k in pairs]})
            return store(conn, _summaries(rows.fetchall()))
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
        log.warning("technical summaries of %d file(s) not written (%s): run `mpr db "
                    "backfill-summaries` later", len(pairs), describe(exc))
        return 0


def _summaries(rows: Iterable[Any]) -> dict[int, TechSummary]:
    made = {int(r["id"]): summary_of(r["tech_metadata"]) for r in rows}
    return {file_id: s for file_id, s in made.items() if s is not None}


@dataclass(frozen=True)
class Backfill:
    """What `backfill` did: summaries written, and files whose metadata gives none."""

    filled: int
    without: int


def backfill(conn: psycopg.Connection[Any], batch: int = BACKFILL_BATCH) -> Backfill:
    """Every master and streaming copy with stored metadata and no summary gets one, `batch`
    files per transaction (an interrupted back-fill keeps what it committed)."""
    filled = without = after = 0
    while True:
        with conn.transaction():
            rows = conn.execute(db.query("summaries_missing"),
                                {"after": after, "limit": batch}).fetchall()
            if not rows:
                return Backfill(filled, without)
            made = _summaries(rows)
            filled += store(conn, made)
        without += len(rows) - len(made)
        after = int(rows[-1]["id"])
