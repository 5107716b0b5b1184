"""run_ffmpeg with the real ffmpeg: presets end to end, progress, errors, cancel, no orphans.

Sources are made with ffmpeg at test time in tmp_path (2 s, 320x240). No S3, no database.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg import runner
from mpr_cli.ffmpeg.command import build_decode_check_argv, build_transcode_argv
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.ffmpeg.probe import probe
from mpr_cli.ffmpeg.runner import ProgressUpdate, TranscodeCancelled, run_ffmpeg
from mpr_cli.validation.containers import Container

pytestmark = pytest.mark.integration

BOOK = load_presets()
VIDEO = ["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25"]
AUDIO = ["-f", "lavfi", "-i", "sine=duration=2:sample_rate=48000"]
# 20 s read in real time (-re): long enough to cancel or time out mid-run
SLOW = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats", "-re",
        "-f", "lavfi", "-i", "testsrc=duration=20:size=320x240:rate=25",
        "-c:v", "libx264", "-preset", "veryslow", "-f", "mp4"]


def make(path: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    return {
        "mov": make(folder / "VO-TST-00001.mov", *VIDEO, *AUDIO,
                    "-c:v", "mpeg4", "-c:a", "pcm_s16le"),
        "wav": make(folder / "AO-TST-00002.wav", *AUDIO, "-c:a", "pcm_s16le"),
        "pal": make(folder / "VO-TST-00003.mov",
                    "-f", "lavfi", "-i", "testsrc=duration=2:size=720x576:rate=25,setsar=64/45",
                    *AUDIO, "-c:v", "mpeg2video", "-flags", "+ilme+ildct",
                    "-field_order", "tt", "-c:a", "pcm_s16le"),
    }


def top_level_atoms(path: Path) -> dict[str, int]:
    """Byte offset of each top-level MP4 box (first occurrence), read header by header."""
    offsets: dict[str, int] = {}
    size_of_file = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size_of_file:
            f.seek(offset)
            header = f.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = size_of_file - offset
            offsets.setdefault(kind, offset)
            assert size >= 8, f"bad box {kind!r} at {offset}"
            offset += size
    return offsets


def collect() -> tuple[list[ProgressUpdate], Callable[[ProgressUpdate], None]]:
    updates: list[ProgressUpdate] = []
    return updates, updates.append


def no_ffmpeg_children() -> bool:
    """True when this process has no ffmpeg child (running or zombie)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            parent = fields[1].split()[1]
        except (OSError, IndexError):
            continue
        if parent == me and name == "ffmpeg":
            return False
    return True


@pytest.fixture()
def popens(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen]:
    """Every Popen the runner makes, to check its process is gone afterwards."""
    made: list[subprocess.Popen] = []
    real = subprocess.Popen

    def recording(*args, **kwargs):
        process = real(*args, **kwargs)
        made.append(process)
        return process

    monkeypatch.setattr(runner.subprocess, "Popen", recording)
    return made


def assert_gone(process: subprocess.Popen) -> None:
    assert process.returncode is not None, "the runner did not reap ffmpeg"
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert no_ffmpeg_children()


def assert_stopped_by_sigterm(error: FfmpegError) -> None:
    """ffmpeg ended on the runner's SIGTERM (a clean stop, its output closed), not on the
    SIGKILL that follows when it does not stop within the grace period."""
    assert "Exiting normally, received signal 15." in error.stderr_tail, error.stderr_tail


def assert_progress_reaches_100(updates: list[ProgressUpdate]) -> None:
    assert len(updates) >= 2
    percents = [u.percent for u in updates]
    assert all(p is not None for p in percents)
    assert percents == sorted(percents) and percents[0] < percents[-1]
    assert updates[-1].done and updates[-1].percent == pytest.approx(100)
    assert updates[-1].eta_s == 0
    assert all(u.speed is None or u.speed > 0 for u in updates)


def test_web_720p_makes_a_faststart_h264_aac_mp4(sources, tmp_path: Path) -> None:
    info = probe(sources["mov"])
    output = tmp_path / "VO-TST-00001.mp4.part"  # a temporary name: -f mp4 says the format
    argv = build_transcode_argv(str(sources["mov"]), output, BOOK.get("web-720p"), info,
                                threads=2)
    updates, on_progress = collect()
    result = run_ffmpeg(argv, duration_s=info.duration_s, on_progress=on_progress)
    assert result.returncode == 0 and result.elapsed_s > 0
    assert_progress_reaches_100(updates)
    made = probe(output)
    assert (made.container, made.video_codecs, made.audio_codecs) == (
        Container.MPEG4, ("h264",), ("aac",))
    assert (made.width, made.height) == (320, 240)  # never upscaled
    assert made.duration_s == pytest.approx(2.0, abs=0.1)
    atoms = top_level_atoms(output)
    assert atoms["moov"] < atoms["mdat"], f"moov is not before mdat: {atoms}"


def test_interlaced_anamorphic_pal_becomes_square_pixel_progressive(sources, tmp_path) -> None:
    info = probe(sources["pal"])
    assert info.interlaced is True
    output = tmp_path / "pal.mp4"
    argv = build_transcode_argv(str(sources["pal"]), output, BOOK.get("web-720p"), info)
    assert "bwdif" in " ".join(argv)
    run_ffmpeg(argv, duration_s=info.duration_s)
    made = probe(output)
    assert (made.width, made.height, made.interlaced) == (1024, 576, False)
    stream = made.raw["streams"][0]
    assert stream.get("sample_aspect_ratio", "1:1") == "1:1"


def test_audio_mp3_192_makes_a_cbr_mp3(sources, tmp_path: Path) -> None:
    info = probe(sources["wav"])
    output = tmp_path / "AO-TST-00002.mp3.part"
    argv = build_transcode_argv(str(sources["wav"]), output, BOOK.get("audio-mp3-192"), info)
    updates, on_progress = collect()
    run_ffmpeg(argv, duration_s=info.duration_s, on_progress=on_progress)
    assert updates and updates[-1].done and updates[-1].percent == pytest.approx(100)
    made = probe(output)
    assert (made.container, made.video_codecs, made.audio_codecs) == (
        Container.MPEG_AUDIO, (), ("mp3",))
    audio = next(s for s in made.raw["streams"] if s["codec_type"] == "audio")
    assert (audio["bit_rate"], audio["channels"]) == ("192000", 2)


def test_corrupt_input_raises_one_line_with_the_tail(tmp_path: Path, popens) -> None:
    corrupt = tmp_path / "VO-TST-00009.mov"
    corrupt.write_bytes(os.urandom(64 * 1024))
    argv = build_transcode_argv(str(corrupt), tmp_path / "out.mp4", BOOK.get("web-720p"), None)
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(argv, duration_s=None)
    error = caught.value
    assert "\n" not in error.one_line()
    assert error.message.startswith("ffmpeg failed (exit 1): ")
    assert "VO-TST-00009.mov" in error.message
    assert error.stderr_tail.strip()
    assert_gone(popens[0])


def test_decode_check_of_a_good_file_is_silent(sources) -> None:
    result = run_ffmpeg(build_decode_check_argv(sources["mov"]), duration_s=None)
    assert (result.returncode, result.stderr_tail) == (0, "")


def test_cancel_stops_ffmpeg_and_leaves_no_child(tmp_path: Path, popens) -> None:
    cancel = threading.Event()
    cancelled_at: list[ProgressUpdate] = []

    def on_progress(update: ProgressUpdate) -> None:
        if not cancel.is_set():
            cancelled_at.append(update)
            cancel.set()

    with pytest.raises(TranscodeCancelled) as caught:
        run_ffmpeg([*SLOW, str(tmp_path / "slow.mp4")], duration_s=20.0,
                   on_progress=on_progress, cancel=cancel)
    assert cancelled_at
    assert_stopped_by_sigterm(caught.value)
    assert caught.value.message.startswith("transcode cancelled after ")
    assert isinstance(caught.value, FfmpegError)
    assert_gone(popens[0])


def test_cancel_from_another_thread(tmp_path: Path, popens) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(TranscodeCancelled) as caught:
        run_ffmpeg([*SLOW, str(tmp_path / "slow.mp4")], duration_s=20.0, cancel=cancel)
    assert_stopped_by_sigterm(caught.value)
    assert_gone(popens[0])


def test_an_already_set_cancel_starts_nothing(popens) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TranscodeCancelled):
        run_ffmpeg(["ffmpeg", "-version"], duration_s=None, cancel=cancel)
    assert popens == []


def test_timeout_stops_ffmpeg(tmp_path: Path, popens) -> None:
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg([*SLOW, str(tmp_path / "slow.mp4")], duration_s=20.0, timeout=1)
    assert caught.value.message == "ffmpeg timed out after 1 s"
    assert not isinstance(caught.value, TranscodeCancelled)
    assert_gone(popens[0])


def test_keyboard_interrupt_kills_the_child_and_propagates(tmp_path: Path, popens) -> None:
    def interrupt(update: ProgressUpdate) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ffmpeg([*SLOW, str(tmp_path / "slow.mp4")], duration_s=20.0, on_progress=interrupt)
    assert_gone(popens[0])


def test_missing_ffmpeg_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg([str(tmp_path / "no-ffmpeg-here"), "-version"], duration_s=None)
    assert caught.value.message.endswith("no-ffmpeg-here not found")
    assert caught.value.hint == "apt-get install -y --no-install-recommends ffmpeg"
