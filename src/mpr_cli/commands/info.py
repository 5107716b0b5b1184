"""`mpr config` and `mpr doctor`."""

from __future__ import annotations

import json

import click

from mpr_cli import doctor as checks
from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.config import masked


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_app
@handles_errors
def config_command(app: App, as_json: bool) -> None:
    """Show the effective settings, secrets masked. MPR_EXCLUDE_PREFIXES shows the list the
    runs use: the variable's when it is set (it replaces the rules' list), else the rules'."""
    shown = masked(app.settings)
    rules = app.rules()
    shown["MPR_EXCLUDE_PREFIXES"] = ",".join(rules.exclude_prefixes)
    shown["exclusions from"] = (
        "MPR_EXCLUDE_PREFIXES (replaces the rules' list)"
        if "exclude_prefixes" in app.settings.model_fields_set else f"rules: {rules.source}")
    shown["MPR_RULES"] = shown.get("MPR_RULES") or rules.source
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        click.echo(f"{name:<{width}}  {value}")


@click.command("doctor")
@pass_app
def doctor(app: App) -> None:
    """Check settings, S3, database, ffmpeg and mediainfo; exit 0 only when all pass."""
    all_ok = True
    for check in checks.run_checks(app.env_file):
        mark = "✓" if check.ok else "✗"
        line = f"{mark} {check.name}: {check.detail}"
        if not check.ok:
            line += f"  → {check.hint}"
            all_ok = False
        click.echo(line)
    raise SystemExit(0 if all_ok else 1)
