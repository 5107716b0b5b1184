"""Creating transcode jobs: one for a master named by its key (`mpr transcode KEY`), or one
for every catalogued master without a streaming copy (`--pending`, the nightly run).

Nothing here runs a job: the pool claims what is created.
"""

from __future__ import annotations

from mpr_cli import db
from mpr_cli.errors import UsageError
from mpr_cli.ffmpeg.presets import Preset, PresetBook
from mpr_cli.rules import MediaType
from mpr_cli.transcode import jobs
from mpr_cli.transcode.jobrunner import JobRunner
from mpr_cli.transcode.jobs import Connection, JobStatus
from mpr_cli.transcode.outputs import OutputTarget, check_output_key, refuse_unsafe_output
from mpr_cli.transcode.stages import Source, default_output_key, parse_source


def choose_preset(presets: PresetBook, name: str | None, media: MediaType) -> Preset:
    """The preset asked for (--preset), else the default one of the master's media type."""
    return presets.get(name) if name else presets.default_for(media)


def create_for_key(runner: JobRunner, key: str, preset_name: str | None,
                   output_key: str | None, force: bool) -> tuple[int | None, str]:
    """The job of `mpr transcode KEY`, on a connection of its own after checking that the
    catalogue is migrated; (None, why) when there is nothing to do (see `create_single`)."""
    with db.connect(runner.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        return create_single(conn, runner, key, preset_name, output_key, force)


def create_single(conn: Connection, runner: JobRunner, key: str, preset_name: str | None,
                  output_key: str | None, force: bool) -> tuple[int | None, str]:
    """The job of `mpr transcode KEY`; (None, why) when there is nothing to do: the asset
    already has a streaming copy in its bucket (unless `force`: the new copy replaces it)."""
    source = parse_source(key, runner.rules)
    preset = choose_preset(runner.presets, preset_name, source.media_type)
    if output_key is not None:
        check_output_key(output_key, source, preset)
    out_key = output_key or default_output_key(source, preset)
    if not force and (done := _already_transcoded(conn, runner, source)):
        return None, f"{key}: {done}; nothing to do (use --force to replace it)"
    bucket_in, bucket_out = runner.settings.s3_bucket_in, runner.settings.s3_bucket_out
    if runner.storage.head(bucket_in, key) is None:
        raise UsageError(f"{key} is not in s3://{bucket_in}",
                         hint="check the key (mpr transcode takes a key of the input bucket)")
    refuse_unsafe_output(conn, runner.storage, OutputTarget(source.inventory_code, bucket_in,
                                                            key, bucket_out, out_key))
    job_id = _reuse_failed(conn, runner, key, preset, out_key)
    if job_id is None:
        asset = db.asset_by_code(conn, source.inventory_code)
        job_id = new_job(conn, runner, source, preset, out_key, asset["id"] if asset else None)
    return require_no_live_job(job_id, source, preset), ""


def _already_transcoded(conn: Connection, runner: JobRunner, source: Source) -> str:
    """How the asset already has its streaming copy (recorded, and in its bucket with the
    recorded ETag), or "" when it has none."""
    copy = db.recorded_output(conn, source.inventory_code)
    if copy is None:
        return ""
    present = runner.storage.head(copy.bucket, copy.key)
    if present is None or present.etag != copy.etag:
        return ""
    how = (f"already transcoded with {copy.preset}" if copy.preset
           else "already has a delivered streaming copy")
    return f"{how}: s3://{copy.bucket}/{copy.key}"


def _reuse_failed(conn: Connection, runner: JobRunner, key: str, preset: Preset,
                  out_key: str) -> int | None:
    """The newest job of this master and preset, when it FAILED: PENDING again while it has
    an attempt left, refused once it used them all (the attempt cap holds)."""
    last = jobs.newest_for(conn, runner.settings.s3_bucket_in, key, preset.name)
    if last is None or last.status is not JobStatus.FAILED:
        return None
    if jobs.reuse_failed(conn, last.id, out_key):
        return last.id
    raise UsageError(f"{key} failed all {last.max_attempts} attempts with {preset.name} "
                     f"(job {last.id}: {last.error})",
                     hint="see `mpr jobs list --status failed`; nothing was started")


def new_job(conn: Connection, runner: JobRunner, source: Source, preset: Preset, output_key: str,
            asset_id: int | None) -> int | None:
    """A PENDING job of this process's buckets; None when a live one exists already."""
    if preset.media != source.media_type:
        raise UsageError(f"preset {preset.name} makes {preset.media} copies but "
                         f"{source.inventory_code} is a {source.media_type} asset",
                         hint="choose a preset for its media type (mpr presets list)")
    return jobs.create(conn, asset_id=asset_id, inventory_code=source.inventory_code,
                       media_type=source.media_type.value,
                       source_bucket=runner.settings.s3_bucket_in, source_key=source.key,
                       preset=preset.name, output_bucket=runner.settings.s3_bucket_out,
                       output_key=output_key, max_attempts=runner.options.max_attempts)


def create_pending(conn: Connection, runner: JobRunner, prefix: str, limit: int | None,
                   preset_name: str | None) -> list[int]:
    """A job for each catalogued master under `prefix` without a streaming copy (at most
    `limit`); returns the new jobs' ids."""
    created = []
    masters = jobs.unstreamed_masters(conn, runner.settings.s3_bucket_in, prefix, limit)
    for master in masters:
        source = parse_source(master.key, runner.rules)
        preset = choose_preset(runner.presets, preset_name, source.media_type)
        job_id = new_job(conn, runner, source, preset, default_output_key(source, preset),
                         master.asset_id)
        if job_id is not None:
            created.append(job_id)
    return created


def require_no_live_job(job_id: int | None, source: Source, preset: Preset) -> int:
    if job_id is None:
        raise UsageError(f"a job for {source.key} with preset {preset.name} is already pending "
                         "or running", hint="see `mpr jobs list`, or cancel it first")
    return job_id
