"""Run one ffmpeg argv: progress from `-progress pipe:1`, the stderr tail kept, errors raised.

`run_ffmpeg` starts ffmpeg (argv list, no shell, stdin closed), reads its `-progress` key=value
blocks from stdout and hands each one to `on_progress` as a `ProgressUpdate` (in the calling
thread), keeps the last `STDERR_TAIL_LINES` lines of stderr (read in a thread, bounded memory),
and raises `FfmpegError` with the last meaningful stderr line when ffmpeg fails.

Cancelling (the `cancel` event, set from any thread), a timeout, the time limit or the stall
watchdog stops ffmpeg: SIGTERM, then SIGKILL after `GRACE_S` (an ffmpeg blocked in a read of a
hung mount ignores SIGTERM). No child is ever left behind: any exception in the calling thread
(KeyboardInterrupt, an error in `on_progress`) kills ffmpeg before it propagates. The output
file of a failed or cancelled run is partial: write to a temporary name and move it into place
only after success.

- `timeout`: the caller's own limit in seconds ("ffmpeg timed out after N s").
- The time limit, from the source's duration (`time_limit_s`): max(1 h, 20 x duration).
  Measured: web-720p makes a 60 s 720p master in 22 s on 2 cores, 0.37 x its duration
  (bench/results/transcode-2026-11-23-single-paired.json). 20 x is 50 times that: room for
  the slowest presets (x265, "veryslow"), 1080p, a machine shared by MPR_TRANSCODE_WORKERS
  jobs and other work; a tighter limit would fail honest jobs, and a run that reaches this one
  is an ffmpeg going round in circles, not a slow machine. The 1 h floor covers short masters,
  whose run is dominated by the start (a URL, a .mov index at the end) and whose duration in
  the header may be wrong. No known duration: no time limit (the stall watchdog still runs).
- `stall_timeout`, the stall watchdog: ffmpeg writes a `-progress` block every 0.5 s; when its
  `out_time` has not advanced for `stall_timeout` seconds (MPR_FFMPEG_STALL_TIMEOUT, default
  600), ffmpeg is stopped: "ffmpeg made no progress for 600 s". That catches a master on a hung
  network mount or a URL that stopped sending, without limiting honest slow encodes. The time
  before the first block counts (ffmpeg stuck opening its input). An argv without `-progress`
  has nothing to watch: the watchdog is off for it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import IO

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg import INSTALL_HINT
from mpr_cli.ffmpeg.command import (
    describe_argv,
    last_message,
    redact_output,
    refusal,
)

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 50
GRACE_S = 5.0
_POLL_S = 0.1


TIME_LIMIT_FLOOR_S = 3600.0
TIME_LIMIT_FACTOR = 20.0
STALL_HINT = ("is the master readable? check its storage or mount; "
              "MPR_FFMPEG_STALL_TIMEOUT sets this limit")
TIME_LIMIT_HINT = ("ffmpeg is stuck or the machine overloaded: lower MPR_TRANSCODE_WORKERS "
                   "or use a faster preset, then retry the job")


class _Stop(Enum):
    """Why the runner stops ffmpeg before it ends by itself."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"
    TIME_LIMIT = "time limit"
    STALL = "stall"


def time_limit_s(duration_s: float | None) -> float | None:
    """The longest a run on a source of `duration_s` may take: max(1 h, 20 x duration); None
    when the duration is unknown. Why these numbers: see the module docstring."""
    if not duration_s or duration_s <= 0:
        return None
    return max(TIME_LIMIT_FLOOR_S, TIME_LIMIT_FACTOR * duration_s)


@dataclass
class _Watch:
    """What may stop a run early, and how far ffmpeg got (monotonic clock)."""

    cancel: threading.Event | None
    deadline: float | None  # the caller's timeout
    limit_at: float | None  # the duration's time limit
    stall_s: float | None
    last_advance: float
    furthest: float = -1.0

    def progressed(self, out_time_s: float | None) -> None:
        if out_time_s is not None and out_time_s > self.furthest:
            self.furthest = out_time_s
            self.last_advance = time.monotonic()

    def stop(self) -> _Stop | None:
        if self.cancel is not None and self.cancel.is_set():
            return _Stop.CANCEL
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            return _Stop.TIMEOUT
        if self.limit_at is not None and now > self.limit_at:
            return _Stop.TIME_LIMIT
        if self.stall_s is not None and now - self.last_advance > self.stall_s:
            return _Stop.STALL
        return None


class TranscodeCancelled(FfmpegError):
    """ffmpeg was stopped because the caller set the cancel event."""


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One `-progress` block. percent and eta_s are None when the duration is unknown."""

    out_time_s: float | None
    percent: float | None
    speed: float | None
    eta_s: float | None
    done: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    returncode: int
    stderr_tail: str
    elapsed_s: float


def run_ffmpeg(
    argv: list[str],
    *,
    duration_s: float | None,
    on_progress: Callable[[ProgressUpdate], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    stall_timeout: float | None = None,
) -> RunResult:
    """Run ffmpeg to the end; FfmpegError on failure, TranscodeCancelled on `cancel`.

    Stopped early by `cancel`, `timeout`, the time limit of `duration_s` (`time_limit_s`) and,
    when argv has `-progress`, by `stall_timeout` seconds without progress (module docstring).
    """
    if cancel is not None and cancel.is_set():
        raise TranscodeCancelled("transcode cancelled before ffmpeg started")
    log.info("running %s", describe_argv(argv))
    started = time.monotonic()
    process = _start(argv)
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    lines: queue.Queue[str | None] = queue.Queue()
    readers = [
        _reader(process.stderr, tail.append, None),
        _reader(process.stdout, lines.put, lambda: lines.put(None)),
    ]
    limit = time_limit_s(duration_s)
    watch = _Watch(
        cancel=cancel,
        deadline=started + timeout if timeout is not None else None,
        limit_at=started + limit if limit is not None else None,
        stall_s=stall_timeout if "-progress" in argv else None,
        last_advance=started,
    )
    follow = functools.partial(_follow, lines, duration_s, on_progress, watch)
    returncode, stop = _supervise(process, readers, follow, watch)
    result = RunResult(returncode, redact_output("\n".join(tail), argv), time.monotonic() - started)
    _raise_unless_ok(result, stop, timeout=timeout, stall_timeout=stall_timeout,
                     duration_s=duration_s)
    return result


def _supervise(process: subprocess.Popen[str], readers: list[threading.Thread],
               follow: Callable[[], _Stop | None], watch: _Watch) -> tuple[int, _Stop | None]:
    """(exit code, why mpr stopped ffmpeg or None): `follow` reads its progress to the end,
    then its exit is awaited under the same limits. ffmpeg never outlives an exception."""
    try:
        stop = follow()
        stop = stop or _await_exit(process, watch)
        if stop is not None:
            _stop(process)
        return process.wait(), stop
    except BaseException:
        _kill(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=GRACE_S)


def _raise_unless_ok(result: RunResult, stop: _Stop | None, *, timeout: float | None,
                     stall_timeout: float | None, duration_s: float | None) -> None:
    tail = result.stderr_tail
    if stop is _Stop.CANCEL:
        raise TranscodeCancelled(f"transcode cancelled after {result.elapsed_s:.1f} s",
                                 stderr_tail=tail)
    if stop is _Stop.TIMEOUT:
        raise FfmpegError(f"ffmpeg timed out after {timeout:g} s", stderr_tail=tail)
    if stop is _Stop.STALL:
        raise FfmpegError(f"ffmpeg made no progress for {stall_timeout:g} s",
                          stderr_tail=tail, hint=STALL_HINT)
    if stop is _Stop.TIME_LIMIT:
        raise FfmpegError(
            f"ffmpeg ran for {time_limit_s(duration_s):.0f} s, the limit for a "
            f"{duration_s:.1f} s master (20 x its duration, at least 1 h)",
            stderr_tail=tail, hint=TIME_LIMIT_HINT)
    if result.returncode != 0:
        refused = refusal(tail)
        reason = f"the input was refused: {refused}" if refused else last_message(tail)
        raise FfmpegError(f"ffmpeg failed (exit {result.returncode}): {reason}",
                          stderr_tail=tail)


def parse_progress_block(
    block: dict[str, str], duration_s: float | None
) -> ProgressUpdate:
    """A `-progress` key=value block -> ProgressUpdate (pure)."""
    out_time = _out_time(block)
    done = block.get("progress") == "end"
    speed = _speed(block.get("speed", ""))
    if not duration_s or duration_s <= 0:
        return ProgressUpdate(out_time, None, speed, None, done)
    if done:
        return ProgressUpdate(out_time, 100.0, speed, 0.0, done)
    position = out_time or 0.0
    percent = min(100.0, max(0.0, 100.0 * position / duration_s))
    eta = max(0.0, duration_s - position) / speed if speed else None
    return ProgressUpdate(out_time, percent, speed, eta, done)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL when the thread that started it ends, so an
    ffmpeg never outlives a `kill -9` of mpr. libc is loaded before the fork, never in it."""
    if _LIBC is not None:
        _LIBC.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _start(argv: list[str]) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # its own process group: a Ctrl-C at the terminal reaches mpr only, which then
            # stops ffmpeg itself and records the job as cancelled (not failed)
            process_group=0,
            preexec_fn=_die_with_parent,  # only prctl(2): no lock, safe with threads
        )
    except FileNotFoundError:
        raise FfmpegError(f"{argv[0]} not found", hint=INSTALL_HINT) from None
    except PermissionError:
        raise FfmpegError(f"{argv[0]} cannot be run (permission denied)",
                          hint=INSTALL_HINT) from None


def _reader(
    stream: IO[str] | None, sink: Callable[[str], None], at_end: Callable[[], None] | None
) -> threading.Thread:
    def read() -> None:
        try:
            if stream is not None:
                for line in stream:
                    sink(line.rstrip("\r\n"))
        except (OSError, ValueError):  # the pipe closed under us: the process is gone
            pass
        finally:
            if at_end is not None:
                at_end()

    thread = threading.Thread(target=read, name="ffmpeg-pipe", daemon=True)
    thread.start()
    return thread


def _follow(
    lines: queue.Queue[str | None],
    duration_s: float | None,
    on_progress: Callable[[ProgressUpdate], None] | None,
    watch: _Watch,
) -> _Stop | None:
    """Read progress until stdout closes; a _Stop when ffmpeg must be stopped first."""
    block: dict[str, str] = {}
    while True:
        stop = watch.stop()
        if stop is not None:
            return stop
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if line is None:
            return None
        key, sep, value = line.partition("=")
        if not sep:
            continue
        block[key.strip()] = value.strip()
        if key.strip() == "progress":
            update = parse_progress_block(block, duration_s)
            watch.progressed(update.out_time_s)
            if on_progress is not None:
                on_progress(update)
            block = {}


def _await_exit(process: subprocess.Popen[str], watch: _Watch) -> _Stop | None:
    """Wait for ffmpeg to exit after closing stdout, still honouring every limit."""
    while process.poll() is None:
        stop = watch.stop()
        if stop is not None:
            return stop
        try:
            process.wait(timeout=_POLL_S)
        except subprocess.TimeoutExpired:
            continue
    return None


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (ffmpeg stops cleanly), then SIGKILL after GRACE_S."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        _kill(process)


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _out_time(block: dict[str, str]) -> float | None:
    # ffmpeg 5.1 writes microseconds under both out_time_us and (a known misnomer) out_time_ms
    for key in ("out_time_us", "out_time_ms"):
        value = block.get(key, "")
        if value.lstrip("-").isdigit():
            return max(0.0, int(value) / 1_000_000)
    return _clock(block.get("out_time", ""))


def _clock(text: str) -> float | None:
    """"00:01:02.500000" -> 62.5; None when it is not a clock (e.g. "N/A")."""
    parts = text.lstrip("-").split(":")
    try:
        hours, minutes, seconds = (float(p) for p in parts)
    except ValueError:
        return None
    return 0.0 if text.startswith("-") else hours * 3600 + minutes * 60 + seconds


def _speed(text: str) -> float | None:
    """"1.5x" -> 1.5; None for "N/A" or zero."""
    try:
        value = float(text.strip().rstrip("x"))
    except ValueError:
        return None
    return value if value > 0 else None
