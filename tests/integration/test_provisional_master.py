"""A master that `mpr transcode KEY` registered before any import is provisional: the next
import checks its asset in full, as if it were new, and confirms it or reports its problems.
Real PostgreSQL, SeaweedFS, ffmpeg and the real `mpr` script.
"""

from __future__ import annotations

import json

import pytest

from mpr_cli.dev.sample import SampleArchive
from tests.integration.archive import parse_run, upload_tree
from tests.integration.transcoding import (
    VIDEO_CODE,
    VIDEO_MASTER,
    build_awaiting_archive,
    output_key,
)

pytestmark = pytest.mark.integration


SIDECARS = [f"FILE/{VIDEO_CODE}.json", f"FILE/{VIDEO_CODE}.md5", f"FILE/{VIDEO_CODE}_qc.pdf"]
WRONG_MD5 = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("provisional") / "bucket", 2)


def jobs(run_mpr) -> list[dict]:
    listed = run_mpr("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def inputs(cat) -> list[str]:
    """The catalogued keys of the input bucket (the transcode's outputs are in the other)."""
    return sorted(f["key"] for f in cat.files(VIDEO_CODE) if f["bucket"] == cat.bucket_in)


def test_provisional_master_is_checked_by_the_next_import_then_confirmed(archive, cat, run_mpr):
    upload_tree(cat.s3, cat.bucket_in, archive.root, [VIDEO_MASTER, *SIDECARS])
    good_md5 = cat.s3.get_object(Bucket=cat.bucket_in, Key=SIDECARS[1])["Body"].read()
    cat.s3.put_object(Bucket=cat.bucket_in, Key=SIDECARS[1],
                      Body=f"{WRONG_MD5}  {VIDEO_CODE}.mov\n".encode())

    made = run_mpr("transcode", VIDEO_MASTER)

    assert made.returncode == 0, made.stdout + made.stderr
    [master] = cat.files(VIDEO_CODE, "master")
    assert master["provisional"] is True and master["import_run_id"] is None
    assert [j["master_provisional"] for j in jobs(run_mpr)] == [True]
    assert "(master provisional: run mpr import)" in run_mpr("jobs", "list").stdout

    # the next import checks the asset as if it were new: the wrong .md5 is reported
    checked = parse_run(run_mpr("import", "--report", "-"))

    assert checked.returncode == 1, checked.stderr
    assert checked.reasons().get(VIDEO_MASTER) == "checksum_mismatch", checked.report["problems"]
    [still] = cat.files(VIDEO_CODE, "master")
    assert still["provisional"] is True
    assert inputs(cat) == [VIDEO_MASTER]  # nothing of the refused asset went in

    # the delivery corrected: the import confirms the master with its verified values
    cat.s3.put_object(Bucket=cat.bucket_in, Key=SIDECARS[1], Body=good_md5)
    confirmed = parse_run(run_mpr("import", "--report", "-"))

    assert confirmed.returncode == 0, confirmed.report["problems"]
    [master] = cat.files(VIDEO_CODE, "master")
    assert master["provisional"] is False
    assert master["import_run_id"] == confirmed.report["run_id"]
    assert master["md5"] == good_md5.split()[0].decode()
    assert inputs(cat) == sorted([VIDEO_MASTER, *SIDECARS])
    assert [f["key"] for f in cat.files(VIDEO_CODE, "streaming")] == [output_key(VIDEO_CODE)]
    assert [j["master_provisional"] for j in jobs(run_mpr)] == [False]

    again = parse_run(run_mpr("import", "--report", "-"))  # nothing left to check
    assert (again.returncode, again.counts["inserted_files"]) == (0, 0)
