"""The rules file: the shipped defaults, replacement files, bad files, exclusion overrides."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mpr_cli.config import load_settings
from mpr_cli.errors import ConfigError, ExitCode
from mpr_cli.problems import REASON_INFO, Phase, Problem, Reason, Severity
from mpr_cli.rules import Container, MediaType, Role, load_rules, profile_names
from mpr_cli.validation.containers import (
    MediaInfo,
    check_master,
    check_media_file,
    check_streaming_copy,
)
from mpr_cli.validation.inventory import Candidate, classify_key
from mpr_cli.validation.mime import mime_for_extension

SHIPPED = (Path(__file__).parents[2] / "src" / "mpr_cli" / "rules.toml").read_text()
V, A = MediaType.VIDEO, MediaType.AUDIO


def test_shipped_rules_have_the_documented_defaults() -> None:
    rules = load_rules()
    assert rules.version == 1
    assert rules.exclude_prefixes == ("TEST-FOLDER-DEV/", "DOCUMENTAZIONE_FOTOGRAFICA/", "UMT/")
    assert dict(rules.folders) == {
        "BRD": {V}, "DVD": {V}, "CD": {A}, "DAT": {A}, "FILE": {V, A},
    }
    assert rules.code_length == 12
    assert rules.code_example == "VO-UMT-14387"


@pytest.mark.parametrize(
    ("extension", "role", "media"),
    [
        (".mov", Role.MASTER, {V}), (".mkv", Role.MASTER, {V}), (".mxf", Role.MASTER, {V}),
        (".avi", Role.MASTER, {V}), (".wav", Role.MASTER, {A}), (".flac", Role.MASTER, {A}),
        (".mp4", Role.STREAMING, {V}), (".mp3", Role.STREAMING, {A}),
        (".json", Role.METADATA, {V, A}), (".md5", Role.CHECKSUM, {V, A}),
        (".pdf", Role.QC_REPORT, {V, A}),
    ],
)
def test_every_extension_has_its_role(extension: str, role: Role, media: set[MediaType]) -> None:
    rules = load_rules()
    assert rules.extensions[extension] == (role, frozenset(media))
    assert rules.role_of(extension.upper()) is role


def test_extensions_are_exactly_the_documented_ones() -> None:
    assert set(load_rules().extensions) == {
        ".mov", ".mkv", ".mxf", ".avi", ".wav", ".flac", ".mp4", ".mp3", ".json", ".md5", ".pdf",
    }


def test_media_type_comes_from_the_codes_first_letter() -> None:
    rules = load_rules()
    assert rules.media_type_of("VO-UMT-14387") is V
    assert rules.media_type_of("AC-X1Z-00001") is A


def test_rules_are_read_only() -> None:
    rules = load_rules()
    with pytest.raises(TypeError):
        rules.folders["VHS"] = frozenset({V})  # type: ignore[index]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return path


def test_a_replacement_file_changes_folders_and_pattern(tmp_path: Path) -> None:
    text = SHIPPED.replace("FILE = [", 'VHS = ["video"]\nFILE = [').replace("[OC]", "[OCX]")
    rules = load_rules(_write(tmp_path, text))
    assert rules.source == str(tmp_path / "x.toml")
    accepted = classify_key("VHS/VX-UMT-14387.mov", 1, "e", rules)
    assert isinstance(accepted, Candidate)
    assert (accepted.folder, accepted.inventory_code) == ("VHS", "VX-UMT-14387")
    default = classify_key("VHS/VO-UMT-14387.mov", 1, "e", load_rules())
    assert isinstance(default, Problem) and default.reason is Reason.UNKNOWN_FOLDER
    old_code = classify_key("FILE/VX-UMT-14387.mov", 1, "e", load_rules())
    assert isinstance(old_code, Problem) and old_code.reason is Reason.INVALID_INVENTORY_CODE


def test_a_replacement_file_without_exclusions_excludes_nothing(tmp_path: Path) -> None:
    text = SHIPPED.replace('exclude_prefixes = ["TEST-FOLDER-DEV/", ', "# ").replace(
        '"DOCUMENTAZIONE_FOTOGRAFICA/", "UMT/"]', ""
    )
    assert load_rules(_write(tmp_path, text)).exclude_prefixes == ()


def test_exclude_override_replaces_the_files_list() -> None:
    rules = load_rules(exclude_prefixes=("SCRATCH/",))
    assert rules.exclude_prefixes == ("SCRATCH/",)
    assert classify_key("SCRATCH/VO-UMT-14387.mov", 1, "e", rules) is None
    kept = classify_key("UMT/VO-UMT-14387.mov", 1, "e", rules)
    assert isinstance(kept, Problem) and kept.reason is Reason.UNKNOWN_FOLDER


def test_mpr_exclude_prefixes_from_the_environment_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MPR_EXCLUDE_PREFIXES", "SCRATCH/, OLD/")
    settings = load_settings(env_file=None)
    rules = load_rules(settings.rules_file, settings.exclude_prefixes)
    assert rules.exclude_prefixes == ("SCRATCH/", "OLD/")
    assert classify_key("OLD/VO-UMT-14387.mov", 1, "e", rules) is None


def test_an_empty_override_excludes_nothing() -> None:
    rules = load_rules(exclude_prefixes=())
    result = classify_key("TEST-FOLDER-DEV/VO-UMT-14387.mov", 1, "e", rules)
    assert isinstance(result, Problem) and result.reason is Reason.UNKNOWN_FOLDER


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('BRD  = ["video"]', 'BRD  = ["vidoe"]',
         "folders.BRD: unknown media type 'vidoe' (expected audio, video)"),
        ('BRD  = ["video"]', "BRD  = []", "folders.BRD: must be a non-empty list"),
        ('role = "master", media = ["video"] }', 'role = "mastr", media = ["video"] }',
         "extensions..mov.role: unknown role 'mastr'"),
        ('".mov"  =', '"mov"  =', "extensions.mov: an extension is one dot and a suffix"),
        ("version = 1", "version = 2", "version: unsupported version 2 (this mpr understands 1)"),
        ("version = 1", "", "version: missing"),
        ("code_length = 12", "code_length = 11",
         "inventory.code_example: 'VO-UMT-14387' is not inventory.code_length (11)"),
        ("code_pattern = '^[VA]", "code_pattern = '^([VA]",
         "inventory.code_pattern: not a valid regular expression"),
        ('code_example = "VO-UMT-14387"', 'code_example = "XO-UMT-14387"',
         "inventory.code_example: 'XO-UMT-14387' does not match inventory.code_pattern"),
        ('V = "video"', 'V = "film"', "media_types.V: unknown media type 'film'"),
        ("[folders]", "[folder]", "folder: unknown key (expected one of version"),
        ("code_length = 12", "code_length = 12\ncode_lenght = 12",
         "inventory.code_lenght: unknown"),
        ('"UMT/"]', '""]', "exclude_prefixes: must be a list of non-empty strings"),
    ],
)
def test_a_bad_rules_file_names_the_file_and_the_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in SHIPPED
    path = _write(tmp_path, SHIPPED.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert caught.value.message.startswith(f"rules file {path}: ")
    assert message in caught.value.message
    assert caught.value.exit_code is ExitCode.USAGE


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    start = SHIPPED.index("[folders]")
    path = _write(tmp_path, SHIPPED[:start])
    with pytest.raises(ConfigError, match=r"x\.toml: folders: missing table"):
        load_rules(path)


def test_a_file_that_is_not_toml_says_where(tmp_path: Path) -> None:
    path = _write(tmp_path, "version = 1\n[folders\n")
    with pytest.raises(ConfigError, match=r"x\.toml: not valid TOML: .*line 2"):
        load_rules(path)


def test_a_missing_rules_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert caught.value.one_line() == (
        f"rules file {tmp_path / 'nope.toml'}: not found (check --rules or MPR_RULES)"
    )


def test_every_reason_has_one_phase_and_severity() -> None:
    assert set(REASON_INFO) == set(Reason)
    phase1 = {r for r, (phase, _) in REASON_INFO.items() if phase is Phase.DISCOVER}
    assert phase1 == {
        Reason.INVALID_KEY, Reason.UNSUPPORTED_EXTENSION, Reason.UNKNOWN_FOLDER,
        Reason.INVALID_INVENTORY_CODE, Reason.PREFIX_TYPE_MISMATCH,
    }
    warnings = {r for r, (_, severity) in REASON_INFO.items() if severity is Severity.WARNING}
    assert warnings == {Reason.CHANGED_SINCE_IMPORT, Reason.MISSING_QC_REPORT,
                        Reason.PICTURE_FAILED}


def test_a_problem_serialises_to_plain_json() -> None:
    problem = Problem.make(Reason.CHECKSUM_MISMATCH, "BRD/VO-UMT-14387.mov", "bad", "VO-UMT-14387")
    assert problem.to_dict() == {
        "key": "BRD/VO-UMT-14387.mov", "inventory_code": "VO-UMT-14387", "phase": 3,
        "severity": "error", "reason": "checksum_mismatch", "message": "bad",
    }
    assert json.loads(json.dumps(problem.to_dict()))["phase"] == 3
    assert problem.severity is Severity.ERROR


# -- formats as data ------------------------------------------------------------------------

WEBM_EXTENSION = '".webm" = { role = "streaming", media = ["video"] }\n'
WEBM_FORMAT = ('".webm" = { mime = "video/webm", container = "Matroska", '
               'video_codecs = ["vp9", "vp8"], audio_codecs = ["opus", "vorbis"] }\n')


def _with_webm(extension: str = WEBM_EXTENSION, fmt: str = WEBM_FORMAT) -> str:
    text = SHIPPED.replace('".json" = { role', extension + '".json" = { role', 1)
    return text.replace('".json" = { mime', fmt + '".json" = { mime', 1)


def _webm_info(video: tuple[str, ...] = ("vp9",), audio: tuple[str, ...] = ("opus",),
               container: Container = Container.MATROSKA) -> MediaInfo:
    return MediaInfo("mediainfo", container, "WebM", video_codecs=video, audio_codecs=audio)


def test_a_rules_file_adding_webm_accepts_and_checks_it(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, _with_webm()))
    candidate = classify_key("BRD/VO-UMT-14387.webm", 1, "e", rules)
    assert isinstance(candidate, Candidate) and candidate.role is Role.STREAMING
    key, code = "BRD/VO-UMT-14387.webm", "VO-UMT-14387"
    assert check_media_file(key, code, V, ".webm", _webm_info(), rules) == []
    assert check_media_file(key, code, V, ".webm", _webm_info(("vp8",), ("vorbis",)), rules) == []
    wrong = check_media_file(key, code, V, ".webm", _webm_info(("h264",), ("aac",)), rules)
    assert [p.message for p in wrong] == [
        "streaming copy is Matroska with video h264; audio aac; a .webm must be Matroska "
        "with VP9/VP8 video and Opus/Vorbis audio: re-encode it"]
    assert mime_for_extension(".webm", rules) == "video/webm"
    assert mime_for_extension(".webm") is None  # the shipped rules do not know it


def test_the_shipped_rules_refuse_webm_in_phase_1() -> None:
    refused = classify_key("BRD/VO-UMT-14387.webm", 1, "e", load_rules())
    assert isinstance(refused, Problem) and refused.reason is Reason.UNSUPPORTED_EXTENSION
    with pytest.raises(ValueError, match="not a streaming copy extension"):
        check_streaming_copy("k", "c", ".webm", _webm_info())


def test_a_master_added_by_the_rules_is_a_master_everywhere(tmp_path: Path) -> None:
    extension = '".webm" = { role = "master", media = ["video"] }\n'
    fmt = '".webm" = { mime = "video/webm", container = "Matroska" }\n'
    rules = load_rules(_write(tmp_path, _with_webm(extension, fmt)))
    assert rules.is_master_name("VO-UMT-14387.WEBM")
    assert check_master("k", "c", ".webm", _webm_info(), rules) == []
    wrong = check_master("k", "c", ".webm", _webm_info(container=Container.MPEG4), rules)
    assert "but .webm means Matroska" in wrong[0].message


def test_a_file_without_formats_keeps_the_shipped_ones(tmp_path: Path) -> None:
    start, end = SHIPPED.index("[formats]"), SHIPPED.index("[folders]")
    rules = load_rules(_write(tmp_path, SHIPPED[:start] + SHIPPED[end:]))
    assert dict(rules.formats) == dict(load_rules().formats)


def test_the_shipped_formats_are_todays_tables() -> None:
    rules = load_rules()
    assert {ext: (f.container, f.mime) for ext, f in rules.formats.items()} == {
        ".mov": (Container.QUICKTIME, "video/quicktime"),
        ".mkv": (Container.MATROSKA, "video/x-matroska"),
        ".mxf": (Container.MXF, "application/mxf"),
        ".avi": (Container.AVI, "video/x-msvideo"), ".wav": (Container.WAVE, "audio/wav"),
        ".flac": (Container.FLAC, "audio/flac"), ".mp4": (Container.MPEG4, "video/mp4"),
        ".mp3": (Container.MPEG_AUDIO, "audio/mpeg"), ".json": (None, "application/json"),
        ".md5": (None, "text/plain"), ".pdf": (None, "application/pdf"),
    }
    assert rules.extensions_of(Role.MASTER) == (".avi", ".flac", ".mkv", ".mov", ".mxf", ".wav")


@pytest.mark.parametrize(
    ("extension", "fmt", "message"),
    [
        (WEBM_EXTENSION, "", "formats..webm: missing: a streaming extension needs its format"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace("Matroska", "WebMM"),
         "formats..webm.container: unknown container 'WebMM' (expected QuickTime, Matroska"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace('mime = "video/webm", ', ""),
         "formats..webm.mime: must be a MIME type like \"video/webm\", not None"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace('"vp9", "vp8"', '"VP9"'),
         "formats..webm.video_codecs: must be a list of ffprobe codec names"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace(', audio_codecs = ["opus", "vorbis"]', ""),
         "formats..webm.audio_codecs: missing: list the codecs allowed ([] for none)"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace('["vp9", "vp8"]', "[]").replace(
            '["opus", "vorbis"]', "[]"), "formats..webm: a streaming copy needs video_codecs"),
        (WEBM_EXTENSION, WEBM_FORMAT.replace("mime =", "mine = 1, mime ="),
         "formats..webm.mine: unknown key (expected one of mime, container"),
        ('".webm" = { role = "master", media = ["video"] }\n', WEBM_FORMAT,
         "formats..webm.video_codecs: only streaming copies have one (this is a master)"),
        ("", WEBM_FORMAT, "formats..webm: not in [extensions]: give it a role and media there"),
        ('".ogx" = { role = "metadata", media = ["audio"] }\n',
         '".ogx" = { mime = "audio/ogg", container = "Ogg" }\n',
         "formats..ogx.container: only masters and streaming copies have one"),
    ],
)
def test_a_bad_format_is_one_line_naming_the_file_and_field(
    tmp_path: Path, extension: str, fmt: str, message: str
) -> None:
    path = _write(tmp_path, _with_webm(extension, fmt))
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    line = caught.value.one_line()
    assert line.startswith(f"rules file {path}: ") and "\n" not in line
    assert message in line


def test_the_extended_profile_is_chosen_by_name() -> None:
    rules = load_rules("extended")
    assert rules.source == "shipped profile extended (profiles/extended.toml)"
    assert "extended" in profile_names()
    roles = {ext: rules.role_of(ext) for ext in (
        ".mp4", ".mkv", ".avi", ".mov", ".webm", ".flv", ".wmv", ".m4v",
        ".mp3", ".wav", ".flac", ".aac", ".ogg", ".m4a")}
    masters = {ext for ext, role in roles.items() if role is Role.MASTER}
    assert masters == {".mkv", ".avi", ".mov", ".wav", ".flac"}
    assert all(role is Role.STREAMING for ext, role in roles.items() if ext not in masters)
    assert {ext: rules.formats[ext].mime for ext in (".webm", ".m4v", ".ogg", ".m4a", ".aac")} == {
        ".webm": "video/webm", ".m4v": "video/x-m4v", ".ogg": "audio/ogg",
        ".m4a": "audio/mp4", ".aac": "audio/aac"}
    # everything the shipped rules accept, the profile accepts the same way
    shipped = load_rules()
    assert {e: rules.formats[e] for e in shipped.formats} == dict(shipped.formats)
    assert rules.exclude_prefixes == shipped.exclude_prefixes


def test_a_file_named_like_a_profile_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "extended").write_text(SHIPPED)
    assert load_rules("extended").source == "extended"


# -- the effective exclusions in `mpr config` -------------------------------------------------


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, str]:
    from click.testing import CliRunner

    from mpr_cli import cli

    monkeypatch.chdir(tmp_path)
    cleared = {k: None for k in os.environ if k.startswith(("MPR_", "ACH_"))}
    result = CliRunner().invoke(cli.main, ["config", "--json"], env={**cleared, **env})
    assert result.exit_code == 0, result.output
    shown: dict[str, str] = json.loads(result.stdout)
    return shown


def test_config_shows_the_rules_exclusions_when_the_variable_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, SHIPPED.replace('"UMT/"]', '"UMT/", "SCRATCH/"]'))
    shown = _config(tmp_path, monkeypatch, MPR_RULES=str(rules))
    assert shown["MPR_EXCLUDE_PREFIXES"] == (
        "TEST-FOLDER-DEV/,DOCUMENTAZIONE_FOTOGRAFICA/,UMT/,SCRATCH/")
    assert shown["exclusions from"] == f"rules: {rules}"


def test_config_shows_that_the_variable_replaces_the_rules_exclusions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _config(tmp_path, monkeypatch, MPR_EXCLUDE_PREFIXES="OLD/", MPR_RULES="extended")
    assert shown["MPR_EXCLUDE_PREFIXES"] == "OLD/"
    assert shown["exclusions from"] == "MPR_EXCLUDE_PREFIXES (replaces the rules' list)"
    assert shown["MPR_RULES"] == "extended"
