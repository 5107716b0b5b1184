"""`mpr worker` (a Celery worker running transcode jobs) and `mpr workers` (the live ones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from mpr_cli import db
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.display import visible
from mpr_cli.ffmpeg.presets import load_presets
from mpr_cli.transcode import broker
from mpr_cli.transcode import jobs as job_store
from mpr_cli.transcode.workdirs import require_usable_temp_dir


@click.command("worker")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64),
              help="Jobs (ffmpeg processes) at a time (default MPR_TRANSCODE_WORKERS).")
@click.option("--hostname", "-n", help="Celery node name (default mpr@<this host>); "
                                       "the host part of its jobs' worker names.")
@click.option("--threads", type=click.IntRange(1, 256),
              help="ffmpeg threads per job (default: this machine's cores / --concurrency); "
                   "set it when several workers share one machine.")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
                                              case_sensitive=False),
              default="INFO", show_default=True)
@pass_app
@handles_errors
def worker_command(app: App, concurrency: int | None, hostname: str | None,
                   threads: int | None, loglevel: str) -> None:
    """Run transcode jobs sent through CELERY_BROKER_URL until stopped.

    Start one per machine (it keeps its own MPR_TEMP_DIR); the broker, the database and S3
    are shared. SIGTERM lets the running jobs finish; a worker killed outright loses nothing:
    its jobs run again elsewhere once their lease (MPR_JOB_LEASE_SECONDS) has expired.
    Exit 4 when the broker cannot be reached at start.
    """
    from celery.utils.nodenames import default_nodename, host_format

    from mpr_cli.transcode.celery_worker import WorkerConfig, default_node, run_worker

    settings = app.settings
    require_usable_temp_dir(settings)
    broker.broker_url(settings)  # exit 2 when it is not set, before anything starts
    with db.connect(settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
    # the node name as Celery makes it from --hostname (`name@host`, `%h` expanded, a bare
    # host as celery@host), so that its jobs' worker names and `mpr workers` agree with it
    node = host_format(default_nodename(hostname)) if hostname else default_node()
    config = WorkerConfig(settings, app.rules(), load_presets(settings.presets_file),
                          concurrency or settings.transcode_workers, node, threads)
    run_worker(config, loglevel.upper())


@click.command("workers")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handles_errors
def workers_command(app: App, as_json: bool) -> None:
    """List the live workers and the jobs each one runs.

    From Celery's inspect API (the workers that answer within a second) and from the job
    table's heartbeats (the processes that renewed a lease lately): a worker listed only by
    the job table is busy or cannot reach the broker.
    """
    settings = app.settings
    celery = broker.make_app(settings)
    broker.check_broker(celery, settings)
    nodes = broker.inspect_workers(celery)
    with db.connect(settings, autocommit=True) as conn:
        running = job_store.running_by_worker(conn, settings.job_lease_seconds)
    rows = _merge(nodes, running)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no live workers (start one with `mpr worker`)")
    now = datetime.now(UTC)
    for row in rows:
        seen = row["last_heartbeat"]
        ago = f", heartbeat {(now - datetime.fromisoformat(seen)).total_seconds():.0f} s ago" \
            if seen else ""
        size = f" concurrency {row['concurrency']}" if row["concurrency"] else ""
        jobs = ", ".join(f"#{j}" for j in row["jobs"]) or "idle"
        click.echo(f"{visible(row['node'])}{size}: {jobs} ({row['seen_by']}{ago})")


def _merge(nodes: dict[str, dict[str, Any]],
           running: list[job_store.WorkerJobs]) -> list[dict[str, Any]]:
    """One row per node: what inspect says, with the running jobs the table gives it."""
    rows: dict[str, dict[str, Any]] = {
        node: {"node": node, "concurrency": info["concurrency"], "jobs": [],
               "last_heartbeat": None, "seen_by": "broker"}
        for node, info in sorted(nodes.items())}
    for entry in running:
        node = entry.worker.split(":", 1)[0]
        row = rows.setdefault(node, {"node": node, "concurrency": None, "jobs": [],
                                     "last_heartbeat": None, "seen_by": "job table"})
        if row["seen_by"] == "broker":
            row["seen_by"] = "broker and job table"
        row["jobs"] = sorted(row["jobs"] + entry.job_ids)
        beat = entry.last_heartbeat.isoformat()
        row["last_heartbeat"] = max(filter(None, [row["last_heartbeat"], beat]))
    return list(rows.values())
