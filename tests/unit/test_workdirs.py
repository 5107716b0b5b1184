"""Transcode temp folders: each names its owner from the moment it exists, and only the folders
of this host's processes that are gone are removed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpr_cli.config import load_settings
from mpr_cli.transcode import workdirs as transcode


@pytest.fixture
def settings(monkeypatch, tmp_path):
    monkeypatch.setenv("MPR_TEMP_DIR", str(tmp_path / "temp"))
    return load_settings(env_file=None)


def dead_process() -> tuple[int, str]:
    """The pid and start time of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = transcode._process_started(child.pid)
    child.kill()
    child.wait()
    assert started is not None
    return child.pid, started


def folder(settings, name: str) -> Path:
    path = settings.temp_dir / name
    path.mkdir(parents=True)
    (path / "in").mkdir()
    return path


def test_a_new_folder_names_its_owner_without_any_file_in_it(settings):
    work = transcode._new_workdir(settings)
    assert list(work.iterdir()) == []  # nothing a kill -9 could leave half written
    assert str(os.getpid()) in work.name
    assert transcode.remove_dead_workdirs(settings) == 0
    assert work.is_dir()  # its owner (this process) is alive


def test_the_folder_of_a_process_that_is_gone_is_removed(settings):
    pid, started = dead_process()
    tag = transcode._host_tag(socket.gethostname())
    dead = folder(settings, f"{transcode.WORKDIR_PREFIX}{tag}-{pid}-{started}-abc123")
    alive = transcode._new_workdir(settings)

    assert transcode.remove_dead_workdirs(settings) == 1
    assert not dead.exists() and alive.is_dir()


def test_a_reused_pid_does_not_keep_a_dead_folder(settings):
    tag = transcode._host_tag(socket.gethostname())
    # this process's pid, but another start time: the folder's maker is gone
    dead = folder(settings, f"{transcode.WORKDIR_PREFIX}{tag}-{os.getpid()}-1-abc123")
    assert transcode.remove_dead_workdirs(settings) == 1
    assert not dead.exists()


def test_another_hosts_folder_is_left_to_that_host(settings):
    pid, started = dead_process()
    other = folder(settings, f"{transcode.WORKDIR_PREFIX}0badcafe-{pid}-{started}-abc123")
    assert transcode.remove_dead_workdirs(settings) == 0
    assert other.is_dir()


def test_an_older_folder_with_an_owner_file_is_judged_by_it(settings):
    pid, started = dead_process()
    dead = folder(settings, f"{transcode.WORKDIR_PREFIX}abc123")
    (dead / transcode.OWNER_FILE).write_text(f"{socket.gethostname()} {pid} {started}")
    live = folder(settings, f"{transcode.WORKDIR_PREFIX}def456")
    (live / transcode.OWNER_FILE).write_text(
        f"{socket.gethostname()} {os.getpid()} {transcode._process_started(os.getpid())}")

    assert transcode.remove_dead_workdirs(settings) == 1
    assert not dead.exists() and live.is_dir()


def test_a_folder_naming_no_owner_is_removed_once_a_day_old(settings):
    fresh = folder(settings, f"{transcode.WORKDIR_PREFIX}abc123")
    old = folder(settings, f"{transcode.WORKDIR_PREFIX}def456")
    day_ago = time.time() - 86_400 - 60
    os.utime(old, (day_ago, day_ago))

    assert transcode.remove_dead_workdirs(settings) == 1
    assert fresh.is_dir() and not old.exists()
