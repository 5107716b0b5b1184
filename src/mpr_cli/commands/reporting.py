"""The reporting every run command shares (`mpr import`, `mpr validate`, `mpr nightly`): the
`--log-format` / `--log-file` options, the run's logger with its run key, phases as log
lines, and the delivery of report, metrics and digest e-mail at the end.

A command is *logged* when it is given `--log-format json` or `--log-file` (nightly always
is): its progress is then log lines (no progress bars), each carrying the run key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from mpr_cli.config import Settings
from mpr_cli.metrics import write_metrics
from mpr_cli.notify import send_digest
from mpr_cli.report import write_json
from mpr_cli.runlog import LogFormat, configure, get_logger, new_run_key

F = TypeVar("F", bound=Callable[..., Any])


def log_options(func: F) -> F:
    """The `--log-format` and `--log-file` options (parameters `log_format`, `log_file`)."""
    func = click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Also log to this file (rotated at 10 MB, 5 kept).")(func)
    return click.option("--log-format", type=click.Choice([f.value for f in LogFormat]),
                        default="text", show_default=True,
                        help="json: one JSON object per line, for log shippers.")(func)


@dataclass(frozen=True)
class RunLog:
    """One run's key and logger, as `--log-format` / `--log-file` asked."""

    run_key: str
    fmt: LogFormat
    log: logging.Logger
    logged: bool  # progress as log lines (json or a log file), not bars

    @property
    def json(self) -> bool:
        return self.fmt is LogFormat.JSON


def start_run_log(settings: Settings, log_format: str, log_file: Path | None, *,
                  always: bool = False) -> RunLog:
    """A new run key; the `mpr` logger configured for it (every configured secret scrubbed)
    when the run is logged (`always`, json or a log file). An unlogged run keeps the plain
    console output it always had."""
    fmt = LogFormat(log_format)
    logged = always or fmt is LogFormat.JSON or log_file is not None
    run_key = new_run_key()
    log = configure(run_key, settings.secret_values(), fmt=fmt, log_file=log_file,
                    stream=logged)  # unlogged: no handler, warnings bare on stderr as before
    return RunLog(run_key, fmt, log, logged)


class LoggedProgress:
    """Phases as log lines (for unattended runs); commands/nightly.py adds the jobs."""

    def __init__(self) -> None:
        self.log = get_logger()
        self.last: dict[str, int] = {}

    def __enter__(self) -> LoggedProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, phase: str, total: int | None = None) -> None:
        self.last[phase] = 0
        self.log.info("phase %s: started%s", phase, f" ({total})" if total else "")

    def update(self, phase: str, completed: int) -> None:
        self.last[phase] = completed

    def finish(self, phase: str) -> None:
        self.log.info("phase %s: done (%d)", phase, self.last.get(phase, 0))


def deliver(settings: Settings, report: dict[str, Any], exit_code: int, *,
            report_path: str | None = None, metrics_file: Path | None = None) -> None:
    """Report (`--report`), metrics (`--metrics-file`) and the digest e-mail of a finished
    run: each failure is logged and never changes the exit code."""
    log = get_logger()
    if report_path:
        try:
            write_json(report, report_path, sys.stdout)
        except OSError as exc:
            log.error("report not written to %s: %s", report_path, exc.strerror)
    if metrics_file:
        try:
            write_metrics(metrics_file, report, success=exit_code == 0, exit_code=exit_code)
        except OSError as exc:
            log.error("metrics not written to %s: %s", metrics_file, exc.strerror)
    send_digest(settings, report, exit_code)
