"""The one scrubber: known secrets and credentials recognised by their shape never survive."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mpr_cli import runlog
from mpr_cli.config import load_settings
from mpr_cli.notify import build_message
from mpr_cli.secrets import MASK, mask_url, redact_query, scrub, url_queries


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:p4ss@h:5432/db", "postgresql://u:****@h:5432/db"),
    ("postgres://u:p4ss@h/db", "postgres://u:****@h/db"),
    ("postgresql://u:p@ss:w/rd@h/db", "postgresql://u:****@h/db"),  # not percent-encoded
    ("postgresql://u:se%zzcret@h/db", "postgresql://u:****@h/db"),  # a bad % escape
    ("postgresql://u@h/db?sslmode=require&password=qs3cret", "postgresql://u@h/db?sslmode="
     "require&password=****"),
    ("host=x password=s3cret dbname=y", "host=x password=**** dbname=y"),
    ("host=x password='a b' dbname=y", "host=x password=**** dbname=y"),
    ("host=x password = 'it\\'s' dbname=y", "host=x password = **** dbname=y"),
    ("host=x password=a\\ b dbname=y", "host=x password=**** dbname=y"),
    ("http://KEY:S3CRET@seaweed:8333", "http://KEY:****@seaweed:8333"),
    ("smtp://mailer:pw@mail.example:587", "smtp://mailer:****@mail.example:587"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("http://seaweed:8333", "http://seaweed:8333"),
    ("host=x dbname=y", "host=x dbname=y"),
    ("mpr:s3cret@localhost/mpr", MASK),  # no scheme: it may be all secret
    ("s3cret", MASK),
])
def test_mask_url_hides_the_password_of_every_form(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize("text", [
    'connection to server at "db" failed: FATAL for postgresql://mpr:hunter22@db:5432/mpr',
    "cannot connect with host=db port=1 password=hunter22 dbname=mpr: refused",
    "cannot connect with host=db password='hunter22 x' dbname=mpr",
    "GET http://db/x?user=mpr&password=hunter22&a=1 failed",
    "S3 endpoint https://AKIA:hunter22@s3.example/ refused",
])
def test_scrub_finds_credentials_it_was_not_told_about(text):
    scrubbed = scrub(text)

    assert "hunter22" not in scrubbed
    assert MASK in scrubbed


def test_scrub_keeps_the_rest_of_the_message():
    text = "connect to postgresql://mpr:hunter22@db:5432/mpr failed: Connection refused"

    assert scrub(text) == "connect to postgresql://mpr:****@db:5432/mpr failed: Connection refused"


def test_scrub_replaces_known_secrets_also_percent_encoded():
    text = "secret p@ss:w/rd, in a URL p%40ss%3Aw%2Frd, inside p@ss:w/rd-and-more"

    scrubbed = scrub(text, ["p@ss:w/rd", None, ""])

    assert scrubbed == "secret ****, in a URL ****, inside ****-and-more"


def test_scrub_replaces_the_longest_secret_first():
    assert scrub("key abcdef", ["abc", "abcdef"], mask="X") == "key X"


def test_text_without_secrets_is_unchanged():
    text = 'password authentication failed for user "mpr" at http://seaweed:8333/bucket?x=1'

    assert scrub(text, ["not-in-it"]) == text


def test_presigned_signature_is_redacted_from_argv_and_output():
    url = "https://s3.example/in/A.mov?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"

    assert redact_query(url) == "https://s3.example/in/A.mov?<redacted>"
    assert redact_query("/tmp/A.mov") == "/tmp/A.mov"
    output = f"{url}: Invalid data found"
    assert scrub(output, url_queries(["-i", url, "out.mp4"]), mask="<redacted>") == (
        "https://s3.example/in/A.mov?<redacted>: Invalid data found")


# -- every scrubber is this one: the run log and the digest e-mail -----------------------------


@pytest.mark.parametrize("fmt", list(runlog.LogFormat))
def test_run_log_lines_and_tracebacks_carry_no_secret(tmp_path: Path, fmt):
    log_file = tmp_path / "run.log"
    log = runlog.configure("run-1", ["known-s3cret"], fmt=fmt, log_file=log_file, stream=False)
    try:
        log.warning("S3 refused known-s3cret at %s", "http://KEY:shape-s3cret@seaweed:8333")
        try:
            raise RuntimeError("host=db password='shape s3cret' dbname=mpr")
        except RuntimeError:
            log.exception("connect failed")
    finally:
        runlog.configure("run-2", [], stream=False)  # closes the file handler

    written = log_file.read_text()
    assert "s3cret" not in written
    assert "http://KEY:****@seaweed:8333" in written
    if fmt is runlog.LogFormat.TEXT:
        assert "RuntimeError: host=db password=**** dbname=mpr" in written


def _attachment(message: EmailMessage) -> str:
    part = next(p for p in message.iter_attachments())
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_digest_mail_carries_no_secret():
    settings = load_settings(env_file=None, smtp_host="127.0.0.1", notify_to=("ops@x.org",),
                             database_url='host=db password=pw"s3cret dbname=mpr',
                             aws_secret_access_key="aws-s3cret")
    report = {"command": "nightly", "status": "failed", "counts": {"errors": 1},
              "problems": [{"key": "A.mov", "reason": "s3_error", "severity": "error",
                            "message": "denied for aws-s3cret"}],
              "message": 'database unreachable: password=pw"s3cret refused (aws-s3cret)'}

    message = build_message(settings, report, 4)

    body = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    attached = _attachment(message)
    assert "s3cret" not in str(message["Subject"]) + body + page + attached
    assert "database unreachable: password=**** refused (****)" in page
    assert "database unreachable: password=**** refused (****)" in body
    assert json.loads(attached)["problems"][0]["message"] == "denied for ****"


def test_the_scrubbers_of_db_and_storage_share_the_settings_secrets():
    from mpr_cli.db import _scrub as db_scrub
    from mpr_cli.storage import Storage

    settings = load_settings(env_file=None, database_url="postgresql://u:db-s3cret@h/d",
                             s3_endpoint_url="http://KEY:ep-s3cret@seaweed:8333")
    text = "failed: db-s3cret ep-s3cret http://x:other-s3cret@y\nsecond line"

    assert db_scrub(text, settings) == "failed: **** **** http://x:****@y"
    storage = Storage(settings, client=object())
    assert storage._scrub(text) == "failed: **** **** http://x:****@y\nsecond line"
    assert storage.endpoint == "http://KEY:****@seaweed:8333"
