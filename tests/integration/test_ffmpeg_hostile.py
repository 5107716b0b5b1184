"""A "master" that is not what its name says must not make ffmpeg or ffprobe open anything else.

An HLS playlist saved as VO-TST-00001.mov names other files or URLs as its segments; without
restrictions ffprobe and ffmpeg open them (shown below, as the control). With mpr's input
restrictions both refuse the playlist at once, with a clear one-line error, and never read the
named file: it is a FIFO holding a marker the test wrote, and the marker is still there after
the run (a reader would have taken it), or an HTTP server that must see no request.

Real ffmpeg/ffprobe, sources made at test time, no S3, no database.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.command import build_transcode_argv
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.ffmpeg.probe import probe
from mpr_cli.ffmpeg.runner import run_ffmpeg

pytestmark = pytest.mark.integration

BOOK = load_presets()
MARKER = b"G" + bytes(187)  # one MPEG-TS packet's worth: what a reader would take first
REFUSED = ("it is a hls file, not a media container mpr reads "
           "(mov, matroska, mxf, avi, wav, flac, mp3)")
# if a restriction ever failed, the run would block on the FIFO: fail instead of hanging
LIMIT_S = 20


def playlist(path: Path, segment: str) -> Path:
    path.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                    f"#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n")
    return path


@pytest.fixture()
def held_segment(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO holding MARKER, both ends held by the test: (path, fd)."""
    path = tmp_path / "secret.ts"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, MARKER)
    yield path, fd
    os.close(fd)


def marker_still_there(fd: int) -> bool:
    try:
        return os.read(fd, len(MARKER) + 1) == MARKER
    except BlockingIOError:  # empty: someone read it
        return False


class _Recorder(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    """An HTTP server on 127.0.0.1 serving `root`: (base URL, paths requested, root)."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Recorder, directory=str(root)))
    httpd.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", httpd.paths, root  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def test_control_without_restrictions_ffprobe_follows_the_playlist(tmp_path: Path) -> None:
    """The threat is real: plain ffprobe reads a .mov that is a playlist as HLS and opens the
    local file it names (here a real MPEG-TS segment, whose audio stream it reports)."""
    segment = tmp_path / "real.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=2",
                    "-c:a", "aac", "-f", "mpegts", str(segment)], check=True, timeout=60)
    master = playlist(tmp_path / "VO-TST-00001.mov", str(segment))
    shown = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                            "-show_streams", str(master)],
                           capture_output=True, text=True, timeout=60, check=True)
    document = json.loads(shown.stdout)
    assert document["format"]["format_name"] == "hls"
    assert [s["codec_name"] for s in document["streams"]] == ["aac"]  # read from the segment


def test_probe_refuses_a_playlist_named_mov_and_never_reads_the_segment(
        tmp_path: Path, held_segment: tuple[Path, int]) -> None:
    segment, fd = held_segment
    master = playlist(tmp_path / "VO-TST-00001.mov", str(segment))
    with pytest.raises(FfmpegError) as caught:
        probe(master, timeout=LIMIT_S)
    assert caught.value.one_line() == (
        f"{master} cannot be transcoded: {REFUSED} (replace it with the real master)")
    assert marker_still_there(fd), "ffprobe read the file the playlist names"


def test_ffmpeg_refuses_a_playlist_named_mov_and_never_reads_the_segment(
        tmp_path: Path, held_segment: tuple[Path, int]) -> None:
    segment, fd = held_segment
    master = playlist(tmp_path / "VO-TST-00001.mov", str(segment))
    argv = build_transcode_argv(str(master), tmp_path / "out.mp4", BOOK.get("web-720p"), None)
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(argv, duration_s=None, timeout=LIMIT_S)
    assert caught.value.message == f"ffmpeg failed (exit 1): the input was refused: {REFUSED}"
    assert "\n" not in caught.value.one_line()
    assert marker_still_there(fd), "ffmpeg read the file the playlist names"
    assert not (tmp_path / "out.mp4").exists() or (tmp_path / "out.mp4").stat().st_size == 0


def test_a_playlist_naming_a_url_makes_no_request(tmp_path: Path, server) -> None:
    base, requested, _ = server
    master = playlist(tmp_path / "VO-TST-00002.mov", f"{base}/internal/secret.ts")
    with pytest.raises(FfmpegError, match="cannot be transcoded: it is a hls file"):
        probe(master, timeout=LIMIT_S)
    argv = build_transcode_argv(str(master), tmp_path / "out.mp4", BOOK.get("web-720p"), None)
    with pytest.raises(FfmpegError, match="the input was refused: it is a hls file"):
        run_ffmpeg(argv, duration_s=None, timeout=LIMIT_S)
    assert requested == []


def test_url_mode_reads_a_real_master_and_refuses_a_served_playlist(tmp_path: Path,
                                                                    server) -> None:
    """A presigned-style URL (http here, as on a local SeaweedFS) still transcodes through the
    http,tcp whitelist; a playlist served as .mov is refused, its segment never requested."""
    base, requested, root = server
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=1:size=160x120:rate=25", "-f", "lavfi", "-i",
                    "sine=duration=1:sample_rate=48000", "-c:v", "mpeg4", "-c:a", "pcm_s16le",
                    # index first: this test server answers no Range requests (S3 does)
                    "-movflags", "+faststart", str(root / "VO-TST-00003.mov")],
                   check=True, timeout=60)
    url = f"{base}/VO-TST-00003.mov?X-Amz-Signature=abc"
    info = probe(url, timeout=LIMIT_S)
    output = tmp_path / "out.mp4"
    run_ffmpeg(build_transcode_argv(url, output, BOOK.get("web-720p"), info),
               duration_s=info.duration_s, timeout=LIMIT_S)
    assert probe(output).video_codecs == ("h264",)

    playlist(root / "VO-TST-00004.mov", f"{base}/internal/secret.ts")
    requested.clear()
    with pytest.raises(FfmpegError, match="the input was refused: it is a hls file"):
        run_ffmpeg(build_transcode_argv(f"{base}/VO-TST-00004.mov?X-Amz-Signature=abc",
                                        tmp_path / "bad.mp4", BOOK.get("web-720p"), None),
                   duration_s=None, timeout=LIMIT_S)
    assert [path.split("?")[0] for path in requested] == ["/VO-TST-00004.mov"]
