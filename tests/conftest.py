"""Shared fixtures: real PostgreSQL, real SeaweedFS and a real Redis on free loopback ports.

The services start once per test session (only when an integration test asks for them) and
stop at its end, leaving nothing running. Each test gets a fresh database, cloned from a
migrated template, a fresh pair of buckets and an empty Redis database (the Celery broker:
CELERY_BROKER_URL is in service_env, so every `mpr` subprocess a test runs has it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
import redis

from mpr_cli.config import FIELD_BY_ENV, Settings, load_settings
from mpr_cli.dev import devservices

TEMPLATE_DB = "mpr_template"
UNIT, INTEGRATION = Path(__file__).parent / "unit", Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every integration test carries the `integration` marker (so `-m "not integration"` runs
    without any server), and no unit test starts the services."""
    wrong = []
    for item in items:
        path = Path(str(item.path))
        marked = item.get_closest_marker("integration") is not None
        if path.is_relative_to(INTEGRATION) and not marked:
            wrong.append(f"{item.nodeid}: an integration test without the integration marker "
                         "(add pytestmark = pytest.mark.integration to its module)")
        if path.is_relative_to(UNIT) and "services" in getattr(item, "fixturenames", ()):
            wrong.append(f"{item.nodeid}: a unit test that starts the services "
                         "(move it to tests/integration)")
    if wrong:
        raise pytest.UsageError("\n".join(wrong))


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.ServiceState]:
    home = Path(tempfile.mkdtemp(prefix="mpr-test-services-"))
    home.chmod(0o755)
    try:
        state = devservices.up(home)
        yield state
    finally:
        devservices.down(home)
        shutil.rmtree(home, ignore_errors=True)


def _admin_url(state: devservices.ServiceState) -> str:
    return state.database_url.rsplit("/", 1)[0] + "/postgres"


def _db_url(state: devservices.ServiceState, name: str) -> str:
    return state.database_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def template_db(services: devservices.ServiceState) -> str:
    from mpr_cli import db

    with psycopg.connect(_admin_url(services), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    db.migrate(load_settings(env_file=None, database_url=_db_url(services, TEMPLATE_DB)))
    return TEMPLATE_DB


@pytest.fixture()
def database_url(services: devservices.ServiceState, template_db: str) -> Iterator[str]:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_admin_url(services), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _db_url(services, name)
    with psycopg.connect(_admin_url(services), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def empty_database_url(services: devservices.ServiceState) -> Iterator[str]:
    """A database with no schema at all (for migration tests)."""
    name = "e_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_admin_url(services), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _db_url(services, name)
    with psycopg.connect(_admin_url(services), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def s3_admin(services: devservices.ServiceState):
    return boto3.client(
        "s3", endpoint_url=services.s3_endpoint, aws_access_key_id=services.s3_access_key,
        aws_secret_access_key=services.s3_secret_key, region_name="us-east-1",
    )


def _empty_and_delete(client, bucket: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    client.delete_bucket(Bucket=bucket)


@pytest.fixture()
def bucket_pairs(s3_admin) -> Iterator[Callable[..., tuple[str, str]]]:
    """bucket_pairs(prefix_in="in", prefix_out="out"): a fresh pair of buckets, emptied and
    deleted when the test ends."""
    made: list[str] = []

    def make(prefix_in: str = "in", prefix_out: str = "out") -> tuple[str, str]:
        tag = uuid.uuid4().hex[:10]
        pair = (f"{prefix_in}-{tag}", f"{prefix_out}-{tag}")
        for name in pair:
            s3_admin.create_bucket(Bucket=name)
            made.append(name)
        return pair

    yield make
    for name in made:
        with contextlib.suppress(Exception):  # cleanup must not hide the test's own result
            _empty_and_delete(s3_admin, name)


@pytest.fixture()
def buckets(bucket_pairs) -> tuple[str, str]:
    return bucket_pairs()


@pytest.fixture()
def broker_url(services: devservices.ServiceState) -> str:
    """CELERY_BROKER_URL of the session's Redis, its database emptied (FLUSHDB) for this test:
    no task, result or worker record of an earlier test is left in it."""
    with redis.Redis.from_url(services.broker_url) as client:
        client.flushdb()
    return services.broker_url


@pytest.fixture()
def service_env(services, database_url, buckets, broker_url, tmp_path) -> dict[str, str]:
    """Environment variables for running `mpr` against this test's database, buckets and
    (emptied) broker."""
    env = services.env()
    env.update(DATABASE_URL=database_url, S3_BUCKET_IN=buckets[0], S3_BUCKET_OUT=buckets[1],
               CELERY_BROKER_URL=broker_url, MPR_TEMP_DIR=str(tmp_path / "mpr-tmp"))
    return env


@pytest.fixture()
def settings(service_env) -> Settings:
    overrides = {FIELD_BY_ENV[k]: v for k, v in service_env.items()}
    return load_settings(env_file=None, **overrides)


@pytest.fixture()
def run_mpr(service_env, tmp_path):
    """Run the real `mpr` console script in a subprocess, in an empty folder (no .env)."""

    def run(*args: str, env: dict[str, str] | None = None, check: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_",
                                     "CELERY_"))}
        base.update(service_env if env is None else env)
        workdir = tmp_path / "cwd"
        workdir.mkdir(exist_ok=True)
        mpr = shutil.which("mpr") or str(Path(os.sys.executable).parent / "mpr")
        return subprocess.run([mpr, *args], env=base, cwd=workdir, capture_output=True,
                              text=True, check=check, timeout=timeout)

    return run
