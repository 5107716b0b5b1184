"""`mpr import` as a user runs it: the real script in a subprocess, against real PostgreSQL,
SeaweedFS and ffmpeg, on the sample archive (generated once per session, uploaded per test).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import pytest
from rich import filesize

from mpr_cli.dev.sample import Expect, SampleArchive, generate_media
from tests.integration.archive import (
    TAPE_CODE,
    TAPE_MASTER,
    Outcome,
    assert_rows_match_files,
    catalogue,
    clean_codes,
    duplicate_keys,
    expected_keys,
    held_asset,
    keys_of,
    md5_of,
    middle_code,
    mpr_argv,
    mpr_env,
    parse_run,
    query,
    row_counts,
    runs,
    start_import,
    upload_multipart,
    wait_until_waiting_on_a_lock,
)
from tests.integration.processes import reaped
from tests.integration.reports import (
    PHASE_1,
    assert_contract,
    assert_manifest_reasons,
    problem_set,
    reasons_by_key,
)

pytestmark = pytest.mark.integration

LATE_QC_CODE = "AO-BAD-00011"  # complete but for its QC report: imported with a warning
NOTHING = {"assets": 0, "asset_files": 0, "import_runs": 0}


# -- helpers -------------------------------------------------------------------------------------


def declared_md5(archive: SampleArchive, sidecar: str, name: str) -> str:
    for line in (archive.root / sidecar).read_text().splitlines():
        digest, _, listed = line.partition("  ")
        if listed == name:
            return digest
    raise AssertionError(f"{name} not in {sidecar}")


def good_upload(archive: SampleArchive, *extra_codes: str) -> list[str]:
    """The keys of the assets that import without any problem, plus ``extra_codes``."""
    return keys_of(archive, [*clean_codes(archive), *extra_codes])


MIXED_EXTRA = ["FILE/VO-BAD-00001.txt", "UMT/VO-UMT-20005.mp4"]  # phase 1 error, excluded


def mixed_upload(archive: SampleArchive) -> list[str]:
    """A smaller delivery with one problem of each kind: a phase-1 error, an excluded key, a
    phase-3 error (VO-BAD-00002, checksum mismatch) and a warning (AO-BAD-00011)."""
    return sorted(good_upload(archive, "VO-BAD-00002", LATE_QC_CODE) + MIXED_EXTRA)


# -- the sample archive: every reason code, the catalogue ------------------------------------------


def test_sample_archive_every_reason_and_every_good_asset(sample_archive, upload, mpr_report,
                                                          database_url):
    upload(sample_archive.root)
    out = mpr_report("import")

    # the report
    assert out.returncode == 1, out.stderr
    assert_contract(out)
    report, counts = out.report, out.counts
    assert (report["command"], report["status"], report["dry_run"], report["safe_run"]) == (
        "import", "completed", False, False)
    assert_manifest_reasons(out, sample_archive)
    files = sample_archive.files
    excluded = sum(f.expect == Expect.EXCLUDED for f in files)
    rejected = sum(r in PHASE_1 for r in sample_archive.problems().values())
    assert (counts["listed"], counts["excluded"], counts["rejected"], counts["skipped"]) == (
        len(files), excluded, rejected, 0)
    assert counts["accepted"] == len(files) - excluded - rejected
    assert counts["warnings"] == 1  # missing_qc_report of AO-BAD-00011
    assert counts["bytes_verified"] == 0  # single-part ETags are MD5s: nothing streamed
    excluded_keys = {f.key for f in files if f.expect == Expect.EXCLUDED}
    assert not excluded_keys & set(reasons_by_key(out))

    # the catalogue
    codes = set(sample_archive.assets_ok)
    assets = {r["inventory_code"]: r["media_type"]
              for r in query(database_url, "SELECT inventory_code, media_type FROM assets")}
    assert set(assets) == codes
    assert all(media == ("video" if code[0] == "V" else "audio") for code, media in assets.items())
    rows = catalogue(database_url)
    assert set(rows) == expected_keys(sample_archive, codes)
    assert_rows_match_files(database_url, sample_archive, codes)
    assert (counts["inserted_assets"], counts["inserted_files"]) == (len(codes), len(rows))
    masters = {r["mime_type"] for r in rows.values() if r["role"] == "master"}
    assert masters == {"video/quicktime", "video/x-matroska", "application/mxf", "audio/wav",
                       "audio/flac"}
    # the master's technical metadata is its sidecar, verbatim
    tech = query(database_url, "SELECT key, tech_metadata FROM asset_files WHERE role = 'master'")
    for row in tech:
        sidecar = sample_archive.root / (row["key"].rsplit(".", 1)[0] + ".json")
        assert row["tech_metadata"] == json.loads(sidecar.read_text()), row["key"]


def test_tape_master_is_recorded_from_its_sidecars(sample_archive, upload, mpr_report,
                                                   database_url):
    upload(sample_archive.root, keys_of(sample_archive, [TAPE_CODE]))
    out = mpr_report("import")
    assert out.returncode == 0, out.stderr
    assert out.report["problems"] == []

    row = catalogue(database_url)[TAPE_MASTER]
    assert (row["inventory_code"], row["role"], row["in_bucket"], row["etag"]) == (
        TAPE_CODE, "master", False, None)
    assert row["md5"] == declared_md5(sample_archive, "FILE/VO-TAP-00001.md5", "VO-TAP-00001.mov")
    assert row["mime_type"] == "video/quicktime" and row["has_tech"]
    sidecar = json.loads((sample_archive.root / "FILE/VO-TAP-00001.json").read_text())
    general = next(t for t in sidecar["media"]["track"] if t["@type"] == "General")
    assert row["size"] == int(general["FileSize"])
    assert (out.counts["inserted_assets"], out.counts["inserted_files"]) == (
        1, len(keys_of(sample_archive, [TAPE_CODE])) + 1)


# -- re-runs ---------------------------------------------------------------------------------------


def test_clean_delivery_imports_then_second_run_skips_everything(sample_archive, upload,
                                                                 mpr_report, database_url):
    keys = upload(sample_archive.root, good_upload(sample_archive, LATE_QC_CODE))
    codes = set(clean_codes(sample_archive)) | {LATE_QC_CODE}

    first = mpr_report("import")
    assert first.returncode == 0, first.stderr  # a warning does not fail the run
    assert_contract(first)
    assert reasons_by_key(first) == {"DAT/AO-BAD-00011.flac": {"missing_qc_report"}}
    assert first.counts["errors"] == 0 and first.counts["warnings"] == 1
    assert (first.counts["listed"], first.counts["accepted"]) == (len(keys), len(keys))
    assert (first.counts["inserted_assets"], first.counts["inserted_files"]) == (
        len(codes), len(expected_keys(sample_archive, codes)))
    assert_rows_match_files(database_url, sample_archive, codes)
    before = catalogue(database_url)

    second = mpr_report("import")
    assert second.returncode == 0, second.stderr
    assert_contract(second)
    assert second.report["problems"] == []
    counts = second.counts
    assert counts["skipped"] == counts["listed"] - counts["excluded"] == len(keys)
    assert (counts["accepted"], counts["inserted_assets"], counts["inserted_files"]) == (0, 0, 0)
    assert catalogue(database_url) == before
    assert row_counts(database_url) == {"assets": len(codes), "asset_files": len(before),
                                        "import_runs": 2}


def test_changed_object_is_flagged_and_its_record_kept(sample_archive, upload, mpr_report,
                                                       database_url, s3_admin, buckets):
    upload(sample_archive.root, good_upload(sample_archive))
    assert mpr_report("import").returncode == 0
    before = catalogue(database_url)

    same_size = "BRD/VO-SMP-00001.mp4"  # same size, other bytes: only the ETag tells
    data = bytearray((sample_archive.root / same_size).read_bytes())
    data[-1] ^= 0xFF
    s3_admin.put_object(Bucket=buckets[0], Key=same_size, Body=bytes(data))
    resized = "CD/AO-SMP-00001.mp3.json"
    s3_admin.put_object(Bucket=buckets[0], Key=resized, Body=b'{"media": null}')

    out = mpr_report("import")
    assert out.returncode == 0, out.stderr  # a warning
    assert_contract(out)
    assert reasons_by_key(out) == {same_size: {"changed_since_import"},
                                   resized: {"changed_since_import"}}
    assert {p["inventory_code"] for p in out.report["problems"]} == {"VO-SMP-00001",
                                                                     "AO-SMP-00001"}
    assert out.counts["skipped"] == out.counts["listed"] - out.counts["excluded"]
    assert (out.counts["inserted_assets"], out.counts["inserted_files"]) == (0, 0)
    assert catalogue(database_url) == before  # size, ETag and md5 as first imported


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_runs_every_phase_and_writes_nothing(sample_archive, upload, run_mpr,
                                                    service_env, database_url):
    keys = upload(sample_archive.root, mixed_upload(sample_archive))
    ways = [(("--dry-run",), None), ((), {**service_env, "MPR_DRY_RUN": "true"}),
            ((), {**service_env, "ACH_DRY_RUN": "true"})]
    dry: list[Outcome] = []
    for args, env in ways:
        out = parse_run(run_mpr("import", "--report", "-", *args, env=env))
        assert out.returncode == 1, out.stderr
        assert_contract(out)
        assert (out.report["dry_run"], out.report["run_id"], out.report["status"]) == (
            True, None, "completed")
        assert reasons_by_key(out) == {"FILE/VO-BAD-00001.txt": {"unsupported_extension"},
                                       "BRD/VO-BAD-00002.mp4": {"checksum_mismatch"},
                                       "DAT/AO-BAD-00011.flac": {"missing_qc_report"}}
        assert row_counts(database_url) == NOTHING
        dry.append(out)
    assert dry[0].counts == dry[1].counts == dry[2].counts
    assert problem_set(dry[0]) == problem_set(dry[1]) == problem_set(dry[2])
    assert dry[0].counts["listed"] == len(keys)

    real = parse_run(run_mpr("import", "--report", "-"))
    assert real.returncode == 1
    for name in ("listed", "excluded", "rejected", "skipped", "accepted", "inserted_assets",
                 "inserted_files", "errors", "warnings"):
        assert real.counts[name] == dry[0].counts[name], name
    counts = row_counts(database_url)
    assert (real.counts["inserted_assets"], real.counts["inserted_files"]) == (
        counts["assets"], counts["asset_files"])
    assert counts["assets"] == len(clean_codes(sample_archive)) + 1  # and AO-BAD-00011
    assert problem_set(real) == problem_set(dry[0])


# -- safe run ------------------------------------------------------------------------------------


def test_safe_run_aborts_on_phase3_errors_inserting_nothing(sample_archive, upload, mpr_report,
                                                           database_url):
    keys = upload(sample_archive.root, mixed_upload(sample_archive))
    out = mpr_report("import", "--safe-run")

    assert out.returncode == 3, out.stderr
    assert_contract(out)
    assert (out.report["status"], out.report["safe_run"]) == ("aborted", True)
    assert out.report["message"].startswith("safe-run:")
    assert_manifest_reasons(out, sample_archive, keys)  # every problem listed, to fix in one go
    assert {p["phase"] for p in out.report["problems"]} == {1, 3}
    assert (out.counts["inserted_assets"], out.counts["inserted_files"]) == (0, 0)
    assert row_counts(database_url) == {"assets": 0, "asset_files": 0, "import_runs": 1}
    [run] = runs(database_url)
    assert (run["status"], run["mode"], run["id"]) == ("aborted", "safe_run",
                                                       out.report["run_id"])
    assert run["counts"] == out.counts and run["finished_at"] is not None


def test_safe_run_aborts_on_a_warning_too(sample_archive, upload, mpr_report, service_env,
                                         database_url):
    upload(sample_archive.root, good_upload(sample_archive, LATE_QC_CODE))
    out = mpr_report("import", env={**service_env, "MPR_SAFE_RUN": "true"})

    assert out.returncode == 3, out.stderr
    assert out.report["status"] == "aborted"
    assert reasons_by_key(out) == {"DAT/AO-BAD-00011.flac": {"missing_qc_report"}}
    assert row_counts(database_url) == {"assets": 0, "asset_files": 0, "import_runs": 1}
    assert runs(database_url)[0]["status"] == "aborted"


def test_safe_run_on_clean_delivery_inserts_everything(sample_archive, upload, mpr_report,
                                                      service_env, database_url):
    upload(sample_archive.root, good_upload(sample_archive))
    codes = set(clean_codes(sample_archive))
    out = mpr_report("import", env={**service_env, "ACH_SAFE_RUN": "true"})

    assert out.returncode == 0, out.stderr
    assert (out.report["status"], out.report["safe_run"], out.report["problems"]) == (
        "completed", True, [])
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)
    assert out.counts["inserted_files"] == len(expected_keys(sample_archive, codes))
    [run] = runs(database_url)
    assert (run["status"], run["mode"]) == ("completed", "safe_run")


# -- checksum verification -------------------------------------------------------------------------


def media_bytes(archive: SampleArchive, keys: list[str]) -> int:
    """Total size of the masters and streaming copies among ``keys``."""
    roles = {f.key: f.role for f in archive.files}
    return sum((archive.root / k).stat().st_size for k in keys
               if roles[k] in ("master", "streaming"))


def test_verify_full_streams_every_media_object_and_catches_a_mismatch(sample_archive, upload,
                                                                       mpr_report,
                                                                       database_url):
    keys = upload(sample_archive.root, good_upload(sample_archive, "VO-BAD-00002"))
    out = mpr_report("import", "--verify", "full")

    assert out.returncode == 1, out.stderr
    assert reasons_by_key(out) == {"BRD/VO-BAD-00002.mp4": {"checksum_mismatch"}}
    assert "d41d8cd98f00b204e9800998ecf8427e" in out.report["problems"][0]["message"]
    assert out.counts["bytes_verified"] == media_bytes(sample_archive, keys) > 0
    # not a terminal: the progress is logged, a line as each bar starts and ends
    shown = filesize.decimal(out.counts["bytes_verified"])
    assert f"3 bytes verified: started ({shown} to do)" in out.stderr
    assert f"3 bytes verified: {shown} done" in out.stderr
    assert re.search(r"^3 sidecars fetched: [1-9][\d,]* done$", out.stderr, re.MULTILINE)
    codes = set(clean_codes(sample_archive))
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)
    assert_rows_match_files(database_url, sample_archive, codes)


LONG_MASTER = "CD/AO-SMP-00001.wav"


def damaged(data: bytes) -> bytes:
    """The same bytes with one flipped in the middle: same size, other MD5."""
    copy = bytearray(data)
    copy[len(copy) // 2] ^= 0xFF
    return bytes(copy)


def test_verify_auto_streams_objects_whose_etag_is_not_an_md5(long_audio_archive, upload,
                                                             mpr_report, database_url, s3_admin,
                                                             buckets):
    archive = long_audio_archive
    upload(archive.root)
    data = (archive.root / LONG_MASTER).read_bytes()
    assert len(data) > 5 * 1024 * 1024
    etag = upload_multipart(s3_admin, buckets[0], LONG_MASTER, damaged(data))
    assert re.fullmatch(r"[0-9a-f]{32}-2", etag), etag

    first = mpr_report("import")  # --verify auto
    assert first.returncode == 1, first.stderr
    assert reasons_by_key(first) == {LONG_MASTER: {"checksum_mismatch"}}
    assert first.counts["bytes_verified"] == len(data)  # only the multipart object is read
    assert row_counts(database_url)["assets"] == 0

    upload_multipart(s3_admin, buckets[0], LONG_MASTER, data)  # delivered again, intact
    second = mpr_report("import")
    assert second.returncode == 0, second.stderr
    assert second.report["problems"] == []
    assert second.counts["bytes_verified"] == len(data)
    row = catalogue(database_url)[LONG_MASTER]
    assert row["md5"] == md5_of(archive.root / LONG_MASTER)
    assert row["etag"].endswith("-2") and row["size"] == len(data)
    assert_rows_match_files(database_url, archive, set(archive.assets_ok),
                            skip={LONG_MASTER})


def test_verify_none_reads_no_object_and_trusts_the_sidecar(long_audio_archive, upload,
                                                           mpr_report, database_url, s3_admin,
                                                           buckets):
    archive = long_audio_archive
    upload(archive.root)
    data = (archive.root / LONG_MASTER).read_bytes()
    upload_multipart(s3_admin, buckets[0], LONG_MASTER, damaged(data))

    out = mpr_report("import", "--verify", "none")
    assert out.returncode == 0, out.stderr
    assert out.report["problems"] == []  # the damage goes unnoticed: nothing was read
    assert out.counts["bytes_verified"] == 0
    assert "bytes verified" not in out.stderr  # no bar for bytes nobody reads
    row = catalogue(database_url)[LONG_MASTER]
    assert row["md5"] == md5_of(archive.root / LONG_MASTER)  # what the sidecar declares
    assert row["md5"] != hashlib.md5(damaged(data)).hexdigest()


# -- deliveries that arrive in parts ------------------------------------------------------------


def test_incomplete_delivery_is_imported_once_its_md5_arrives(sample_archive, upload, mpr_report,
                                                              database_url):
    code, late = "VO-SMP-00001", "BRD/VO-SMP-00001.md5"
    codes = set(clean_codes(sample_archive))
    upload(sample_archive.root, [k for k in good_upload(sample_archive) if k != late])

    first = mpr_report("import")
    assert first.returncode == 1, first.stderr
    found = reasons_by_key(first)
    assert found["BRD/VO-SMP-00001.mov"] == {"missing_checksum"}
    assert set(found) <= {"BRD/VO-SMP-00001.mov", "BRD/VO-SMP-00001.mp4"}
    assert {r for reasons in found.values() for r in reasons} == {"missing_checksum"}
    assert all(p["inventory_code"] == code for p in first.report["problems"])
    assert not query(database_url, "SELECT 1 FROM assets WHERE inventory_code = %s", (code,))
    assert first.counts["inserted_assets"] == len(codes) - 1

    upload(sample_archive.root, [late])
    second = mpr_report("import")
    assert second.returncode == 0, second.stderr
    assert second.report["problems"] == []
    assert (second.counts["inserted_assets"], second.counts["inserted_files"]) == (
        1, len(keys_of(sample_archive, [code])))
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)
    assert_rows_match_files(database_url, sample_archive, codes)
    assert duplicate_keys(database_url) == []
    assert row_counts(database_url)["assets"] == len(codes)


def test_late_qc_report_is_attached_to_the_imported_asset(sample_archive, upload, mpr_report,
                                                          database_url):
    late = "BRD/VO-SMP-00001_qc.pdf"
    upload(sample_archive.root, [k for k in good_upload(sample_archive) if k != late])
    first = mpr_report("import")
    assert first.returncode == 0, first.stderr
    assert reasons_by_key(first) == {"BRD/VO-SMP-00001.mov": {"missing_qc_report"}}
    assert late not in catalogue(database_url)

    upload(sample_archive.root, [late])
    second = mpr_report("import")
    assert second.returncode == 0, second.stderr
    assert second.report["problems"] == []
    assert (second.counts["inserted_assets"], second.counts["inserted_files"]) == (0, 1)
    row = catalogue(database_url)[late]
    assert (row["inventory_code"], row["role"], row["mime_type"]) == (
        "VO-SMP-00001", "qc_report", "application/pdf")
    codes = set(clean_codes(sample_archive))
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)


# -- files that move or come back -----------------------------------------------------------------


@pytest.mark.parametrize("moved", ["BRD/VO-SMP-00001.mov", "BRD/VO-SMP-00001.mp4"],
                         ids=["master", "streaming"])
def test_media_moved_to_another_folder_is_refused_not_added_twice(sample_archive, upload,
                                                                  run_mpr, database_url,
                                                                  s3_admin, buckets, moved):
    """An asset has one master and one streaming copy. A catalogued file moved to another
    folder is a second one as far as the catalogue knows: it must be reported (and the other
    assets of the run imported), never inserted next to the first nor crash the run."""
    upload(sample_archive.root, keys_of(sample_archive, ["VO-SMP-00001"]))
    assert run_mpr("import").returncode == 0
    target = "FILE/" + moved.split("/", 1)[1]
    s3_admin.copy_object(Bucket=buckets[0], Key=target,
                         CopySource={"Bucket": buckets[0], "Key": moved})
    s3_admin.delete_object(Bucket=buckets[0], Key=moved)
    upload(sample_archive.root, keys_of(sample_archive, ["VO-SMP-00002"]))  # same run, same batch

    result = run_mpr("import", "--report", "-")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    out = parse_run(result)
    assert out.returncode == 1, out.stderr
    # the catalogued key no longer listed is missing (issue 12), the new one a second file
    assert reasons_by_key(out) == {target: {"duplicate_role"}, moved: {"missing_object"}}
    rows = catalogue(database_url)
    assert target not in rows and moved in rows
    roles = [r["role"] for r in rows.values() if r["inventory_code"] == "VO-SMP-00001"]
    assert roles.count("master") == roles.count("streaming") == 1
    assert set(keys_of(sample_archive, ["VO-SMP-00002"])) <= set(rows)
    assert [r["status"] for r in runs(database_url)] == ["completed", "completed"]


def test_tape_master_restored_to_the_bucket_is_not_a_change(sample_archive, upload, mpr_report,
                                                            database_url, s3_admin, buckets,
                                                            tmp_path):
    """A master recorded from its sidecars (on tape) later copied into the bucket, at the key
    the catalogue gives it and with the declared MD5, was never imported from the bucket: it
    is no `changed_since_import`, and the catalogue should learn that it is now in the bucket."""
    upload(sample_archive.root, keys_of(sample_archive, [TAPE_CODE]))
    assert mpr_report("import").returncode == 0
    restored = tmp_path / "VO-TAP-00001.mov"
    generate_media(restored, "prores")  # bit-exact: the very master the sidecars describe
    declared = declared_md5(sample_archive, "FILE/VO-TAP-00001.md5", "VO-TAP-00001.mov")
    assert md5_of(restored) == declared
    s3_admin.put_object(Bucket=buckets[0], Key=TAPE_MASTER, Body=restored.read_bytes())

    out = mpr_report("import")
    assert out.returncode == 0, out.stderr
    assert "changed_since_import" not in {p["reason"] for p in out.report["problems"]}
    row = catalogue(database_url)[TAPE_MASTER]
    assert (row["in_bucket"], row["size"], row["md5"]) == (
        True, restored.stat().st_size, declared)


# -- run history ---------------------------------------------------------------------------------


def test_each_run_is_recorded_with_its_counts(sample_archive, upload, mpr_report, database_url):
    upload(sample_archive.root, mixed_upload(sample_archive))
    first = mpr_report("import")
    second = mpr_report("import")

    recorded = runs(database_url)
    assert len(recorded) == 2
    for run, out in zip(recorded, (first, second), strict=True):
        assert run["id"] == out.report["run_id"]
        assert (run["command"], run["mode"], run["status"]) == ("import", "normal", "completed")
        assert run["counts"] == out.counts
        assert run["report"]["problems"] == out.report["problems"]
        assert run["finished_at"] >= run["started_at"]
    assert first.counts["inserted_files"] > 0 and second.counts["inserted_files"] == 0
    assert query(database_url, "SELECT DISTINCT import_run_id FROM asset_files") == [
        {"import_run_id": first.report["run_id"]}]


# -- two imports at once ---------------------------------------------------------------------------


def test_two_concurrent_imports_never_duplicate(sample_archive, upload, service_env, tmp_path,
                                                database_url):
    upload(sample_archive.root, good_upload(sample_archive))
    codes = set(clean_codes(sample_archive))
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    procs = [subprocess.Popen(mpr_argv("import", "--report", "-"), env=mpr_env(service_env),
                              cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        results.append((proc.returncode, stdout, stderr))

    completed = [parse_run(subprocess.CompletedProcess([], rc, out, err))
                 for rc, out, err in results if rc == 0]
    refused = [err for rc, _, err in results if rc != 0]
    assert completed, results
    for stderr in refused:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "another import is running" in lines[0], stderr
    for rc, _, _ in results:
        assert rc in (0, 4), results
    assert sum(o.counts["inserted_files"] for o in completed) == len(
        expected_keys(sample_archive, codes))
    assert set(catalogue(database_url)) == expected_keys(sample_archive, codes)
    assert duplicate_keys(database_url) == []
    assert row_counts(database_url)["assets"] == len(codes)
    assert [r["status"] for r in runs(database_url)] == ["completed"] * len(completed)


def test_import_while_another_runs_is_refused_in_one_line(big_archive, upload, service_env,
                                                           run_mpr, database_url, tmp_path):
    upload(big_archive.root)
    first = start_import(service_env, tmp_path / "first")
    with reaped(first):
        with held_asset(database_url, middle_code(big_archive)):
            wait_until_waiting_on_a_lock(first, database_url)  # it holds the import lock
            [running] = runs(database_url)
            second = run_mpr("import", "--report", "-")
        _, first_stderr = first.communicate(timeout=180)

    assert second.returncode == 4
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "another import is running" in lines[0]
    assert f"run {running['id']}" in lines[0] and f"pid {first.pid}" in lines[0]
    refused = json.loads(second.stdout)  # --report - is written for the refused run too
    assert (refused["status"], refused["run_id"]) == ("failed", None)
    assert "another import is running" in refused["message"] and refused["problems"] == []
    assert first.returncode == 0, first_stderr
    assert [r["status"] for r in runs(database_url)] == ["completed"]  # the refused run: no row
    codes = set(big_archive.assets_ok)
    assert set(catalogue(database_url)) == expected_keys(big_archive, codes)
    assert duplicate_keys(database_url) == []


# -- usage and set-up errors ---------------------------------------------------------------------


def test_unknown_verify_value_is_a_usage_error(run_mpr, database_url):
    result = run_mpr("import", "--verify", "sometimes")
    assert result.returncode == 2
    assert "--verify" in result.stderr and "sometimes" in result.stderr
    assert row_counts(database_url) == NOTHING


def test_missing_rules_file_is_a_usage_error(run_mpr, service_env, tmp_path, database_url):
    missing = tmp_path / "no-such-rules.toml"
    by_option = run_mpr("import", "--rules", str(missing))
    assert by_option.returncode == 2
    assert "--rules" in by_option.stderr and "does not exist" in by_option.stderr

    by_env = run_mpr("import", env={**service_env, "MPR_RULES": str(missing)})
    assert by_env.returncode == 2
    lines = by_env.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "not found" in lines[0]
    assert row_counts(database_url) == NOTHING


@pytest.mark.parametrize("args", [(), ("--dry-run",)])
def test_unmigrated_database_says_run_db_migrate(run_mpr, service_env, empty_database_url, args):
    result = run_mpr("import", *args, env={**service_env, "DATABASE_URL": empty_database_url})
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "mpr db migrate" in lines[0]
    assert result.stdout == ""
    assert query(empty_database_url,  # the check itself creates nothing
                 "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
