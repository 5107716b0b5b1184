"""`mpr fixity`: re-verify catalogued files, least recently verified first (mpr_cli.fixity)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mpr_cli.commands.context import App, graceful_stop, handles_errors, pass_app, writable_file
from mpr_cli.commands.reporting import RunLog, deliver, log_options, start_run_log
from mpr_cli.display import visible
from mpr_cli.errors import ExitCode
from mpr_cli.fixity.budget import Budget, parse_duration, parse_size
from mpr_cli.fixity.metrics import write_fixity_metrics
from mpr_cli.fixity.report import Check, FixityReport
from mpr_cli.fixity.run import FixityOptions, FixityRun


def _parsed(parse: Any) -> Any:
    """A click callback turning a size or duration into its number (None stays None); a bad
    one is click's one-line usage error (exit 2)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return callback


def _problem_line(check: Check) -> str:
    mark = " [known]" if check.known else ""
    return (f"{check.outcome.value:<16} s3://{visible(check.file.bucket)}/"
            f"{visible(check.file.key)}: {visible(check.detail)}{mark}")


def _show(report: FixityReport, run_log: RunLog, as_json: bool, report_path: str | None) -> None:
    """The JSON report on stdout (--json; once, also with `--report -`), else the problems
    and the summary line on stderr when the run is not logged (its log lines carry them)."""
    if as_json:
        if report_path != "-":
            sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return
    if run_log.logged:
        return
    for check in report.problems:
        click.echo(_problem_line(check), err=True)
    click.echo(visible(report.summary_line()), err=True)
    if report.message:
        click.echo(visible(report.message), err=True)


@click.command("fixity")
@click.option("--prefix", default="", help="Only files whose key starts with this.")
@click.option("--older-than", "older_than", metavar="DURATION",
              callback=_parsed(parse_duration),
              help="Only files not verified for this long (e.g. 90d; a file never checked "
                   "counts from its import).")
@click.option("--max-bytes", "max_bytes", metavar="SIZE", callback=_parsed(parse_size),
              help="Read at most this many bytes (e.g. 500G; --full); the first file always.")
@click.option("--max-time", "max_time", metavar="DURATION", callback=_parsed(parse_duration),
              help="Start no file after this long (e.g. 2h; 0s: one file, or one page of a "
                   "quick pass). A file being read is finished.")
@click.option("--full", is_flag=True, help="Stream every selected object through MD5 (default: "
                                           "size and ETag from one listing).")
@click.option("--strict", is_flag=True, default=None,
              help="Problems found by the check before count in the exit code too "
                   "(or MPR_STRICT).")
@click.option("--report", "report_path", metavar="PATH", callback=writable_file,
              help="Write the JSON report here (`-` for stdout).")
@click.option("--json", "as_json", is_flag=True, help="The JSON report on stdout.")
@click.option("--metrics-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Prometheus textfile-collector file for the mpr_fixity_* metrics.")
@log_options
@pass_app
@handles_errors
def fixity_command(app: App, prefix: str, older_than: float | None, max_bytes: int | None,
                   max_time: float | None, full: bool, strict: bool | None,
                   report_path: str | None, as_json: bool, metrics_file: Path | None,
                   log_format: str, log_file: Path | None) -> None:
    """Re-verify catalogued files, least recently verified first.

    Quick (default): one listing per bucket, each object's size and ETag against the
    catalogue (a single-part ETag is the MD5, so for those a real digest check; a multipart
    ETag is not an MD5: size and ETag only). --full: every object streamed through MD5.
    Exit 1 for a fixity_mismatch or missing_object, 4 when S3 failed (not_verified: nothing
    is marked bad), 0 otherwise; a run ended by its budget is continued by the next.
    """
    settings = app.settings
    run_log = start_run_log(settings, log_format, log_file)
    options = FixityOptions(full=full, prefix=prefix, older_than_s=older_than,
                            budget=Budget(max_bytes=max_bytes, max_seconds=max_time),
                            run_key=run_log.run_key,
                            strict=settings.strict if strict is None else strict)
    run_log.log.info("fixity run %s started (%s)", run_log.run_key, options.method.value)
    with graceful_stop() as stop:
        report = FixityRun(settings, options, stop=stop,
                           on_check=lambda c: _log_check(run_log, c)).run()
    code = int(report.exit_code())
    data = report.to_dict()
    deliver(settings, data, code, report_path=report_path)
    if metrics_file:
        _write_metrics(run_log, metrics_file, data, code)
    _show(report, run_log, as_json, report_path)
    run_log.log.info("%s: exit code %d", report.summary_line(), code)
    sys.exit(code)


def _log_check(run_log: RunLog, check: Check) -> None:
    if run_log.logged and check.outcome.value != "fixity_ok":
        level = run_log.log.error if check.outcome.is_error else run_log.log.warning
        level("%s", _problem_line(check))


def _write_metrics(run_log: RunLog, path: Path, data: dict[str, Any], code: int) -> None:
    try:
        write_fixity_metrics(path, data, success=code == ExitCode.OK)
    except OSError as exc:
        run_log.log.error("metrics not written to %s: %s", path, exc.strerror)
