"""`mpr doctor`: one check per dependency, each with a fix hint when it fails.

The S3 check also names the provider mpr thinks it talks to, and why: the endpoint's host
(`*.amazonaws.com`, `storage.googleapis.com`, `*.r2.cloudflarestorage.com`, no endpoint at
all: AWS) and the Server header of the HEAD of the input bucket (`AmazonS3`, `MinIO`,
`SeaweedFS ...`, `UploadServer` for GCS, `cloudflare` for R2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mpr_cli.config import Settings, load_settings
from mpr_cli.display import visible
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


AWS, GCS, MINIO, R2, SEAWEEDFS = ("AWS S3", "Google Cloud Storage", "MinIO", "Cloudflare R2",
                                  "SeaweedFS")
# (a suffix of the endpoint's host, the provider)
HOSTS = ((".amazonaws.com", AWS), ("storage.googleapis.com", GCS),
         (".r2.cloudflarestorage.com", R2))
# (a word of the Server header, lower case, the provider)
SERVERS = (("amazons3", AWS), ("minio", MINIO), ("seaweedfs", SEAWEEDFS),
           ("uploadserver", GCS), ("cloudflare", R2))


@dataclass(frozen=True)
class Provider:
    name: str  # "" when neither the host nor the Server header says
    why: str


def identify_provider(endpoint: str | None, server: str) -> Provider:
    """The S3 service behind `endpoint` (None: AWS) that answered with this Server header."""
    host = (urlsplit(endpoint).hostname or "").lower() if endpoint else ""
    by_host = AWS if not endpoint else next(
        (name for suffix, name in HOSTS if host == suffix.lstrip(".") or host.endswith(suffix)),
        "")
    by_server = next((name for word, name in SERVERS if word in server.lower()), "")
    header = f"Server header '{visible(server)}'" if server else "no Server header"
    reasons = ["no S3_ENDPOINT_URL" if not endpoint else f"endpoint host {host}" if by_host
               else "", header if by_server else ""]
    name = by_server or by_host
    if by_host and by_server and by_host != by_server:  # a proxy or gateway in front
        return Provider(name, f"{header}, although the endpoint host is {host}")
    if not name:
        return Provider("", f"endpoint host {host}, {header}")
    return Provider(name, " and ".join(r for r in reasons if r))


def _s3(settings: Settings) -> str:
    from mpr_cli.storage import Storage, client_options

    storage = Storage(settings)
    probes = {b: storage.probe_bucket(b) for b in (settings.s3_bucket_in, settings.s3_bucket_out)}
    missing = [b for b, probe in probes.items() if not probe.exists]
    if missing:
        raise MprError(f"bucket(s) missing: {', '.join(missing)}",
                       hint="create them, or fix S3_BUCKET_IN / S3_BUCKET_OUT")
    where = mask_url(settings.s3_endpoint_url) if settings.s3_endpoint_url else "AWS"
    provider = identify_provider(settings.s3_endpoint_url, probes[settings.s3_bucket_in].server)
    options = client_options(settings)
    return (f"{where}: buckets {settings.s3_bucket_in} and {settings.s3_bucket_out} exist; "
            f"provider {provider.name or 'unknown S3-compatible server'} ({provider.why}); "
            f"addressing {options['s3']['addressing_style']}, checksums "
            f"{options['request_checksum_calculation']}")


def _database(settings: Settings) -> str:
    from mpr_cli import db

    status = db.migration_status(settings)
    if status.pending:
        raise MprError(f"{len(status.pending)} migration(s) pending", hint="run `mpr db migrate`")
    return f"reachable, {len(status.applied)} migration(s) applied"


def _broker(settings: Settings) -> str:
    """The Celery broker answers (only checked when one is configured or the celery
    executor is chosen: the local pool needs none)."""
    from mpr_cli.secrets import mask_url
    from mpr_cli.transcode import broker

    app = broker.make_app(settings)
    broker.check_broker(app, settings)
    url = mask_url(broker.broker_url(settings))
    return f"{url} answers (MPR_EXECUTOR={settings.executor.value})"


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
        if settings.celery_broker_url is not None or settings.executor.value == "celery":
            yield _check("broker", lambda: _broker(settings),
                         "check CELERY_BROKER_URL; locally run `mpr dev up`", secrets)
    yield _check("ffmpeg", _ffmpeg, INSTALL_HINT)
    yield _check("mediainfo", _mediainfo, "pip install pymediainfo")
