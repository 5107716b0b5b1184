"""`mpr events [--type T] [--since D] [--outcome O] [--prefix P] [--limit N] [--json]`.

The preservation events of the catalogue (mpr_cli.events), the newest N (100 by default) that
match every filter, listed oldest first: one line each (time, outcome, type, key: detail), or
a JSON list of events (the objects of `mpr show --json`'s "events"). `--since` takes an ISO
date or date-time or an age (7d, 12h); `--type` a PREMIS term (`fixity check`, also
`fixity-check`) or the aliases missing and restored. Exit codes: 0 listed (also when none
match); 2 a malformed option (one line, from click).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from mpr_cli import db, events
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.commands.show import event_line
from mpr_cli.events import EventFilter, EventType, Outcome


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return events.parse_since(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _event_type(ctx: click.Context, param: click.Parameter,
                value: str | None) -> EventType | None:
    if value is None:
        return None
    try:
        return events.parse_event_type(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("events")
@click.option("--type", "event_type", metavar="TYPE", callback=_event_type,
              help="Only events of this PREMIS type, e.g. 'fixity check' or fixity-check.")
@click.option("--since", metavar="WHEN", callback=_since,
              help="Only events since an ISO date or time, or an age like 7d or 12h.")
@click.option("--outcome", type=click.Choice([o.value for o in Outcome]),
              help="Only events with this outcome.")
@click.option("--prefix", default=None, help="Only events of keys under this prefix.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="At most this many (the newest), listed oldest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (a list of events).")
@pass_app
@handles_errors
def events_command(app: App, event_type: EventType | None, since: datetime | None,
                   outcome: str | None, prefix: str | None, limit: int,
                   as_json: bool) -> None:
    """The preservation events recorded for the catalogue's files (ingestion, message digest
    calculation, fixity check, format identification, validation, creation, replacement,
    deletion, recovery), oldest first."""
    wanted = EventFilter(event_type, None if outcome is None else Outcome(outcome), since,
                         prefix or None, limit)
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        found = events.search(conn, wanted)
    if as_json:
        click.echo(json.dumps([e.to_json() for e in found], indent=2, ensure_ascii=False))
        return
    if not found:
        filtered = any(x is not None for x in (event_type, since, outcome, prefix))
        click.echo("no events" + (" matching the filters" if filtered else ""))
        return
    for e in found:
        click.echo(event_line(e).strip())
