"""Pure functions: (source, where in it, output file) -> the ffmpeg argv of one picture.

Every argv is a list (never a shell string) with the conventions of ffmpeg/command.py:
`-hide_banner -nostdin -y`, each input read through its one protocol and only with the
demuxers of the containers mpr reads (`input_restrictions`: ffmpeg opens the file or presigned
URL it was given and nothing it names), `-rw_timeout` on a URL, a single-threaded decoder
(`-threads 1`: a picture needs a few frames, and threads only add CPU), and one image out
(`-frames:v 1 -update 1 -f image2`).

- Poster (`poster_argv`): seek to `start_s` *before* the input (`-noaccurate_seek -ss`: ffmpeg
  jumps to the keyframe at or before it and, on a URL, its HTTP reader asks for that range
  only), take the next POSTER_FRAMES frames (`trim`), let `thumbnail` pick the most
  representative one, scale it to POSTER_WIDTH wide (square pixels, height from the aspect,
  even), and print its mean luma (`signalstats` YAVG, `luma_of`) so that a black pick is
  seen in the same run. `poster_starts`: 10 % of the duration first, then later windows
  (make.py tries the next while the pick is black). The later windows seek accurately (the
  frames from that time on, decoded from the keyframe before it): a keyframe seek would land
  on the same black keyframe again when the keyframes are far apart (x264's default is one
  every 250 frames) and the black start is long.
- Contact sheet (`contact_sheet_argv`): SHEET_COLUMNS x SHEET_ROWS frames spread across the
  duration, at the middle of each of as many equal parts (`sheet_times`), each read by its own
  input seek and its first frame kept, then joined by `concat` + `tile`. One seek per tile,
  not `select`/`fps` over the whole file (on a URL that reads the whole file). The seeks stop
  at the keyframe at or before each time (`-noaccurate_seek`): an accurate seek decodes up to
  a whole GOP per tile, measured 3.2 s of CPU for the 60 s benchmark master (x264, a keyframe
  every 10 s) against 0.2 s, a seventh of its transcode. So a long-GOP file shows a keyframe
  twice where two tiles fall in one GOP. Clips up to SHEET_ACCURATE_MAX_S seek accurately
  (few frames to decode), or a one-second clip would show one frame twelve times.
- Waveform (`waveform_argv`): the first audio track mixed down to mono, drawn by
  `showwavespic` at WAVEFORM_SIZE (the whole track is decoded: a waveform needs every sample).
"""

from __future__ import annotations

import re

from mpr_cli.ffmpeg.command import FFMPEG, URL_TIMEOUT_US, input_restrictions
from mpr_cli.pictures.model import (
    POSTER_WIDTH,
    SHEET_COLUMNS,
    SHEET_ROWS,
    TILE_WIDTH,
    WAVEFORM_SIZE,
)

POSTER_FRAMES = 8  # frames `thumbnail` picks the poster among (a third of a second at 25 fps)
# the socket buffer of a URL input (SO_RCVBUF): an open-ended range request keeps S3 sending
# until ffmpeg closes it, and a socket left to grow its buffer takes megabytes ffmpeg never
# reads (measured: 8.5 MB from S3 for a poster of a 20 MB MP4, bench/bench_pictures.py)
URL_RECV_BUFFER = 128 * 1024
POSTER_AT = (0.10, 0.30, 0.50, 0.70)  # where the poster windows start, as parts of the duration
SHEET_ACCURATE_MAX_S = 4.0  # clips this short get accurate seeks for their contact sheet
BLACK_LUMA = 32.0  # mean luma (0-255) under which a picked frame counts as black
JPEG_QUALITY = "3"  # -q:v of the mjpeg encoder (2 best .. 31 worst)
WAVEFORM_COLOUR = "0x2f6fb0"
_LUMA = re.compile(r"lavfi\.signalstats\.YAVG=([0-9.]+)")
_HEAD = (FFMPEG, "-hide_banner", "-nostdin", "-y")
# the contact sheet and the waveform print errors only (a sheet's 12 inputs would fill the
# stderr tail with their stream listings and push out the decoder's errors); the poster
# prints at ffmpeg's default level, which carries the luma the metadata filter prints
_QUIET = ("-v", "error")
# one image; its timestamp passed through (a frame picked before the seek point would be
# dropped by the default frame-rate sync, and the output left empty)
_ONE_IMAGE = ("-fps_mode", "passthrough", "-frames:v", "1", "-update", "1", "-f", "image2")


def poster_starts(duration_s: float | None) -> list[float]:
    """Where the poster windows start, in seconds: 10 %, 30 %, 50 %, 70 % of the duration;
    only the start when the duration is unknown."""
    if not duration_s or duration_s <= 0:
        return [0.0]
    return [round(duration_s * part, 3) for part in POSTER_AT]


def sheet_times(duration_s: float, count: int = SHEET_COLUMNS * SHEET_ROWS) -> list[float]:
    """The times of the contact sheet's frames: the middle of each of `count` equal parts."""
    return [round(duration_s * (i + 0.5) / count, 3) for i in range(count)]


def poster_argv(source: str, output: str, *, start_s: float, deinterlace: bool = False,
                accurate: bool = False, frames: int = POSTER_FRAMES,
                width: int = POSTER_WIDTH) -> list[str]:
    """The argv writing the poster JPEG of `source` to `output` from the window at `start_s`
    (from the keyframe at or before it; `accurate`: from that very time), see the module
    docstring; its stderr carries the luma `luma_of` reads."""
    chain = [f"trim=end_frame={frames}", *(["yadif"] if deinterlace else []),
             f"thumbnail=n={frames}", *_square_scale(width), "signalstats",
             "metadata=mode=print:key=lavfi.signalstats.YAVG"]
    return [*_HEAD, *_input(source, start_s, accurate=accurate), "-map", "0:V:0",
            "-vf", ",".join(chain), *_jpeg_out(output)]


def contact_sheet_argv(source: str, output: str, *, duration_s: float,
                       deinterlace: bool = False, columns: int = SHEET_COLUMNS,
                       rows: int = SHEET_ROWS, tile_width: int = TILE_WIDTH) -> list[str]:
    """The argv writing the contact sheet JPEG of `source` (columns x rows frames spread over
    `duration_s`, each tile `tile_width` wide) to `output`."""
    times = sheet_times(duration_s, columns * rows)
    accurate = duration_s <= SHEET_ACCURATE_MAX_S
    inputs: list[str] = []
    graph: list[str] = []
    for i, at in enumerate(times):
        inputs += _input(source, at, accurate=accurate)
        chain = ["trim=end_frame=1", *(["yadif"] if deinterlace else []),
                 *_square_scale(tile_width)]
        graph.append(f"[{i}:V:0]{','.join(chain)}[t{i}]")
    joined = "".join(f"[t{i}]" for i in range(len(times)))
    graph.append(f"{joined}concat=n={len(times)}:v=1:a=0,tile=layout={columns}x{rows}[sheet]")
    return [*_HEAD, *_QUIET, *inputs, "-filter_complex", ";".join(graph), "-map", "[sheet]",
            *_jpeg_out(output)]


def waveform_argv(source: str, output: str, *,
                  size: tuple[int, int] = WAVEFORM_SIZE) -> list[str]:
    """The argv writing the waveform PNG of `source`'s first audio track to `output`."""
    width, height = size
    graph = (f"[0:a:0]aformat=channel_layouts=mono,"
             f"showwavespic=s={width}x{height}:colors={WAVEFORM_COLOUR}[wave]")
    return [*_HEAD, *_QUIET, *_input(source, None, accurate=True), "-filter_complex", graph,
            "-map", "[wave]", *_ONE_IMAGE, "-c:v", "png", _name(output)]


def luma_of(stderr: str) -> float | None:
    """The mean luma (0-255) of the first frame `poster_argv` printed; None if none was."""
    found = _LUMA.search(stderr)
    return float(found.group(1)) if found else None


def is_black(luma: float | None) -> bool:
    """A frame this dark is not a poster (full-range black is 0, limited-range black 16)."""
    return luma is not None and luma < BLACK_LUMA


def _input(source: str, start_s: float | None, *, accurate: bool) -> list[str]:
    """One input: decoded single-threaded, sought to `start_s` before it is opened (None:
    from the start), through its one protocol and the allowed demuxers only."""
    options = ["-threads", "1"]
    if start_s is not None and start_s > 0:
        options += ([] if accurate else ["-noaccurate_seek"]) + ["-ss", f"{start_s:.3f}"]
    for name, value in input_restrictions(source).items():
        options += [f"-{name}", value]
    if _is_url(source):
        options += ["-rw_timeout", str(URL_TIMEOUT_US), "-recv_buffer_size", str(URL_RECV_BUFFER)]
    return [*options, "-i", _name(source)]


def _square_scale(width: int) -> list[str]:
    """Square pixels (iw*sar x ih), then `width` wide with the height from the aspect (even)."""
    return ["scale=w=iw*sar:h=ih", f"scale=w={width}:h=-2", "setsar=1"]


def _jpeg_out(output: str) -> list[str]:
    return [*_ONE_IMAGE, "-c:v", "mjpeg", "-q:v", JPEG_QUALITY, _name(output)]


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _name(name: str) -> str:
    """A local name ffmpeg cannot mistake for an option, stdin/stdout or a protocol (the rule
    of ffmpeg/command.py: absolute paths and URLs as they are, anything else under ./)."""
    if _is_url(name) or name.startswith("/"):
        return name
    return "./" + name
