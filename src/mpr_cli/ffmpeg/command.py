"""Pure functions: (source, what ffprobe says about it, preset) -> an ffmpeg argv list.

The argv is built with ffmpeg-python's graph (input -> filters -> output) and compiled to a
list; it is never a shell string. Options are written in ffmpeg-python's order (output options
sorted by name), which ffmpeg does not care about.

A video preset maps the first video stream that is not cover art (`0:V:0`) through
  [bwdif|yadif, only when the source is interlaced] -> scale to square pixels (iw*sar x ih)
  -> scale to fit inside max_width x max_height, never up, even dimensions -> setsar=1
and the master's audio as `plan_audio` says (the optional `0:a:0?` when the source is not known).
An audio preset maps the audio the same way and drops video (`-vn`).
The format is always given (`-f mp4` / `-f mp3`), so the output may be a temporary name.

Audio (`plan_audio`, the preset's `audio_tracks`): masters often carry their sound as separate
mono tracks (an MXF from a broadcast deck: track 1 left, track 2 right). With "merge" (the
default) a first track of 2+ channels is kept as it is; when the first track is mono, the mono
tracks become one stream: two with `join` (track 1 left, track 2 right), three or more with
`amerge` then `pan`: odd-numbered tracks averaged into the left channel, even-numbered ones into
the right (`c0<c0+c2+...`: gains renormalised to sum 1, so nothing clips). Alternating keeps
the sides of the stereo pairs that broadcast masters lay out as consecutive mono tracks (1/2,
3/4, ...). "first" maps the first track only, as mpr did before.

What ffmpeg may open (`input_restrictions`): the input is read through the one protocol it
needs (`file` for a local copy; `https,tls,tcp` or `http,tcp` for a presigned URL) and only
with the demuxers of the containers mpr transcodes (`ALLOWED_DEMUXERS`). A "master" that is
really an HLS playlist (or a concat list, an image pattern, ...) would otherwise make ffmpeg
open every local file or URL it names; with the format whitelist it is refused before anything
it names is opened (`-protocol_whitelist file` alone does not stop it: the segments are local
files too). The same restrictions go to ffprobe (probe.py), which reads the master first.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import ffmpeg

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.presets import AudioCodec, AudioTracks, Preset, VideoCodec
from mpr_cli.rules import MediaType
from mpr_cli.secrets import REDACTED, redact_query, scrub, url_queries
from mpr_cli.validation.containers import MediaInfo

FFMPEG = "ffmpeg"
INPUT_PLACEHOLDER = "INPUT"
OUTPUT_PLACEHOLDER = "OUTPUT"
PROGRESS_ARGS = ("-progress", "pipe:1", "-nostats")
URL_TIMEOUT_US = 60_000_000  # a stalled http(s) read fails after 60 s instead of hanging
# ffmpeg's demuxers for the master containers (.mov/.mp4, .mkv, .mxf, .avi, .wav, .flac) and
# for the copies it checks (mp4 is "mov", mp3): nothing that opens other files or URLs
ALLOWED_DEMUXERS = ("mov", "matroska", "mxf", "avi", "wav", "flac", "mp3")
_URL_PROTOCOLS = {"https": "https,tls,tcp", "http": "http,tcp"}
_MAX_MESSAGE = 300
# stderr lines that say nothing about the cause: the one before them is the message
_GENERIC_LINES = ("Conversion failed!", "Exiting normally, received signal")


def build_transcode_argv(
    source: str,
    output: Path,
    preset: Preset,
    info: MediaInfo | None,
    *,
    threads: int = 0,
    progress: bool = True,
) -> list[str]:
    """The ffmpeg argv that makes `output` from `source` with `preset`.

    `info` (from probe) decides deinterlacing and audio mapping; None means unknown (no
    deinterlacing, audio mapped if present). `threads` > 0 caps decoder and encoder threads.
    Raises FfmpegError when `info` shows the source lacks the stream the preset needs.
    """
    _check_streams(source, preset, info)
    with_audio = preset.media is MediaType.AUDIO or info is None or info.has_audio
    src = ffmpeg.input(_file_arg(source), **_input_options(source, threads))
    streams = _video_streams(src, preset, info) + _audio_streams(src, preset, info)
    options = _output_options(preset, threads, with_audio=with_audio)
    out = ffmpeg.output(*streams, _file_arg(str(output)), **options)
    return list(out.compile(cmd=_head(progress)))


def build_decode_check_argv(path: str | Path, *, progress: bool = False) -> list[str]:
    """`ffmpeg -v error -i PATH -map 0:V? -map 0:a? -f null -`: decode every audio and video
    stream, keep nothing. A clean file exits 0 with an empty stderr; decoding errors are
    printed to stderr (and a fatal one makes the exit code non-zero)."""
    src = ffmpeg.input(_file_arg(str(path)), **input_restrictions(str(path)))
    out = ffmpeg.output(src["V?"], src["a?"], "-", format="null")
    head = [FFMPEG, "-hide_banner", "-nostdin", "-v", "error"]
    return list(out.compile(cmd=head + (list(PROGRESS_ARGS) if progress else [])))


def input_restrictions(source: str) -> dict[str, str]:
    """The input options that let ffmpeg (or ffprobe) open `source` and nothing else: its one
    protocol and the demuxers of the containers mpr reads."""
    scheme = urlsplit(source).scheme if _is_url(source) else "file"
    return {"protocol_whitelist": _URL_PROTOCOLS.get(scheme, "file"),
            "format_whitelist": ",".join(ALLOWED_DEMUXERS)}


def refusal(stderr: str) -> str | None:
    """What the restrictions refused, from ffmpeg's or ffprobe's stderr; None when nothing.

    "[hls @ 0x...] Format not on whitelist 'mov,...'" -> "it is a hls file, not a media
    container mpr reads (mov, matroska, ...)"; "Protocol 'http' not on whitelist 'file'!" ->
    "it names a http resource, and ffmpeg may open only the file it was given".
    """
    for line in stderr.splitlines():
        if "Format not on whitelist" in line:
            found = line.split(" @ ", 1)[0].lstrip("[").strip() if " @ " in line else "other"
            return (f"it is a {found} file, not a media container mpr reads "
                    f"({', '.join(ALLOWED_DEMUXERS)})")
        if "Protocol '" in line and "not on whitelist" in line:
            protocol = line.split("Protocol '", 1)[1].split("'", 1)[0]
            return (f"it names a {protocol} resource, and ffmpeg may open only the file "
                    "it was given")
    return None


def redact_output(text: str, args: Iterable[str]) -> str:
    """What ffmpeg or ffprobe printed, with the query of every http(s) URL among `args` (a
    presigned signature) replaced by <redacted> wherever it stands: text shown to a user."""
    return scrub(text, url_queries(args), mask=REDACTED)


def last_message(stderr: str, *, source: str = "", none: str = "no error message") -> str:
    """The last meaningful line of ffmpeg's or ffprobe's stderr, the message of its failure:
    blank lines and lines that say nothing about the cause ("Conversion failed!") skipped,
    a leading "<source>: " removed, at most _MAX_MESSAGE characters; `none` when no line is
    left."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(_GENERIC_LINES)]
    if not meaningful:
        return none
    line = meaningful[-1]
    if source and line.startswith(source + ": "):
        line = line[len(source) + 2:]
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def describe_argv(argv: list[str]) -> str:
    """The argv as one shell-quoted line for logs, a URL's query (its signature) redacted."""
    return shlex.join(redact_query(arg) for arg in argv)


def preset_command(preset: Preset, *, threads: int = 0) -> str:
    """What `mpr presets show NAME` prints: the command with INPUT / OUTPUT placeholders."""
    argv = build_transcode_argv(
        INPUT_PLACEHOLDER, Path(OUTPUT_PLACEHOLDER), preset, None, threads=threads
    )
    return describe_argv(argv)


def threads_per_job(workers: int, cores: int | None = None) -> int:
    """Threads for each of `workers` parallel ffmpeg runs: the cores shared out, at least 1."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def _head(progress: bool) -> list[str]:
    return [FFMPEG, "-hide_banner", "-nostdin", "-y", *(PROGRESS_ARGS if progress else ())]


def _check_streams(source: str, preset: Preset, info: MediaInfo | None) -> None:
    if info is None:
        return
    name = info.file_name or _display_name(source)
    if preset.media is MediaType.VIDEO and not info.has_video:
        raise FfmpegError(
            f"{name} has no video stream; preset {preset.name} needs one",
            hint="use an audio preset for it, or check the file",
        )
    if preset.media is MediaType.AUDIO and not info.has_audio:
        raise FfmpegError(
            f"{name} has no audio stream; preset {preset.name} needs one",
            hint="check the file",
        )


def _video_streams(src: Any, preset: Preset, info: MediaInfo | None) -> list[Any]:
    if preset.media is not MediaType.VIDEO:
        return []
    assert preset.deinterlace is not None
    video = src["V:0"]
    if info is not None and info.interlaced:
        video = video.filter(preset.deinterlace.value, mode="send_frame")
    video = video.filter("scale", w="iw*sar", h="ih")  # square pixels (no-op when sar is 1)
    video = video.filter(
        "scale",
        w=f"min({preset.max_width},iw)",
        h=f"min({preset.max_height},ih)",
        force_original_aspect_ratio="decrease",
        force_divisible_by=2,
    )
    return [video.filter("setsar", "1")]


@dataclass(frozen=True, slots=True)
class AudioPlan:
    """Which audio tracks (audio stream numbers, `0:a:N`) make the copy's one audio stream,
    and how many channels that stream has (None when it cannot be known beforehand)."""

    tracks: tuple[int, ...]
    channels: int | None
    optional: bool = False  # the source is not known: map `0:a:0?`

    def describe(self) -> str:
        """Short human text: "2 mono tracks, merged", "first audio track"."""
        if len(self.tracks) > 1:
            return f"{len(self.tracks)} mono tracks, merged"
        return "first audio track" if self.tracks else "no audio"


def plan_audio(preset: Preset, info: MediaInfo | None) -> AudioPlan:
    """The audio of the copy, from the master's tracks and the preset (see the module doc)."""
    if info is None:
        return AudioPlan((0,), preset.audio_channels, optional=preset.media is MediaType.VIDEO)
    if not info.has_audio:
        return AudioPlan((), None)
    counts = info.audio_channels
    tracks: tuple[int, ...] = (0,)
    if preset.audio_tracks is AudioTracks.MERGE and counts[0] == 1:
        tracks = tuple(i for i, count in enumerate(counts) if count == 1)
    made = counts[0] if len(tracks) == 1 else 2
    return AudioPlan(tracks, preset.audio_channels or made)


def _audio_streams(src: Any, preset: Preset, info: MediaInfo | None) -> list[Any]:
    plan = plan_audio(preset, info)
    if plan.optional:
        return [src["a:0?"]]
    inputs = [src[f"a:{track}"] for track in plan.tracks]
    if len(inputs) <= 1:
        return inputs
    if len(inputs) == 2:
        return [ffmpeg.filter(inputs, "join", inputs=2, channel_layout="stereo")]
    merged = ffmpeg.filter(inputs, "amerge", inputs=len(inputs))
    return [merged.filter("pan", _alternating_stereo(len(inputs)))]


def _alternating_stereo(channels: int) -> str:
    """pan's "stereo|c0<c0+c2+...|c1<c1+c3+...": odd tracks left, even right, averaged."""
    left = "+".join(f"c{i}" for i in range(0, channels, 2))
    right = "+".join(f"c{i}" for i in range(1, channels, 2))
    return f"stereo|c0<{left}|c1<{right}"


def _input_options(source: str, threads: int) -> dict[str, Any]:
    options: dict[str, Any] = {"threads": threads} if threads > 0 else {}
    options.update(input_restrictions(source))
    if _is_url(source):
        options["rw_timeout"] = URL_TIMEOUT_US
    return options


def _output_options(preset: Preset, threads: int, *, with_audio: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"format": preset.container.value}
    if preset.media is MediaType.VIDEO:
        options.update(_video_options(preset))
    else:
        options["vn"] = None
    options.update(_audio_options(preset) if with_audio else {"an": None})
    if preset.faststart:
        options["movflags"] = "+faststart"
    if threads > 0:
        options["threads"] = threads
    return options


def _video_options(preset: Preset) -> dict[str, Any]:
    assert preset.video_codec and preset.pix_fmt and preset.preset
    options: dict[str, Any] = {
        "c:v": preset.video_codec.value,
        "profile:v": preset.profile,
        "pix_fmt": preset.pix_fmt.value,
        "crf": preset.crf,
        "preset": preset.preset.value,
    }
    if preset.maxrate and preset.bufsize:
        options.update(maxrate=preset.maxrate, bufsize=preset.bufsize)
    if preset.video_codec is VideoCodec.LIBX265:
        options["tag:v"] = "hvc1"  # what Apple players need to play HEVC in MP4
    return options


def _audio_options(preset: Preset) -> dict[str, Any]:
    options: dict[str, Any] = {"c:a": preset.audio_codec.value, "b:a": preset.audio_bitrate}
    if preset.audio_channels is not None:
        options["ac"] = preset.audio_channels
    if preset.audio_rate is not None:
        options["ar"] = preset.audio_rate
    if preset.audio_codec is AudioCodec.LIBMP3LAME and not preset.audio_cbr:
        options["abr"] = 1  # average bitrate; libmp3lame's default with -b:a is CBR
    return options


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _file_arg(name: str) -> str:
    """A local name ffmpeg cannot mistake for an option, stdin/stdout or a protocol."""
    if _is_url(name) or name.startswith("/"):
        return name
    if name.startswith("-") or ":" in name:
        return "./" + name
    return name


def _display_name(source: str) -> str:
    if _is_url(source):
        return PurePosixPath(urlsplit(source).path).name or source
    return Path(source).name
