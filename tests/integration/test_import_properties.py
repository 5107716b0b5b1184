"""Property: whatever a bucket holds, phases 1 to 3 and the insert never raise, every refused
input is a problem with a specific reason, and every row they accept the catalogue accepts.

Hypothesis starts from one good asset of the sample archive (a video or an audio asset with
all its sidecars) and mutates it: keys renamed to hostile names, metadata JSON replaced by
random documents or given hostile values, checksum files rewritten, QC reports replaced by
random bytes, files dropped. Each example is uploaded to a real SeaweedFS bucket, run through
the library's own phases (survey beside the catalogue, spill, plan) and inserted into a real
PostgreSQL catalogue in a transaction that is rolled back.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpr_cli import db
from mpr_cli.config import FIELD_BY_ENV, Settings, load_settings
from mpr_cli.dev.sample import build_sample_archive
from mpr_cli.errors import RowsRefused
from mpr_cli.phases.discover import Scope, Surveyor, survey
from mpr_cli.phases.ingest import AssetPlanner, VerifyMode, group_assets
from mpr_cli.phases.merge import merged
from mpr_cli.phases.spill import AssetSpill
from mpr_cli.problems import Reason
from mpr_cli.rules import load_rules
from mpr_cli.storage import Storage

pytestmark = pytest.mark.integration

RULES = load_rules(None)
EXTENSIONS = sorted(RULES.extensions)


@dataclass(repr=False)
class World:
    settings: Settings
    storage: Storage
    s3: Any
    bucket: str
    base: dict[str, dict[str, bytes]]  # code -> key -> bytes of one good asset


@pytest.fixture(scope="module")
def world(services, template_db, tmp_path_factory) -> Iterator[World]:
    if not shutil.which("ffmpeg"):
        pytest.skip("needs ffmpeg")
    archive = build_sample_archive(tmp_path_factory.mktemp("prop") / "bucket", assets_video=1,
                                   assets_audio=1, bad=False, tape_master=False)
    base: dict[str, dict[str, bytes]] = {}
    for path in sorted(p for p in archive.root.rglob("*") if p.is_file()):
        key = path.relative_to(archive.root).as_posix()
        base.setdefault(path.name[:12], {})[key] = path.read_bytes()
    admin = services.database_url.rsplit("/", 1)[0] + "/postgres"
    name, bucket = "p_" + uuid.uuid4().hex[:12], "prop-" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    env = {**services.env(), "DATABASE_URL": services.database_url.rsplit("/", 1)[0] + "/" + name,
           "S3_BUCKET_IN": bucket, "S3_BUCKET_OUT": bucket + "-out"}
    config = load_settings(env_file=None, **{FIELD_BY_ENV[k]: v for k, v in env.items()})
    s3 = boto3.client("s3", endpoint_url=services.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id=services.s3_access_key,
                      aws_secret_access_key=services.s3_secret_key)
    s3.create_bucket(Bucket=bucket)
    try:
        yield World(config, Storage(config), s3, bucket, base)
    finally:
        empty(s3, bucket)
        s3.delete_bucket(Bucket=bucket)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty(s3: Any, bucket: str) -> None:
    """One DELETE per object: a batch delete is XML, which cannot carry every key."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])


# -- strategies ----------------------------------------------------------------------------------

HOSTILE_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from([
    "", "..", "/", "\x00", "\n", "\x1b[2J", "[/]", "[bold]", "０００１２", "VO-SMP-00001",
    "vo-smp-00001", "VO-SMP-0000１", "AO-SMP-00001", "VO-SMP-000010", " ", "\\", "%00"])

JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | HOSTILE_TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(HOSTILE_TEXT, inner, max_size=4), max_leaves=12)
RAW_JSON = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '"\\u0000"', '"\\ud800"',
                            "[" * 300 + "]" * 300, '"\\udfff\\ud800"', "-0", "1" * 400])


@st.composite
def hostile_key(draw: st.DrawFn, key: str) -> str:
    folder, _, name = key.rpartition("/")
    stem, dot, ext = name.partition(".")
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(HOSTILE_TEXT)
    if choice == 1:
        return f"{draw(st.sampled_from(['BRD', 'CD', 'DAT', 'DVD', 'FILE', 'XYZ', '']))}/{name}"
    if choice == 2:
        return f"{folder}/{draw(HOSTILE_TEXT)}{dot}{ext}"
    if choice == 3:
        return f"{folder}/{stem}{draw(st.sampled_from(EXTENSIONS + ['', '.MOV', '.mp4.mp4']))}"
    return f"{folder}/{draw(HOSTILE_TEXT)}/{name}"


@st.composite
def hostile_json(draw: st.DrawFn, data: bytes) -> bytes:
    choice = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4]))  # mostly the real document
    if choice == 0:
        return json.dumps(draw(JSON_VALUES)).encode()
    if choice == 1:  # a hostile raw value in the real document
        return data.replace(b"{", b'{"x": ' + draw(RAW_JSON).encode() + b", ", 1)
    if choice == 2:  # a real field given another value
        try:
            document = json.loads(data)
        except ValueError:  # mutated once already
            return data
        first = _first_object(document)
        if first:
            field = draw(st.sampled_from(sorted(first)))
            first[field] = draw(JSON_VALUES)
        return json.dumps(document).encode()
    if choice == 3:
        return data[: draw(st.integers(0, len(data)))]
    return draw(st.binary(max_size=200))


def _first_object(document: Any) -> dict[str, Any]:
    """mediainfo's first track, or ffprobe's format object, of a real document."""
    if not isinstance(document, dict):
        return {}
    media = document.get("media")
    tracks = media.get("track") if isinstance(media, dict) else None
    first = tracks[0] if isinstance(tracks, list) and tracks else document.get("format")
    return first if isinstance(first, dict) else {}


@st.composite
def hostile_md5(draw: st.DrawFn, data: bytes) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        line = draw(st.from_regex(r"[0-9a-fA-F]{0,40}[ *\t]{0,3}", fullmatch=True))
        return (line + draw(HOSTILE_TEXT)).encode("utf-8", "surrogatepass")
    if choice == 2:
        return b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    return data + data[: draw(st.integers(0, len(data)))]


@st.composite
def delivery(draw: st.DrawFn, base: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    code = draw(st.sampled_from(sorted(base)))
    files = dict(base[code])
    described = next(k for k in files if k.endswith(f"/{code}.json"))  # the master's metadata
    if draw(st.booleans()):
        files[described] = draw(hostile_json(files[described]))
    for key in draw(st.lists(st.sampled_from(sorted(files)), min_size=1, max_size=3,
                             unique=True)):
        data = files.pop(key)
        action = draw(st.sampled_from(["content"] * 3 + ["rename"] * 2 + ["drop"]))
        if action == "drop":
            continue
        if action == "content":
            if key.endswith(".json"):
                data = draw(hostile_json(data))
            elif key.endswith(".md5"):
                data = draw(hostile_md5(data))
            else:
                data = draw(st.binary(max_size=300))
        else:
            key = draw(hostile_key(key))
        files[key] = data
    return files


# -- the property --------------------------------------------------------------------------------


def put(world: World, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        try:
            world.s3.put_object(Bucket=world.bucket, Key=key, Body=data)
        except Exception:  # noqa: S112 - a key S3 itself refuses never reaches mpr
            continue


def check_delivery(world: World, files: dict[str, bytes]) -> None:
    """Phases 1 to 3 and the insert of `files`: the property itself."""
    empty(world.s3, world.bucket)
    put(world, files)

    objects = list(world.storage.list_objects(world.bucket))
    with db.connect(world.settings) as conn, AssetSpill(RULES) as spill:
        try:
            found = survey(merged(objects, db.catalogue_rows(conn, world.bucket, "")),
                           Surveyor(RULES, spill, Scope(), lambda candidate: 0))
            assert found.listed == len(objects)
            assert found.listed == (found.excluded + len(found.problems) + found.new
                                    + found.known + len(found.restored))
            assert all(isinstance(p.reason, Reason) for p in found.problems)
            with AssetPlanner(world.storage, world.bucket, VerifyMode.AUTO) as planner:
                for code, new in spill.groups():
                    for asset in group_assets(new, [], db.existing_assets(conn, [code])):
                        plan = planner.plan(asset)
                        reasons = [p.reason for p in plan.problems]
                        assert Reason.INTERNAL_ERROR not in reasons, plan.problems
                        assert plan.rows or plan.problems, asset
                        if plan.ok and plan.rows:
                            insert(conn, plan, files)
        finally:
            conn.rollback()


def insert(conn: Any, plan: Any, files: dict[str, bytes]) -> None:
    try:
        with conn.transaction():
            db.insert_files(conn, None, [(plan.code, plan.media_type.value)], plan.rows)
    except RowsRefused as exc:
        raise AssertionError(f"accepted {sorted(files)} but the catalogue refused it: "
                             f"{exc.message}") from None


@pytest.mark.parametrize("raw", ["1e999", '"\\u0000"', '"\\ud800"', "[" * 300 + "]" * 300,
                                 "1" * 400, '{"\\u0000": 1}'])
def test_known_hostile_values_in_the_master_metadata(world, raw):
    """The cases hypothesis found or that once crashed an import, always run."""
    code = "VO-SMP-00001"
    files = dict(world.base[code])
    key = f"BRD/{code}.json"
    files[key] = files[key].replace(b"{", b'{"x": ' + raw.encode() + b", ", 1)
    check_delivery(world, files)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_any_delivery_gives_problems_with_reasons_and_rows_the_catalogue_accepts(world, data):
    check_delivery(world, data.draw(delivery(world.base)))
