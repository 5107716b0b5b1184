"""`mpr export mets CODE [-o FILE] [--to-bucket]` and `mpr export mets --prefix P --to-bucket`.

One METS document per asset with PREMIS inside (mpr_cli.export), validated against the METS
schema offline before it is written. CODE alone writes the document to stdout; -o FILE to a
file; --to-bucket to `<folder>/<code>.mets.xml` in S3_BUCKET_OUT (publish.py says which
folder). --prefix P exports every asset with a file under P, to the bucket only.

Exit codes: 0 written; 1 no such asset (or no asset under P), or an asset's document could not
be made (the others under P are still written); 2 a malformed argument or a refused target;
4 S3 or the database failed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from mpr_cli import db
from mpr_cli.commands.context import App, err_console, handles_errors, pass_app, writable_file
from mpr_cli.display import for_console, visible
from mpr_cli.errors import ExitCode, UsageError
from mpr_cli.export import publish
from mpr_cli.storage import Storage

_MALFORMED = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@click.group("export")
def export() -> None:
    """Export the catalogue for other systems (METS with PREMIS)."""


def _check_arguments(code: str | None, prefix: str | None, output: str | None,
                     to_bucket: bool) -> None:
    if (code is None) == (prefix is None):
        raise UsageError("give either an inventory code or --prefix P",
                         hint="e.g. `mpr export mets VO-UMT-14387` or "
                              "`mpr export mets --prefix BRD/ --to-bucket`")
    if prefix is not None and (output is not None or not to_bucket):
        raise UsageError("--prefix writes one document per asset into the output bucket",
                         hint="add --to-bucket (and leave out -o)")
    if output is not None and to_bucket:
        raise UsageError("-o and --to-bucket are two destinations: choose one")
    if code is not None and (not code or _MALFORMED.search(code)):
        raise UsageError(f"{visible(code)!r} is not an inventory code",
                         hint="give a code like VO-UMT-14387")


def _export_one(app: App, code: str, output: str | None, to_bucket: bool) -> None:
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        document = publish.document_of(conn, code)
        if to_bucket:
            click.echo(publish.write_to_bucket(conn, Storage(app.settings), app.settings,
                                               document))
            return
    if output is None or output == "-":
        sys.stdout.buffer.write(document.data)
        sys.stdout.buffer.flush()
    else:
        publish.write_file(document, Path(output))
        click.echo(f"wrote {output}")


def _export_prefix(app: App, prefix: str) -> None:
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        result = publish.export_prefix(conn, Storage(app.settings), app.settings, prefix)
    for url in result.written:
        click.echo(visible(url))
    for code, reason in result.failed:
        err_console.print(f"[bold red]error:[/] {for_console(code)}: {for_console(reason)}",
                          highlight=False)
    if result.failed:
        err_console.print(f"{len(result.written)} METS documents written, "
                          f"{len(result.failed)} assets failed", highlight=False)
        sys.exit(int(ExitCode.FILE_ERRORS))


@export.command("mets")
@click.argument("code", required=False, metavar="[CODE]")
@click.option("-o", "--output", metavar="FILE", callback=writable_file,
              help="Write the document to FILE (default: stdout).")
@click.option("--to-bucket", is_flag=True,
              help="Write <folder>/<code>.mets.xml into S3_BUCKET_OUT, beside the outputs.")
@click.option("--prefix", metavar="P", help="Every asset with a file under key prefix P "
                                            "(needs --to-bucket).")
@pass_app
@handles_errors
def mets(app: App, code: str | None, output: str | None, to_bucket: bool,
         prefix: str | None) -> None:
    """One asset as a METS document with a PREMIS object for each file (size, MD5, format,
    key, ETag) and all its events, validated against the METS schema before it is
    written."""
    _check_arguments(code, prefix, output, to_bucket)
    if prefix is not None:
        _export_prefix(app, prefix)
    else:
        assert code is not None
        _export_one(app, code, output, to_bucket)
