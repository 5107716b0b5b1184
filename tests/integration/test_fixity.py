"""`mpr fixity` against real PostgreSQL and SeaweedFS: one imported audio asset (six files, a
5.8 MB master), then bytes flipped, objects replaced or deleted through S3, S3 cut mid-run,
budgets that end a run and the next run that continues, and the nightly's quick pass."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.archive import (
    held_transaction,
    mpr_argv,
    mpr_env,
    parse_run,
    query,
    upload_multipart,
    wait_until_waiting_on_a_lock,
)
from tests.integration.mail import smtp_server
from tests.integration.proxy import forwarder

pytestmark = pytest.mark.integration

MASTER = "CD/AO-SMP-00001.wav"
CHECKSUMS = "CD/AO-SMP-00001.md5"
# the order a full pass takes on a fresh import: least recently verified first, by id
FULL_ORDER = """SELECT key, size, last_full_verified_at, last_verified_at, last_verified_how,
                       fixity_outcome
                FROM asset_files WHERE in_bucket
                ORDER BY coalesce(last_full_verified_at, created_at), id"""


def damaged(data: bytes) -> bytes:
    copy = bytearray(data)
    copy[len(copy) // 2] ^= 0xFF
    return bytes(copy)


@pytest.fixture()
def imported(long_audio_archive, upload, run_mpr, database_url) -> list[dict[str, Any]]:
    """The asset imported; its asset_files rows in the order a full pass takes them."""
    upload(long_audio_archive.root)
    result = run_mpr("import")
    assert result.returncode == 0, result.stderr
    found = rows(database_url)
    assert len(found) >= 4 and MASTER in {r["key"] for r in found}
    return found


def rows(database_url: str) -> list[dict[str, Any]]:
    return query(database_url, FULL_ORDER)


def fixity_events(database_url: str, key: str | None = None) -> list[dict[str, Any]]:
    return query(database_url, """SELECT key, outcome, detail, run_key FROM events
                                  WHERE event_type = 'fixity check'
                                    AND (%(key)s::text IS NULL OR key = %(key)s)
                                  ORDER BY id""", {"key": key})


def fixity(run_mpr: Any, *args: str) -> Any:
    return parse_run(run_mpr("fixity", "--report", "-", *args))


def problems(outcome: Any) -> dict[str, str]:
    return {p["key"]: p["reason"] for p in outcome.report["problems"]}


def test_a_flipped_byte_is_a_mismatch_of_the_full_pass(imported, run_mpr, s3_admin, buckets,
                                                       database_url):
    """One byte of the master changed through S3 (same size): `--full` reports
    fixity_mismatch, exit 1, with a failure event; every other file is fixity_ok. Found again
    by the next run, it is known: exit 0, unless --strict."""
    body = s3_admin.get_object(Bucket=buckets[0], Key=MASTER)["Body"].read()
    s3_admin.put_object(Bucket=buckets[0], Key=MASTER, Body=damaged(body))

    run = fixity(run_mpr, "--full")

    assert run.returncode == 1, run.stderr
    assert problems(run) == {MASTER: "fixity_mismatch"}
    assert run.report["counts"]["fixity_ok"] == len(imported) - 1
    assert run.report["counts"]["bytes_verified"] == sum(r["size"] for r in imported)
    [event] = fixity_events(database_url, MASTER)
    assert event["outcome"] == "failure" and "fixity_mismatch" in event["detail"]
    assert event["run_key"] == run.report["run_key"]
    assert {r["key"]: r["fixity_outcome"] for r in rows(database_url)}[MASTER] == \
        "fixity_mismatch"
    assert all(r["last_verified_how"] == "full" for r in rows(database_url))

    again = fixity(run_mpr, "--full")
    assert again.returncode == 0, again.stderr
    assert [p["known"] for p in again.report["problems"]] == [True]
    assert fixity(run_mpr, "--full", "--strict").returncode == 1


def test_a_changed_etag_is_caught_by_the_quick_pass(imported, run_mpr, s3_admin, buckets,
                                                    database_url):
    """Other bytes of the same size put at a key: the listing's ETag (the new bytes' MD5) is
    not the catalogued MD5. The quick pass reads no bytes."""
    body = s3_admin.get_object(Bucket=buckets[0], Key=CHECKSUMS)["Body"].read()
    s3_admin.put_object(Bucket=buckets[0], Key=CHECKSUMS, Body=damaged(body))

    run = fixity(run_mpr)

    assert run.returncode == 1, run.stderr
    assert run.report["method"] == "quick"
    assert problems(run) == {CHECKSUMS: "fixity_mismatch"}
    assert run.report["counts"]["bytes_verified"] == 0
    assert run.report["counts"]["fixity_ok"] == len(imported) - 1
    after = {r["key"]: r for r in rows(database_url)}
    assert after[CHECKSUMS]["fixity_outcome"] == "fixity_mismatch"
    assert all(r["last_verified_how"] == "quick" and r["last_full_verified_at"] is None
               for r in after.values())
    assert len(fixity_events(database_url)) == len(imported)
    # with a time budget the quick pass goes page by page, least recently verified first
    paged = fixity(run_mpr, "--max-time", "1h")
    assert (paged.returncode, problems(paged)) == (0, {CHECKSUMS: "fixity_mismatch"})
    assert [p["known"] for p in paged.report["problems"]] == [True]
    assert paged.report["counts"]["checked"] == len(imported)


def test_a_multipart_reupload_of_the_same_bytes_is_no_false_alarm(imported, run_mpr,
                                                                   s3_admin, buckets):
    """The master uploaded again in two parts: its ETag is no MD5 and differs from the
    catalogue's, so the quick pass cannot tell from the listing; it reads that one object and
    finds the catalogued MD5."""
    body = s3_admin.get_object(Bucket=buckets[0], Key=MASTER)["Body"].read()
    upload_multipart(s3_admin, buckets[0], MASTER, body)

    run = fixity(run_mpr)

    assert run.returncode == 0, run.stderr
    assert run.report["problems"] == []
    assert run.report["counts"]["bytes_verified"] == len(body)


def test_a_deleted_object_is_missing(imported, run_mpr, s3_admin, buckets, database_url):
    s3_admin.delete_object(Bucket=buckets[0], Key=CHECKSUMS)

    quick = fixity(run_mpr)
    full = fixity(run_mpr, "--full")

    assert (quick.returncode, full.returncode) == (1, 0), (quick.stderr, full.stderr)
    assert problems(quick) == problems(full) == {CHECKSUMS: "missing_object"}
    assert [p["known"] for p in full.report["problems"]] == [True]
    assert [e["outcome"] for e in fixity_events(database_url, CHECKSUMS)] == ["failure"] * 2
    shown = run_mpr("fixity", "--json", "--report", "-")  # the report once on stdout
    assert json.loads(shown.stdout)["problems"][0]["reason"] == "missing_object"


def test_s3_lost_mid_run_is_not_verified_exit_4_and_nothing_marked_bad(
        imported, service_env, services, database_url, tmp_path):
    """The full pass held on recording its second file (a row lock), S3 cut, then let go: the
    next file cannot be read after the retries, so it is not_verified (a warning event, its row
    untouched), the run stops with exit 4 and no file is marked bad."""
    held = imported[1]["key"]
    with forwarder(services.s3_endpoint) as s3:
        env = mpr_env(service_env, S3_ENDPOINT_URL=f"http://127.0.0.1:{s3.port}")
        (tmp_path / "cwd").mkdir(exist_ok=True)
        proc = subprocess.Popen(mpr_argv("fixity", "--full", "--report", "-"), env=env,
                                cwd=tmp_path / "cwd", stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            with held_transaction(database_url, "SELECT 1 FROM asset_files WHERE key = %s "
                                  "FOR UPDATE", (held,)):
                wait_until_waiting_on_a_lock(proc, database_url)
                s3.cut()
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()

    assert proc.returncode == 4, stderr
    report = json.loads(stdout)
    assert report["status"] == "failed" and "S3" in report["message"]
    counts = report["counts"]
    assert (counts["fixity_ok"], counts["not_verified"]) == (2, 1)
    assert counts["fixity_mismatch"] == counts["missing_object"] == 0
    assert counts["not_reached"] == len(imported) - 3
    [failed] = report["problems"]
    assert failed == {**failed, "key": imported[2]["key"], "reason": "not_verified",
                      "severity": "warning"}
    after = rows(database_url)
    assert [r["fixity_outcome"] for r in after if r["fixity_outcome"]] == ["fixity_ok"] * 2
    untouched = {r["key"]: r for r in after}[imported[2]["key"]]
    assert untouched["last_verified_at"] is None
    assert [e["outcome"] for e in fixity_events(database_url, imported[2]["key"])] == \
        ["warning"]


def test_max_bytes_ends_a_run_and_the_next_continues(imported, run_mpr, database_url):
    sizes = [r["size"] for r in imported]

    first = fixity(run_mpr, "--full", "--max-bytes", str(sizes[0] + sizes[1]))
    second = fixity(run_mpr, "--full", "--max-bytes", str(sizes[2] + sizes[3]))

    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert first.report["status"] == second.report["status"] == "budget_spent"
    assert first.report["counts"]["bytes_verified"] == sizes[0] + sizes[1]
    assert first.report["counts"]["not_reached"] == len(imported) - 2
    by_run = {first.report["run_key"]: set(), second.report["run_key"]: set()}
    for event in fixity_events(database_url):
        by_run[event["run_key"]].add(event["key"])
    assert list(by_run.values()) == [{r["key"] for r in imported[:2]},
                                     {r["key"] for r in imported[2:4]}]


def test_max_time_ends_a_run_and_the_next_continues(imported, run_mpr, database_url):
    """--max-time 0s: the budget is spent once a file is done, so each run verifies one file,
    the least recently verified: the next run takes the next one."""
    first = fixity(run_mpr, "--full", "--max-time", "0s")
    second = fixity(run_mpr, "--full", "--max-time", "0s")

    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert first.report["counts"]["checked"] == second.report["counts"]["checked"] == 1
    assert [e["key"] for e in fixity_events(database_url)] == [r["key"] for r in imported[:2]]
    assert second.report["counts"]["not_reached"] == len(imported) - 1  # of all, again


def test_bad_budgets_are_one_line_usage_errors(run_mpr):
    for args in (["--max-bytes", "lots"], ["--max-time", "90"], ["--older-than", "3x"]):
        result = run_mpr("fixity", *args)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"error: Invalid value for '{args[0]}'")


def test_nightly_runs_a_quick_pass_after_the_import(long_audio_archive, upload, run_mpr,
                                                    database_url):
    upload(long_audio_archive.root)

    result = run_mpr("nightly", "--report", "-")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    quick, full = report["fixity"]["quick"], report["fixity"]["full"]
    catalogued = rows(database_url)
    assert quick["counts"]["fixity_ok"] == len(catalogued)
    assert full["counts"]["fixity_ok"] >= 1
    details = [e["detail"] for e in fixity_events(database_url)]
    assert sum(d.startswith("fixity_ok: quick:") for d in details) == len(catalogued)


def test_one_digest_email_and_the_fixity_metrics_per_run(imported, run_mpr, s3_admin, buckets,
                                                         service_env, tmp_path: Path):
    s3_admin.delete_object(Bucket=buckets[0], Key=CHECKSUMS)
    metrics = tmp_path / "mpr-fixity.prom"
    with smtp_server() as (port, mailbox):
        env = {**service_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
               "MPR_NOTIFY_TO": "archive@example.org", "MPR_NOTIFY_ON": "problems"}
        result = run_mpr("fixity", "--report", "-", "--metrics-file", str(metrics), env=env)

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    [received] = mailbox.messages
    assert received.message["Subject"].startswith(
        f"mpr fixity completed: {report['counts']['checked']} files checked, 1 errors")
    body = received.body()
    assert body.startswith(f"mpr fixity {report['run_key']}: completed (exit code 1)")
    assert "missing_object (error): 1" in body and CHECKSUMS in body
    [attachment] = received.attachments()
    assert json.loads(attachment.get_content()) == report
    text = metrics.read_text()
    assert 'mpr_fixity_files{method="quick",outcome="missing_object"} 1' in text
    assert 'mpr_fixity_last_run_exit_code{method="quick"} 1' in text
    assert 'mpr_fixity_last_success_timestamp_seconds{method="quick"} 0' in text


def test_a_listing_out_of_byte_order_is_no_false_missing(imported, run_mpr, s3_admin,
                                                         buckets, database_url):
    """SeaweedFS lists the folder CD/AO-SMP-00001/ before CD/AO-SMP-00001.md5 (byte order has
    '.' before '/'): a file catalogued in that folder, and every other, is still found."""
    key, body = "CD/AO-SMP-00001/notes.json", b'{"notes": "a file in a folder"}'
    etag = s3_admin.put_object(Bucket=buckets[0], Key=key, Body=body)["ETag"].strip('"')
    query(database_url, """INSERT INTO asset_files (asset_id, bucket, key, role, size, etag, md5)
                           SELECT asset_id, bucket, %s, 'metadata', %s, %s, %s
                           FROM asset_files WHERE key = %s RETURNING id""",
          (key, len(body), etag, etag, MASTER))
    listed = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=buckets[0])["Contents"]]
    assert listed != sorted(listed, key=str.encode)  # the case this test is about

    run = fixity(run_mpr)

    assert run.returncode == 0, run.stderr
    assert run.report["problems"] == []
    assert run.report["counts"]["fixity_ok"] == len(imported) + 1


def test_a_replaced_file_starts_its_fixity_record_again(imported, long_audio_archive, run_mpr,
                                                        s3_admin, buckets, database_url):
    """A mismatch found, then the operator accepts new bytes (`mpr replace`): a mismatch of
    those bytes is a new problem (exit 1), not the known one of the old bytes."""
    body = s3_admin.get_object(Bucket=buckets[0], Key=MASTER)["Body"].read()
    first = damaged(body)
    s3_admin.put_object(Bucket=buckets[0], Key=MASTER, Body=first)
    assert fixity(run_mpr, "--full").returncode == 1
    old_md5, new_md5 = hashlib.md5(body).hexdigest(), hashlib.md5(first).hexdigest()
    sidecar = (long_audio_archive.root / CHECKSUMS).read_text().replace(old_md5, new_md5)
    s3_admin.put_object(Bucket=buckets[0], Key=CHECKSUMS, Body=sidecar.encode())
    replaced = run_mpr("replace", MASTER)
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert {r["key"]: r["fixity_outcome"] for r in rows(database_url)}[MASTER] is None

    second = bytearray(first)
    second[1000] ^= 0xFF
    s3_admin.put_object(Bucket=buckets[0], Key=MASTER, Body=bytes(second))
    run = fixity(run_mpr, "--full")

    assert run.returncode == 1, run.stderr
    assert [(p["key"], p["known"]) for p in run.report["problems"]] == [(MASTER, False)]
