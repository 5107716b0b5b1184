"""The same reporting for every command: `mpr import` and `mpr validate` with JSON logs and a
log file, the digest e-mail of `mpr import` through a real SMTP server (aiosmtpd), `mpr runs
show last`, and a nightly interrupted in its transcode step listed as interrupted.

The archive is the nightly tests' small sample (bad files, two masters awaiting transcode).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import nightly_sample
from tests.integration.mail import smtp_server
from tests.integration.processes import HeldFfmpeg
from tests.integration.reports import json_lines
from tests.integration.transcoding import LONG_CODE, LONG_KEY, register_master

pytestmark = pytest.mark.integration

NOTIFY_TO = "archive@example.org"


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return nightly_sample(tmp_path_factory)


def assert_one_run_key(lines: list[dict[str, Any]], run_key: str) -> None:
    assert run_key
    assert {line.get("run_key") for line in lines} == {run_key}
    assert all("run_id" not in line and line["level"] and line["message"] for line in lines)


def test_import_json_log_file_lines_parse_and_carry_the_run_key(small_archive, upload, run_mpr,
                                                                tmp_path: Path) -> None:
    upload(small_archive.root)
    log_file, report_file = tmp_path / "logs" / "import.log", tmp_path / "report.json"

    result = run_mpr("import", "--log-format", "json", "--log-file", str(log_file),
                     "--report", str(report_file))

    assert result.returncode == 1, result.stderr  # the sample's bad files
    report = json.loads(report_file.read_text(encoding="utf-8"))
    from_file = json_lines(log_file.read_text(encoding="utf-8"), "the log file")
    from_stderr = json_lines(result.stderr, "stderr")
    assert_one_run_key(from_file + from_stderr, report["run_key"])
    messages = [line["message"] for line in from_file]
    assert [line["message"] for line in from_stderr] == messages
    assert messages[0] == f"import run {report['run_key']} started"
    assert "phase discover: started" in messages and "phase ingest: done (" in " ".join(messages)
    counts = report["counts"]
    assert messages[-1] == (
        f"import run {report['run_key']} finished: completed, {counts['listed']} listed, "
        f"{counts['accepted']} accepted, {counts['inserted_files']} inserted, "
        f"{counts['errors']} errors, {counts['warnings']} warnings: exit code 1")
    assert result.stdout == ""  # no human summary with JSON logs

    shown = run_mpr("runs", "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    assert (json.loads(shown.stdout)["id"], json.loads(shown.stdout)["run_key"]) == (
        report["run_id"], report["run_key"])


def test_validate_json_log_file_lines_parse_and_carry_the_run_key(small_archive, upload, run_mpr,
                                                                  tmp_path: Path) -> None:
    upload(small_archive.root)
    log_file = tmp_path / "validate.log"

    result = run_mpr("validate", "--format", "json", "--log-format", "json", "--log-file",
                     str(log_file))

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)  # stdout holds the report alone
    lines = json_lines(log_file.read_text(encoding="utf-8"), "the log file")
    assert_one_run_key(lines + json_lines(result.stderr, "stderr"), report["run_key"])
    assert lines[0]["message"] == f"validate run {report['run_key']} started"
    assert lines[-1]["message"].startswith(f"validate run {report['run_key']} finished: ")


def test_digest_of_import_reaches_the_smtp_server(small_archive, upload, run_mpr, service_env,
                                                  tmp_path: Path) -> None:
    upload(small_archive.root)
    report_file = tmp_path / "report.json"
    with smtp_server() as (port, mailbox):
        env = {**service_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
               "MPR_NOTIFY_TO": NOTIFY_TO, "MPR_NOTIFY_FROM": "mpr@example.org",
               "MPR_NOTIFY_ON": "problems"}
        result = run_mpr("import", "--report", str(report_file), env=env)

    assert result.returncode == 1, result.stderr
    report = json.loads(report_file.read_text(encoding="utf-8"))
    [received] = mailbox.messages
    assert received.rcpt_tos == [NOTIFY_TO]
    message = received.message
    assert message["Subject"].startswith("mpr import completed: ")
    assert f"{report['counts']['errors']} errors" in message["Subject"]
    assert received.body().startswith(f"mpr import {report['run_key']}: completed (exit code 1)")
    [attachment] = received.attachments()
    assert json.loads(attachment.get_content()) == report


def test_runs_show_last_without_runs_says_so(run_mpr) -> None:
    result = run_mpr("runs", "show", "last")

    assert result.returncode == 2
    assert "no run 'last'" in result.stderr


def test_nightly_interrupted_in_its_transcode_step_is_listed_as_interrupted(
        long_master: Path, cat, popen_mpr, run_mpr) -> None:
    register_master(cat, LONG_CODE, LONG_KEY, long_master.read_bytes())
    proc = popen_mpr("nightly")
    held = HeldFfmpeg(proc).catch()  # the import has completed; the transcode step encodes

    os.kill(proc.pid, signal.SIGINT)
    held.resume_once_signalled()
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, (out, err)
    listed = run_mpr("runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["command"], row["status"], row["exit_code"]) == ("nightly", "interrupted", 130)
    text = run_mpr("runs", "list").stdout
    assert " nightly  normal    interrupted " in text
    shown = run_mpr("runs", "show", "last").stdout
    assert shown.startswith(f"run {row['id']} ({row['run_key']}): nightly normal interrupted, ")
