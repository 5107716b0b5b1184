"""run_ffmpeg with the real ffmpeg: presets end to end, progress, errors, cancel, no orphans,
the stall watchdog and time limit, and every audio track of a master in the copy (measured).

Sources are made with ffmpeg at test time in tmp_path (2 s, 320x240). No S3, no database.
"""

from __future__ import annotations

import array
import math
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
from mpr_cli.ffmpeg.probe import mediainfo_json, probe
from mpr_cli.ffmpeg.runner import ProgressUpdate, TranscodeCancelled, run_ffmpeg
from mpr_cli.transcode.stages import verify_output
from mpr_cli.validation.containers import Container, MediaInfo
from mpr_cli.validation.sidecars import media_info_from_json

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


# ------------------------------------------------------------------ stall watchdog, time limit


def test_time_limit_is_generous_and_needs_a_duration() -> None:
    assert runner.time_limit_s(None) is None and runner.time_limit_s(0) is None
    assert runner.time_limit_s(60) == 3600  # the 1 h floor
    assert runner.time_limit_s(2 * 3600) == 40 * 3600  # 20 x a 2 h master


def test_an_ffmpeg_that_never_makes_output_is_stopped_by_the_stall_watchdog(
        tmp_path: Path, popens) -> None:
    """Every frame dropped (select=0) from a source that never ends: ffmpeg runs on and on,
    its out_time never advances. It is stopped cleanly (SIGTERM) after the stall timeout."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
            "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-vf", "select=0",
            "-c:v", "mpeg4", "-f", "mp4", str(tmp_path / "never.mp4")]
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(argv, duration_s=None, stall_timeout=1)
    assert caught.value.one_line() == (
        "ffmpeg made no progress for 1 s (is the master readable? check its storage or mount; "
        "MPR_FFMPEG_STALL_TIMEOUT sets this limit)")
    assert not isinstance(caught.value, TranscodeCancelled)
    assert_stopped_by_sigterm(caught.value)
    assert_gone(popens[0])


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    """A master that is a FIFO: what ffmpeg sees on a hung mount (reads that never return)."""
    path = tmp_path / "AO-TST-00005.wav"
    os.mkfifo(path)
    return path


def test_a_master_that_never_opens_is_killed_after_the_stall_timeout(
        fifo: Path, tmp_path: Path, popens, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody ever writes the FIFO: ffmpeg blocks opening it and ignores SIGTERM there, so the
    watchdog's SIGKILL ends it (GRACE_S shortened to keep the test short)."""
    monkeypatch.setattr(runner, "GRACE_S", 1.0)
    argv = build_transcode_argv(str(fifo), tmp_path / "out.mp3", BOOK.get("audio-mp3-192"),
                                None)
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg(argv, duration_s=None, stall_timeout=1)
    assert caught.value.message == "ffmpeg made no progress for 1 s"
    assert popens[0].returncode == -9  # SIGTERM was not enough
    assert_gone(popens[0])


def test_a_master_that_stops_sending_is_stopped_by_the_stall_watchdog(
        fifo: Path, tmp_path: Path, popens, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 s of a WAV stream, then nothing more (the write end held open, as a mount that hangs
    mid-file): ffmpeg encodes what came and then waits for ever. The watchdog ends it."""
    monkeypatch.setattr(runner, "GRACE_S", 1.0)
    wav = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                          "sine=duration=4:sample_rate=48000", "-f", "wav", "-"],
                         capture_output=True, check=True).stdout
    held = os.open(fifo, os.O_RDWR)  # both ends: the reader never sees the end of the stream
    writer = threading.Thread(target=os.write, args=(held, wav), daemon=True)
    writer.start()
    try:
        argv = build_transcode_argv(str(fifo), tmp_path / "out.mp3",
                                    BOOK.get("audio-mp3-192"), None)
        with pytest.raises(FfmpegError) as caught:
            run_ffmpeg(argv, duration_s=None, stall_timeout=1.5)
    finally:
        os.close(held)
    writer.join(timeout=5)
    assert caught.value.message == "ffmpeg made no progress for 1.5 s"
    assert "libmp3lame" in caught.value.stderr_tail  # it had started encoding
    assert_gone(popens[0])


def test_a_run_that_progresses_is_never_stalled(tmp_path: Path, popens) -> None:
    """A real-time source advances out_time 0.5 s per block: with a 2.5 s stall timeout it runs
    on until the test cancels it at 5 s of output (twice the stall timeout)."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats",
            "-re", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "pcm_s16le",
            "-f", "wav", str(tmp_path / "endless.wav")]
    cancel = threading.Event()

    def on_progress(update: ProgressUpdate) -> None:
        if (update.out_time_s or 0) >= 5:
            cancel.set()

    with pytest.raises(TranscodeCancelled):
        run_ffmpeg(argv, duration_s=None, on_progress=on_progress, cancel=cancel,
                   stall_timeout=2.5)
    assert_gone(popens[0])


def test_without_progress_output_the_watchdog_is_off(sources) -> None:
    """The decode check without -progress writes no blocks: a stall timeout shorter than the
    run must not stop it (nothing to watch)."""
    argv = build_decode_check_argv(sources["mov"])
    assert "-progress" not in argv
    result = run_ffmpeg(argv, duration_s=None, stall_timeout=1e-9)
    assert (result.returncode, result.stderr_tail) == (0, "")


def test_the_time_limit_stops_a_run_longer_than_its_masters_duration_allows(
        tmp_path: Path, popens, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1 h floor lowered so a 0.1 s master's limit is 20 x 0.1 = 2 s; the -re source takes
    20 s, so the limit is reached whatever the machine's speed."""
    monkeypatch.setattr(runner, "TIME_LIMIT_FLOOR_S", 0.0)
    with pytest.raises(FfmpegError) as caught:
        run_ffmpeg([*SLOW, str(tmp_path / "slow.mp4")], duration_s=0.1)
    assert caught.value.one_line() == (
        "ffmpeg ran for 2 s, the limit for a 0.1 s master (20 x its duration, at least 1 h) "
        "(ffmpeg is stuck or the machine overloaded: lower MPR_TRANSCODE_WORKERS or use a "
        "faster preset, then retry the job)")
    assert_stopped_by_sigterm(caught.value)
    assert_gone(popens[0])


# ------------------------------------------------------------------ every audio track


def sines(*frequencies: int) -> list[str]:
    """One lavfi input per frequency (mono, 2 s), for the tracks of a master."""
    args: list[str] = []
    for frequency in frequencies:
        args += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=2:sample_rate=48000"]
    return args


def master_with_tracks(path: Path, *frequencies: int, stereo_first: bool = False) -> Path:
    """A video master whose audio tracks are mono sines (440 Hz, 1000 Hz, ...), each its own
    stream; with `stereo_first`, the first two sines are one stereo track instead."""
    maps = ["-map", "0:v"]
    if stereo_first:
        maps += ["-filter_complex", "[1:a][2:a]join=inputs=2:channel_layout=stereo[st]",
                 "-map", "[st]"]
        maps += [x for i in range(3, len(frequencies) + 1) for x in ("-map", f"{i}:a")]
    else:
        maps += [x for i in range(1, len(frequencies) + 1) for x in ("-map", f"{i}:a")]
    return make(path, *VIDEO, *sines(*frequencies), *maps, "-c:v", "mpeg2video",
                "-c:a", "pcm_s16le")


def channels_of(path: Path) -> list[tuple[float, int]]:
    """Each channel of the first audio stream as (RMS level in dBFS, frequency in Hz from its
    zero crossings), decoded to raw 48 kHz PCM."""
    made = probe(path)
    count = made.audio_channels[0]
    assert count is not None
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-f", "s16le", "-c:a", "pcm_s16le", "-ar", "48000", "-"],
                         capture_output=True, check=True, timeout=60).stdout
    samples = array.array("h")
    samples.frombytes(pcm)
    measured = []
    for channel in range(count):
        x = samples[channel::count][4800:-4800]  # leave out the codec's edges (0.1 s)
        rms = math.sqrt(sum(v * v for v in x) / len(x)) / 32768
        crossings = sum(1 for a, b in zip(x, x[1:], strict=False) if (a < 0) != (b < 0))
        measured.append((20 * math.log10(rms + 1e-12), round(crossings / 2 / (len(x) / 48000))))
    return measured


def transcode(master: Path, output: Path, preset: str) -> MediaInfo:
    """Run the preset on the master as mpr does, check the output as mpr does (from its
    mediainfo document), and return what the output check saw."""
    info = probe(master)
    chosen = BOOK.get(preset)
    run_ffmpeg(build_transcode_argv(str(master), output, chosen, info, threads=2),
               duration_s=info.duration_s)
    made = media_info_from_json(mediainfo_json(output))
    verify_output(made, info, chosen)
    return made


@pytest.mark.parametrize("extension", [".mxf", ".mov"])
def test_two_mono_tracks_become_left_and_right(tmp_path: Path, extension: str) -> None:
    master = master_with_tracks(tmp_path / f"VO-TST-00010{extension}", 440, 1000)
    assert probe(master).audio_channels == (1, 1)
    made = transcode(master, tmp_path / "out.mp4", "web-720p")
    assert made.audio_channels == (2,)
    (left_db, left_hz), (right_db, right_hz) = channels_of(tmp_path / "out.mp4")
    assert (left_hz, right_hz) == (pytest.approx(440, abs=5), pytest.approx(1000, abs=5))
    # lavfi's sine is at 1/8 of full scale: -21 dBFS RMS; each track keeps its level
    assert left_db == pytest.approx(-21.1, abs=0.5) and right_db == pytest.approx(-21.1, abs=0.5)


def test_three_mono_tracks_are_downmixed_odd_left_even_right(tmp_path: Path) -> None:
    master = master_with_tracks(tmp_path / "VO-TST-00011.mxf", 440, 1000, 3000)
    made = transcode(master, tmp_path / "out.mp3", "audio-mp3-192")
    assert made.audio_channels == (2,)
    (left_db, left_hz), (right_db, right_hz) = channels_of(tmp_path / "out.mp3")
    # left: (440 Hz + 3000 Hz) / 2, two uncorrelated sines at half level: -24 dBFS, and
    # zero crossings dominated by 3000 Hz; right: 1000 Hz alone, at its own level
    assert left_db == pytest.approx(-24.1, abs=0.7) and left_hz > 2000
    assert right_db == pytest.approx(-21.1, abs=0.5)
    assert right_hz == pytest.approx(1000, abs=5)


def test_a_stereo_first_track_is_kept_as_it_is(tmp_path: Path) -> None:
    master = master_with_tracks(tmp_path / "VO-TST-00012.mov", 440, 1000, 3000,
                                stereo_first=True)
    assert probe(master).audio_channels == (2, 1)
    transcode(master, tmp_path / "out.mp4", "web-720p")
    (_, left_hz), (_, right_hz) = channels_of(tmp_path / "out.mp4")
    assert (left_hz, right_hz) == (pytest.approx(440, abs=5), pytest.approx(1000, abs=5))


def test_the_hevc_preset_makes_hevc_that_passes_its_own_check(tmp_path: Path) -> None:
    master = master_with_tracks(tmp_path / "VO-TST-00013.mxf", 440, 1000)
    made = transcode(master, tmp_path / "out.mp4", "web-1080p-hevc")
    assert (made.container, made.video_codecs, made.audio_codecs, made.audio_channels) == (
        Container.MPEG4, ("hevc",), ("aac",), (2,))
    video = next(s for s in probe(tmp_path / "out.mp4").raw["streams"]
                 if s["codec_type"] == "video")
    assert video["codec_tag_string"] == "hvc1"
