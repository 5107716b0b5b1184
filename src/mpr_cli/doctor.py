"""`mpr doctor`: one check per dependency, each with a fix hint when it fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from mpr_cli.config import Settings, load_settings
from mpr_cli.errors import MprError
from mpr_cli.ffmpeg import INSTALL_HINT
from mpr_cli.secrets import mask_url, scrub


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _check(name: str, probe: Callable[[], str], hint: str, secrets: Sequence[str] = ()) -> Check:
    """One check; whatever it says (or fails with) scrubbed of `secrets` and credentials."""
    try:
        return Check(name, True, scrub(probe(), secrets))
    except MprError as exc:
        return Check(name, False, scrub(exc.message, secrets),
                     scrub(exc.hint or hint, secrets))
    except Exception as exc:  # noqa: BLE001 - a doctor reports every failure, never crashes
        first = (str(exc).strip().splitlines() or [""])[0]
        return Check(name, False, scrub(f"{type(exc).__name__}: {first}", secrets), hint)


def _s3(settings: Settings) -> str:
    from mpr_cli.storage import Storage

    storage = Storage(settings)
    missing = [b for b in (settings.s3_bucket_in, settings.s3_bucket_out)
               if not storage.bucket_exists(b)]
    if missing:
        raise MprError(f"bucket(s) missing: {', '.join(missing)}",
                       hint="create them, or fix S3_BUCKET_IN / S3_BUCKET_OUT")
    where = mask_url(settings.s3_endpoint_url) if settings.s3_endpoint_url else "AWS"
    return f"{where}: buckets {settings.s3_bucket_in} and {settings.s3_bucket_out} exist"


def _database(settings: Settings) -> str:
    from mpr_cli import db

    status = db.migration_status(settings)
    if status.pending:
        raise MprError(f"{len(status.pending)} migration(s) pending", hint="run `mpr db migrate`")
    return f"reachable, {len(status.applied)} migration(s) applied"


def _ffmpeg() -> str:
    from mpr_cli.ffmpeg import probe

    return f"ffmpeg {probe.ffmpeg_version()}, ffprobe {probe.ffprobe_version()}"


def _mediainfo() -> str:
    from mpr_cli.ffmpeg import probe

    if not probe.mediainfo_works():
        raise MprError("pymediainfo cannot load libmediainfo",
                       hint="reinstall pymediainfo (its wheel bundles the library)")
    return "pymediainfo parses media"


def run_checks(env_file: str | None) -> Iterator[Check]:
    settings_hint = "fix the variable in the environment or .env (see .env.example)"
    try:
        settings = load_settings(env_file)
    except MprError as exc:
        yield Check("settings", False, exc.message, settings_hint)
        settings = None
    else:
        yield Check("settings", True, "loaded")
    if settings is not None:
        secrets = settings.secret_values()
        yield _check("S3", lambda: _s3(settings),
                     "check S3_ENDPOINT_URL and credentials; locally run `mpr dev up`", secrets)
        yield _check("database", lambda: _database(settings),
                     "check DATABASE_URL; locally run `mpr dev up`, then `mpr db migrate`",
                     secrets)
    yield _check("ffmpeg", _ffmpeg, INSTALL_HINT)
    yield _check("mediainfo", _mediainfo, "pip install pymediainfo")
