"""`mpr report RUN|last --html FILE`: one run's page as a self-contained HTML file.

RUN is a run's number or run key (`mpr runs list`), or `last`. `--html -` writes the page to
stdout; a file is written atomically (the whole page or nothing). Exit codes: 0 written; 2 no
such run, or a FILE that cannot be written; 4 the catalogue unreachable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mpr_cli import db, htmlreport
from mpr_cli.atomic import atomic_write
from mpr_cli.commands.context import App, handles_errors, pass_app, writable_file
from mpr_cli.display import visible
from mpr_cli.errors import UsageError


@click.command("report")
@click.argument("run", metavar="ID|RUN_KEY|last")
@click.option("--html", "html_path", metavar="FILE", required=True, callback=writable_file,
              help="Write the run's HTML page here (`-`: stdout).")
@click.option("--max-pictures", default=htmlreport.Limits().max_pictures, show_default=True,
              type=click.IntRange(0), help="Embed at most this many pictures.")
@pass_app
@handles_errors
def report_command(app: App, run: str, html_path: str, max_pictures: int) -> None:
    """One run's report as an HTML page: status, counts, problems by reason with their fix,
    the assets imported with their picture and technical summary, the transcodes."""
    settings = app.settings
    limits = htmlreport.Limits(max_pictures=max_pictures)
    with db.connect(settings, autocommit=True) as conn:
        row = db.get_run(conn, run)
        if row is None:
            raise UsageError(f"no run {run!r}", hint="see mpr runs list")
        page = htmlreport.page_for_run(conn, settings, row, limits)
    document = htmlreport.render(page, problem_limit=limits.max_problems_per_reason)
    if html_path == "-":
        sys.stdout.write(document)
        return
    atomic_write(Path(html_path), document)
    click.echo(f"wrote {visible(html_path)} (run {page.run_id}, "
               f"{len(document.encode()):,} bytes)", err=True)
