"""The command line without any server: help, version, usage and configuration errors.

Click's CliRunner calls the real `mpr` group in this process, in an empty folder (no .env) and
with none of the caller's settings in the environment, so nothing here needs PostgreSQL,
SeaweedFS or ffmpeg. The exact text and exit code a user sees are asserted.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from mpr_cli import __version__, cli
from mpr_cli.config import FIELD_BY_ENV
from mpr_cli.dev.devservices import free_port
from tests.unit.clirun import one_line, runner_in

BUILTIN_PRESETS = {"web-720p", "web-1080p", "audio-mp3-192", "audio-mp3-320"}


@pytest.fixture()
def mpr(tmp_path, monkeypatch) -> Callable[..., Result]:
    """mpr(*args, **env): run `mpr` with only `env` as its settings, in an empty folder."""
    return runner_in(tmp_path, monkeypatch)


# -- help and version ---------------------------------------------------------------------------


def test_help_documents_exit_codes(mpr):
    result = mpr("--help")

    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: mpr [OPTIONS] COMMAND [ARGS]...")
    for line in ("0  completed", "2  usage or configuration", "3  aborted by --safe-run",
                 "4  infrastructure failure", "internal error", "130  interrupted"):
        assert line in result.stdout
    commands = result.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = {line.split()[0] for line in commands.splitlines()}
    assert listed == set(cli.COMMANDS)


def test_version(mpr):
    result = mpr("--version")

    assert (result.exit_code, result.stdout) == (0, f"mpr, version {__version__}\n")


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_help(mpr, command):
    result = mpr(command, "--help")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Usage: mpr {command} ")
    assert result.stderr == ""


# -- usage errors: exit 2, the option named -----------------------------------------------------


def test_unknown_command_is_a_usage_error(mpr):
    result = mpr("improt")

    assert result.exit_code == 2
    assert one_line(result) == "error: No such command 'improt'. (see `mpr --help`)"
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "named", "command"), [
    (("import", "--verify", "bogus"), "'--verify': 'bogus' is not one of 'auto', 'full', 'none'",
     "mpr import"),
    (("transcode", "--pending", "--workers", "0"), "'--workers': 0 is not in the range",
     "mpr transcode"),
    (("jobs", "retry", "abc"), "'JOB_ID': 'abc' is not a valid integer", "mpr jobs retry"),
    (("jobs", "list", "--limit", "-1"), "'--limit': -1 is not in the range x>=1",
     "mpr jobs list"),
    (("import", "--no-such-option"), "No such option '--no-such-option'", "mpr import"),
    (("presets", "show"), "Missing argument 'NAME'", "mpr presets show"),
])
def test_bad_option_exits_2_in_one_line_naming_it(mpr, args, named, command):
    result = mpr(*args)

    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert line.startswith("error: ") and named in line, line
    assert line.endswith(f"(see `{command} --help`)"), line
    assert result.stdout == ""


def test_a_group_without_its_command_shows_its_help(mpr):
    result = mpr("jobs")

    assert result.exit_code == 2
    assert "Usage: mpr jobs [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "retry" in result.output


def test_transcode_needs_a_key_or_pending(mpr):
    result = mpr("transcode")

    assert result.exit_code == 2
    assert one_line(result) == ("error: give either a master KEY or --pending "
                                "(see mpr transcode --help)")


# -- configuration errors: exit 2, one line naming the variable ---------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("DB_PORT", "not-a-port"), ("DB_PORT", "70000"), ("MPR_IO_WORKERS", "0"),
    ("MPR_BATCH_ASSETS", "many"), ("MPR_DRY_RUN", "perhaps"), ("S3_BUCKET_IN", "x"),
    ("S3_ENDPOINT_URL", "http://"), ("DB_HOST", "bad host"),
    ("S3_ADDRESSING_STYLE", "dns"), ("S3_REQUEST_CHECKSUMS", "always"),
    ("MPR_NOTIFY_FROM", "mpr@example.org\r\nBcc: all@example.org"),
    ("MPR_NOTIFY_TO", "ops@example.org\nBcc: all@example.org"),
])
def test_bad_setting_exits_2_naming_the_variable(mpr, name, value):
    assert name in FIELD_BY_ENV
    result = mpr("config", **{name: value})

    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"error: {name}:"), line
    assert f"fix {name} in the environment or in .env" in line
    assert result.stdout == ""


@pytest.mark.parametrize(("url", "reason"), [
    ("mpr:url-s3cret@127.0.0.1:1/mpr", "has no scheme: write postgresql://USER:PASSWORD@HOST:PORT/"
     "DBNAME (or a libpq key=value string)"),
    ("postgresql://mpr:url-s3cret%zz@127.0.0.1:1/mpr", "has a % that is not a %XX escape: "
     "percent-encode the password's special characters (% as %25, @ as %40, : as %3A, / as %2F)"),
])
@pytest.mark.parametrize("command", [("config",), ("db", "status"), ("jobs", "list")])
def test_bad_database_url_exits_2_without_showing_it(mpr, url, reason, command):
    result = mpr(*command, DATABASE_URL=url)

    assert result.exit_code == 2
    assert one_line(result) == (f"error: DATABASE_URL: {reason} (fix DATABASE_URL in the "
                                "environment or in .env (see .env.example))")
    assert "url-s3cret" not in result.output


def test_missing_env_file_given_explicitly_exits_2(mpr):
    result = mpr("--env-file", "prod.env", "config")

    assert result.exit_code == 2
    assert one_line(result) == ("error: --env-file prod.env: no such file (give an existing "
                                "file, or leave --env-file out to read ./.env when there is one)")
    assert result.stdout == ""


def test_bad_setting_in_the_env_file_is_named_too(mpr):
    with open("settings.env", "w", encoding="utf-8") as f:
        f.write("MPR_TRANSCODE_WORKERS=lots\n")

    result = mpr("--env-file", "settings.env", "config")

    assert result.exit_code == 2
    assert one_line(result).startswith("error: MPR_TRANSCODE_WORKERS:")


def test_missing_rules_file_exits_2_naming_it(mpr):
    result = mpr("validate", MPR_RULES="/nonexistent/rules.toml")

    assert result.exit_code == 2
    assert one_line(result) == ("error: rules file /nonexistent/rules.toml: not found "
                                "(check --rules or MPR_RULES)")


def test_config_masks_secrets(mpr):
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-s3cr3t-value", "DB_PASSWORD": "db-s3cr3t-value",
               "SMTP_PASSWORD": "smtp-s3cr3t-value"}
    result = mpr("config", "--json", **secrets,
                 DATABASE_URL="postgresql://mpr:url-s3cr3t-value@127.0.0.1:5432/mpr")

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["AWS_SECRET_ACCESS_KEY"] == "********"
    assert ":****@" in shown["DATABASE_URL"]
    for secret in [*secrets.values(), "url-s3cr3t-value"]:
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("DATABASE_URL", "postgres://mpr:url-s3cret@db/mpr", "postgres://mpr:****@db/mpr"),
    ("DATABASE_URL", "host=db password=url-s3cret dbname=mpr", "host=db password=**** dbname=mpr"),
    ("DATABASE_URL", "host=db password='url s3cret' dbname=mpr",
     "host=db password=**** dbname=mpr"),
    ("DATABASE_URL", "postgresql://mpr@db/mpr?password=url-s3cret",
     "postgresql://mpr@db/mpr?password=****"),
    ("S3_ENDPOINT_URL", "http://KEY:url-s3cret@seaweed:8333", "http://KEY:****@seaweed:8333"),
    ("SMTP_HOST", "smtp://mailer:url-s3cret@mail.example", "smtp://mailer:****@mail.example"),
])
def test_config_masks_every_form_of_credentials(mpr, name, value, shown):
    result = mpr("config", "--json", **{name: value})

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[name] == shown
    assert "s3cret" not in result.output


# -- presets: no server either ------------------------------------------------------------------


def test_presets_list_json_has_the_four_builtins(mpr):
    done = mpr("presets", "list", "--json")

    assert done.exit_code == 0, done.stderr
    book = json.loads(done.stdout)
    by_name = {p["name"]: p for p in book["presets"]}
    assert set(by_name) >= BUILTIN_PRESETS
    assert {by_name[n]["origin"] for n in BUILTIN_PRESETS} == {"built-in"}
    assert book["defaults"] == {"video": "web-720p", "audio": "audio-mp3-192"}
    assert by_name["web-720p"]["extension"] == ".mp4"
    assert by_name["audio-mp3-320"]["extension"] == ".mp3"


def test_presets_show_prints_the_ffmpeg_command(mpr):
    done = mpr("presets", "show", "web-720p")

    assert done.exit_code == 0, done.stderr
    command = done.stdout.strip()
    assert command.startswith("ffmpeg ")
    words = command.split()
    assert words[words.index("-c:v") + 1] == "libx264"
    assert words[words.index("-movflags") + 1] == "+faststart"
    assert "INPUT" in words and "OUTPUT" in words


def test_unknown_preset_exits_2_naming_it(mpr):
    done = mpr("presets", "show", "web-4k")

    assert done.exit_code == 2
    assert "web-4k" in one_line(done)


# -- the report is written on every outcome ------------------------------------------------------


def test_report_folder_that_does_not_exist_is_exit_2_before_anything_runs(mpr):
    result = mpr("import", "--report", "no-such-folder/report.json")

    assert result.exit_code == 2
    assert one_line(result) == (
        "error: Invalid value for '--report': the folder no-such-folder does not exist: create "
        "it or write the report elsewhere (see `mpr import --help`)")


def test_report_that_names_a_folder_is_exit_2(mpr, tmp_path):
    result = mpr("nightly", "--report", str(tmp_path))

    assert result.exit_code == 2
    assert f"{tmp_path} is a folder: name a file in it" in one_line(result)


def test_unreachable_database_still_writes_the_report(mpr, tmp_path):
    closed = free_port()
    result = mpr("import", "--report", "report.json", MPR_DB_RETRY_SECONDS="0",
                 DATABASE_URL=f"postgresql://mpr:pw-s3cr3t@127.0.0.1:{closed}/mpr")

    assert result.exit_code == 4
    assert one_line(result).startswith("error: database unreachable: ")
    written = (tmp_path / "report.json").read_text(encoding="utf-8")
    report = json.loads(written)
    assert (report["command"], report["status"]) == ("import", "failed")
    assert report["message"].startswith("database unreachable")
    assert "pw-s3cr3t" not in written + result.stderr


# -- the same reporting for every command: JSON logs with the run key -----------------------------


def json_log(path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, "nothing logged"
    return [json.loads(line) for line in lines]


def test_import_json_log_file_lines_carry_the_run_key_of_the_report(mpr, tmp_path):
    from mpr_cli import runlog

    closed = free_port()
    try:
        result = mpr("import", "--report", "report.json", "--log-format", "json", "--log-file",
                     "logs/import.log", MPR_DB_RETRY_SECONDS="0",
                     DATABASE_URL=f"postgresql://mpr:pw-s3cr3t@127.0.0.1:{closed}/mpr")
    finally:
        runlog.configure("closed", [], stream=False)  # closes the log file

    assert result.exit_code == 4
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    lines = json_log(tmp_path / "logs" / "import.log")
    assert {line["run_key"] for line in lines} == {report["run_key"]} != {""}
    assert all("run_id" not in line for line in lines)
    assert lines[0]["message"] == f"import run {report['run_key']} started"
    assert (lines[-1]["level"], lines[-1]["message"].split(": ")[0]) == (
        "error", f"import run {report['run_key']} ended")
    assert lines[-1]["message"].endswith("exit code 4")
    assert "pw-s3cr3t" not in (tmp_path / "logs" / "import.log").read_text() + result.stderr


def test_log_format_is_checked_before_anything_runs(mpr):
    result = mpr("validate", "--log-format", "xml")

    assert result.exit_code == 2
    assert one_line(result).startswith("error: Invalid value for '--log-format': 'xml' is not one")


@pytest.mark.parametrize(("row", "shown"), [
    ({"status": "completed", "exit_code": 130, "message": ""}, "interrupted"),
    ({"status": "aborted", "exit_code": None,
      "message": "interrupted: work in flight rolled back; run again to complete it"},
     "interrupted"),
    ({"status": "aborted", "exit_code": None, "message": "safe-run: phase 3 found problems"},
     "aborted"),
    ({"status": "completed", "exit_code": 1, "message": ""}, "completed"),
    ({"status": "running", "exit_code": None, "message": None}, "running"),
])
def test_runs_show_an_interrupted_run_as_interrupted(row, shown):
    from mpr_cli.commands.nightly import shown_status

    assert shown_status(row) == shown


def test_help_documents_shell_completion_and_completion_works(mpr):
    assert 'eval "$(_MPR_COMPLETE=bash_source mpr)"' in mpr("--help").stdout

    completed = mpr(_MPR_COMPLETE="bash_complete", COMP_WORDS="mpr ru", COMP_CWORD="1")

    assert completed.exit_code == 0
    assert completed.stdout.split() == ["plain,runs"]


def test_rules_takes_a_shipped_profile_by_name_and_refuses_a_missing_file(mpr, tmp_path):
    # with the profile, validate loads its rules and gets as far as S3 (no credentials here)
    by_name = mpr("validate", "--rules", "extended", S3_ENDPOINT_URL="http://127.0.0.1:9")
    assert by_name.exit_code == 4 and "no S3 credentials" in by_name.output, by_name.output
    missing = mpr("validate", "--rules", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2
    assert "--rules" in missing.output and "does not exist" in missing.output

