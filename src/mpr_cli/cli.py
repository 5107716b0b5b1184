"""The `mpr` command line: thin click commands over library calls.

Exit codes: 0 completed with no errors (warnings allowed); 1 completed, some files had
errors; 2 usage or configuration error; 3 aborted by --safe-run; 4 infrastructure failure
(S3 or database unreachable after retries, the Celery broker unreachable); 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from mpr_cli import __version__
from mpr_cli.commands import context
from mpr_cli.display import visible
from mpr_cli.errors import ConfigError

# command -> (module under mpr_cli.commands, attribute). A module is imported only when its
# command runs (or for --help): `mpr import` does not pay for the transcode modules' imports.
COMMANDS = {
    "import": ("importing", "import_command"), "validate": ("importing", "validate_command"),
    "transcode": ("transcode", "transcode_command"), "presets": ("transcode", "presets"),
    "jobs": ("transcode", "jobs"), "nightly": ("nightly", "nightly_command"),
    "runs": ("nightly", "runs"), "dev": ("dev", "dev"), "db": ("db", "db"),
    "config": ("info", "config_command"), "doctor": ("info", "doctor"),
    "replace": ("replace", "replace_command"),
    "problems": ("problems", "problems"), "show": ("show", "show"),
    "fixity": ("fixity", "fixity_command"),
    "worker": ("workers", "worker_command"), "workers": ("workers", "workers_command"),
    "export": ("export", "export"),
    "events": ("events", "events_command"),
    "report": ("report", "report_command"),
    "thumbnails": ("thumbnails", "thumbnails_command"),
}


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"mpr_cli.commands.{module}"), attribute)
        assert isinstance(command, click.Command) and command.name == cmd_name
        return command

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """click's own usage errors as one line, as mpr's errors are (exit 2):
        `error: Invalid value for '--verify': ... (see `mpr import --help`)`."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except _NO_ARGS_IS_HELP as exc:  # a group named without a command: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "mpr"
            click.echo(f"error: {visible(exc.format_message())} (see `{where} --help`)",
                       err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {visible(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

EPILOG = """\b
Exit codes:
  0  completed, no errors (warnings allowed)
  1  completed, some files had new errors (--strict: known ones too;
     validate: problems found)
  2  usage or configuration error
  3  aborted by --safe-run
  4  infrastructure failure (S3 or database unreachable after retries, the
     Celery broker unreachable), internal error
130  interrupted (Ctrl-C, SIGTERM)

\b
Shell completion (bash; zsh and fish alike with zsh_source, fish_source):
  eval "$(_MPR_COMPLETE=bash_source mpr)"
"""


@click.group(cls=LazyGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mpr")
@click.option("--env-file", default=".env", show_default=True,
              help="Environment file read before the process environment's defaults.")
@click.pass_context
def main(ctx: click.Context, env_file: str) -> None:
    """mpr: batch importer and transcoder for audiovisual archives.

    Discovers media in an S3 bucket, validates it against the archive's rules, records it
    in a PostgreSQL catalogue and transcodes masters into streaming copies.
    """
    given = ctx.get_parameter_source("env_file") is not click.core.ParameterSource.DEFAULT
    if given and not Path(env_file).is_file():  # the default .env may be absent
        context.fail(ConfigError(f"--env-file {env_file}: no such file",
                                 hint="give an existing file, or leave --env-file out to read "
                                      "./.env when there is one"))
    ctx.obj = context.App(env_file=env_file)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
