"""Fixtures for the import/validate tests: one sample archive per session, uploads per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mpr_cli.sample import SampleArchive, build_sample_archive
from tests.integration.archive import Outcome, parse_run, upload_tree


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
