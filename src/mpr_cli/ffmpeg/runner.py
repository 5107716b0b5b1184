"""Run one ffmpeg argv: progress from `-progress pipe:1`, the stderr tail kept, errors raised.

`run_ffmpeg` starts ffmpeg (argv list, no shell, stdin closed), reads its `-progress` key=value
blocks from stdout and hands each one to `on_progress` as a `ProgressUpdate` (in the calling
thread), keeps the last `STDERR_TAIL_LINES` lines of stderr (read in a thread, bounded memory),
and raises `FfmpegError` with the last meaningful stderr line when ffmpeg fails.

Cancelling (the `cancel` event, set from any thread) or a timeout stops ffmpeg: SIGTERM, then
SIGKILL after `GRACE_S`. No child is ever left behind: any exception in the calling thread
(KeyboardInterrupt, an error in `on_progress`) kills ffmpeg before it propagates. The output
file of a failed or cancelled run is partial: write to a temporary name and move it into place
only after success.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import IO
from urllib.parse import urlsplit

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.command import describe_argv

log = logging.getLogger(__name__)

INSTALL_HINT = "apt-get install -y --no-install-recommends ffmpeg"
STDERR_TAIL_LINES = 50
GRACE_S = 5.0
_POLL_S = 0.1
_MAX_MESSAGE = 300
# stderr lines that say nothing about the cause: the one before them is the message
_GENERIC_LINES = ("Conversion failed!", "Exiting normally, received signal")


class _Stop(Enum):
    """Why the runner stops ffmpeg before it ends by itself."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"


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
) -> RunResult:
    """Run ffmpeg to the end; FfmpegError on failure, TranscodeCancelled on `cancel`."""
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
    deadline = started + timeout if timeout is not None else None
    try:
        stop = _follow(lines, duration_s, on_progress, cancel, deadline)
        stop = stop or _await_exit(process, cancel, deadline)
        if stop is not None:
            _stop(process)
        returncode = process.wait()
    except BaseException:
        _kill(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=GRACE_S)
    result = RunResult(returncode, _redact("\n".join(tail), argv), time.monotonic() - started)
    _raise_unless_ok(result, stop, timeout)
    return result


def _raise_unless_ok(result: RunResult, stop: _Stop | None, timeout: float | None) -> None:
    tail = result.stderr_tail
    if stop is _Stop.CANCEL:
        raise TranscodeCancelled(f"transcode cancelled after {result.elapsed_s:.1f} s",
                                 stderr_tail=tail)
    if stop is _Stop.TIMEOUT:
        raise FfmpegError(f"ffmpeg timed out after {timeout:g} s", stderr_tail=tail)
    if result.returncode != 0:
        raise FfmpegError(f"ffmpeg failed (exit {result.returncode}): {_last_line(tail)}",
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
    cancel: threading.Event | None,
    deadline: float | None,
) -> _Stop | None:
    """Read progress until stdout closes; a _Stop when ffmpeg must be stopped first."""
    block: dict[str, str] = {}
    while True:
        stop = _should_stop(cancel, deadline)
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
            if on_progress is not None:
                on_progress(parse_progress_block(block, duration_s))
            block = {}


def _await_exit(
    process: subprocess.Popen[str], cancel: threading.Event | None, deadline: float | None
) -> _Stop | None:
    """Wait for ffmpeg to exit after closing stdout, still honouring cancel and timeout."""
    while process.poll() is None:
        stop = _should_stop(cancel, deadline)
        if stop is not None:
            return stop
        try:
            process.wait(timeout=_POLL_S)
        except subprocess.TimeoutExpired:
            continue
    return None


def _should_stop(cancel: threading.Event | None, deadline: float | None) -> _Stop | None:
    if cancel is not None and cancel.is_set():
        return _Stop.CANCEL
    if deadline is not None and time.monotonic() > deadline:
        return _Stop.TIMEOUT
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


def _last_line(stderr_tail: str) -> str:
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(_GENERIC_LINES)]
    if not meaningful:
        return "no error message"
    line = meaningful[-1]
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def _redact(text: str, argv: Iterable[str]) -> str:
    """No URL query (a presigned signature) from argv survives in text shown to a user."""
    for arg in argv:
        if arg.startswith(("http://", "https://")):
            query = urlsplit(arg).query
            if query:
                text = text.replace(query, "<redacted>")
    return text
