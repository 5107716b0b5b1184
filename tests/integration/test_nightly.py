"""`mpr nightly` as cron runs it: the real script in a subprocess, against real PostgreSQL,
SeaweedFS, ffmpeg and a real local SMTP server (aiosmtpd on a free loopback port).

One sample archive with two masters awaiting transcode is generated per session. The module
runs one full nightly (report, metrics, JSON logs, e-mail, every secret configured) on its own
database and buckets, and several tests read that run's outputs; the other tests each get a
fresh database and fresh buckets.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from mpr_cli.dev.devservices import ServiceState, free_port
from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import (
    Outcome,
    awaiting_codes,
    awaiting_masters,
    clean_keys,
    keys_of,
    mpr_argv,
    mpr_env,
    nightly_sample,
    query,
    tree_keys,
    upload_tree,
)
from tests.integration.mail import Received, smtp_server
from tests.integration.reports import assert_contract, assert_manifest_reasons, json_lines

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

SMTP_USER = "mpr-mailer"
SMTP_PASSWORD = "smtp-S3cret-xyz"
NOTIFY_TO = ("archive@example.org", "ops@example.org")
NOTIFY_FROM = "mpr@example.org"
STRAY_ERROR_KEY = "FILE/VO-BAD-00001.txt"  # a phase-1 error (unsupported extension)
WARNING_CODE = "AO-BAD-00011"  # imported with a warning (missing QC report), nothing else
LAST_SUCCESS = "mpr_last_success_timestamp_seconds"
IMPORT_PHASES = {"discover", "crossref", "ingest", "insert"}


# -- the sample archive (media generated once per session) ----------------------------------------


@pytest.fixture(scope="session")
def nightly_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return nightly_sample(tmp_path_factory)


# -- the SMTP server's environment -------------------------------------------------------------


def smtp_env(port: int, notify_on: str = "always", **extra: str) -> dict[str, str]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "MPR_NOTIFY_ON": notify_on,
            "MPR_NOTIFY_TO": ",".join(NOTIFY_TO), "MPR_NOTIFY_FROM": NOTIFY_FROM, **extra}


# -- running mpr ----------------------------------------------------------------------------------


def nightly_env(service_env: dict[str, str], **extra: str) -> dict[str, str]:
    """A `mpr` subprocess environment: this test's services, no SMTP_* from the caller."""
    env = {k: v for k, v in mpr_env(service_env).items() if not k.startswith("SMTP_")}
    return {**env, **extra}


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(mpr_argv(*args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def cli_json(env: dict[str, str], cwd: Path, *args: str) -> Any:
    result = run_cli(env, cwd, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n" \
           f"{result.stderr[-4000:]}"


# -- catalogue, metrics ---------------------------------------------------------------------------


def table_counts(database_url: str) -> dict[str, int]:
    """Rows of every table of the catalogue (whatever the migrations created)."""
    with psycopg.connect(database_url) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
        return {name: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(name))).fetchone()[0] for name in names}


def bucket_keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, labels) -> value), via prometheus_client."""
    kinds: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return kinds, samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def scalar(samples: Samples, name: str) -> float | None:
    return samples.get((name, frozenset()))


def last_success_line(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(LAST_SUCCESS)]


# -- the module's full run: one nightly with everything on ----------------------------------------


@dataclass
class FullRun:
    archive: SampleArchive
    result: subprocess.CompletedProcess[str]
    report_text: str
    metrics_text: str
    metrics_dir: Path
    log_text: str
    messages: list[Received]
    database_url: str
    bucket_in: str
    bucket_out: str
    s3: Any
    env: dict[str, str]
    cwd: Path
    secrets: dict[str, str]
    started: float
    finished: float

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.report_text)


@contextlib.contextmanager
def scratch_database(services: ServiceState, template: str) -> Iterator[str]:
    """A database cloned from the migrated template (as the `database_url` fixture does)."""
    base, name = services.database_url.rsplit("/", 1)[0], "n_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@contextlib.contextmanager
def scratch_buckets(s3: Any) -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    pair = (f"in-{tag}", f"out-{tag}")
    for name in pair:
        s3.create_bucket(Bucket=name)
    try:
        yield pair
    finally:
        for name in pair:
            with contextlib.suppress(Exception):
                for key in bucket_keys(s3, name):
                    s3.delete_object(Bucket=name, Key=key)
                s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def full_run(services: ServiceState, template_db: str, nightly_archive: SampleArchive,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullRun]:
    """`mpr nightly` on the whole sample (bad files, two masters awaiting transcode) with
    --report, --metrics-file, JSON logs to stderr and a file, and the digest e-mail to an SMTP
    server requiring the configured password."""
    tmp = tmp_path_factory.mktemp("full-run")
    s3 = boto3.client("s3", endpoint_url=services.s3_endpoint,
                      aws_access_key_id=services.s3_access_key,
                      aws_secret_access_key=services.s3_secret_key, region_name="us-east-1")
    with (scratch_database(services, template_db) as database_url,
          scratch_buckets(s3) as (bucket_in, bucket_out),
          smtp_server(SMTP_USER, SMTP_PASSWORD) as (port, mailbox)):
        upload_tree(s3, bucket_in, nightly_archive.root)
        service_env = {**services.env(), "DATABASE_URL": database_url,
                       "S3_BUCKET_IN": bucket_in, "S3_BUCKET_OUT": bucket_out,
                       "MPR_TEMP_DIR": str(tmp / "mpr-tmp")}
        env = nightly_env(service_env, **smtp_env(port, SMTP_USER=SMTP_USER,
                                                  SMTP_PASSWORD=SMTP_PASSWORD))
        paths = {"report": tmp / "report.json", "metrics": tmp / "metrics" / "mpr.prom",
                 "log": tmp / "logs" / "nightly.log"}
        started = time.time()
        result = run_cli(env, tmp / "cwd", "nightly", "--report", str(paths["report"]),
                         "--metrics-file", str(paths["metrics"]), "--log-format", "json",
                         "--log-file", str(paths["log"]))
        finished = time.time()
        assert paths["report"].exists(), explain(result)
        yield FullRun(
            archive=nightly_archive, result=result,
            report_text=paths["report"].read_text(encoding="utf-8"),
            metrics_text=paths["metrics"].read_text(encoding="utf-8"),
            metrics_dir=paths["metrics"].parent,
            log_text=paths["log"].read_text(encoding="utf-8"), messages=list(mailbox.messages),
            database_url=database_url, bucket_in=bucket_in, bucket_out=bucket_out, s3=s3,
            env=env, cwd=tmp / "cwd",
            secrets={"DB password": services.pg_password,
                     "AWS_SECRET_ACCESS_KEY": services.s3_secret_key,
                     "SMTP_PASSWORD": SMTP_PASSWORD},
            started=started, finished=finished)


# -- the full run: exit code, report, catalogue ---------------------------------------------------


def test_nightly_exit_code_report_and_transcoded_masters(full_run: FullRun) -> None:
    run, report = full_run, full_run.report
    # exit code: the worst step, here the import (bad files); the transcode step went well
    assert run.result.returncode == 1, explain(run.result)
    assert report["exit_code"] == 1

    # the import contract, with command "nightly"
    assert_contract(Outcome(run.result.returncode, report, run.result.stderr))
    assert_manifest_reasons(Outcome(run.result.returncode, report, run.result.stderr),
                            run.archive)
    assert (report["command"], report["status"], report["dry_run"], report["safe_run"]) == (
        "nightly", "completed", False, False)
    assert report["counts"]["errors"] > 0 and report["counts"]["warnings"] == 1
    assert report["counts"]["inserted_assets"] == len(run.archive.assets_ok)
    assert set(report["durations_s"]) >= IMPORT_PHASES | {"transcode", "total"}

    # the transcode section
    masters = awaiting_masters(run.archive)
    assert len(masters) == 2
    transcode = report["transcode"]
    assert transcode == {"created": 2, "jobs": {"COMPLETED": 2}, "failures": [], "message": "",
                         "left_running": []}

    # the catalogue: COMPLETED jobs and a streaming row (with its object) per awaiting master
    jobs = query(run.database_url, "SELECT * FROM transcode_jobs ORDER BY source_key")
    assert [(j["source_bucket"], j["source_key"], j["status"]) for j in jobs] == [
        (run.bucket_in, key, "COMPLETED") for key in masters]
    streaming = query(run.database_url, """
        SELECT a.inventory_code, f.bucket, f.key, f.size, f.preset FROM asset_files f
        JOIN assets a ON a.id = f.asset_id
        WHERE f.role = 'streaming' AND f.bucket = %s ORDER BY a.inventory_code""",
                      (run.bucket_out,))
    assert [r["inventory_code"] for r in streaming] == sorted(awaiting_codes(run.archive))
    by_code = {r["inventory_code"]: r for r in streaming}
    for job in jobs:
        row = by_code[job["inventory_code"]]
        assert (row["key"], row["preset"]) == (job["output_key"], job["preset"])
        head = run.s3.head_object(Bucket=run.bucket_out, Key=row["key"])
        assert head["ContentLength"] == row["size"] > 0


def test_nightly_run_recorded_in_runs_list_and_show(full_run: FullRun) -> None:
    run, report = full_run, full_run.report
    listed = cli_json(run.env, run.cwd, "runs", "list", "--json")
    assert len(listed) == 1
    row = listed[0]
    assert (row["id"], row["run_key"], row["command"], row["mode"], row["status"]) == (
        report["run_id"], report["run_key"], "nightly", "normal", "completed")
    started = datetime.fromisoformat(row["started_at"]).timestamp()
    finished = datetime.fromisoformat(row["finished_at"]).timestamp()
    assert run.started - 2 <= started <= finished <= run.finished + 2
    assert row["counts"] == report["counts"]

    shown = cli_json(run.env, run.cwd, "runs", "show", str(report["run_id"]), "--json")
    assert {k: shown[k] for k in row} == row
    # the stored report is the combined one: same problems, same transcode section
    assert shown["report"] == report
    assert shown["report"]["problems"] == report["problems"] != []


# -- the full run: e-mail -------------------------------------------------------------------------


def problem_sections(body: str) -> dict[str, tuple[str, int, list[str]]]:
    """The "Problems by reason" block: reason -> (severity, count, keys listed)."""
    lines = body.split("Problems by reason\n", 1)[1].split("\n\n", 1)[0].splitlines()
    sections: dict[str, tuple[str, int, list[str]]] = {}
    current = ""
    for line in lines:
        if line.startswith("    "):
            severity, count, keys = sections[current]
            sections[current] = (severity, count, [*keys, line.strip()])
        else:
            reason, _, rest = line.partition(" (")
            severity, _, count = rest.partition("): ")
            sections[reason] = (severity, int(count), [])
            current = reason
    return sections


def test_digest_email_one_message_counts_problems_by_reason_report_attached(
        full_run: FullRun) -> None:
    run, report = full_run, full_run.report
    counts = report["counts"]
    assert len(run.messages) == 1, [m.message["Subject"] for m in run.messages]
    received = run.messages[0]
    assert received.login == SMTP_USER.encode()  # it logged in with the configured password
    assert received.mail_from == NOTIFY_FROM and sorted(received.rcpt_tos) == sorted(NOTIFY_TO)
    message = received.message
    assert message["Subject"] == (
        f"mpr nightly completed: {counts['inserted_files']} files imported, "
        f"{counts['errors']} errors, {counts['warnings']} warnings")

    body = received.body()
    header = body.splitlines()[0]
    assert header.startswith("mpr nightly ") and header.endswith(": completed (exit code 1)")
    for name in ("inserted_files", "errors", "warnings"):
        assert f"    {name:<16} {counts[name]}" in body.splitlines()
    assert "    jobs created     2" in body and "    jobs             completed 2" in body
    expected: dict[str, tuple[str, int, list[str]]] = {}
    for problem in report["problems"]:
        severity, count, keys = expected.get(problem["reason"], (problem["severity"], 0, []))
        expected[problem["reason"]] = (severity, count + 1, keys + [problem["key"]])
    assert problem_sections(body) == {r: (s, n, keys[:5]) for r, (s, n, keys) in
                                      expected.items()}

    attachments = received.attachments()
    assert len(attachments) == 1
    assert attachments[0].get_content_type() == "application/json"
    assert attachments[0].get_filename().endswith(".json")
    assert json.loads(attachments[0].get_content()) == report


# -- the full run: JSON logs ----------------------------------------------------------------------


def test_json_logs_carry_one_run_key_found_in_report_and_runs_show(full_run: FullRun) -> None:
    run, report = full_run, full_run.report
    from_file = json_lines(run.log_text, "the log file")
    from_stderr = json_lines(run.result.stderr, "stderr")
    run_keys = {line.get("run_key") for line in from_file + from_stderr}
    assert run_keys == {report["run_key"]}
    assert all(isinstance(line, dict) and line["message"] and line["level"]
               for line in from_file + from_stderr)
    messages = [line["message"] for line in from_file]
    assert [line["message"] for line in from_stderr] == messages
    assert f"nightly run {report['run_key']} started" in messages
    assert f"nightly run {report['run_key']} finished: exit code 1" in messages
    assert any(m.startswith("digest e-mail sent to") for m in messages)
    assert run.result.stdout == ""  # the summary is for text logs only

    shown = cli_json(run.env, run.cwd, "runs", "show", report["run_key"], "--json")
    assert (shown["id"], shown["run_key"]) == (report["run_id"], report["run_key"])


# -- the full run: metrics ------------------------------------------------------------------------


def test_metrics_file_parses_with_every_family(full_run: FullRun) -> None:
    run, report = full_run, full_run.report
    kinds, samples = parse_metrics(run.metrics_text)
    assert kinds["mpr_files"] == "gauge"
    files = by_label(samples, "mpr_files", "outcome")
    assert files == {k: float(report["counts"][k]) for k in (
        "listed", "excluded", "rejected", "skipped", "accepted", "inserted_files")}
    problems = by_label(samples, "mpr_problems", "reason")
    assert problems == {r: float(n) for r, n in Counter(
        p["reason"] for p in report["problems"]).items()}
    durations = by_label(samples, "mpr_phase_duration_seconds", "phase")
    assert durations == pytest.approx(report["durations_s"], abs=1e-3)
    assert by_label(samples, "mpr_transcode_jobs", "status") == {"COMPLETED": 2.0}
    assert scalar(samples, "mpr_last_run_exit_code") == 1
    # a failed first run: no success to report yet
    assert scalar(samples, LAST_SUCCESS) == 0  # never succeeded yet: 0, an age alert fires
    assert sorted(p.name for p in run.metrics_dir.iterdir()) == ["mpr.prom"]
    last_run = scalar(samples, "mpr_last_run_timestamp_seconds")
    assert last_run is not None and run.started - 1 <= last_run <= run.finished + 1, (
        f"mpr_last_run_timestamp_seconds {last_run!r} is not the time of the run "
        f"({run.started:.3f}..{run.finished:.3f})")


# -- the full run: secrets ------------------------------------------------------------------------


def test_no_secret_in_logs_report_metrics_or_email(full_run: FullRun) -> None:
    run = full_run
    assert run.messages and run.messages[0].login == SMTP_USER.encode()  # password was used
    shown = run_cli(run.env, run.cwd, "runs", "show", str(run.report["run_id"]), "--json")
    outputs: dict[str, bytes] = {
        "stdout": run.result.stdout.encode(), "stderr": run.result.stderr.encode(),
        "log file": run.log_text.encode(), "report": run.report_text.encode(),
        "metrics": run.metrics_text.encode(), "runs show": shown.stdout.encode(),
    }
    for n, received in enumerate(run.messages):
        outputs[f"e-mail {n} (raw)"] = received.raw
        for m, part in enumerate(received.decoded_parts()):
            outputs[f"e-mail {n} part {m} (decoded)"] = part
    assert all(len(secret) >= 8 for secret in run.secrets.values())
    leaks = [(what, name) for what, data in outputs.items()
             for name, secret in run.secrets.items() if secret.encode() in data]
    assert leaks == []


# -- a clean archive, and the last-success timestamp ----------------------------------------------


def nightly_with_metrics(run_mpr: Any, env: dict[str, str], metrics: Path,
                         report: Path) -> tuple[subprocess.CompletedProcess[str], float, float]:
    started = time.time()
    result = run_mpr("nightly", "--metrics-file", str(metrics), "--report", str(report), env=env)
    return result, started, time.time()


def test_clean_archive_exits_0_and_last_success_moves_only_on_success(
        nightly_archive, upload, s3_admin, buckets, run_mpr, service_env, services,
        tmp_path) -> None:
    metrics, report_path = tmp_path / "textfile" / "mpr.prom", tmp_path / "report.json"
    env = nightly_env(service_env)
    upload(nightly_archive.root, clean_keys(nightly_archive))

    # 1. a clean archive (bad=False): exit 0, the two masters transcoded, success recorded
    result, t0, t1 = nightly_with_metrics(run_mpr, env, metrics, report_path)
    assert result.returncode == 0, explain(result)
    report = json.loads(report_path.read_text())
    assert (report["exit_code"], report["counts"]["errors"], report["counts"]["warnings"]) == (
        0, 0, 0)
    assert report["transcode"]["jobs"] == {"COMPLETED": 2}
    text = metrics.read_text()
    _, samples = parse_metrics(text)
    first = scalar(samples, LAST_SUCCESS)
    assert scalar(samples, "mpr_last_run_exit_code") == 0
    assert first is not None and t0 - 1 <= first <= t1 + 1, (
        f"{LAST_SUCCESS} {first!r} is not the time of the run ({t0:.3f}..{t1:.3f}):\n"
        f"{last_success_line(text)}")
    kept = last_success_line(text)
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["mpr.prom"]

    # 2. a file with an error: exit 1, last success kept exactly
    upload(nightly_archive.root, [STRAY_ERROR_KEY])
    result, _, _ = nightly_with_metrics(run_mpr, env, metrics, report_path)
    assert result.returncode == 1, explain(result)
    text = metrics.read_text()
    assert scalar(parse_metrics(text)[1], "mpr_last_run_exit_code") == 1
    assert last_success_line(text) == kept
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["mpr.prom"]

    # 3. the database unreachable: exit 4, last success kept exactly
    closed = free_port()
    unreachable = {**env, "MPR_DB_RETRY_SECONDS": "2",  # retried briefly, then exit 4
                   "DATABASE_URL": service_env["DATABASE_URL"].replace(
        f"127.0.0.1:{services.pg_port}/", f"127.0.0.1:{closed}/")}
    assert unreachable["DATABASE_URL"] != env["DATABASE_URL"]
    result, _, _ = nightly_with_metrics(run_mpr, unreachable, metrics, report_path)
    assert result.returncode == 4, explain(result)
    assert json.loads(report_path.read_text())["transcode"]["created"] == 0
    text = metrics.read_text()
    assert scalar(parse_metrics(text)[1], "mpr_last_run_exit_code") == 4
    assert last_success_line(text) == kept
    failed_report = report_path.read_text()
    assert json.loads(failed_report)["status"] == "failed"
    assert services.pg_password not in result.stderr + result.stdout + text + failed_report
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["mpr.prom"]

    # 4. clean again: exit 0, last success moves forward to this run
    s3_admin.delete_object(Bucket=buckets[0], Key=STRAY_ERROR_KEY)
    result, t3, t4 = nightly_with_metrics(run_mpr, env, metrics, report_path)
    assert result.returncode == 0, explain(result)
    latest = scalar(parse_metrics(metrics.read_text())[1], LAST_SUCCESS)
    assert latest is not None and latest > first and t3 - 1 <= latest <= t4 + 1
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["mpr.prom"]

    # the three runs that reached the database, newest first
    listed = json.loads(run_mpr("runs", "list", "--json", env=env, check=True).stdout)
    assert [(r["command"], r["mode"], r["status"], r["counts"]["errors"]) for r in listed] == [
        ("nightly", "normal", "completed", 0), ("nightly", "normal", "completed", 1),
        ("nightly", "normal", "completed", 0)]


# -- dry run --------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_transcodes_nothing(
        nightly_archive, upload, s3_admin, buckets, run_mpr, service_env, database_url,
        tmp_path) -> None:
    upload(nightly_archive.root)
    before = table_counts(database_url)
    report_path = tmp_path / "report.json"
    result = run_mpr("nightly", "--dry-run", "--report", str(report_path),
                     env=nightly_env(service_env))
    assert result.returncode == 1, explain(result)  # the bad files are still reported
    report = json.loads(report_path.read_text())
    assert (report["command"], report["dry_run"], report["run_id"]) == ("nightly", True, None)
    assert report["counts"]["inserted_files"] > 0  # what would have been inserted
    assert report["transcode"] == {"created": 0, "jobs": {}, "failures": [],
                                   "message": "dry run: transcoding skipped", "left_running": []}
    assert table_counts(database_url) == before
    assert {t: n for t, n in before.items() if t != "schema_migrations"} == dict.fromkeys(
        (t for t in before if t != "schema_migrations"), 0)
    assert bucket_keys(s3_admin, buckets[1]) == []
    assert bucket_keys(s3_admin, buckets[0]) == tree_keys(nightly_archive.root)
    listed = json.loads(run_mpr("runs", "list", "--json", env=nightly_env(service_env),
                                check=True).stdout)
    assert listed == []


# -- e-mail policy and an unreachable server ------------------------------------------------------


def test_notify_on_problems_and_never(nightly_archive, upload, run_mpr, service_env) -> None:
    archive = nightly_archive
    with smtp_server() as (port, mailbox):
        def nightly(notify_on: str) -> subprocess.CompletedProcess[str]:
            return run_mpr("nightly", env=nightly_env(service_env, **smtp_env(port, notify_on)))

        upload(archive.root, clean_keys(archive, awaiting=False))
        result = nightly("problems")  # no errors, no warnings: no e-mail
        assert result.returncode == 0, explain(result)
        assert mailbox.messages == []

        upload(archive.root, keys_of(archive, [WARNING_CODE]))
        result = nightly("problems")  # a warning only (exit 0): one e-mail
        assert result.returncode == 0, explain(result)
        assert [m.message["Subject"] for m in mailbox.messages] == [
            f"mpr nightly completed: {len(keys_of(archive, [WARNING_CODE]))} files imported, "
            "0 errors, 1 warnings"]

        done = set(clean_keys(archive, awaiting=False)) | set(keys_of(archive, [WARNING_CODE]))
        upload(archive.root, [k for k in tree_keys(archive.root) if k not in done
                              and k not in keys_of(archive, awaiting_codes(archive))])
        result = nightly("never")  # errors, but never: nothing
        assert result.returncode == 1, explain(result)
        assert len(mailbox.messages) == 1

        result = nightly("problems")  # the same errors, now known: exit 0, one more e-mail
        assert result.returncode == 0, explain(result)
        assert len(mailbox.messages) == 2
        subject = str(mailbox.messages[1].message["Subject"]).strip()  # folded when long
        assert subject.startswith("mpr nightly completed: 0 files imported, ")
        assert subject.endswith(" known), 0 warnings")  # the same errors as the night before
        assert " 0 errors" not in subject


def test_unreachable_smtp_keeps_exit_code_and_logs_warning(
        nightly_archive, upload, run_mpr, service_env, tmp_path) -> None:
    upload(nightly_archive.root, clean_keys(nightly_archive, awaiting=False))
    without_mail = run_mpr("nightly", env=nightly_env(service_env))
    assert without_mail.returncode == 0, explain(without_mail)

    closed = free_port()
    log_file = tmp_path / "nightly.log"
    with_mail = run_mpr("nightly", "--log-file", str(log_file), "--report",
                        str(tmp_path / "report.json"),
                        env=nightly_env(service_env, **smtp_env(closed, "always")))
    assert with_mail.returncode == without_mail.returncode, explain(with_mail)
    warnings = [line for line in log_file.read_text().splitlines()
                if " WARNING " in line and "digest e-mail not sent" in line]
    assert len(warnings) == 1 and f"127.0.0.1:{closed}" in warnings[0], log_file.read_text()
    assert warnings[0].split(" WARNING ", 1)[1] in with_mail.stderr
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 0
