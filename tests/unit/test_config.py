"""Settings: defaults, the older importer's names, clear errors, masked secrets."""

from pathlib import Path

import pytest

from mpr_cli.config import load_settings, masked
from mpr_cli.errors import ConfigError, ExitCode


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_", "SMTP_")):
            monkeypatch.delenv(name)


def test_defaults_match_the_documented_ones():
    settings = load_settings(env_file=None)
    assert settings.s3_bucket_in == "mpr-media-in"
    assert settings.s3_bucket_out == "mpr-media-out"
    assert settings.s3_endpoint_url is None  # AWS
    assert settings.exclude_prefixes == ("TEST-FOLDER-DEV/", "DOCUMENTAZIONE_FOTOGRAFICA/", "UMT/")
    assert settings.dry_run is False and settings.safe_run is False


@pytest.mark.parametrize("name", ["MPR_DRY_RUN", "ACH_DRY_RUN"])
def test_dry_run_accepts_both_names(monkeypatch, name):
    monkeypatch.setenv(name, "true")
    assert load_settings(env_file=None).dry_run is True


@pytest.mark.parametrize("name", ["MPR_SAFE_RUN", "ACH_SAFE_RUN"])
def test_safe_run_accepts_both_names(monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert load_settings(env_file=None).safe_run is True


def test_exclude_prefixes_are_comma_separated(monkeypatch):
    monkeypatch.setenv("MPR_EXCLUDE_PREFIXES", "A/, B/ ,,")
    assert load_settings(env_file=None).exclude_prefixes == ("A/", "B/")


def test_env_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("S3_BUCKET_IN=from-file\nS3_BUCKET_OUT=out-file\n")
    monkeypatch.setenv("S3_BUCKET_OUT", "from-env")
    settings = load_settings(env_file=env)
    assert settings.s3_bucket_in == "from-file"
    assert settings.s3_bucket_out == "from-env"


def test_settings_are_frozen():
    settings = load_settings(env_file=None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        settings.s3_bucket_in = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value"),
    [("MPR_IO_WORKERS", "many"), ("DB_PORT", "99999"), ("S3_ENDPOINT_URL", "minio:9000"),
     ("MPR_DRY_RUN", "perhaps"), ("S3_ENDPOINT_URL", "http://"), ("S3_ENDPOINT_URL", "http://h:x"),
     ("DB_HOST", "bad host"), ("MPR_NOTIFY_FROM", "a@b\r\nBcc: c@d"),
     ("MPR_NOTIFY_TO", "a@b,c@d\nBcc: e@f")],
)
def test_bad_setting_names_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert info.value.message.startswith(f"{name}:")
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in info.value.one_line()


def test_conninfo_from_parts_escapes_the_password(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db.example")
    monkeypatch.setenv("DB_PASSWORD", "p@ss:w/rd")
    conninfo = load_settings(env_file=None).conninfo()
    assert conninfo == "postgresql://mpr:p%40ss%3Aw%2Frd@db.example:5432/mpr"


def test_masked_settings_never_show_secrets(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "topsecret-s3")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:topsecret-db@h:5432/d")
    monkeypatch.setenv("DB_PASSWORD", "topsecret-part")
    shown = masked(load_settings(env_file=None))
    text = repr(shown)
    assert "topsecret" not in text
    assert shown["DATABASE_URL"] == "postgresql://u:****@h:5432/d"
    assert shown["AWS_SECRET_ACCESS_KEY"] == "********"


@pytest.mark.parametrize(("url", "reason"), [
    ("mpr:s3cret-pw@localhost/mpr", "has no scheme: write postgresql://"),
    ("postgresql://mpr:s3cret%zzpw@localhost/mpr", "has a % that is not a %XX escape"),
    ("mysql://mpr:s3cret-pw@localhost/mpr", "has the scheme mysql://: write postgresql://"),
    ("host=db password='s3cret-pw dbname=mpr", "libpq cannot parse it: unterminated quoted"),
    ("postgresql://db/mpr?pasword=s3cret-pw", 'libpq cannot parse it: invalid URI query parameter'),
])
def test_bad_database_url_is_named_without_its_password(monkeypatch, url, reason):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    line = info.value.one_line()
    assert line.startswith(f"DATABASE_URL: {reason}"), line
    assert "s3cret" not in line
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(("url", "shown", "password"), [
    ("postgresql://u:pw-s3cret@h:5432/d", "postgresql://u:****@h:5432/d", "pw-s3cret"),
    ("postgres://u:pw%40s3cret@h/d", "postgres://u:****@h/d", "pw@s3cret"),
    ("host=h password='pw s3cret' dbname=d", "host=h password=**** dbname=d", "pw s3cret"),
    ("postgresql://u@h/d?password=pw-s3cret", "postgresql://u@h/d?password=****", "pw-s3cret"),
])
def test_every_form_of_database_url_is_masked_and_its_password_known(monkeypatch, url, shown,
                                                                      password):
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings(env_file=None)

    assert masked(settings)["DATABASE_URL"] == shown
    assert password in settings.secret_values()


def test_credentials_in_the_s3_endpoint_are_masked(monkeypatch):
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://KEY:ep-s3cret@seaweed:8333")
    settings = load_settings(env_file=None)

    assert masked(settings)["S3_ENDPOINT_URL"] == "http://KEY:****@seaweed:8333"
    assert "ep-s3cret" in settings.secret_values()


def test_conninfo_brackets_an_ipv6_host(monkeypatch):
    monkeypatch.setenv("DB_HOST", "::1")
    assert load_settings(env_file=None).conninfo() == "postgresql://mpr@[::1]:5432/mpr"


# -- storage providers: what differs between S3 services ------------------------------------------

PROVIDERS = {  # the documented values (README "Configuration", .env.example)
    "AWS": (None, "auto", "when_supported"),
    "MinIO": ("http://127.0.0.1:9000", "path", "when_required"),
    "SeaweedFS": ("http://127.0.0.1:8333", "path", "when_required"),
    "GCS": ("https://storage.googleapis.com", "path", "when_required"),
    "R2": ("https://acct.r2.cloudflarestorage.com", "path", "when_required"),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_unset_s3_settings_give_each_provider_its_documented_client_config(monkeypatch,
                                                                          provider):
    from mpr_cli.storage import client_options

    endpoint, style, checksums = PROVIDERS[provider]
    if endpoint:
        monkeypatch.setenv("S3_ENDPOINT_URL", endpoint)
    options = client_options(load_settings(env_file=None))
    assert options == {"s3": {"addressing_style": style},
                       "request_checksum_calculation": checksums,
                       "response_checksum_validation": checksums}


def test_s3_settings_override_the_endpoint_defaults_and_reach_botocore(monkeypatch):
    from mpr_cli.storage import make_client

    monkeypatch.setenv("S3_ENDPOINT_URL", "https://s3.example.org")
    monkeypatch.setenv("S3_ADDRESSING_STYLE", "Virtual")
    monkeypatch.setenv("S3_REQUEST_CHECKSUMS", "when_supported")
    settings = load_settings(env_file=None)
    config = make_client(settings).meta.config

    assert config.s3 == {"addressing_style": "virtual"}
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"
    assert masked(settings)["S3_ADDRESSING_STYLE"] == "virtual"


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("S3_ADDRESSING_STYLE", "dns", "'path', 'virtual' or 'auto'"),
    ("S3_REQUEST_CHECKSUMS", "always", "'when_required' or 'when_supported'"),
])
def test_bad_s3_setting_is_one_line_naming_the_variable_and_its_values(monkeypatch, name, value,
                                                                        allowed):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.one_line() == (f"{name}: Input should be {allowed} (fix {name} in the "
                                       "environment or in .env (see .env.example))")


@pytest.mark.parametrize(("endpoint", "server", "name", "why"), [
    (None, "AmazonS3", "AWS S3", "no S3_ENDPOINT_URL and Server header 'AmazonS3'"),
    ("https://s3.eu-west-1.amazonaws.com", "", "AWS S3",
     "endpoint host s3.eu-west-1.amazonaws.com"),
    ("https://storage.googleapis.com", "UploadServer", "Google Cloud Storage",
     "endpoint host storage.googleapis.com and Server header 'UploadServer'"),
    ("https://acct.r2.cloudflarestorage.com", "cloudflare", "Cloudflare R2",
     "endpoint host acct.r2.cloudflarestorage.com and Server header 'cloudflare'"),
    ("http://minio:9000", "MinIO", "MinIO", "Server header 'MinIO'"),
    ("http://127.0.0.1:8333", "SeaweedFS 30GB 3.80", "SeaweedFS",
     "Server header 'SeaweedFS 30GB 3.80'"),
    ("https://s3.example.org", "", "", "endpoint host s3.example.org, no Server header"),
    ("https://s3.example.org", "nginx\x1b[2J", "",
     "endpoint host s3.example.org, Server header 'nginx\\x1b[2J'"),
    ("https://gw.amazonaws.com", "MinIO", "MinIO",
     "Server header 'MinIO', although the endpoint host is gw.amazonaws.com"),
])
def test_doctor_names_the_provider_and_why(endpoint, server, name, why):
    from mpr_cli.doctor import identify_provider

    provider = identify_provider(endpoint, server)
    assert (provider.name, provider.why) == (name, why)
