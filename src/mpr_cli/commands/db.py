"""`mpr db migrate|status`."""

from __future__ import annotations

import click

from mpr_cli import db as database
from mpr_cli.commands.context import App, handles_errors, pass_app


@click.group("db")
def db() -> None:
    """Database schema: apply and list migrations."""


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
