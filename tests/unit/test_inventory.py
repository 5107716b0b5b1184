"""Phase 1 on one key: codes, folders, extensions, roles, exclusions, hostile keys."""

from __future__ import annotations

import time

import pytest

from mpr_cli.problems import Phase, Problem, Reason, Severity
from mpr_cli.rules import MediaType, Role, load_rules
from mpr_cli.validation.inventory import (
    Candidate,
    classify_key,
    code_of,
)

RULES = load_rules()


def _accepted(key: str) -> Candidate:
    result = classify_key(key, 123, "etag-1", RULES)
    assert isinstance(result, Candidate), result
    return result


def _rejected(key: str, reason: Reason) -> Problem:
    result = classify_key(key, 123, "etag-1", RULES)
    assert isinstance(result, Problem), result
    assert result.reason is reason, result
    assert result.key == key
    return result


def test_an_accepted_key_carries_everything_phase_3_needs() -> None:
    candidate = _accepted("BRD/VO-UMT-14387.mov")
    assert candidate == Candidate(
        key="BRD/VO-UMT-14387.mov", size=123, etag="etag-1", inventory_code="VO-UMT-14387",
        media_type=MediaType.VIDEO, role=Role.MASTER, folder="BRD", name="VO-UMT-14387.mov",
        extension=".mov", describes=None,
    )


@pytest.mark.parametrize(
    "name",
    ["VO-UMT-14387.mov", "VC-UMT-14387.mov", "VO-X1Z-00001.mov", "VO-123-99999_restored.mov"],
)
def test_valid_video_codes(name: str) -> None:
    assert _accepted(f"FILE/{name}").inventory_code == name[:12]


@pytest.mark.parametrize("code", ["AC-X1Z-00001", "AO-UMT-14387"])
def test_valid_audio_codes(code: str) -> None:
    candidate = _accepted(f"CD/{code}.wav")
    assert (candidate.inventory_code, candidate.media_type) == (code, MediaType.AUDIO)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("VO-UMT-1438.mov",
         "inventory code 'VO-UMT-1438' is not 12 characters like VO-UMT-14387: rename the file"),
        ("VO-UMT-143870.mov", "inventory code 'VO-UMT-143870' is not 12 characters"),
        ("vo-umt-14387.mov", "(codes are upper case): rename the file"),
        ("VA-C01-12345.mov", "inventory code 'VA-C01-12345' does not match"),
        ("OC-A99-67890.mov", "inventory code 'OC-A99-67890' does not match"),
        ("VO-UMT-14387-v2.mov", "inventory code 'VO-UMT-14387-v2' is not 12 characters"),
        ("VO_UMT_14387.mov", "inventory code 'VO' is not 12 characters"),
        ("VO-ÜMT-14387.mov", "does not match"),
        ("VO-UMT-1438A.mov", "does not match"),
    ],
)
def test_invalid_codes_are_rejected_with_a_rename_hint(name: str, message: str) -> None:
    problem = _rejected(f"FILE/{name}", Reason.INVALID_INVENTORY_CODE)
    assert message in problem.message
    assert problem.inventory_code is None
    assert (problem.phase, problem.severity) == (Phase.DISCOVER, Severity.ERROR)


@pytest.mark.parametrize(
    ("folder", "code", "ok"),
    [
        ("BRD", "VO-UMT-14387", True), ("BRD", "AO-UMT-14387", False),
        ("DVD", "VO-UMT-14387", True), ("DVD", "AO-UMT-14387", False),
        ("CD", "VO-UMT-14387", False), ("CD", "AO-UMT-14387", True),
        ("DAT", "VO-UMT-14387", False), ("DAT", "AO-UMT-14387", True),
        ("FILE", "VO-UMT-14387", True), ("FILE", "AO-UMT-14387", True),
    ],
)
def test_every_folder_and_media_type(folder: str, code: str, ok: bool) -> None:
    key = f"{folder}/{code}.json"  # .json is allowed for both types: only the folder decides
    if ok:
        assert _accepted(key).folder == folder
    else:
        problem = _rejected(key, Reason.PREFIX_TYPE_MISMATCH)
        assert problem.inventory_code == code
        assert f"{folder}/ holds" in problem.message
        assert "move the file or fix its inventory code" in problem.message


def test_a_mismatch_names_the_asset_type_and_the_folder() -> None:
    problem = _rejected("CD/VO-UMT-14387.mov", Reason.PREFIX_TYPE_MISMATCH)
    assert problem.message.startswith("VO-UMT-14387 is a video asset but CD/ holds audio only")


def test_only_the_first_folder_counts() -> None:
    candidate = _accepted("FILE/2019/box 3/VO-UMT-14387.mov")
    assert (candidate.folder, candidate.name) == ("FILE", "VO-UMT-14387.mov")
    _rejected("CD/FILE/VO-UMT-14387.mov", Reason.PREFIX_TYPE_MISMATCH)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("VO-UMT-14387.mov", "file is at the bucket root: move it into a carrier folder"),
        ("VHS/VO-UMT-14387.mov", "folder 'VHS' is not a carrier folder: move the file into"),
        ("brd/VO-UMT-14387.mov", "(did you mean BRD/?)"),
        ("UMTX/VO-UMT-14387.mov", "folder 'UMTX' is not a carrier folder"),
    ],
)
def test_unknown_folders_and_the_root_are_rejected(key: str, message: str) -> None:
    problem = _rejected(key, Reason.UNKNOWN_FOLDER)
    assert message in problem.message
    assert problem.inventory_code == "VO-UMT-14387"  # still known, for the report
    assert problem.phase is Phase.DISCOVER


@pytest.mark.parametrize(
    "key",
    [
        "TEST-FOLDER-DEV/VO-UMT-14387.mov",
        "DOCUMENTAZIONE_FOTOGRAFICA/foto.jpg",
        "UMT/whatever/anything.txt",
        "FILE/",  # a folder marker is not a file
        "FILE/sub/",
    ],
)
def test_excluded_keys_are_passed_over(key: str) -> None:
    result = classify_key(key, 0, "e", RULES)
    assert result is None


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("VO-UMT-14387.mov", Role.MASTER), ("VO-UMT-14387.MKV", Role.MASTER),
        ("VO-UMT-14387.mxf", Role.MASTER), ("VO-UMT-14387.avi", Role.MASTER),
        ("AO-UMT-14387.wav", Role.MASTER), ("AO-UMT-14387.Flac", Role.MASTER),
        ("VO-UMT-14387.mp4", Role.STREAMING), ("AO-UMT-14387.mp3", Role.STREAMING),
        ("VO-UMT-14387.json", Role.METADATA), ("AO-UMT-14387.wav.json", Role.METADATA),
        ("VO-UMT-14387.mov.md5", Role.CHECKSUM), ("AO-UMT-14387.md5", Role.CHECKSUM),
        ("VO-UMT-14387_qc.pdf", Role.QC_REPORT), ("AO-UMT-14387.PDF", Role.QC_REPORT),
    ],
)
def test_every_extension_gives_a_role(name: str, role: Role) -> None:
    candidate = _accepted(f"FILE/{name}")
    assert candidate.role is role
    assert candidate.extension == "." + name.rsplit(".", 1)[1].lower()


@pytest.mark.parametrize(
    ("name", "describes"),
    [
        ("VO-UMT-14387.mov.md5", "VO-UMT-14387.mov"),
        ("VO-UMT-14387.mp4.json", "VO-UMT-14387.mp4"),
        ("VO-UMT-14387.MOV.MD5", "VO-UMT-14387.MOV"),
        ("VO-UMT-14387.json", None),
        ("VO-UMT-14387.md5", None),
        ("VO-UMT-14387_mediainfo.json", None),
        ("VO-UMT-14387_part2.mov.md5", "VO-UMT-14387_part2.mov"),
        ("VO-UMT-14387.mov", None),
        ("VO-UMT-14387_qc.pdf", None),
    ],
)
def test_what_a_sidecar_describes(name: str, describes: str | None) -> None:
    assert _accepted(f"FILE/{name}").describes == describes


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("FILE/VO-UMT-14387.txt", "extension '.txt' is not supported (supported: .mov"),
        ("FILE/VO-UMT-14387", "a name without an extension is not supported"),
        ("FILE/.DS_Store", "not supported"),
        ("FILE/VO-UMT-14387.mov.bak", "extension '.bak' is not supported"),
    ],
)
def test_unsupported_extensions(key: str, message: str) -> None:
    assert message in _rejected(key, Reason.UNSUPPORTED_EXTENSION).message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("FILE/AO-UMT-14387.mov", ".mov files are for video assets but AO-UMT-14387 is an audio"),
        ("FILE/VO-UMT-14387.wav", ".wav files are for audio assets but VO-UMT-14387 is a video"),
        ("FILE/AO-UMT-14387.mp4", ".mp4 files are for video assets"),
        ("FILE/VO-UMT-14387.mp3", ".mp3 files are for audio assets"),
    ],
)
def test_an_extension_of_the_other_media_type_is_rejected(key: str, message: str) -> None:
    problem = _rejected(key, Reason.UNSUPPORTED_EXTENSION)
    assert problem.message.startswith(message)
    assert problem.inventory_code == key[5:17]


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("FILE/../BRD/VO-UMT-14387.mov", "a '.' or '..' path segment"),
        ("FILE/sub/..", "a '.' or '..' path segment"),
        ("FILE/./VO-UMT-14387.mov", "a '.' or '..' path segment"),
        ("FILE\\VO-UMT-14387.mov", "a backslash"),
        ("FILE/VO-UMT-14387\n.mov", "a control character"),
        ("FILE/VO-UMT-14387\x00.mov", "a control character"),
        ("FILE/VO-UMT-14387.mov\x1b[2J", "a control character"),
        ("/FILE/VO-UMT-14387.mov", "an empty path segment"),
        ("FILE//VO-UMT-14387.mov", "an empty path segment"),
    ],
)
def test_hostile_keys_are_rejected_before_anything_else(key: str, what: str) -> None:
    problem = _rejected(key, Reason.INVALID_KEY)
    assert f"contains {what}: rename the object in the bucket" in problem.message
    assert "\n" not in problem.message and "\x00" not in problem.message  # repr'd, one line
    assert (problem.phase, problem.severity) == (Phase.DISCOVER, Severity.ERROR)


def test_dots_inside_names_are_not_hostile() -> None:
    assert _accepted("FILE/VO-UMT-14387..mov.md5").describes == "VO-UMT-14387..mov"


def test_code_of_reads_the_code_or_none() -> None:
    assert code_of("VO-UMT-14387_qc.pdf", RULES) == "VO-UMT-14387"
    assert code_of("VO-UMT-14387", RULES) is None  # must be followed by "." or "_"
    assert code_of("VO-UMT-1438.mov", RULES) is None


def test_twenty_thousand_keys_classify_quickly() -> None:
    keys = [f"FILE/sub/VO-UMT-{i:05d}.mov" for i in range(20_000)]
    start = time.perf_counter()
    results = [classify_key(k, 1, "e", RULES) for k in keys]
    elapsed = time.perf_counter() - start
    assert all(isinstance(r, Candidate) for r in results)
    assert elapsed < 2.0, f"20,000 keys took {elapsed:.2f} s"
