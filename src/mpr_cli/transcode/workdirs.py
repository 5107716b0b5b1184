"""Private temp folders of transcodes (`mpr-transcode-*`), named by the process that owns them.

A folder's name says its owner (host tag, pid, process start time), made in the same system
call as the folder, so a run can remove the folders of dead processes (`remove_dead_workdirs`,
e.g. after a `kill -9`) and never those of a live one, on this machine or another that shares
MPR_TEMP_DIR.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from mpr_cli.config import Settings
from mpr_cli.errors import ConfigError

WORKDIR_PREFIX = "mpr-transcode-"
OWNER_FILE = "owner"  # "<host> <pid> <start time>", how older folders named their owner


def _process_started(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot, from /proc), None when gone;
    with the pid it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _host_tag(host: str) -> str:
    """A short, file-name-safe tag of the host name (a shared MPR_TEMP_DIR holds several)."""
    return hashlib.sha256(host.encode()).hexdigest()[:8]


def _owner_prefix() -> str:
    """The folder name's owner part, `mpr-transcode-<host>-<pid>-<start>-`: the name is made in
    the same system call as the folder, so a kill -9 at any point leaves no folder whose owner
    is unknown (a separate owner file could be missing or empty)."""
    pid = os.getpid()
    return f"{WORKDIR_PREFIX}{_host_tag(socket.gethostname())}-{pid}-{_process_started(pid)}-"


def _new_workdir(settings: Settings) -> Path:
    """A new private temp folder (in MPR_TEMP_DIR, else the system's), named by its owner."""
    root = settings.temp_dir
    try:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=_owner_prefix(), dir=root))
    except OSError as exc:
        raise ConfigError(f"cannot make a temp folder in {root or tempfile.gettempdir()}: "
                          f"{exc.strerror or exc}", hint="set MPR_TEMP_DIR to a writable folder "
                                                         "with free space") from None


def _owner(work: Path) -> list[str] | None:
    """[host tag, pid, start time] of the process that made the folder, from its name, or from
    the owner file of an older folder; None when neither says."""
    parts = work.name[len(WORKDIR_PREFIX):].split("-")
    if len(parts) >= 4 and parts[1].isdigit():
        return parts[:3]
    try:
        host, pid, started = (work / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return None
    return [_host_tag(host), pid, started]


def _orphaned(work: Path, host: str) -> bool:
    """A temp folder whose owner (this host's process that made it) is gone; a folder that
    names no owner counts once it is a day old."""
    owner = _owner(work)
    if owner is None:
        try:
            return time.time() - work.stat().st_mtime > 86_400
        except OSError:
            return False
    if owner[0] != _host_tag(host) or not owner[1].isdigit():
        return False  # another machine's folder (a shared MPR_TEMP_DIR): its own runs clean it
    return _process_started(int(owner[1])) != owner[2]


def remove_dead_workdirs(settings: Settings) -> int:
    """Remove the temp folders (mpr-transcode-*) whose owning process is gone, e.g. after a
    `kill -9`; returns how many."""
    root = settings.temp_dir or Path(tempfile.gettempdir())
    removed, host = 0, socket.gethostname()
    for work in sorted(root.glob(WORKDIR_PREFIX + "*")) if root.is_dir() else []:
        if work.is_dir() and _orphaned(work, host):
            shutil.rmtree(work, ignore_errors=True)
            removed += not work.exists()
    return removed


def require_usable_temp_dir(settings: Settings) -> None:
    """ConfigError (exit 2) unless a temp folder can be made and written: checked before any
    job is created or claimed, so a bad MPR_TEMP_DIR never fails a job."""
    work = _new_workdir(settings)
    try:
        (work / "probe").write_bytes(b"mpr")
    except OSError as exc:
        raise ConfigError(f"cannot write in the temp folder {work.parent}: "
                          f"{exc.strerror or exc}", hint="set MPR_TEMP_DIR to a writable folder "
                                                         "with free space") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
