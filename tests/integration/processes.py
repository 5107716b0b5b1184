"""Processes as a test sees them: mpr's process groups, and an ffmpeg held with SIGSTOP.

A test that must act while ffmpeg encodes holds it instead of racing it: `HeldFfmpeg.catch`
stops the ffmpeg child with SIGSTOP as soon as it appears, the test lets it run in short
slices while it waits for what it needs (`advance_until`), and lets it go on only when the
test acts: `resume` for a job that must complete, `resume_once_signalled` for a job mpr must
stop (ffmpeg is continued once mpr's SIGTERM is pending on it, so it stops cleanly on that
signal). The encode never gets further than the test allows, however fast the machine is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

POLL_S = 0.01
SLICE_S = 0.3  # how long ffmpeg runs between two looks; its progress block comes each 0.5 s
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)


def process_table() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (command name, parent pid, process group, state), from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        state, ppid, group = rest.split()[:3]
        table[int(stat.parent.name)] = (name, int(ppid), int(group), state)
    return table


GROUPS_SEEN: dict[int, set[int]] = {}


def group_pids(pgid: int) -> dict[int, str]:
    """The live processes (pid -> name) of mpr (process group `pgid`) and of the groups its
    children lead: ffmpeg runs in a group of its own, so that a terminal's Ctrl-C reaches mpr
    only. Groups once seen are remembered, so an ffmpeg orphaned by a dead mpr is still found."""
    table = process_table()
    seen = GROUPS_SEEN.setdefault(pgid, {pgid})
    seen.update(group for _, ppid, group, _ in table.values() if ppid == pgid)
    return {pid: name for pid, (name, _, group, state) in table.items()
            if group in seen and state != "Z"}


def descendants(pid: int) -> dict[int, str]:
    """The live processes (pid -> name) descended from `pid`, whatever their group: a Celery
    worker's pool processes and the ffmpeg each one starts."""
    table = process_table()
    found: dict[int, str] = {}
    parents = {pid}
    while parents:
        children = {p for p, (_, ppid, _, state) in table.items()
                    if ppid in parents and p not in found and state != "Z"}
        found.update({p: table[p][0] for p in children})
        parents = children
    return found


def group_members(pgid: int) -> list[str]:
    """The names of `group_pids(pgid)`."""
    return list(group_pids(pgid).values())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             proc: Any = None, every: float = 0.2) -> Any:
    """Poll `predicate` until it is true (its value is returned); fail after `timeout`, or as
    soon as `proc` (a Popen) ends first. The timeout only bounds a test that went wrong: no
    test relies on work finishing within it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"mpr ended (exit {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _alive(pid: int) -> bool:
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def _pending(pid: int) -> set[int]:
    """The signals pending on `pid` (for the thread group or its main thread)."""
    status = _status(pid)
    mask = int(status.get("ShdPnd", "0"), 16) | int(status.get("SigPnd", "0"), 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


class HeldFfmpeg:
    """One ffmpeg child of mpr, stopped with SIGSTOP from the moment it is seen."""

    def __init__(self, proc: Any, find: Callable[[], dict[int, str]] | None = None) -> None:
        """`find`: the processes to look for ffmpeg in (default: mpr's groups, group_pids)."""
        self.proc = proc
        self.pid = 0
        self.find = find or (lambda: group_pids(proc.pid))

    def catch(self, timeout: float = 120) -> HeldFfmpeg:
        def ffmpeg() -> int:
            return next((pid for pid, name in self.find().items() if name == "ffmpeg"), 0)

        self.pid = wait_for(ffmpeg, timeout, "mpr to start ffmpeg", self.proc, every=POLL_S)
        self._stop()
        return self

    def _stop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        wait_for(lambda: not _alive(self.pid) or _status(self.pid)["State"].startswith("T"),
                 30, f"ffmpeg {self.pid} to stop", every=POLL_S)
        assert _alive(self.pid), "ffmpeg ended before it could be held"

    def advance_until(self, predicate: Callable[[], Any], what: str,
                      look_s: float = 7.0, timeout: float = 240) -> Any:
        """Let ffmpeg run SLICE_S at a time, held again after each slice, until `predicate`
        holds (looked at for `look_s` after each slice, e.g. one heartbeat)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(SLICE_S)
            self._stop()
            look_until = time.monotonic() + look_s
            while not (value := predicate()) and time.monotonic() < look_until:
                time.sleep(0.2)
            if value:
                return value

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def resume_once_signalled(self, timeout: float = 60) -> None:
        """Continue ffmpeg once mpr has sent it a stop signal (pending while it is held), or
        once mpr killed it."""
        wait_for(lambda: not _alive(self.pid) or _pending(self.pid) & set(STOP_SIGNALS),
                 timeout, f"mpr to signal ffmpeg {self.pid} to stop", every=POLL_S)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def reaped(proc: Any) -> Iterator[Any]:
    """The block's Popen never outlives it: killed and reaped if the test failed first."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
