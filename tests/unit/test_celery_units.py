"""The celery executor without any server: the broker settings and their errors, the Celery
app's delivery settings, the dispatcher's view of the job table, `mpr workers`' rows, and the
settings the executor adds (MPR_EXECUTOR, the heartbeat within the lease, the masked broker URL).

What a user would notice is asserted: exit codes, the one line and what it names, a password
that never shows, the progress events a waiting dispatcher shows and the summary it counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result

from mpr_cli.config import Executor, Settings, load_settings
from mpr_cli.errors import ConfigError, ExitCode
from mpr_cli.ffmpeg.runner import ProgressUpdate
from mpr_cli.transcode import broker
from mpr_cli.transcode.dispatch import _Watch
from mpr_cli.transcode.jobs import Job, JobStatus, WorkerJobs
from mpr_cli.transcode.pool import PoolResult
from tests.unit.clirun import SETTING_PREFIXES, one_line, runner_in

PASSWORD = "br0ker-s3cr3t"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the caller's settings (a test session exports CELERY_BROKER_URL)."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)


def settings(**env: str) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return load_settings(env_file=None)


@pytest.fixture()
def mpr(tmp_path, monkeypatch) -> Callable[..., Result]:
    """mpr(*args, **env): the real `mpr` group in this process, in an empty folder."""
    return runner_in(tmp_path, monkeypatch)


# -- CELERY_BROKER_URL ---------------------------------------------------------------------------


def test_an_unset_broker_url_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigError) as info:
        broker.broker_url(settings())

    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith("CELERY_BROKER_URL is not set")
    assert "\n" not in info.value.one_line()


@pytest.mark.parametrize(("url", "shown"), [
    (f"amqp://guest:{PASSWORD}@rabbit:5672//", "amqp://guest:****@rabbit:5672//"),
    (f"sqs://key:{PASSWORD}@", "sqs://key:****@"),
    (f"http://:{PASSWORD}@broker:6379/0", "http://:****@broker:6379/0"),
])
def test_a_broker_url_that_is_not_redis_is_refused_with_its_password_masked(url, shown):
    with pytest.raises(ConfigError) as info:
        broker.broker_url(settings(CELERY_BROKER_URL=url))

    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message == f"CELERY_BROKER_URL must be a Redis URL, not {shown}"
    assert PASSWORD not in info.value.one_line()


@pytest.mark.parametrize("url", [f"redis://:{PASSWORD}@broker:6379/0", "rediss://broker:6380/1",
                                 "redis+socket:///run/redis.sock"])
def test_redis_urls_are_taken_as_they_are(url):
    assert broker.broker_url(settings(CELERY_BROKER_URL=url)) == url


def test_mpr_worker_without_a_broker_url_exits_2_before_touching_the_database(mpr):
    done = mpr("worker")  # no database is configured either: the broker is named first

    assert done.exit_code == 2
    assert one_line(done).startswith("error: CELERY_BROKER_URL is not set")


def test_mpr_worker_refuses_a_non_redis_broker_without_showing_its_password(mpr):
    done = mpr("worker", CELERY_BROKER_URL=f"amqp://guest:{PASSWORD}@rabbit//")

    assert done.exit_code == 2
    assert "CELERY_BROKER_URL must be a Redis URL, not amqp://guest:****@rabbit//" in one_line(done)
    assert PASSWORD not in done.output


def test_a_broker_failure_is_one_line_naming_the_setting_with_the_password_masked():
    s = settings(CELERY_BROKER_URL=f"redis://:{PASSWORD}@broker.internal:6379/0")
    # redis-py and kombu may quote the URL they were given
    error = broker.unavailable(s, ConnectionError(f"cannot use redis://:{PASSWORD}@broker:6379"))

    assert error.exit_code == ExitCode.INFRASTRUCTURE
    line = error.one_line()
    assert line.startswith("cannot reach the Celery broker redis://:****@broker.internal:6379/0 "
                           "(CELERY_BROKER_URL): ")
    assert PASSWORD not in line and "\n" not in line


def test_mpr_workers_with_the_broker_down_exits_4_naming_it_before_the_database(mpr):
    from mpr_cli.dev.devservices import free_port

    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there
    done = mpr("workers", CELERY_BROKER_URL=url)

    assert done.exit_code == 4
    line = one_line(done)
    assert line.startswith("error: cannot reach the Celery broker redis://:****@127.0.0.1:")
    assert "(CELERY_BROKER_URL)" in line and PASSWORD not in done.output


# -- the Celery app ------------------------------------------------------------------------------


def test_the_app_acknowledges_late_prefetches_one_and_keeps_no_results():
    app = broker.make_app(settings(CELERY_BROKER_URL="redis://127.0.0.1:6399/0",
                                   MPR_CELERY_VISIBILITY_TIMEOUT="7200"))
    conf = app.conf

    assert conf.broker_url == "redis://127.0.0.1:6399/0"
    assert conf.task_acks_late is True  # a task is acknowledged when its job is settled
    assert conf.task_reject_on_worker_lost is True  # a killed pool process gives it back
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert conf.result_backend is None and conf.task_ignore_result is True
    assert conf.task_default_queue == broker.QUEUE
    assert conf.task_publish_retry is False  # a broker gone mid-dispatch is exit 4 at once


def test_the_visibility_timeout_defaults_to_a_day_and_refuses_less_than_10_s():
    app = broker.make_app(settings(CELERY_BROKER_URL="redis://127.0.0.1:6399/0"))
    assert app.conf.broker_transport_options["visibility_timeout"] == 86_400

    with pytest.raises(ConfigError) as info:
        settings(MPR_CELERY_VISIBILITY_TIMEOUT="5")
    assert info.value.message.startswith("MPR_CELERY_VISIBILITY_TIMEOUT:")


def test_the_app_is_not_celerys_global_default():
    from celery import current_app

    app = broker.make_app(settings(CELERY_BROKER_URL="redis://127.0.0.1:6399/0"))
    assert current_app._get_current_object() is not app


# -- the waiting dispatcher's view of the job table -------------------------------------------


def job(job_id: int, status: JobStatus, progress: float = 0.0,
        error: str | None = None) -> Job:
    return Job(id=job_id, asset_id=1, source_bucket="in", source_key=f"V/VO-X-{job_id:05}.mov",
               preset="web-720p", output_bucket="out", output_key=f"V/VO-X-{job_id:05}.mp4",
               status=status, attempts=1, max_attempts=3, error=error, stderr_tail=None,
               progress=progress, worker="mpr@enc:1:0", created_at=T0, started_at=None,
               heartbeat_at=None, finished_at=None, inventory_code=f"VO-X-{job_id:05}",
               media_type="video", task_id="t", dispatched_at=T0)


class Recorded:
    """The JobEvents calls, as (what, job id, detail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, object]] = []

    def job_started(self, job: Job) -> None:
        self.calls.append(("started", job.id, None))

    def job_progress(self, job_id: int, update: ProgressUpdate) -> None:
        self.calls.append(("progress", job_id, update.percent))

    def job_finished(self, job: Job, status: JobStatus, message: str) -> None:
        self.calls.append(("finished", job.id, (status, message)))


def test_a_job_is_started_once_its_progress_shown_on_change_and_finished_with_its_output():
    events = Recorded()
    watch = _Watch(events, PoolResult(created=1))

    seen = [watch.update([job(7, JobStatus.PENDING)]),
            watch.update([job(7, JobStatus.PROCESSING, 0.0)]),
            watch.update([job(7, JobStatus.PROCESSING, 0.0)]),
            watch.update([job(7, JobStatus.PROCESSING, 42.5)]),
            watch.update([job(7, JobStatus.PROCESSING, 42.5)]),
            watch.update([job(7, JobStatus.COMPLETED, 100.0)])]

    assert seen == [[7], [7], [7], [7], [7], []]  # waited on until settled
    assert events.calls == [("started", 7, None), ("progress", 7, 0.0), ("progress", 7, 42.5),
                            ("finished", 7, (JobStatus.COMPLETED, "V/VO-X-00007.mp4"))]
    assert watch.result.count(JobStatus.COMPLETED) == 1
    assert watch.result.messages[7] == "V/VO-X-00007.mp4"
    assert watch.result.source_key(7) == "V/VO-X-00007.mov"


def test_a_job_settled_between_two_looks_is_still_started_then_finished_with_its_error():
    events = Recorded()
    watch = _Watch(events, PoolResult())

    left = watch.update([job(3, JobStatus.FAILED, error="ffmpeg exited 1: bad input"),
                         job(4, JobStatus.CANCELLED, error=None),
                         job(5, JobStatus.PENDING)])

    assert left == [5]
    assert events.calls == [("started", 3, None),
                            ("finished", 3, (JobStatus.FAILED, "ffmpeg exited 1: bad input")),
                            ("started", 4, None), ("finished", 4, (JobStatus.CANCELLED, ""))]
    assert watch.result.finished == {JobStatus.FAILED: [3], JobStatus.CANCELLED: [4]}


def test_a_job_that_went_back_to_pending_is_not_started_twice():
    """A dead worker's job, put PENDING again by a reaper and run by another worker."""
    events = Recorded()
    watch = _Watch(events, PoolResult())

    for row in (job(9, JobStatus.PROCESSING, 30.0), job(9, JobStatus.PENDING),
                job(9, JobStatus.PROCESSING, 0.0), job(9, JobStatus.COMPLETED, 100.0)):
        watch.update([row])

    assert [c[0] for c in events.calls] == ["started", "progress", "progress", "finished"]


# -- mpr workers' rows -------------------------------------------------------------------------


def test_workers_merges_the_brokers_nodes_with_the_job_tables_heartbeats():
    from mpr_cli.commands.workers import _merge

    nodes = {"mpr@b": {"concurrency": 1, "pid": 20, "active": []},
             "mpr@a": {"concurrency": 2, "pid": 10, "active": [5]}}
    running = [WorkerJobs("mpr@a:10:1", [5], T0), WorkerJobs("mpr@a:11:0", [3], T0 + timedelta(
        seconds=4)), WorkerJobs("laptop:99:0", [7], T0 - timedelta(seconds=1))]

    rows = _merge(nodes, running)

    assert rows == [
        {"node": "mpr@a", "concurrency": 2, "jobs": [3, 5],
         "last_heartbeat": (T0 + timedelta(seconds=4)).isoformat(),
         "seen_by": "broker and job table"},
        {"node": "mpr@b", "concurrency": 1, "jobs": [], "last_heartbeat": None,
         "seen_by": "broker"},
        {"node": "laptop", "concurrency": None, "jobs": [7],
         "last_heartbeat": (T0 - timedelta(seconds=1)).isoformat(), "seen_by": "job table"},
    ]
    json.dumps(rows)  # what `mpr workers --json` prints


def test_workers_with_nothing_seen_lists_nothing():
    from mpr_cli.commands.workers import _merge

    assert _merge({}, []) == []


# -- the settings the executor adds -------------------------------------------------------------


@pytest.mark.parametrize("value", ["celery", "CELERY", " Celery "])
def test_the_executor_setting_is_case_insensitive(value):
    assert settings(MPR_EXECUTOR=value).executor is Executor.CELERY


def test_the_executor_defaults_to_the_local_pool_and_refuses_others():
    assert settings().executor is Executor.LOCAL
    with pytest.raises(ConfigError) as info:
        settings(MPR_EXECUTOR="rabbit")
    assert info.value.message.startswith("MPR_EXECUTOR:")
    assert info.value.exit_code == ExitCode.USAGE


def test_an_upper_case_executor_reaches_the_celery_dispatch(mpr):
    """MPR_EXECUTOR=CELERY and --executor CELERY both choose celery: --no-wait is accepted and
    the missing broker is what stops the command (exit 2, no database needed)."""
    by_setting = mpr("transcode", "--pending", "--no-wait", MPR_EXECUTOR="CELERY")
    by_option = mpr("transcode", "--pending", "--executor", "CELERY", "--no-wait")
    local = mpr("transcode", "--pending", "--json", MPR_EXECUTOR="Local")

    for done in (by_setting, by_option):
        assert done.exit_code == 2
        assert one_line(done).startswith("error: CELERY_BROKER_URL is not set")
    assert local.exit_code == 2
    assert "--no-wait and --json need --executor celery" in one_line(local)


def test_a_heartbeat_longer_than_half_the_lease_is_one_line_naming_both():
    assert settings(MPR_JOB_HEARTBEAT_SECONDS="60").job_heartbeat_seconds == 60
    assert settings(MPR_JOB_LEASE_SECONDS="10",
                    MPR_JOB_HEARTBEAT_SECONDS="5").job_heartbeat_seconds == 5

    for env, lease in (({"MPR_JOB_HEARTBEAT_SECONDS": "61"}, "120"),
                       ({"MPR_JOB_LEASE_SECONDS": "10", "MPR_JOB_HEARTBEAT_SECONDS": "5.5"},
                        "10")):
        with pytest.raises(ConfigError) as info:
            settings(**env)
        assert info.value.message == ("MPR_JOB_HEARTBEAT_SECONDS: must be at most half of "
                                      f"MPR_JOB_LEASE_SECONDS ({lease})")
        assert info.value.exit_code == ExitCode.USAGE
        assert "\n" not in info.value.one_line()


def test_mpr_config_with_a_heartbeat_too_long_exits_2_in_one_line(mpr):
    done = mpr("config", MPR_JOB_LEASE_SECONDS="8", MPR_JOB_HEARTBEAT_SECONDS="5")

    assert done.exit_code == 2
    assert one_line(done).startswith("error: MPR_JOB_HEARTBEAT_SECONDS: must be at most half "
                                     "of MPR_JOB_LEASE_SECONDS (8)")


@pytest.mark.parametrize("as_json", [True, False])
def test_mpr_config_never_shows_the_broker_password(mpr, as_json):
    url = f"redis://:{PASSWORD}@broker.internal:6379/0"
    done = mpr("config", *(["--json"] if as_json else []), CELERY_BROKER_URL=url,
               MPR_EXECUTOR="celery")

    assert done.exit_code == 0, done.stderr
    assert PASSWORD not in done.output
    if as_json:
        shown = json.loads(done.stdout)
        assert shown["CELERY_BROKER_URL"]  # set, and shown masked
        assert shown["MPR_EXECUTOR"] == "celery"
    else:
        assert "CELERY_BROKER_URL" in done.stdout


def test_the_broker_password_is_among_the_secrets_scrubbed_everywhere():
    s = settings(CELERY_BROKER_URL=f"redis://user:{PASSWORD}@broker:6379/0")
    assert PASSWORD in s.secret_values()
