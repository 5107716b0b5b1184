"""`mpr thumbnails [--prefix P] [--missing] [--json]`: the pictures of a catalogue's assets.

For each asset with a file under the prefix (every asset without one), its poster and contact
sheet (a video) or waveform (audio), made from its streaming copy (read by ranges through a
presigned URL), else from its master, uploaded to the output bucket under thumbnails/ and
recorded (mpr_cli.pictures). `--missing`: only the assets that lack a picture. One line per
picture that could not be made (a warning: the file and the reason), then a summary; --json
prints {"assets", "pictures", "warnings"} instead. Exit codes: 0 done, also with warnings (a
picture never fails a run); 2 usage or configuration; 4 S3 or the catalogue unreachable.
"""

from __future__ import annotations

import json

import click

from mpr_cli import db
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.display import visible
from mpr_cli.pictures import fill
from mpr_cli.storage import Storage


@click.command("thumbnails")
@click.option("--prefix", default="", help="Only assets with a file under this key prefix.")
@click.option("--missing", is_flag=True, help="Only assets that lack a picture.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON on stdout: assets, pictures made, warnings.")
@pass_app
@handles_errors
def thumbnails_command(app: App, prefix: str, missing: bool, as_json: bool) -> None:
    """Make the posters, contact sheets and waveforms of catalogued assets."""
    settings = app.settings
    storage = Storage(settings)
    with db.connect(settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        todo = fill.sources(conn, prefix=prefix, missing=missing)
        result = fill.fill(settings, storage, conn, todo)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    for warning in result.warnings:
        click.echo(f"warning: {visible(warning.message)}")
    click.echo(f"{result.assets} asset(s): {len(result.pictures)} picture(s) made, "
               f"{len(result.warnings)} warning(s)")
