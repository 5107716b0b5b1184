"""The one home of each small helper shared across modules: atomic writes, the TOML file
skeleton, ffmpeg's stderr message and redaction, the database error wrapper."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from mpr_cli import db, tomlfiles
from mpr_cli.atomic import atomic_write, replacing
from mpr_cli.config import load_settings
from mpr_cli.errors import ConfigError, DatabaseError
from mpr_cli.ffmpeg.command import last_message, redact_output
from mpr_cli.secrets import scrub_first_line


def test_atomic_write_replaces_the_whole_file_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write(target, "new ü")
    assert target.read_text(encoding="utf-8") == "new ü"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_write_gives_exact_permissions_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "mpr.prom"
    atomic_write(target, b"x 1\n", permissions=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_removes_the_partial(tmp_path: Path) -> None:
    target = tmp_path / "master.mov"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target, permissions=0o600) as (partial, out):
        out.write(b"half")
        assert partial.parent == tmp_path and partial.name.startswith(".master.mov.")
        assert stat.S_IMODE(os.stat(partial).st_mode) == 0o600
        raise RuntimeError("download failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["master.mov"]


def test_a_bad_field_or_bad_toml_names_the_file() -> None:
    with pytest.raises(ConfigError) as bad, tomlfiles.reported("rules", "x.toml", hint="fix it"):
        raise tomlfiles.BadField("folders.BRD: unknown media type 'vidoe'")
    assert bad.value.one_line() == (
        "rules file x.toml: folders.BRD: unknown media type 'vidoe' (fix it)")
    with pytest.raises(ConfigError) as syntax, tomlfiles.reported("presets", "p.toml", hint="h"):
        tomlfiles.parse("[presets")
    assert syntax.value.message.startswith("presets file p.toml: not valid TOML: ")
    assert syntax.value.hint is None


def test_a_missing_data_file_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        tomlfiles.read_text(tmp_path / "none.toml", "presets", missing_hint="check MPR_PRESETS")
    assert missing.value.one_line() == (
        f"presets file {tmp_path / 'none.toml'}: not found (check MPR_PRESETS)")


def test_the_message_is_the_last_line_that_says_something() -> None:
    stderr = "\n[mov @ 0x1] moov atom not found\n  \nConversion failed!\n"
    assert last_message(stderr) == "[mov @ 0x1] moov atom not found"
    assert last_message("Conversion failed!\n") == "no error message"
    assert last_message("/m/A.mov: Invalid data", source="/m/A.mov", none="x") == "Invalid data"
    assert last_message("", none="nothing") == "nothing"
    long = last_message("e" * 400)
    assert len(long) == 300 and long.endswith("...")


def test_output_never_shows_a_presigned_signature() -> None:
    url = "https://s3.example/in/A.mov?X-Amz-Signature=abc123"
    shown = redact_output(f"error opening {url}\nX-Amz-Signature=abc123", ["-i", url])
    assert "abc123" not in shown
    assert "https://s3.example/in/A.mov?<redacted>" in shown


def test_scrub_first_line_keeps_one_line_without_secrets() -> None:
    assert scrub_first_line("  failed for s3cret\nDETAIL: more", ["s3cret"]) == "failed for ****"
    assert scrub_first_line(" \n ") == "unknown error"


@pytest.mark.parametrize(
    ("error", "messages", "expected"),
    [
        (psycopg.OperationalError("server closed the connection\nmore"), db.IN_USE,
         "database connection lost: server closed the connection"),
        (psycopg.errors.UniqueViolation("duplicate key value"), db.IN_USE,
         "database error: duplicate key value"),
        (psycopg.errors.UndefinedTable("relation x does not exist"),
         {psycopg.Error: "migration failed"}, "migration failed: relation x does not exist"),
    ],
)
def test_every_psycopg_error_becomes_one_database_error(error, messages, expected) -> None:
    settings = load_settings(env_file=None, database_url="postgresql://u:pw-s3cret@h/d")
    with pytest.raises(DatabaseError) as caught, db.wrap_database_errors(settings, messages):
        raise error
    assert caught.value.message == expected
    assert caught.value.__cause__ is None


def test_the_database_error_carries_no_secret() -> None:
    settings = load_settings(env_file=None, database_url="postgresql://u:pw-s3cret@h/d")
    with pytest.raises(DatabaseError) as caught, db.wrap_database_errors(settings):
        raise psycopg.OperationalError("password pw-s3cret refused")
    assert "pw-s3cret" not in caught.value.one_line()


def test_other_errors_pass_through_unwrapped() -> None:
    settings = load_settings(env_file=None, database_url="postgresql://u:p@h/d")
    with pytest.raises(KeyError), db.wrap_database_errors(settings):
        raise KeyError("not a database error")
