"""One hostile asset among five: the four good ones are inserted, the hostile one is a problem
with a reason, the run exits 1 and writes its report. Against real PostgreSQL, SeaweedFS and
the real `mpr` script.

The good assets come from the sample archive (2 video, 2 audio); each case makes a fifth asset,
VO-HST-00005, as a copy of a good video asset with one of its files made hostile.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.db import FileRow
from mpr_cli.dev.sample import SampleArchive
from mpr_cli.phases.ingest import IngestPlan
from mpr_cli.phases.insert import BatchInserter
from mpr_cli.report import Report
from mpr_cli.rules import MediaType
from tests.integration.archive import (
    HOSTILE,
    assert_four_good_inserted,
    build_four,
    hostile_copy,
    parse_run,
    query,
    row_counts,
    upload_tree,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    if not shutil.which("ffmpeg"):
        pytest.skip("needs ffmpeg")
    return build_four(tmp_path_factory.mktemp("four") / "bucket")


def edit_json(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def add_field(raw: str) -> Callable[[str], str]:
    """Put `"extra": <raw>` into the top object of a JSON document, as text."""
    return lambda text: text.replace("{", '{"extra": ' + raw + ", ", 1)


HOSTILE_JSON = {  # case -> (change to VO-HST-00005.json, what the message says)
    "nan": (add_field("NaN"), "NaN is not a JSON number"),
    "infinity-from-1e999": (add_field("1e999"), "too large for JSON"),
    "nul-in-a-string": (add_field('"a\\u0000b"'), "NUL character"),
    "lone-surrogate": (add_field('"\\ud800"'), "unpaired UTF-16 surrogate"),
    "nested-985-deep": (add_field("[" * 985 + "]" * 985), "nests deeper than 64 levels"),
    "negative-file-size": (lambda t: t.replace('"FileSize":"', '"FileSize":"-', 1),
                           "file size of -"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_metadata_sidecar_is_a_problem_and_the_rest_goes_in(
        case, four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    root = hostile_copy(four, tmp_path / "bucket")
    change, says = HOSTILE_JSON[case]
    edit_json(root / "BRD" / f"{HOSTILE}.json", change)
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    assert run.returncode == 1, run.stderr
    problems = [p for p in run.report["problems"] if p["inventory_code"] == HOSTILE]
    assert [(p["key"], p["reason"]) for p in problems] == [
        (f"BRD/{HOSTILE}.json", "invalid_metadata_sidecar")], problems
    assert says in problems[0]["message"]
    assert "Traceback" not in run.stderr
    assert_four_good_inserted(database_url, four)
    assert run.counts["inserted_assets"] == 4


def test_metadata_sidecar_of_the_streaming_copy_without_a_master_is_a_problem(
        four, tmp_path, s3_admin, buckets, run_mpr, database_url):
    """<code>.json holding the mediainfo of the .mp4, and no master in the delivery."""
    root = hostile_copy(four, tmp_path / "bucket")
    brd = root / "BRD"
    (brd / f"{HOSTILE}.mov").unlink()
    (brd / f"{HOSTILE}.json").unlink()
    (brd / f"{HOSTILE}.mp4.json").rename(brd / f"{HOSTILE}.json")
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    assert run.returncode == 1, run.stderr
    reasons = {p["reason"] for p in run.report["problems"] if p["inventory_code"] == HOSTILE}
    assert reasons and "internal_error" not in reasons, run.report["problems"]
    assert reasons == {"metadata_mismatch"}, run.report["problems"]
    assert "Traceback" not in run.stderr and "ValueError" not in json.dumps(run.report)
    assert_four_good_inserted(database_url, four)


# -- codes the rules accept are codes the catalogue stores ---------------------------------------


def test_unicode_digits_in_a_code_are_refused_in_phase_1(four, tmp_path, s3_admin, buckets,
                                                         run_mpr, database_url):
    root = hostile_copy(four, tmp_path / "bucket")
    fullwidth = "VO-HST-０００１５"  # fullwidth digits: \d matched them before patterns were ASCII
    for path in (root / "BRD").glob(f"{HOSTILE}*"):
        path.rename(path.parent / path.name.replace(HOSTILE, fullwidth))
    upload_tree(s3_admin, buckets[0], root)

    run = parse_run(run_mpr("import", "--report", "-"))

    assert run.returncode == 1, run.stderr
    refused = {p["key"]: p["reason"] for p in run.report["problems"]}
    assert refused and set(refused.values()) == {"invalid_inventory_code"}, refused
    assert all(fullwidth in key for key in refused)
    assert_four_good_inserted(database_url, four)


def test_rules_with_other_codes_import_what_validate_accepts(four, tmp_path, s3_admin, buckets,
                                                             run_mpr, database_url):
    """A replacement rules file with 13-character codes: validate and import agree."""
    rules = (Path(db.__file__).parent / "rules.toml").read_text(encoding="utf-8")
    rules = (rules.replace("code_length = 12", "code_length = 13")
             .replace(r"\d{5}$'", r"\d{6}$'").replace("VO-UMT-14387", "VO-UMT-143870"))
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules, encoding="utf-8")
    root = tmp_path / "bucket"
    shutil.copytree(four.root, root)
    for path in sorted(root.rglob("*-SMP-0000*")):  # VO-SMP-00001 -> VO-SMP-000001
        if path.suffix in (".md5", ".json"):
            edit_json(path, lambda t: t.replace("-SMP-0000", "-SMP-00000"))
        path.rename(path.parent / path.name.replace("-SMP-0000", "-SMP-00000"))
    upload_tree(s3_admin, buckets[0], root)

    checked = parse_run(run_mpr("validate", "--rules", str(rules_file), "--report", "-"))
    imported = parse_run(run_mpr("import", "--rules", str(rules_file), "--report", "-"))

    assert checked.returncode == 0, checked.report["problems"]
    assert imported.returncode == 0, (imported.report["problems"], imported.stderr)
    codes = {r["inventory_code"] for r in query(database_url, "SELECT inventory_code FROM assets")}
    assert codes == {c.replace("-SMP-0000", "-SMP-00000") for c in four.assets_ok}


# -- a batch the catalogue refuses leaves out only the asset it refused ---------------------------


def plan(code: str, key: str, **row: object) -> IngestPlan:
    fields = dict(inventory_code=code, bucket="in", key=key, role="master", in_bucket=True,
                  size=10, etag="e", md5="0" * 32, mime_type="video/quicktime",
                  tech_metadata=None)
    fields.update(row)
    return IngestPlan(code, MediaType.VIDEO, rows=[FileRow(**fields)])  # type: ignore[arg-type]


def test_refused_asset_is_left_out_of_its_batch_and_the_others_go_in(settings: Settings,
                                                                      database_url):
    """The inserter's own safety net, past every validation: the catalogue's CHECK refuses
    one asset's row (an MD5 that is not hex); the batch is retried asset by asset."""
    report = Report(command="import")
    with db.connect(settings) as conn:
        inserter = BatchInserter(conn, None, report, dry_run=False, existing=set())
        for p in (plan("VO-AAA-00001", "BRD/VO-AAA-00001.mov"),
                  plan("VO-BAD-00002", "BRD/VO-BAD-00002.mov", md5="not an md5"),
                  plan("VO-CCC-00003", "BRD/VO-CCC-00003.mov", size=-1)):
            inserter.add(p)
        inserter.flush()
        conn.commit()

    assert [r["inventory_code"] for r in query(
        database_url, "SELECT inventory_code FROM assets ORDER BY 1")] == ["VO-AAA-00001"]
    assert row_counts(database_url)["asset_files"] == 1
    assert (report.counts.inserted_assets, report.counts.inserted_files) == (1, 1)
    assert [(p.key, p.reason.value) for p in report.problems] == [
        ("BRD/VO-BAD-00002.mov", "internal_error"), ("BRD/VO-CCC-00003.mov", "internal_error")]
    assert "CheckViolation" in report.problems[0].message
    assert report.counts.errors == 2


# -- text from the bucket never breaks the output -------------------------------------------------

MARKUP_KEYS = ["FILE/[/]VO-HST-00006.mov", "FILE/[bold]VO-HST-0007.mp4",
               "FILE/VO-HST-00008\n2026-12-01 INFO forged line.mov",
               "FILE/VO-HST-00009\x1b[2J.mp4"]


def test_keys_with_markup_and_control_characters_are_shown_escaped(
        four, tmp_path, s3_admin, buckets, run_mpr, database_url, service_env):
    upload_tree(s3_admin, buckets[0], four.root)
    for key in MARKUP_KEYS:
        s3_admin.put_object(Bucket=buckets[0], Key=key, Body=b"x")

    done = run_mpr("import")
    junit = run_mpr("validate", "--format", "junit")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    out = done.stdout + done.stderr
    assert "\x1b" not in out, "an ESC from a key reached the terminal"
    assert not [line for line in out.splitlines() if line.startswith("2026-12-01 INFO forged")]
    assert "VO-HST-00008\\n2026-12-01 INFO forged line.mov" in out
    assert "VO-HST-00009\\x1b[2J.mp4" in out
    assert "[/]VO-HST-00006.mov" in out and "[bold]VO-HST-0007.mp4" in out
    assert_four_good_inserted(database_url, four)
    assert junit.returncode == 1, junit.stderr
    suite = ET.fromstring(junit.stdout.split("?>", 1)[1])  # well-formed whatever the keys
    names = {case.get("name") for case in suite.iter("testcase")}
    assert "FILE/VO-HST-00009\\x1b[2J.mp4" in names and "FILE/[/]VO-HST-00006.mov" in names


def test_report_json_keeps_keys_exactly(four, tmp_path, s3_admin, buckets, run_mpr):
    upload_tree(s3_admin, buckets[0], four.root)
    for key in MARKUP_KEYS:
        s3_admin.put_object(Bucket=buckets[0], Key=key, Body=b"x")

    run = parse_run(run_mpr("import", "--dry-run", "--report", "-"))

    assert run.returncode == 1
    assert {p["key"] for p in run.report["problems"]} >= set(MARKUP_KEYS)
    assert json.loads(json.dumps(run.report)) == run.report


def test_a_second_streaming_copy_recorded_meanwhile_is_duplicate_role(settings: Settings,
                                                                      database_url):
    """A transcode recorded VO-DUP-00004's streaming copy while this import planned a
    delivered one: the catalogue's one-streaming-copy index refuses it, and the problem says
    so (duplicate_role), never internal_error."""
    code = "VO-DUP-00004"
    report = Report(command="import")
    with db.connect(settings) as conn:
        db.insert_files(conn, None, [(code, "video")], [plan(code, f"FILE/{code}.mp4",
                                                            role="streaming",
                                                            mime_type="video/mp4").rows[0]])
        conn.commit()
        inserter = BatchInserter(conn, None, report, dry_run=False, existing=set())
        inserter.add(plan("VO-AAA-00001", "BRD/VO-AAA-00001.mov"))
        inserter.add(plan(code, f"BRD/{code}.mp4", role="streaming", mime_type="video/mp4"))
        inserter.flush()
        conn.commit()

    assert [(p.key, p.reason.value) for p in report.problems] == [
        (f"BRD/{code}.mp4", "duplicate_role")]
    assert "UniqueViolation" in report.problems[0].message
    keys = [r["key"] for r in query(database_url, "SELECT key FROM asset_files ORDER BY key")]
    assert keys == ["BRD/VO-AAA-00001.mov", f"FILE/{code}.mp4"]
