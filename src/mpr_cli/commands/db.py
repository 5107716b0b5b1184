"""`mpr db migrate|status|backfill-summaries`.

The migration that adds technical summaries (sql/012) leaves the files catalogued before it
without one (the extraction is Python's, mpr_cli.summary): `mpr db migrate` back-fills them
right after applying it, and `mpr db backfill-summaries` does the same at any time (idempotent:
only files without a summary are read; batches of their own transactions).
"""

from __future__ import annotations

import click

from mpr_cli import db as database
from mpr_cli import summary
from mpr_cli.commands.context import App, handles_errors, pass_app

SUMMARIES_MIGRATION = 12  # sql/012_media_summaries.sql


@click.group("db")
def db() -> None:
    """Database schema: apply and list migrations; back-fill technical summaries."""


@db.command("migrate")
@pass_app
@handles_errors
def migrate(app: App) -> None:
    """Apply pending migrations, each in its own transaction (idempotent)."""
    applied = database.migrate(app.settings)
    for migration in applied:
        click.echo(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        click.echo("database is up to date")
    if any(m.version == SUMMARIES_MIGRATION for m in applied):
        _backfill(app)


def _backfill(app: App) -> None:
    with database.connect(app.settings, autocommit=True) as conn:
        database.require_migrated_conn(conn)
        done = summary.backfill(conn)
    click.echo(f"technical summaries: {done.filled} filled; {done.without} master(s) or "
               "streaming copies have stored metadata that gives none")


@db.command("backfill-summaries")
@pass_app
@handles_errors
def backfill_summaries(app: App) -> None:
    """Technical summaries for the masters and streaming copies that have none (catalogued
    before sql/012): read from their stored mediainfo/ffprobe JSON."""
    _backfill(app)


@db.command("status")
@pass_app
@handles_errors
def status(app: App) -> None:
    """List applied and pending migrations."""
    state = database.migration_status(app.settings)
    for version, name, applied_at in state.applied:
        click.echo(f"applied  {version:03d}_{name}  {applied_at:%Y-%m-%d %H:%M:%S%z}")
    for migration in state.pending:
        click.echo(f"pending  {migration.version:03d}_{migration.name}")
    if not state.applied and not state.pending:
        click.echo("no migrations found")
