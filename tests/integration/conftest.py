"""Fixtures for the import/validate tests: one sample archive per session, uploads per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from mpr_cli.dev.sample import SampleArchive, build_sample_archive, generate_media
from tests.integration.archive import Outcome, mpr_argv, mpr_env, parse_run, upload_tree
from tests.integration.processes import GROUPS_SEEN, group_members
from tests.integration.transcoding import LONG_CODE, LONG_SECONDS, Catalogue


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    """The default sample archive (good assets, the tape master and every bad case), once."""
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.skip("needs ffmpeg and ffprobe")
    return build_sample_archive(tmp_path_factory.mktemp("sample") / "bucket")


@pytest.fixture(scope="session")
def long_audio_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    """One good audio asset whose 20-second WAV master (5.8 MB) can be uploaded in two parts."""
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.skip("needs ffmpeg and ffprobe")
    return build_sample_archive(tmp_path_factory.mktemp("long") / "bucket", assets_video=0,
                                assets_audio=1, bad=False, tape_master=False, duration=20)


@pytest.fixture(scope="session")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    """32 small good assets (copies of a few encodes): phase 3 takes a few seconds."""
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.skip("needs ffmpeg and ffprobe")
    return build_sample_archive(tmp_path_factory.mktemp("big") / "bucket", assets_video=16,
                                assets_audio=16, bad=False, tape_master=False, duration=0.4)


@pytest.fixture()
def upload(s3_admin, buckets) -> Callable[..., list[str]]:
    """upload(root, keys=None): put a local tree (or some of its keys) into the input bucket."""

    def put(root: Path, keys: Iterable[str] | None = None) -> list[str]:
        return upload_tree(s3_admin, buckets[0], root, keys)

    return put


@pytest.fixture()
def mpr_report(run_mpr) -> Callable[..., Outcome]:
    """mpr_report("import", *args, env=None): run `mpr <command> --report - ...`, parse it."""

    def run(command: str, *args: str, env: dict[str, str] | None = None) -> Outcome:
        return parse_run(run_mpr(command, "--report", "-", *args, env=env))

    return run


# -- the transcode tests' fixtures (helpers in transcoding.py) -----------------------------


@pytest.fixture()
def cat(database_url, buckets, s3_admin) -> Catalogue:
    return Catalogue(database_url, buckets[0], buckets[1], s3_admin)


@pytest.fixture()
def popen_mpr(service_env, tmp_path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `mpr ...` in its own session (a process group, as a shell job would be)."""
    started: list[subprocess.Popen[str]] = []
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(mpr_argv(*args), env=mpr_env(service_env), cwd=workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:  # never leave mpr (or an ffmpeg it started) behind a failed test
        group_members(proc.pid)
        for group in GROUPS_SEEN.get(proc.pid, {proc.pid}):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def long_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / f"{LONG_CODE}.mov"
    generate_media(path, "mov", duration=LONG_SECONDS, size="640x360")
    return path
