"""Sidecars: bytes in, a parsed result or a Problem out. No I/O.

- `.md5` checksum sidecars: md5sum lines ("<32 hex>  <name>" or "<32 hex> *<name>"; also a
  single space, as `md5 -r` writes, or a tab), BSD tags ("MD5 (<name>) = <hex>", as `md5` and
  `rhash --md5 --bsd` write), Windows `certutil -hashfile FILE MD5` output (a "MD5 hash of
  FILE:" line, the hex, maybe in byte pairs, on the next, a "CertUtil: ..." trailer), blank
  lines and "#" comments; or a bare hash. UTF-8 (a BOM allowed; UTF-16 with a BOM, as
  PowerShell's `>` writes, too) with LF or CRLF line ends.
- `.json` technical metadata: `mediainfo --Output=JSON` or
  `ffprobe -print_format json -show_format -show_streams` output, turned into `MediaInfo`.
- `.pdf` QC reports: only the first bytes are checked.

Each function takes the sidecar's base `name`; `key` and `inventory_code` (optional) go into
a Problem so the report can point at the object (the key defaults to the name).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from mpr_cli.problems import Problem, Reason
from mpr_cli.validation.containers import Container, MediaInfo

PDF_MAGIC = b"%PDF-"
PDF_HEADER_WINDOW = 1024  # readers accept the header anywhere in the first 1024 bytes
MASTER = ""  # the covered name of a bare hash in <code>.md5: the asset's master
MAX_JSON_DEPTH = 64
MAX_FILE_SIZE = 2**63 - 1  # the catalogue's bigint

_MD5SUM_LINE = re.compile(r"([0-9a-fA-F]{32})(?: [ *]?|\t\*?)(\S.*)")
_BSD_LINE = re.compile(r"MD5 ?\((.+)\) ?= ?([0-9a-fA-F]{32})", re.IGNORECASE)
_BARE = re.compile(r"\s*([0-9a-fA-F]{32})\s*")
_CERTUTIL_HEADER = re.compile(r"(\w+) hash of (?:file )?(.+):", re.IGNORECASE)
_CERTUTIL_HEX = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{2}(?: [0-9a-fA-F]{2}){15}")
_HEX = re.compile(r"[0-9a-fA-F]+")


class InvalidMetadata(ValueError):
    """JSON that is neither mediainfo nor ffprobe output (message says why)."""


def base_name(path: str) -> str:
    """The last component of a path or URL path ("/a/b\\c.mov?x=1" -> "c.mov")."""
    if "://" in path:
        path = path.split("?", 1)[0].split("#", 1)[0]
    return re.split(r"[/\\]", path)[-1]


# ----------------------------------------------------------------------------- checksums


def parse_checksum_sidecar(
    name: str, data: bytes, *, key: str | None = None, inventory_code: str | None = None
) -> dict[str, str] | Problem:
    """Covered base file name -> lower-case MD5 ("" = the master, for a bare hash in <code>.md5)."""
    try:
        text = _checksum_text(data)
    except UnicodeDecodeError:
        return _bad_checksum(name, key, inventory_code, "is not UTF-8 text")
    bare = _BARE.fullmatch(text)
    if bare:
        return {_bare_hash_target(name): bare.group(1).lower()}
    result: dict[str, str] = {}
    for number, entry in _entries(text):
        if isinstance(entry, str):
            return _bad_checksum(name, key, inventory_code, f"line {number}: {entry}")
        covered, digest = entry
        if result.get(covered, digest) != digest:
            message = f"line {number}: {covered} is listed twice with different hashes"
            return _bad_checksum(name, key, inventory_code, message)
        result[covered] = digest
    if not result:
        return _bad_checksum(name, key, inventory_code, "holds no checksum")
    return result


def _checksum_text(data: bytes) -> str:
    """The sidecar as text: UTF-16 when it starts with its BOM, else UTF-8 (a BOM dropped)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _entries(text: str) -> Iterator[tuple[int, tuple[str, str] | str]]:
    """(line number, (base name, md5) or why the line is wrong) for each line that says
    something; certutil's hex line is read with the "MD5 hash of FILE:" line above it."""
    certutil: str | None = None  # the file of the certutil header just read
    number = 0
    for number, line in enumerate((line.strip() for line in text.splitlines()), start=1):
        if not line or line.startswith("#"):
            continue
        header = _CERTUTIL_HEADER.fullmatch(line)
        if certutil is not None:
            yield number, _certutil_hash(certutil, line)
            certutil = None
        elif header is not None:
            certutil = header.group(2).strip()
            if header.group(1).upper() != "MD5":
                yield number, (f"certutil made a {header.group(1).upper()} hash; run "
                               "`certutil -hashfile FILE MD5` for an MD5")
        elif line.lower().startswith("certutil:"):
            if not line.lower().endswith("completed successfully."):
                yield number, f"certutil failed ({_shown(line)})"
        else:
            yield number, _checksum_entry(line)
    if certutil is not None:
        yield number, f"no hash after certutil's \"hash of {certutil}:\" line"


def _certutil_hash(covered: str, line: str) -> tuple[str, str] | str:
    if _CERTUTIL_HEX.fullmatch(line):
        return base_name(covered), line.replace(" ", "").lower()
    return f"{_shown(line)} under certutil's \"hash of {covered}:\" is not an MD5"


def _shown(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def _bare_hash_target(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".md5") else name
    return stem if "." in stem else MASTER


def _checksum_entry(line: str) -> tuple[str, str] | str:
    """(base name, md5) for a good line, else the reason it is wrong."""
    match = _MD5SUM_LINE.fullmatch(line)
    if match:
        return base_name(match.group(2).strip()), match.group(1).lower()
    match = _BSD_LINE.fullmatch(line)
    if match:
        return base_name(match.group(1).strip()), match.group(2).lower()
    return _line_error(line)


def _line_error(line: str) -> str:
    token = line.split()[0]
    shown = _shown(line)
    if _HEX.fullmatch(token) and len(token) != 32:
        return f"{token[:40]!r} is {len(token)} hex digits; an MD5 has 32"
    if len(token) == 32 and not _HEX.fullmatch(token):
        return f"{token!r} is not hexadecimal"
    if _HEX.fullmatch(token) and line == token:
        return f"no file name after the hash {token}"
    return f"{shown} is not an md5sum line ('<32 hex>  <file name>')"


def _bad_checksum(name: str, key: str | None, code: str | None, why: str) -> Problem:
    message = f"checksum file {name} {why}: regenerate it with `md5sum FILE > FILE.md5`"
    if why.startswith("line"):
        message = f"checksum file {name}, {why}: fix the line or regenerate the file with md5sum"
    return Problem.make(Reason.INVALID_CHECKSUM_SIDECAR, key or name, message, code)


# ----------------------------------------------------------------------------- metadata


def parse_metadata_sidecar(
    name: str, data: bytes, *, key: str | None = None, inventory_code: str | None = None
) -> MediaInfo | Problem:
    """A .json sidecar (mediainfo or ffprobe output) as MediaInfo, or INVALID_METADATA_SIDECAR."""
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return _bad_metadata(name, key, inventory_code, f"is not JSON ({_first_line(exc)})")
    try:
        check_storable(document)
        info = media_info_from_json(document)
        if info.source == "ffprobe" and "streams" not in document:  # not "a file without any"
            raise InvalidMetadata("is ffprobe output without streams (run ffprobe with "
                                  "-show_streams)")
    except InvalidMetadata as exc:
        return _bad_metadata(name, key, inventory_code, str(exc))
    if info.size is not None and not 0 <= info.size <= MAX_FILE_SIZE:
        return _bad_metadata(name, key, inventory_code,
                             f"declares a file size of {info.size} bytes, which no file has")
    return info


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_storable(document: Any) -> None:
    """InvalidMetadata unless the catalogue can store `document` as it is (PostgreSQL jsonb):
    no NUL character and no unpaired surrogate in a string, no infinite number (1e999), and
    no deeper nesting than MAX_JSON_DEPTH (mediainfo and ffprobe write 4 or 5 levels)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidMetadata(f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for item_key, item in value.items():
                _check_text(item_key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidMetadata("holds a number too large for JSON (such as 1e999)")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidMetadata("holds a NUL character (\\u0000) in a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMetadata("holds an unpaired UTF-16 surrogate (such as \\ud800) in a "
                              "string") from None


def media_info_from_json(document: Any) -> MediaInfo:
    """mediainfo or ffprobe JSON (already decoded) as MediaInfo; InvalidMetadata if neither."""
    if isinstance(document, list):
        raise InvalidMetadata(f"is a JSON list ({len(document)} items); expected one object")
    if not isinstance(document, dict):
        raise InvalidMetadata(f"is a JSON {type(document).__name__}; expected an object")
    try:
        if "media" in document:
            return _from_mediainfo(document)
        if "format" in document:
            return _from_ffprobe(document)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, InvalidMetadata):
            raise
        raise InvalidMetadata(f"has an unexpected shape ({_first_line(exc)})") from None
    if "streams" in document:
        raise InvalidMetadata("is ffprobe output without \"format\" (use -show_format)")
    raise InvalidMetadata(
        "is neither `mediainfo --Output=JSON` nor "
        "`ffprobe -print_format json -show_format -show_streams` output"
    )


def _bad_metadata(name: str, key: str | None, code: str | None, why: str) -> Problem:
    message = (
        f"metadata file {name} {why}: regenerate it with `mediainfo --Output=JSON FILE` "
        "or `ffprobe -print_format json -show_format -show_streams FILE`"
    )
    return Problem.make(Reason.INVALID_METADATA_SIDECAR, key or name, message, code)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------- mediainfo

_MI_CONTAINERS = {
    "QuickTime": Container.QUICKTIME,
    "MPEG-4": Container.MPEG4,
    "Matroska": Container.MATROSKA,
    "WebM": Container.MATROSKA,
    "MXF": Container.MXF,
    "Wave": Container.WAVE,
    "FLAC": Container.FLAC,
    "MPEG Audio": Container.MPEG_AUDIO,
    "AVI": Container.AVI,
    "Ogg": Container.OGG,
    "ADTS": Container.ADTS,
    "Flash Video": Container.FLV,
    "Windows Media": Container.ASF,
}
# mediainfo Format -> ffprobe codec_name, so both sources compare equal
_MI_VIDEO = {
    "AVC": "h264", "HEVC": "hevc", "ProRes": "prores", "FFV1": "ffv1", "MPEG-4 Visual": "mpeg4",
    "DV": "dvvideo", "JPEG 2000": "jpeg2000", "VC-3": "dnxhd", "AV1": "av1", "VP8": "vp8",
    "VP9": "vp9", "JPEG": "mjpeg", "VC-1": "vc1", "Theora": "theora", "H.263": "h263",
    "Sorenson Spark": "flv1", "WMV1": "wmv1", "WMV2": "wmv2",
}
_MI_AUDIO = {
    "AAC": "aac", "PCM": "pcm", "FLAC": "flac", "AC-3": "ac3", "E-AC-3": "eac3", "Opus": "opus",
    "Vorbis": "vorbis", "ALAC": "alac", "DTS": "dts", "ADPCM": "adpcm", "WMA": "wmav2",
}
_MI_MPEG_AUDIO_LAYERS = {"Layer 1": "mp1", "Layer 2": "mp2", "Layer 3": "mp3"}
_MI_INTERLACED = {"Interlaced": True, "MBAFF": True, "Mixed": True, "Progressive": False}


def _from_mediainfo(document: dict[str, Any]) -> MediaInfo:
    media = document["media"]
    if not isinstance(media, dict):
        raise InvalidMetadata("is mediainfo output for a file mediainfo could not read")
    tracks = media.get("track") or []
    tracks = [tracks] if isinstance(tracks, dict) else tracks
    general = next((t for t in tracks if t.get("@type") == "General"), None)
    if general is None or not general.get("Format"):
        raise InvalidMetadata("is mediainfo output without a container format (General track)")
    videos = [t for t in tracks if t.get("@type") == "Video"]
    audios = [t for t in tracks if t.get("@type") == "Audio"]
    first_video = videos[0] if videos else {}
    return MediaInfo(
        source="mediainfo",
        container=_mi_container(general),
        format_name=str(general["Format"]),
        duration_s=_number(general.get("Duration"), float),
        size=_number(general.get("FileSize"), int),
        file_name=base_name(str(media["@ref"])) if media.get("@ref") else None,
        video_codecs=tuple(_mi_video_codec(t) for t in videos),
        audio_codecs=tuple(_mi_audio_codec(t) for t in audios),
        width=_number(first_video.get("Width"), int),
        height=_number(first_video.get("Height"), int),
        interlaced=_MI_INTERLACED.get(first_video.get("ScanType", "")),
        raw=document,
    )


def _mi_container(general: dict[str, Any]) -> Container:
    """mediainfo says Format "MPEG-4" for .mov too; Format_Profile / CodecID tell them apart."""
    container = _MI_CONTAINERS.get(general["Format"], Container.OTHER)
    is_qt = general.get("Format_Profile") == "QuickTime" or str(
        general.get("CodecID", "")
    ).strip() == "qt"
    return Container.QUICKTIME if container is Container.MPEG4 and is_qt else container


def _mi_video_codec(track: dict[str, Any]) -> str:
    fmt = str(track.get("Format", ""))
    if fmt == "MPEG Video":
        return "mpeg1video" if track.get("Format_Version") == "1" else "mpeg2video"
    return _MI_VIDEO.get(fmt, _slug(fmt))


def _mi_audio_codec(track: dict[str, Any]) -> str:
    fmt = str(track.get("Format", ""))
    if fmt == "MPEG Audio":
        return _MI_MPEG_AUDIO_LAYERS.get(track.get("Format_Profile", ""), "mpeg_audio")
    return _MI_AUDIO.get(fmt, _slug(fmt))


# ----------------------------------------------------------------------------- ffprobe

_FF_CONTAINERS = {
    "matroska": Container.MATROSKA,
    "mxf": Container.MXF,
    "mxf_d10": Container.MXF,
    "mxf_opatom": Container.MXF,
    "wav": Container.WAVE,
    "flac": Container.FLAC,
    "mp3": Container.MPEG_AUDIO,
    "avi": Container.AVI,
    "ogg": Container.OGG,
    "aac": Container.ADTS,
    "flv": Container.FLV,
    "asf": Container.ASF,
}
_FF_INTERLACED = {"progressive": False, "tt": True, "bb": True, "tb": True, "bt": True}


def _from_ffprobe(document: dict[str, Any]) -> MediaInfo:
    fmt = document["format"]
    if not isinstance(fmt, dict) or not fmt.get("format_name"):
        raise InvalidMetadata("is ffprobe output without a container format (format_name)")
    streams = [s for s in document.get("streams") or [] if not _is_cover_art(s)]
    videos = [s for s in streams if s.get("codec_type") == "video"]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    first_video = videos[0] if videos else {}
    return MediaInfo(
        source="ffprobe",
        container=_ff_container(fmt),
        format_name=str(fmt["format_name"]),
        duration_s=_number(fmt.get("duration"), float),
        size=_number(fmt.get("size"), int),
        file_name=base_name(str(fmt["filename"])) if fmt.get("filename") else None,
        video_codecs=tuple(str(s.get("codec_name", "unknown")) for s in videos),
        audio_codecs=tuple(_ff_audio_codec(str(s.get("codec_name", "unknown"))) for s in audios),
        width=_number(first_video.get("width"), int),
        height=_number(first_video.get("height"), int),
        interlaced=_FF_INTERLACED.get(first_video.get("field_order", "")),
        raw=document,
    )


def _ff_container(fmt: dict[str, Any]) -> Container:
    """ffprobe's "mov,mp4,m4a,3gp,3g2,mj2" covers both: the ftyp major brand decides.

    Brand "qt" is QuickTime; any other brand is MPEG-4 (ISO base media). A file with no brand
    has no ftyp box, which is classic QuickTime, unless its name says .mp4/.m4a.
    """
    names = str(fmt["format_name"]).split(",")
    if "mov" not in names:
        return next((_FF_CONTAINERS[n] for n in names if n in _FF_CONTAINERS), Container.OTHER)
    brand = str((fmt.get("tags") or {}).get("major_brand", "")).strip().lower()
    if brand:
        return Container.QUICKTIME if brand == "qt" else Container.MPEG4
    name = str(fmt.get("filename", "")).lower()
    return Container.MPEG4 if name.endswith((".mp4", ".m4a", ".m4v")) else Container.QUICKTIME


def _ff_audio_codec(name: str) -> str:
    """pcm_s16le, pcm_s24be, ... -> "pcm" (as mediainfo says); bit depth stays in raw."""
    if name.startswith("pcm_"):
        return "pcm"
    return "adpcm" if name.startswith("adpcm_") else name


def _is_cover_art(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


# ----------------------------------------------------------------------------- helpers


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    """int/float of a JSON value ("1.000", 438190, "N/A"), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


# ----------------------------------------------------------------------------- QC reports


def check_qc_report(
    name: str, head: bytes, *, key: str | None = None, inventory_code: str | None = None
) -> Problem | None:
    """A QC report must be a PDF: "%PDF-" within its first 1024 bytes."""
    if PDF_MAGIC in head[:PDF_HEADER_WINDOW]:
        return None
    why = "is empty" if not head else "is not a PDF (no %PDF- header)"
    message = f"QC report {name} {why}: upload the report as a PDF"
    return Problem.make(Reason.INVALID_QC_REPORT, key or name, message, inventory_code)


__all__ = [
    "MASTER",
    "Container",
    "InvalidMetadata",
    "MediaInfo",
    "base_name",
    "check_qc_report",
    "media_info_from_json",
    "parse_checksum_sidecar",
    "parse_metadata_sidecar",
]
