"""The `mpr` command line: thin click commands over library calls.

Exit codes: 0 completed with no errors (warnings allowed); 1 completed, some files had
errors; 2 usage or configuration error; 3 aborted by --safe-run; 4 infrastructure failure
(S3 or database unreachable after retries); 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from mpr_cli import __version__
from mpr_cli.commands import context, db, dev, importing, info, nightly, transcode

EPILOG = """\b
Exit codes:
  0  completed, no errors (warnings allowed)
  1  completed, some files had errors (validate: problems found)
  2  usage or configuration error
  3  aborted by --safe-run
  4  infrastructure failure (S3 or database unreachable after retries)
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mpr")
@click.option("--env-file", default=".env", show_default=True,
              help="Environment file read before the process environment's defaults.")
@click.pass_context
def main(ctx: click.Context, env_file: str) -> None:
    """mpr: batch importer and transcoder for audiovisual archives.

    Discovers media in an S3 bucket, validates it against the archive's rules, records it
    in a PostgreSQL catalogue and transcodes masters into streaming copies.
    """
    ctx.obj = context.App(env_file=env_file)


for group in (importing.import_command, importing.validate_command,
              transcode.transcode_command, transcode.presets, transcode.jobs,
              nightly.nightly_command, nightly.runs, dev.dev, db.db,
              info.config_command, info.doctor):
    main.add_command(group)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
