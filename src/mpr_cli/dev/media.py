"""The files of the sample archive: bit-exact test media made by ffmpeg, their technical
metadata (real mediainfo or ffprobe output), MD5 listings and QC report PDFs.

Deterministic: no randomness, bit-exact ffmpeg output, fixed modification times (FIXED_MTIME),
so the same call makes the same bytes on every machine. Media is written through a partial
file moved into place (`atomic.replacing`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pymediainfo import MediaInfo

from mpr_cli.atomic import replacing
from mpr_cli.errors import FfmpegError, MprError
from mpr_cli.ffmpeg import INSTALL_HINT

log = logging.getLogger(__name__)

FIXED_MTIME = 1_704_067_200  # 2024-01-01 00:00 UTC, so mediainfo's file dates never vary
BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-flags:a", "+bitexact", "-threads", "2")


class MetadataTool(StrEnum):
    MEDIAINFO = "mediainfo"
    FFPROBE = "ffprobe"


@dataclass(frozen=True)
class MediaKind:
    """How ffmpeg makes one kind of file, and what ffprobe should then find in it."""

    muxer: str
    extension: str
    format_name: str  # ffprobe's format.format_name
    codecs: tuple[str, ...]  # ffprobe's codec_name of each audio/video stream, in order
    video_args: tuple[str, ...] = ()
    audio_args: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()


_X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
_ISO = "mov,mp4,m4a,3gp,3g2,mj2"
# libvpx, fast: the codec name goes last ("libvpx-vp9" or "libvpx")
_VPX = ("-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-pix_fmt", "yuv420p", "-c:v")
MEDIA_KINDS: dict[str, MediaKind] = {
    "mov": MediaKind("mov", "mov", _ISO, ("h264", "pcm_s16le"), (*_X264, "-crf", "18"),
                     ("-c:a", "pcm_s16le")),
    "prores": MediaKind("mov", "mov", _ISO, ("prores", "pcm_s24le"),
                        ("-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"),
                        ("-c:a", "pcm_s24le")),
    "mkv": MediaKind("matroska", "mkv", "matroska,webm", ("ffv1", "flac"),
                     ("-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1"),
                     ("-c:a", "flac")),
    "mxf": MediaKind("mxf", "mxf", "mxf", ("mpeg2video", "pcm_s16le"),
                     ("-c:v", "mpeg2video", "-b:v", "4M"), ("-c:a", "pcm_s16le", "-ar", "48000")),
    "avi": MediaKind("avi", "avi", "avi", ("mjpeg", "pcm_s16le"),
                     ("-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"), ("-c:a", "pcm_s16le")),
    "wav": MediaKind("wav", "wav", "wav", ("pcm_s24le",), audio_args=("-c:a", "pcm_s24le")),
    "flac": MediaKind("flac", "flac", "flac", ("flac",), audio_args=("-c:a", "flac")),
    "mp4": MediaKind("mp4", "mp4", _ISO, ("h264", "aac"), _X264, ("-c:a", "aac", "-b:a", "96k"),
                     ("-movflags", "+faststart")),
    "mp3": MediaKind("mp3", "mp3", "mp3", ("mp3",),
                     audio_args=("-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100")),
    "mkv_h264": MediaKind("matroska", "mkv", "matroska,webm", ("h264", "aac"), _X264,
                          ("-c:a", "aac", "-b:a", "96k")),
    "jpg": MediaKind("mjpeg", "jpg", "image2", ("mjpeg",),
                     ("-c:v", "mjpeg", "-pix_fmt", "yuvj420p"), extra_args=("-frames:v", "1")),
    # the streaming formats of the extended rules profile (profiles/extended.toml)
    "webm": MediaKind("webm", "webm", "matroska,webm", ("vp9", "opus"), (*_VPX, "libvpx-vp9"),
                      ("-c:a", "libopus", "-b:a", "64k")),
    "webm_vp8": MediaKind("webm", "webm", "matroska,webm", ("vp8", "vorbis"), (*_VPX, "libvpx"),
                          ("-c:a", "libvorbis", "-q:a", "3")),
    "m4v": MediaKind("ipod", "m4v", _ISO, ("h264", "aac"), _X264, ("-c:a", "aac", "-b:a", "96k"),
                     ("-movflags", "+faststart", "-brand", "M4V ")),
    "flv": MediaKind("flv", "flv", "flv", ("h264", "aac"), _X264,
                     ("-c:a", "aac", "-b:a", "96k", "-ar", "44100")),
    "wmv": MediaKind("asf", "wmv", "asf", ("wmv2", "wmav2"), ("-c:v", "wmv2", "-b:v", "500k"),
                     ("-c:a", "wmav2", "-b:a", "96k")),
    "m4a": MediaKind("ipod", "m4a", _ISO, ("aac",), audio_args=("-c:a", "aac", "-b:a", "96k"),
                     extra_args=("-movflags", "+faststart", "-brand", "M4A ")),
    "aac": MediaKind("adts", "aac", "aac", ("aac",), audio_args=("-c:a", "aac", "-b:a", "96k")),
    "ogg_vorbis": MediaKind("ogg", "ogg", "ogg", ("vorbis",),
                            audio_args=("-c:a", "libvorbis", "-q:a", "3")),
}


def media_argv(out: Path, kind: str, *, duration: float = 2.0, size: str = "320x240") -> list[str]:
    """The ffmpeg argv writing ``kind`` (a MEDIA_KINDS key) to ``out``, whatever its suffix."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}; one of {', '.join(MEDIA_KINDS)}")
    spec = MEDIA_KINDS[kind]
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    if spec.video_args:
        argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration:g}"]
    if spec.audio_args:
        tone = f"sine=frequency=1000:sample_rate=48000:duration={duration:g}"
        argv += ["-f", "lavfi", "-i", tone]
    stereo = ("-ac", "2") if spec.audio_args else ()
    return [*argv, *BITEXACT, *spec.video_args, *spec.audio_args, *stereo, *spec.extra_args,
            "-f", spec.muxer, str(out)]


def generate_media(path: Path, kind: str, *, duration: float = 2.0, size: str = "320x240") -> None:
    """Encode a test clip of ``kind`` at ``path``, through a temp file moved into place."""
    with replacing(path) as (part, _):
        run_tool(media_argv(part, kind, duration=duration, size=size), what=f"encoding {path.name}")
    settle(path)


def metadata_json(media: Path, tool: str) -> str:
    """The JSON ``tool`` prints for ``media``, as if run in its folder (names, not paths)."""
    if tool == MetadataTool.FFPROBE:
        argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                media.name]
        return run_tool(argv, what=f"probing {media.name}", cwd=media.parent)
    if tool == MetadataTool.MEDIAINFO:
        try:
            text = str(MediaInfo.parse(media, output="JSON", full=False))
        except (OSError, RuntimeError) as exc:
            raise MprError(f"mediainfo could not read {media.name}: {exc}") from exc
        ref = json.dumps(media.name)
        return re.sub(r'"@ref":"[^"]*"', lambda _: f'"@ref":{ref}', text, count=1)
    raise ValueError(f"unknown metadata tool {tool!r}; one of mediainfo, ffprobe")


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def md5_listing(entries: Sequence[tuple[str, str]]) -> bytes:
    """md5sum's format: one ``<hex>  <name>`` line per (name, hash)."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries).encode()


def qc_report_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF 1.4 showing ``lines`` (ASCII), with a correct cross-reference table."""
    text = ["BT", "/F1 12 Tf", "16 TL", "72 770 Td"]
    text += [f"{'T* ' if i else ''}({_pdf_string(line)}) Tj" for i, line in enumerate(lines)]
    stream = "\n".join([*text, "ET"]).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(pdf)


def _pdf_string(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def run_tool(argv: list[str], *, what: str, cwd: Path | None = None) -> str:
    log.debug("%s", shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise FfmpegError(f"{what}: {argv[0]} not found", hint=INSTALL_HINT) from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-20:]
        last = tail[-1] if tail else f"exit status {done.returncode}"
        raise FfmpegError(f"{what} failed: {last}", stderr_tail="\n".join(tail))
    return done.stdout


def write_fixed(path: Path, data: bytes) -> None:
    """Write `data` to `path` (its folders made) with the fixed modification time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    settle(path)


def settle(path: Path) -> None:
    """Give `path` the fixed modification time (mediainfo reports it: no run may differ)."""
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))
