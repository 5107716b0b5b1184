"""Exceptions nobody foresaw, inside the pool: the job they hit fails alone, and one raised
by the pool's own threads reaches the caller instead of ending a thread silently (which used
to leave the encoders blocked and jobs PROCESSING).

The pool runs in this process against real PostgreSQL, SeaweedFS and ffmpeg. The faults are
injected (a `prepare` or a progress display that raises), because real ffmpeg and S3 cannot
produce a bug in mpr's own code.
"""

from __future__ import annotations

import pytest

from mpr_cli.dev.sample import SampleArchive
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.rules import load_rules
from mpr_cli.transcode.jobrunner import JobRunner
from mpr_cli.transcode.jobs import Job, JobStatus
from mpr_cli.transcode.pool import NoEvents, run_pending
from tests.integration.transcoding import (
    AUDIO_CODE,
    VIDEO_CODE,
    build_awaiting_archive,
    leftover_workdirs,
    output_key,
    register_sample,
)

pytestmark = pytest.mark.integration

CODES = [VIDEO_CODE, AUDIO_CODE]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return build_awaiting_archive(tmp_path_factory.mktemp("faults") / "bucket", len(CODES))


@pytest.fixture()
def runner(settings, archive, cat) -> JobRunner:
    register_sample(cat, archive, CODES)
    return JobRunner(settings, load_rules(), load_presets(), workers=2)


def statuses(cat) -> dict[str, str]:
    return {j["inventory_code"]: j["status"] for j in cat.jobs()}


def test_an_unforeseen_exception_in_one_job_fails_that_job_and_the_pool_goes_on(
        runner, cat, service_env, monkeypatch):
    prepare = runner.prepare

    def breaks_on_the_video(job: Job):
        if job.inventory_code == VIDEO_CODE:
            raise KeyError("codec_name")
        return prepare(job)

    monkeypatch.setattr(runner, "prepare", breaks_on_the_video)

    result = run_pending(runner, workers=2)

    assert statuses(cat) == {VIDEO_CODE: "FAILED", AUDIO_CODE: "COMPLETED"}
    [failed] = [j for j in cat.jobs() if j["status"] == "FAILED"]
    assert failed["error"] == "internal error (KeyError: 'codec_name') (report this as a bug)"
    assert result.count(JobStatus.FAILED) == 1 and result.count(JobStatus.COMPLETED) == 1
    assert cat.output_keys() == {output_key(AUDIO_CODE) + s for s in ("", ".md5", ".json")}
    assert leftover_workdirs(service_env) == []


class BrokenDisplay(NoEvents):
    """A progress display with a bug: it raises when told that a job started."""

    def job_started(self, job: Job) -> None:
        raise RuntimeError("the display broke")


def test_an_exception_in_the_pools_own_thread_reaches_the_caller_and_leaves_no_job_running(
        runner, cat, service_env):
    with pytest.raises(RuntimeError, match="the display broke"):
        run_pending(runner, workers=2, events=BrokenDisplay())

    # no job was started (the display fails before ffmpeg): each is PENDING again, its
    # attempt given back, for the next run; nothing is left behind
    jobs = cat.jobs()
    assert {j["status"] for j in jobs} == {"PENDING"}
    assert [j["attempts"] for j in jobs] == [0, 0]
    assert cat.output_keys() == set()
    assert leftover_workdirs(service_env) == []

    again = run_pending(runner, workers=2)  # the next run completes them
    assert again.count(JobStatus.COMPLETED) == 2
    assert set(statuses(cat).values()) == {"COMPLETED"}
