"""`mpr dev up|down|status`: the local PostgreSQL, SeaweedFS and Redis for development and the
demo."""

from __future__ import annotations

from pathlib import Path

import click

from mpr_cli.commands.context import App, handles_errors, pass_app
from mpr_cli.dev import devservices

home_option = click.option(
    "--home", type=click.Path(file_okay=False, path_type=Path), default=".mpr",
    show_default=True, help="Folder holding the services' data, logs and state.",
)


@click.group("dev")
def dev() -> None:
    """Local services (real PostgreSQL, SeaweedFS S3 and Redis, loopback only)."""


@dev.command("up")
@home_option
@click.option("--env-out", type=click.Path(dir_okay=False, path_type=Path), default=".env",
              show_default=True, help="Write the matching settings into this file.")
@handles_errors
def up(home: Path, env_out: Path) -> None:
    """Start the services (idempotent) and write their settings into .env."""
    state = devservices.up(home)
    devservices.write_env_file(state, env_out)
    click.echo(f"PostgreSQL  127.0.0.1:{state.pg_port}  (data {home}/pg)")
    click.echo(f"S3          {state.s3_endpoint}  (buckets {', '.join(devservices.BUCKETS)})")
    click.echo(f"Redis       127.0.0.1:{state.redis_port}  (data {home}/redis)")
    click.echo(f"settings written to {env_out}")


@dev.command("down")
@home_option
@handles_errors
def down(home: Path) -> None:
    """Stop the services (idempotent); data stays in --home."""
    devservices.down(home)
    click.echo("local services stopped")


@dev.command("status")
@home_option
@handles_errors
def status(home: Path) -> None:
    """Show whether each service runs; exit 1 when one does not."""
    states = devservices.status(home)
    for name, running in states.items():
        click.echo(f"{name:<11} {'running' if running else 'stopped'}")
    if not all(states.values()):
        raise SystemExit(1)


@dev.command("sample")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=".mpr/sample", show_default=True, help="Where to generate the archive.")
@click.option("--upload/--no-upload", default=True, show_default=True,
              help="Upload the generated files to the input bucket.")
@click.option("--video", default=3, show_default=True, help="Good video assets.")
@click.option("--audio", default=2, show_default=True, help="Good audio assets.")
@click.option("--awaiting", default=2, show_default=True,
              help="Assets with a master but no streaming copy yet (for mpr transcode).")
@pass_app
@handles_errors
def sample(app: App, out: Path, upload: bool, video: int, audio: int, awaiting: int) -> None:
    """Generate a sample archive (good assets, a master on tape, bad files) and upload it."""
    from mpr_cli.dev import sample as samples
    from mpr_cli.storage import Storage

    archive = samples.build_sample_archive(out, assets_video=video, assets_audio=audio,
                                           awaiting=awaiting)
    click.echo(f"generated {len(archive.files)} files under {out}")
    if not upload:
        return
    settings = app.settings
    storage = Storage(settings)
    for item in archive.files:
        storage.upload_file(out / item.key, settings.s3_bucket_in, item.key)
    click.echo(f"uploaded {len(archive.files)} files to s3://{settings.s3_bucket_in}/")
