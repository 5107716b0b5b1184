"""`mpr problems [--new|--known] [--reason R] [--prefix P] [--json]` and `mpr problems ack`.

The open problems are those the latest completed import or nightly run covering their key saw
(mpr_cli.known). Exit codes: 0 listed (also when there are none) or acknowledged; 1 `ack` found
no open problem to acknowledge; 2 usage (`ack` with neither KEY nor --reason).
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from mpr_cli import db, known
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.display import for_console, visible
from mpr_cli.errors import ExitCode, UsageError
from mpr_cli.problems import Reason

REASONS = click.Choice([r.value for r in Reason])


def seen_label(problem: known.OpenProblem) -> str:
    """"new", "known" or "acknowledged" (an acknowledged problem is known)."""
    return "acknowledged" if problem.acknowledged else "known" if problem.known else "new"


def _note(problem: known.OpenProblem) -> str:
    """" (acknowledged 2026-12-01: why)" for an acknowledged problem, else ""."""
    if problem.acknowledged_at is None:
        return ""
    why = f": {problem.ack_note}" if problem.ack_note else ""
    return f" (acknowledged {problem.acknowledged_at:%Y-%m-%d}{why})"


def problems_table(found: list[known.OpenProblem], title: str) -> Table:
    """The open problems for people; every text from the bucket or a person escaped."""
    table = Table(title=title, show_lines=False)
    for column in ("seen", "severity", "reason", "key", "since", "message"):
        table.add_column(column, overflow="fold")
    for p in found:
        style = "red" if p.severity == "error" else "yellow"
        table.add_row(seen_label(p), f"[{style}]{p.severity}[/]", p.reason, for_console(p.key),
                      f"{p.first_seen_at:%Y-%m-%d}", for_console(p.message + _note(p)))
    return table


def plain_lines(found: list[known.OpenProblem]) -> list[str]:
    """One line per problem (logs, pipes): seen, severity, reason, key: message."""
    return [f"{seen_label(p):<12} {p.severity:<7} {p.reason:<26} {visible(p.key)}: "
            f"{visible(p.message + _note(p))}" for p in found]


@click.group("problems", invoke_without_command=True)
@click.option("--new", "which", flag_value=known.Which.NEW.value,
              help="Only problems the latest run reported for the first time.")
@click.option("--known", "which", flag_value=known.Which.KNOWN.value,
              help="Only problems reported before (same key, ETag and reason).")
@click.option("--reason", type=REASONS, help="Only problems with this reason.")
@click.option("--prefix", default="", help="Only keys under this prefix.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (a list of problems).")
@pass_app
@handles_errors
def problems(app: App, which: str | None, reason: str | None, prefix: str,
             as_json: bool) -> None:
    """The open problems: those the latest completed run covering their key reported, marked
    new, known (reported before for the same key, ETag and reason) or acknowledged."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    wanted = known.ProblemFilter(which=known.Which(which or known.Which.ALL.value),
                                 reason=reason, prefix=prefix)
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        found = known.open_problems(conn, app.settings.s3_bucket_in, wanted)
    if as_json:
        click.echo(json.dumps([p.to_json() for p in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no open problems" + (" matching the filters" if which or reason or prefix
                                         else ""))
        return
    new = sum(not p.known for p in found)
    title = f"open problems: {len(found)} ({new} new, {len(found) - new} known)"
    console = Console(highlight=False, soft_wrap=True)
    if console.is_terminal:
        console.print(problems_table(found, title))
        return
    for line in [title, *plain_lines(found)]:
        console.print(line, markup=False, highlight=False)


@problems.command("ack")
@click.argument("key", required=False)
@click.option("--reason", type=REASONS, help="Acknowledge the open problems of this reason.")
@click.option("--note", help="Why (shown beside the problem).")
@pass_app
@handles_errors
def ack(app: App, key: str | None, reason: str | None, note: str | None) -> None:
    """Acknowledge the open problems of KEY and/or of --reason until the object changes (a new
    ETag makes it a new problem again). They stay known and listed, marked acknowledged."""
    if key is None and reason is None:
        raise UsageError("name a KEY or a --reason to acknowledge",
                         hint="see `mpr problems` for the open problems")
    with db.connect(app.settings, autocommit=True) as conn:
        db.require_migrated_conn(conn)
        done = known.acknowledge(conn, app.settings.s3_bucket_in, key=key, reason=reason,
                                 note=note)
    if not done:
        what = " with ".join(visible(x) for x in (key, reason) if x is not None)
        click.echo(f"error: no open problem of {what} to acknowledge (see `mpr problems`)",
                   err=True)
        sys.exit(int(ExitCode.FILE_ERRORS))
    click.echo(f"acknowledged {len(done)} problem(s):")
    for problem_key, problem_reason in done:
        click.echo(f"  {problem_reason:<26} {visible(problem_key)}")
