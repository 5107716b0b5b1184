"""Settings: defaults, the older importer's names, clear errors, masked secrets."""

from pathlib import Path

import pytest

from mpr_cli.config import load_settings, masked, redact_url
from mpr_cli.errors import ConfigError, ExitCode


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "S3_", "DB_", "DATABASE_", "MPR_", "ACH_")):
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
     ("MPR_DRY_RUN", "perhaps")],
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


def test_redact_url_without_password_is_unchanged():
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"
