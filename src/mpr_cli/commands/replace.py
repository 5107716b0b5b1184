"""`mpr replace KEY [--dry-run]`: accept the new bytes of a catalogued object."""

from __future__ import annotations

from pathlib import Path

import click

from mpr_cli.commands.context import App, handles_errors, pass_app, rules_source
from mpr_cli.display import visible
from mpr_cli.errors import ExitCode
from mpr_cli.replace import ReplaceResult, replace_object


@click.command("replace")
@click.argument("key")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("--rules", "rules_file", metavar="FILE|PROFILE", callback=rules_source,
              help="Replacement rules file, or a shipped profile by name (or MPR_RULES).")
@pass_app
@handles_errors
def replace_command(app: App, key: str, dry_run: bool, rules_file: Path | str | None) -> None:
    """Accept the object now at KEY (and its re-delivered sidecars) as the catalogued file.

    The asset of KEY is checked again with every rule of an import; when clean its records
    are updated in one transaction, the old values kept in asset_file_history. When not,
    the problems are listed and nothing changes (exit 1).
    """
    result = replace_object(app.settings, app.rules(rules_file), key, dry_run=dry_run)
    for line in summary_lines(result):
        click.echo(line)
    raise SystemExit(int(ExitCode.OK if result.ok else ExitCode.FILE_ERRORS))


def summary_lines(result: ReplaceResult) -> list[str]:
    """What `mpr replace` prints: the problems or the changes, then one line of outcome."""
    code = result.inventory_code
    if not result.ok:
        return [*(f"{p.severity} {p.reason.value} {visible(p.key)}: {visible(p.message)}"
                  for p in result.problems),
                f"{code}: not replaced, nothing changed ({len(result.problems)} problem(s))"]
    lines = [visible(change.describe()) for change in result.changes]
    lines += [f"{p.severity} {p.reason.value} {visible(p.key)}: {visible(p.message)}"
              for p in result.problems]  # warnings only
    if not result.changes:
        lines.append(f"{code}: nothing to replace: every file of it in the bucket is as "
                     "catalogued")
    elif result.dry_run:
        lines.append(f"{code}: dry run: would replace {len(result.changes)} file record(s); "
                     "nothing changed")
    else:
        lines.append(f"{code}: {len(result.changes)} file record(s) replaced; the old values "
                     "are kept in asset_file_history")
    return lines
