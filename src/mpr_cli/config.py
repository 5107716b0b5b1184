"""Settings: one frozen object, read once from the environment and `.env`, passed down.

Every variable is documented in `.env.example`. Secrets are `SecretStr` and only ever
shown masked (`mpr config`).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mpr_cli.errors import ConfigError
from mpr_cli.fixity import budget
from mpr_cli.secrets import mask_url, scrub

DEFAULT_EXCLUDES = ("TEST-FOLDER-DEV/", "DOCUMENTAZIONE_FOTOGRAFICA/", "UMT/")


class NotifyOn(StrEnum):
    ALWAYS = "always"
    PROBLEMS = "problems"
    NEVER = "never"


class AddressingStyle(StrEnum):
    """How bucket names go into S3 URLs (S3_ADDRESSING_STYLE): `path` (host/bucket/key: MinIO,
    SeaweedFS, GCS, R2), `virtual` (bucket.host/key: AWS), `auto` (botocore decides)."""

    PATH = "path"
    VIRTUAL = "virtual"
    AUTO = "auto"


class Executor(StrEnum):
    """Where transcode jobs run (MPR_EXECUTOR): `local`, this process's pool of ffmpeg
    processes, or `celery`, `mpr worker` processes fed through the broker."""

    LOCAL = "local"
    CELERY = "celery"


class PicturesMode(StrEnum):
    """When mpr makes an asset's pictures (MPR_PICTURES, src/mpr_cli/pictures/): `on` at
    transcode and at import (the delivered streaming copy, read by ranges), `transcode-only`
    (the default: an import stays as fast as it was; `mpr thumbnails --missing` fills the
    rest), `off` never but by `mpr thumbnails`."""

    ON = "on"
    TRANSCODE_ONLY = "transcode-only"
    OFF = "off"


class RequestChecksums(StrEnum):
    """When the S3 client adds request checksums and validates response checksums
    (S3_REQUEST_CHECKSUMS): `when_required` (only where S3 demands them: what servers other
    than AWS understand), `when_supported` (every operation that can: AWS)."""

    WHEN_REQUIRED = "when_required"
    WHEN_SUPPORTED = "when_supported"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """The effective configuration of one mpr process."""

    model_config = SettingsConfigDict(
        frozen=True,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        env_ignore_empty=True,
    )

    s3_endpoint_url: str | None = Field(None, validation_alias=_env("S3_ENDPOINT_URL"))
    s3_bucket_in: str = Field("mpr-media-in", validation_alias=_env("S3_BUCKET_IN"), min_length=3)
    s3_bucket_out: str = Field(
        "mpr-media-out", validation_alias=_env("S3_BUCKET_OUT"), min_length=3
    )
    aws_access_key_id: SecretStr | None = Field(None, validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_REGION", "AWS_DEFAULT_REGION"))
    # unset: path / when_required with S3_ENDPOINT_URL (a server other than AWS), else
    # auto / when_supported (AWS, botocore's defaults); see storage.client_options
    s3_addressing_style: AddressingStyle | None = Field(
        None, validation_alias=_env("S3_ADDRESSING_STYLE"))
    s3_request_checksums: RequestChecksums | None = Field(
        None, validation_alias=_env("S3_REQUEST_CHECKSUMS"))

    database_url: SecretStr | None = Field(None, validation_alias=_env("DATABASE_URL"))
    db_host: str = Field("localhost", validation_alias=_env("DB_HOST"))
    db_port: int = Field(5432, validation_alias=_env("DB_PORT"), ge=1, le=65535)
    db_name: str = Field("mpr", validation_alias=_env("DB_NAME"))
    db_user: str = Field("mpr", validation_alias=_env("DB_USER"))
    db_password: SecretStr | None = Field(None, validation_alias=_env("DB_PASSWORD"))
    # how long a connection to PostgreSQL is retried (a restart, a failover) before exit 4
    db_retry_seconds: float = Field(20, validation_alias=_env("MPR_DB_RETRY_SECONDS"), ge=0,
                                    le=3600)

    dry_run: bool = Field(False, validation_alias=_env("MPR_DRY_RUN", "ACH_DRY_RUN"))
    safe_run: bool = Field(False, validation_alias=_env("MPR_SAFE_RUN", "ACH_SAFE_RUN"))
    # known errors (reported before for the same key, ETag and reason) fail the run too
    strict: bool = Field(False, validation_alias=_env("MPR_STRICT"))
    exclude_prefixes: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_EXCLUDES, validation_alias=_env("MPR_EXCLUDE_PREFIXES")
    )
    rules_file: Path | None = Field(None, validation_alias=_env("MPR_RULES"))
    presets_file: Path | None = Field(None, validation_alias=_env("MPR_PRESETS"))

    io_workers: int = Field(16, validation_alias=_env("MPR_IO_WORKERS"), ge=1, le=256)
    transcode_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        validation_alias=_env("MPR_TRANSCODE_WORKERS"),
        ge=1,
        le=64,
    )
    batch_assets: int = Field(200, validation_alias=_env("MPR_BATCH_ASSETS"), ge=1, le=100_000)
    # parallel ListObjectsV2 listings of the first-level folders (listing.py); None: the
    # caller's default, the number of carrier folders in the rules, at most 8
    list_concurrency: int | None = Field(
        None, validation_alias=_env("MPR_LIST_CONCURRENCY"), ge=1, le=64)
    temp_dir: Path | None = Field(None, validation_alias=_env("MPR_TEMP_DIR"))
    # seconds ffmpeg may go without its output advancing before it is stopped (ffmpeg/runner.py)
    ffmpeg_stall_timeout: float = Field(
        600, validation_alias=_env("MPR_FFMPEG_STALL_TIMEOUT"), gt=0, le=86_400
    )

    # pictures (posters, contact sheets, waveforms): when they are made (PicturesMode)
    pictures: PicturesMode = Field(PicturesMode.TRANSCODE_ONLY,
                                   validation_alias=_env("MPR_PICTURES"))

    # transcode jobs: a job's lease (a claimed job whose heartbeat is older can be claimed
    # again: its worker died) and how often a running job renews it
    job_lease_seconds: float = Field(120, validation_alias=_env("MPR_JOB_LEASE_SECONDS"), ge=2,
                                     le=86_400)
    job_heartbeat_seconds: float = Field(5, validation_alias=_env("MPR_JOB_HEARTBEAT_SECONDS"),
                                         gt=0, le=3_600)
    executor: Executor = Field(Executor.LOCAL, validation_alias=_env("MPR_EXECUTOR"))
    celery_broker_url: SecretStr | None = Field(None,
                                                validation_alias=_env("CELERY_BROKER_URL"))
    # seconds before the broker gives an unacknowledged task to another worker: longer than
    # the longest job (a task is acknowledged only when its job is settled)
    celery_visibility_timeout: float = Field(
        86_400, validation_alias=_env("MPR_CELERY_VISIBILITY_TIMEOUT"), ge=10, le=30 * 86_400)

    # `mpr nightly`'s full fixity pass: a time ("1h") or a size ("200G") per night, and the
    # cycle within which every catalogued file is fully verified (fixity/budget.py)
    fixity_budget: str | None = Field(None, validation_alias=_env("MPR_FIXITY_BUDGET"))
    fixity_cycle: str = Field("365d", validation_alias=_env("MPR_FIXITY_CYCLE"))

    smtp_host: str | None = Field(None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(25, validation_alias=_env("SMTP_PORT"), ge=1, le=65535)
    smtp_user: str | None = Field(None, validation_alias=_env("SMTP_USER"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(False, validation_alias=_env("SMTP_STARTTLS"))
    notify_to: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("MPR_NOTIFY_TO"))
    notify_from: str | None = Field(None, validation_alias=_env("MPR_NOTIFY_FROM"))
    notify_on: NotifyOn = Field(NotifyOn.PROBLEMS, validation_alias=_env("MPR_NOTIFY_ON"))

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("fixity_budget")
    @classmethod
    def _fixity_budget_parses(cls, value: str | None) -> str | None:
        if value is not None:
            budget.parse_budget(value)
        return value

    @field_validator("fixity_cycle")
    @classmethod
    def _fixity_cycle_parses(cls, value: str) -> str:
        if budget.parse_duration(value) < budget.DAY_S:
            raise ValueError(f"{value!r} is shorter than a day (the nightly runs once a day)")
        return value

    @field_validator("job_heartbeat_seconds")
    @classmethod
    def _heartbeat_within_lease(cls, value: float, info: Any) -> float:
        lease = info.data.get("job_lease_seconds")
        if lease is not None and value * 2 > lease:
            raise ValueError(f"must be at most half of MPR_JOB_LEASE_SECONDS ({lease:g})")
        return value

    @field_validator("exclude_prefixes", "notify_to", mode="before")
    @classmethod
    def _split_prefixes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("s3_addressing_style", "s3_request_checksums", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("s3_endpoint_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if re.search(r"\s", value):
            raise ValueError("must not contain spaces (percent-encode them as %20)")
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError("has no host: write http://HOST:PORT, e.g. http://localhost:8333")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ValueError("has a bad port: write http://HOST:PORT with PORT 1-65535") from None
        return value

    @field_validator("db_host")
    @classmethod
    def _host_is_a_name(cls, value: str) -> str:
        if not value or re.search(r"[\s/@?#]", value):
            raise ValueError("must be a host name or IP address (no spaces, /, @, ? or #); "
                             "for anything else set DATABASE_URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _dsn_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_dsn(value.get_secret_value())
        return value

    @field_validator("notify_from", "notify_to")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        values = value if isinstance(value, tuple) else (value,)
        if any(v and ("\r" in v or "\n" in v) for v in values):
            raise ValueError("contains a line break (CR or LF): give plain e-mail addresses only")
        return value

    def conninfo(self) -> str:
        """The libpq connection string (contains the password: never log it)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = self.db_password.get_secret_value() if self.db_password else ""
        auth = quote(self.db_user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        host = f"[{self.db_host}]" if ":" in self.db_host else self.db_host  # IPv6
        return f"postgresql://{auth}@{host}:{self.db_port}/{quote(self.db_name, safe='')}"

    def secret_values(self) -> list[str]:
        """Every secret this process knows, to scrub from anything shown to a user."""
        secrets = [self.aws_secret_access_key, self.db_password, self.database_url,
                   self.smtp_password, self.celery_broker_url]
        values: list[str | None] = [s.get_secret_value() for s in secrets if s is not None]
        if self.database_url is not None:
            values.append(_dsn_password(self.database_url.get_secret_value()))
        broker = self.celery_broker_url.get_secret_value() if self.celery_broker_url else None
        for url in (self.s3_endpoint_url, self.smtp_host, broker):
            values.append(urlsplit(url).password if url and "://" in url else None)
        return [v for v in values if v]


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def check_dsn(dsn: str) -> None:
    """Raise ValueError (never quoting the DSN: it holds the password) unless libpq can
    parse `dsn`, a postgresql:// or postgres:// URL or a key=value string."""
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", dsn)
    if scheme is None and "=" not in dsn:
        raise ValueError("has no scheme: write postgresql://USER:PASSWORD@HOST:PORT/DBNAME "
                         "(or a libpq key=value string)")
    if scheme is not None and scheme[1] not in ("postgresql", "postgres"):
        raise ValueError(f"has the scheme {scheme[1][:20]}://: write postgresql://")
    if scheme is not None and _BAD_ESCAPE.search(dsn):
        raise ValueError("has a % that is not a %XX escape: percent-encode the password's "
                         "special characters (% as %25, @ as %40, : as %3A, / as %2F)")
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = re.sub(r'"[^"]*"', '"…"', str(exc).strip().splitlines()[0])
        raise ValueError(f"libpq cannot parse it: {scrub(reason, [dsn])}") from None


def _dsn_password(dsn: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    password = conninfo_to_dict(dsn).get("password")  # parsed once by check_dsn already
    return str(password) if password else None


ENV_NAMES: dict[str, str] = {
    name: (field.validation_alias.choices[0] if isinstance(field.validation_alias, AliasChoices)
           else name.upper())  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}

FIELD_BY_ENV: dict[str, str] = {env: name for name, env in ENV_NAMES.items()}


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build the Settings once. A bad value raises ConfigError naming the variable."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = str(first["loc"][0]) if first["loc"] else "settings"
        variable = ENV_NAMES.get(loc, loc.upper())
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"{variable}: {message}",
            hint=f"fix {variable} in the environment or in .env (see .env.example)",
        ) from None


def masked(settings: Settings) -> dict[str, str]:
    """The effective settings by environment variable name, secrets masked."""
    shown: dict[str, str] = {}
    secrets = settings.secret_values()
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = "********" if value.get_secret_value() else ""
        elif value is None:
            text = ""
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        shown[ENV_NAMES[name]] = scrub(text, secrets)
    for name, url in (("DATABASE_URL", settings.database_url), ("S3_ENDPOINT_URL",
                                                               settings.s3_endpoint_url)):
        if url is not None:
            shown[name] = mask_url(url.get_secret_value() if isinstance(url, SecretStr) else url)
    return shown
