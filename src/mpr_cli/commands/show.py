"""`mpr show CODE|KEY [--json]`: one asset as a person wants to see it.

A KEY (any catalogued file's key) finds the asset of that file. Exit codes: 0 shown; 1 no asset
has that code and no catalogued file that key; 2 a malformed argument (empty, or with control
characters: nothing the catalogue could hold).
"""

from __future__ import annotations

import json
import re
import sys

import click
from rich.console import Console

from mpr_cli import db
from mpr_cli.catalogue import AssetFile, AssetView, find_asset
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.display import visible
from mpr_cli.errors import ExitCode, UsageError
from mpr_cli.events import Event

_MALFORMED = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def summary_text(f: AssetFile | None) -> str:
    """A master's or streaming copy's technical summary in one line (not yet escaped): "mov,
    00:01:00, h264 1280x720 16:9 25 fps progressive, pcm_s16le 2 ch 48 kHz, 12.3 Mb/s"."""
    if f is None:
        return "no file"
    if f.summary is not None:
        return f.summary.one_line()
    if f.tech is not None:  # catalogued before sql/012 and not back-filled
        return "no technical summary yet: run `mpr db backfill-summaries`"
    return "no technical metadata recorded"


def _file_line(f: AssetFile) -> str:
    where = "on tape" if not f.in_bucket else f"in {f.bucket}"
    run = f"run {f.import_run_id}" if f.import_run_id is not None else (
        f"made with {f.preset}" if f.preset else "not imported by a run")
    size = f"{f.size:,} B" if f.size is not None else "size unknown"
    return (f"  {f.role:<10} {visible(f.key)}  {size}, md5 {f.md5 or '-'}, "
            f"{visible(f.mime_type or '-')}, {where}, {f.created_at:%Y-%m-%d %H:%M} "
            f"({run}{', provisional' if f.provisional else ''})")


def asset_lines(view: AssetView) -> list[str]:
    """The asset for people, one fact per line; every text from the catalogue escaped."""
    lines = [f"{view.inventory_code} ({view.media_type}), catalogued "
             f"{view.created_at:%Y-%m-%d %H:%M}", "files:"]
    lines += [_file_line(f) for f in view.files] or ["  none"]
    lines.append("technical:")
    for role in ("master", "streaming"):
        lines.append(f"  {role:<10} {visible(summary_text(view.file_of(role)))}")
    lines.append("transcode jobs:")
    lines += [f"  {j.id:>5} {j.status.value:<10} {j.preset:<16} {visible(j.output_key)} "
              f"(attempt {j.attempts} of {j.max_attempts})"
              + (f": {visible(j.error)}" if j.error else "") for j in view.jobs] or ["  none"]
    lines.append("problems (latest run):")
    lines += [f"  {'acknowledged' if p.acknowledged else 'known' if p.known else 'new':<12} "
              f"{p.severity:<7} {p.reason:<26} {visible(p.key)}: {visible(p.message)}"
              for p in view.problems] or ["  none"]
    lines.append("pictures:")
    lines += [f"  {p.kind.value:<14} s3://{visible(p.bucket)}/{visible(p.key)}"
              + (f" ({p.width}x{p.height})" if p.width and p.height else "")
              for p in view.pictures] or ["  none (mpr thumbnails --missing makes them)"]
    lines.append("events (oldest first):")
    lines += [event_line(e) for e in view.events] or ["  none"]
    return lines


def event_line(e: Event) -> str:
    """One preservation event for people (also `mpr events`); catalogue text escaped."""
    return (f"  {e.occurred_at:%Y-%m-%d %H:%M:%S} {e.outcome.value:<7} {e.event_type.value:<26} "
            f"{visible(e.key)}: {visible(e.detail)}")


@click.command("show")
@click.argument("name", metavar="CODE|KEY")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (see README).")
@pass_app
@handles_errors
def show(app: App, name: str, as_json: bool) -> None:
    """One asset: its files, the technical summary of its master and streaming copy, its
    transcode jobs, the problems the latest run found about it and its preservation events.
    A KEY finds the asset of that file."""
    if not name or _MALFORMED.search(name):
        raise UsageError(f"{visible(name)!r} is not an inventory code or a key",
                         hint="give a code like VO-UMT-14387 or a key like BRD/VO-UMT-14387.mov")
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        view = find_asset(conn, name, app.settings.s3_bucket_in)
    if view is None:
        click.echo(f"error: no asset {visible(name)} in the catalogue (neither an inventory "
                   "code nor a catalogued file's key; see `mpr problems` for what was refused)",
                   err=True)
        sys.exit(int(ExitCode.FILE_ERRORS))
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2, ensure_ascii=False))
        return
    console = Console(highlight=False, soft_wrap=True)
    for line in asset_lines(view):
        console.print(line, markup=False, highlight=False)
