"""ImportRun and ImportOptions without S3 or a database: the options the commands build,
and how a stopped run hands its report back (ImportInterrupted, exit 130)."""

from __future__ import annotations

import os
import threading

import pytest

from mpr_cli.config import Settings, load_settings
from mpr_cli.errors import ExitCode, ImportInterrupted
from mpr_cli.importer import ImportOptions, ImportRun
from mpr_cli.phases.ingest import VerifyMode
from mpr_cli.report import RunStatus
from mpr_cli.rules import load_rules


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_", "SMTP_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MPR_DRY_RUN", "true")
    monkeypatch.setenv("MPR_BATCH_ASSETS", "7")
    return load_settings(env_file=None)


def test_options_take_the_settings_unless_a_flag_was_given(settings: Settings) -> None:
    options = ImportOptions.from_settings(settings, prefix="BRD/", verify="full", dry_run=None,
                                          safe_run=None, run_key="k")
    assert options == ImportOptions(prefix="BRD/", dry_run=True, safe_run=False,
                                    verify=VerifyMode.FULL, batch_assets=7, run_key="k")
    assert options.mode == "dry_run"
    given = ImportOptions.from_settings(settings, prefix="", verify="auto", dry_run=False,
                                        safe_run=True, run_key="k", command="nightly")
    assert (given.dry_run, given.safe_run, given.command, given.mode) == (
        False, True, "nightly", "safe_run")


def test_a_stopped_run_raises_import_interrupted_carrying_its_report(settings: Settings) -> None:
    stop = threading.Event()
    run = ImportRun(settings, load_rules(), ImportOptions(run_key="k"), stop=stop)
    run.stop_point()  # not set: goes on
    stop.set()
    with pytest.raises(ImportInterrupted) as raised:
        run.stop_point()
    assert raised.value.report is run.report
    assert raised.value.exit_code is ExitCode.INTERRUPTED
    assert (run.report.status, run.report.message) == (
        RunStatus.ABORTED, "interrupted: work in flight rolled back; run again to complete it")
    assert run.report_of(raised.value) is run.report


def test_a_run_that_never_started_has_no_report_to_write(settings: Settings) -> None:
    run = ImportRun(settings, load_rules(), ImportOptions())
    assert run.report_of(KeyboardInterrupt()) is None
    assert run.report.status is RunStatus.COMPLETED  # untouched
