"""Secrets in real failure paths: what `mpr` prints, logs and reports never holds a password.

The database is reached through a libpq key=value DSN carrying the real password; S3 is named by
an endpoint URL with credentials in it, on a port where nothing listens. The run fails where a
user's would (S3 unreachable), and every place it writes is searched for both secrets.
"""

import json

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mpr_cli.dev.devservices import free_port

pytestmark = pytest.mark.integration

ENDPOINT_SECRET = "ep-s3cret-in-url"


def test_nightly_with_s3_down_shows_no_password_anywhere(run_mpr, service_env, tmp_path):
    dsn_parts = conninfo_to_dict(service_env["DATABASE_URL"])
    password = str(dsn_parts["password"])
    port = free_port()
    env = {**service_env, "DATABASE_URL": make_conninfo(**dsn_parts),
           "S3_ENDPOINT_URL": f"http://KEY:{ENDPOINT_SECRET}@127.0.0.1:{port}"}
    report, log = tmp_path / "report.json", tmp_path / "nightly.log"

    result = run_mpr("nightly", "--report", str(report), "--log-file", str(log), env=env)

    assert env["DATABASE_URL"].startswith("user=") and f"password={password}" in env[
        "DATABASE_URL"]
    assert result.returncode == 4, result.stderr
    written = {"stdout": result.stdout, "stderr": result.stderr, "log": log.read_text()}
    if report.exists():
        written["report"] = json.dumps(json.loads(report.read_text()))
    for where, text in written.items():
        assert password not in text, where
        assert ENDPOINT_SECRET not in text, where
    assert f"S3 unreachable at http://KEY:****@127.0.0.1:{port}" in result.stderr + written["log"]


def test_db_status_with_a_key_value_dsn_to_a_closed_port(run_mpr, service_env):
    dsn_parts = {**conninfo_to_dict(service_env["DATABASE_URL"]), "port": str(free_port())}
    password = str(dsn_parts["password"])

    result = run_mpr("db", "status", env={**service_env, "MPR_DB_RETRY_SECONDS": "0",
                                          "DATABASE_URL": make_conninfo(**dsn_parts)})

    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database unreachable:"), lines
    assert password not in result.stdout + result.stderr
