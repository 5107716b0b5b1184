"""The real `mpr` group run in this process with click's CliRunner (no server), as the unit
tests of the command line use it: in an empty folder, with none of the caller's settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mpr_cli import cli

# every setting mpr reads starts with one of these (a test session exports CELERY_BROKER_URL)
SETTING_PREFIXES = ("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_", "SMTP_", "CELERY_")


def runner_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """run(*args, **env): `mpr` with only `env` as its settings, in `folder`."""
    runner = CliRunner()
    cleared: dict[str, str | None] = {k: None for k in os.environ
                                      if k.startswith(SETTING_PREFIXES)}
    monkeypatch.chdir(folder)

    def run(*args: str, **env: str) -> Result:
        return runner.invoke(cli.main, list(args), prog_name="mpr", env={**cleared, **env},
                             catch_exceptions=False)

    return run


def one_line(result: Result) -> str:
    """The one line a failing command printed on stderr (fails when it printed more)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
