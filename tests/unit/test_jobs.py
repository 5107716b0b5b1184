"""The job store's records without a database: `Job` from a row and back to JSON, `JobStatus`,
the claim predicate that `claim_job` and `count_claimable` share, and the pool's and the
transcode's result records."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mpr_cli import db
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.rules import MediaType, Role
from mpr_cli.storage import ObjectInfo
from mpr_cli.transcode.create import choose_preset
from mpr_cli.transcode.jobs import ClaimScope, Job, JobStatus, like_prefix
from mpr_cli.transcode.pool import PoolResult
from mpr_cli.transcode.stages import TranscodeResult

CREATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job_row(**changes: Any) -> dict[str, Any]:
    """A `SELECT j.*` row of transcode_jobs, in the table's column order."""
    row: dict[str, Any] = {
        "id": 7, "asset_id": 3, "source_bucket": "in", "source_key": "BRD/VO-UMT-14387.mov",
        "preset": "web-720p", "output_bucket": "out", "output_key": "BRD/VO-UMT-14387.mp4",
        "status": "FAILED", "attempts": 1, "max_attempts": 3, "error": "boom",
        "stderr_tail": "the tail", "progress": 42.5, "worker": "host:1:0",
        "created_at": CREATED, "started_at": CREATED, "heartbeat_at": None,
        "finished_at": CREATED, "inventory_code": "VO-UMT-14387", "media_type": "video",
           "task_id": None, "dispatched_at": None}
    row.update(changes)
    return row


def test_a_job_is_built_from_its_row_with_its_status_an_enum():
    job = Job.from_row(job_row())
    assert job.id == 7 and job.asset_id == 3 and job.source_key == "BRD/VO-UMT-14387.mov"
    assert job.status is JobStatus.FAILED
    assert job.master_provisional is None


def test_from_row_ignores_columns_the_record_does_not_know():
    job = Job.from_row(job_row(a_later_column=1, master_provisional=True))
    assert job.master_provisional is True


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError):
        Job.from_row(job_row(status="LOST"))


def test_to_json_is_the_row_without_the_stderr_tail_in_column_order_with_iso_times():
    """What `mpr jobs list --json` printed from the row dict before there was a Job."""
    row = job_row(master_provisional=False)
    expected = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
                if k != "stderr_tail"}
    out = Job.from_row(row).to_json()
    assert out == expected
    assert list(out) == list(expected)
    assert type(out["status"]) is str


def test_to_json_leaves_out_master_provisional_when_the_row_had_none():
    assert "master_provisional" not in Job.from_row(job_row()).to_json()


def test_job_status_values_are_the_table_check_constraint():
    assert [s.value for s in JobStatus] == ["PENDING", "PROCESSING", "COMPLETED", "FAILED",
                                          "CANCELLED"]
    assert f"{JobStatus.PENDING:<10}|" == "PENDING   |"


def _where(sql: str) -> str:
    """The text from the first WHERE to the end of the predicate, whitespace folded."""
    body = " ".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    found = re.search(r"WHERE \(status = 'PENDING'.*?\)\)\s+AND.*?::bigint\[\]\)\)", body)
    assert found is not None
    return " ".join(found.group(0).split())


def test_claim_and_count_share_one_predicate_word_for_word():
    assert _where(db.query("claim_job")) == _where(db.query("count_claimable"))
    # what a celery dispatch waits on is what the workers' claims would take
    assert _where(db.query("claim_job")) == _where(db.query("claimable_jobs"))


def test_claim_parameters_escape_the_prefix_wildcards():
    params = ClaimScope("in", "out", [1, 2], "A_B%").params(120.0)
    assert params == {"lease": 120.0, "source_bucket": "in", "output_bucket": "out",
                      "only_ids": [1, 2], "prefix": "A\\_B\\%%"}
    assert like_prefix("") == "%"


def test_a_pool_result_names_the_master_of_each_job_it_finished():
    job = Job.from_row(job_row())
    result = PoolResult(finished={JobStatus.FAILED: [7]}, jobs={7: job})
    assert result.count(JobStatus.FAILED) == 1 and result.count(JobStatus.COMPLETED) == 0
    assert result.source_key(7) == "BRD/VO-UMT-14387.mov"
    assert result.source_key(8) == ""


def test_a_transcode_result_lists_every_key_it_wrote():
    def obj(key: str) -> ObjectInfo:
        return ObjectInfo(key, 10, '"etag"', CREATED)

    result = TranscodeResult("A/x.mp4", 100, '"e"', "0" * 32, "video/mp4", {}, (
        (obj("A/x.mp4.md5"), Role.CHECKSUM), (obj("A/x.mp4.json"), Role.METADATA)), 1.0, 2.0)
    assert result.keys == ["A/x.mp4", "A/x.mp4.md5", "A/x.mp4.json"]


def test_the_preset_asked_for_else_the_media_types_default():
    book = load_presets(None)
    assert choose_preset(book, "web-1080p-hevc", MediaType.VIDEO).name == "web-1080p-hevc"
    assert choose_preset(book, None, MediaType.VIDEO) is book.default_for(MediaType.VIDEO)
    assert choose_preset(book, None, MediaType.AUDIO) is book.default_for(MediaType.AUDIO)
