"""The rules file: the shipped defaults, replacement files, bad files, exclusion overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpr_cli.config import load_settings
from mpr_cli.errors import ConfigError, ExitCode
from mpr_cli.problems import REASON_INFO, Phase, Problem, Reason, Severity
from mpr_cli.rules import MediaType, Role, load_rules
from mpr_cli.validation.inventory import Candidate, classify_key

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
    assert warnings == {Reason.CHANGED_SINCE_IMPORT, Reason.MISSING_QC_REPORT}


def test_a_problem_serialises_to_plain_json() -> None:
    problem = Problem.make(Reason.CHECKSUM_MISMATCH, "BRD/VO-UMT-14387.mov", "bad", "VO-UMT-14387")
    assert problem.to_dict() == {
        "key": "BRD/VO-UMT-14387.mov", "inventory_code": "VO-UMT-14387", "phase": 3,
        "severity": "error", "reason": "checksum_mismatch", "message": "bad",
    }
    assert json.loads(json.dumps(problem.to_dict()))["phase"] == 3
    assert problem.severity is Severity.ERROR
