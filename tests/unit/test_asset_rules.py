"""The asset-level rules of phase 3 (validation/assets.py), one accepting and one refusing
case each, asserting the reason, severity and message a user sees. No S3, no database: the
rules are pure functions of the asset's files and of what phase 3 fetched."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mpr_cli.problems import Problem, Reason, Severity
from mpr_cli.rules import load_rules
from mpr_cli.validation import assets as rules
from mpr_cli.validation.assets import AssetFiles
from mpr_cli.validation.containers import Container, MediaInfo
from mpr_cli.validation.inventory import Candidate, classify_key

RULES = load_rules()
CODE = "VO-SMP-00001"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
OTHER_MD5 = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Catalogue:
    """What the catalogue holds of an asset (as db.ExistingAsset)."""

    has_master: bool = True
    has_streaming: bool = False
    md5s: dict[str, str] = field(default_factory=dict)


def file(name: str, size: int = 1000, folder: str = "FILE") -> Candidate:
    found = classify_key(f"{folder}/{name}", size, MD5, RULES)
    assert isinstance(found, Candidate), found
    return found


def asset(*new: Candidate, known: tuple[Candidate, ...] = (),
          existing: Catalogue | None = None) -> AssetFiles:
    return AssetFiles(CODE, new[0].media_type, list(new), list(known), existing)


def video(container: Container = Container.QUICKTIME, *, file_name: str | None = None,
          size: int | None = None, codecs: tuple[str, ...] = ("prores",)) -> MediaInfo:
    return MediaInfo("mediainfo", container, str(container), size=size, file_name=file_name,
                     video_codecs=codecs, audio_codecs=("pcm_s24le",))


def one(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def assert_problem(problem: Problem | None, reason: Reason, key: str, *,
                   severity: Severity = Severity.ERROR) -> Problem:
    assert problem is not None
    assert (problem.reason, problem.key, problem.severity, problem.inventory_code) == (
        reason, key, severity, CODE)
    return problem


MASTER = file(f"{CODE}.mov")
STREAM = file(f"{CODE}.mp4")
META = file(f"{CODE}.json")
MASTER_META = file(f"{CODE}.mov.json")
CHECKSUMS = file(f"{CODE}.md5")
QC = file(f"{CODE}_qc.pdf")


# -- structure ------------------------------------------------------------------------


def test_one_master_and_one_streaming_copy_are_no_duplicate() -> None:
    assert rules.duplicate_roles(asset(MASTER, STREAM, META, CHECKSUMS)) == []


def test_a_second_master_is_a_duplicate_role() -> None:
    second = file(f"{CODE}_b.mov")
    problem = assert_problem(one(rules.duplicate_roles(asset(MASTER, second))),
                             Reason.DUPLICATE_ROLE, second.key)
    assert problem.message == (f"{CODE} has 2 master files ({CODE}.mov, {CODE}_b.mov): keep "
                               "one and re-run")


def test_a_new_master_beside_a_catalogued_one_is_a_duplicate_role() -> None:
    problem = assert_problem(one(rules.duplicate_roles(asset(MASTER, existing=Catalogue()))),
                             Reason.DUPLICATE_ROLE, MASTER.key)
    assert f"{CODE} already has a master file in the catalogue" in problem.message


def test_sidecars_of_a_catalogued_asset_are_no_orphans() -> None:
    assert rules.orphan_sidecars(asset(QC, existing=Catalogue())) == []


def test_sidecars_of_an_asset_with_no_media_anywhere_are_orphans() -> None:
    problems = rules.orphan_sidecars(asset(META, QC))
    assert [p.key for p in problems] == [META.key, QC.key]
    problem = assert_problem(problems[1], Reason.ORPHAN_SIDECAR, QC.key)
    assert problem.message.startswith(f"{QC.name} belongs to {CODE}, which has no master or "
                                      "streaming copy in the bucket or the catalogue")


# -- metadata -------------------------------------------------------------------------


def test_the_master_own_metadata_wins_over_the_asset_metadata() -> None:
    files = asset(MASTER, META, MASTER_META)
    assert rules.metadata_for(files, MASTER.name) == MASTER_META
    assert rules.metadata_for(files, None) == META  # the master on tape: <code>.json first


def test_metadata_describing_the_master_is_taken() -> None:
    info = video(file_name=f"/media/{CODE}.mov", size=MASTER.size)
    found, problems = rules.master_metadata(asset(MASTER, META), MASTER, META, info)
    assert (found, problems) == (info, [])


def test_no_metadata_for_a_new_master_is_missing_metadata() -> None:
    found, problems = rules.master_metadata(asset(MASTER), MASTER, None, None)
    problem = assert_problem(one(problems), Reason.MISSING_METADATA_SIDECAR, MASTER.key)
    assert found is None
    assert problem.message == (f"no technical metadata for the master of {CODE}: add "
                               f"{CODE}.json (mediainfo or ffprobe JSON output)")


def test_no_metadata_is_not_needed_when_the_master_is_catalogued() -> None:
    files = asset(STREAM, known=(MASTER,), existing=Catalogue())
    assert rules.master_metadata(files, MASTER, None, None) == (None, [])


def test_an_unreadable_metadata_sidecar_is_its_parse_problem() -> None:
    refused = Problem.make(Reason.INVALID_METADATA_SIDECAR, META.key, "not JSON", CODE)
    assert rules.master_metadata(asset(MASTER, META), MASTER, META, refused) == (None, [refused])


def test_metadata_of_a_file_not_delivered_is_an_orphan() -> None:
    other = file(f"{CODE}.mkv.json")
    problem = assert_problem(one(rules.orphan_metadata(asset(MASTER, other), MASTER)),
                             Reason.ORPHAN_SIDECAR, other.key)
    assert problem.message == (f"{other.name} describes {CODE}.mkv, which is not in the "
                               "bucket: deliver that file or remove the sidecar")


def test_metadata_of_a_master_on_tape_is_no_orphan() -> None:
    assert rules.orphan_metadata(asset(STREAM, MASTER_META), None) == []


@pytest.mark.parametrize(("info", "why"), [
    (video(file_name="VO-SMP-00002.mov"),
     f"describes VO-SMP-00002.mov, which is not a master of {CODE}"),
    (video(file_name=f"{CODE}.mkv"), f"describes {CODE}.mkv, but the master in the bucket is "
                                     f"{CODE}.mov"),
    (video(file_name=f"{CODE}.mov", size=5),
     f"describes a file of 5 bytes, but the master {CODE}.mov in the bucket has 1000"),
])
def test_metadata_made_from_another_file_is_a_metadata_mismatch(info: MediaInfo, why: str) -> None:
    problem = assert_problem(rules.metadata_mismatch(asset(MASTER, META), META, MASTER, info),
                             Reason.METADATA_MISMATCH, META.key)
    assert problem.message.startswith(f"metadata file {META.name} {why}")
    assert problem.message.endswith(f"(`mediainfo --Output=JSON {CODE}.mov`)")


def test_metadata_that_names_no_file_cannot_mismatch() -> None:
    assert rules.metadata_mismatch(asset(MASTER, META), META, MASTER, video()) is None


def test_the_master_metadata_is_held_to_the_container_rules() -> None:
    info = video(Container.MATROSKA, codecs=("ffv1",))
    found, problems = rules.master_metadata(asset(MASTER, META), MASTER, META, info)
    problem = assert_problem(one(problems), Reason.CONTAINER_MISMATCH, MASTER.key)
    assert found == info
    assert problem.message.startswith("master is Matroska (Matroska) but .mov means QuickTime")


# -- checksums ------------------------------------------------------------------------


def test_a_bare_hash_is_the_master_md5() -> None:
    declared, problems = rules.declared_checksums(
        asset(MASTER, CHECKSUMS), MASTER, None, [(CHECKSUMS, {rules.MASTER: MD5})])
    assert (declared, problems) == ({MASTER.name: MD5}, [])


def test_two_sidecars_giving_one_file_two_md5s_conflict() -> None:
    own = file(f"{CODE}.mov.md5")
    declared, problems = rules.declared_checksums(
        asset(MASTER, CHECKSUMS, own), MASTER, None,
        [(CHECKSUMS, {MASTER.name: MD5}), (own, {MASTER.name: OTHER_MD5})])
    problem = assert_problem(one(problems), Reason.CONFLICTING_CHECKSUMS, own.key)
    assert problem.message == (f"{CHECKSUMS.name} gives {MASTER.name} MD5 {MD5} but {own.name} "
                               f"gives {OTHER_MD5}: correct or remove the wrong checksum file "
                               "and re-run")


def test_a_new_sidecar_agreeing_with_the_catalogue_is_taken() -> None:
    files = asset(STREAM, CHECKSUMS, known=(MASTER,),
                  existing=Catalogue(md5s={MASTER.key: MD5}))
    declared, problems = rules.declared_checksums(files, MASTER, None,
                                                  [(CHECKSUMS, {MASTER.name: MD5})])
    assert (declared, problems) == ({MASTER.name: MD5}, [])


def test_a_new_sidecar_contradicting_the_catalogue_is_a_checksum_mismatch() -> None:
    files = asset(STREAM, CHECKSUMS, known=(MASTER,),
                  existing=Catalogue(md5s={MASTER.key: MD5}))
    declared, problems = rules.declared_checksums(files, MASTER, None,
                                                  [(CHECKSUMS, {MASTER.name: OTHER_MD5})])
    problem = assert_problem(one(problems), Reason.CHECKSUM_MISMATCH, CHECKSUMS.key)
    assert declared == {}
    assert problem.message == (f"{CHECKSUMS.name} gives {MASTER.name} MD5 {OTHER_MD5}, but the "
                               f"catalogue records {MD5} for it: correct {CHECKSUMS.name} or "
                               "remove it, and re-run")


def test_an_unreadable_checksum_sidecar_is_its_parse_problem() -> None:
    refused = Problem.make(Reason.INVALID_CHECKSUM_SIDECAR, CHECKSUMS.key, "no hash", CODE)
    assert rules.declared_checksums(asset(MASTER, CHECKSUMS), MASTER, None,
                                    [(CHECKSUMS, refused)]) == ({}, [refused])


def test_a_declared_md5_is_expected() -> None:
    assert rules.expected_md5(asset(MASTER), MASTER, {MASTER.name: MD5}) == MD5


def test_a_media_file_with_no_declared_md5_is_missing_checksum() -> None:
    problem = rules.expected_md5(asset(MASTER), MASTER, {})
    assert isinstance(problem, Problem)
    assert_problem(problem, Reason.MISSING_CHECKSUM, MASTER.key)
    assert problem.message == (f"no MD5 for {MASTER.name}: add it to {CODE}.md5 or deliver "
                               f"{MASTER.name}.md5")


def test_the_declared_md5_matches() -> None:
    assert rules.checksum_mismatch(asset(MASTER), MASTER, MD5, MD5) is None


def test_another_md5_is_a_checksum_mismatch() -> None:
    problem = assert_problem(rules.checksum_mismatch(asset(MASTER), MASTER, MD5, OTHER_MD5),
                             Reason.CHECKSUM_MISMATCH, MASTER.key)
    assert problem.message == (f"{MASTER.name} has MD5 {OTHER_MD5} but its sidecar says {MD5}: "
                               "the file is damaged or the sidecar is wrong; deliver it again")


def test_a_restored_master_with_the_catalogued_md5_is_the_same_file() -> None:
    assert rules.restored_mismatch(MASTER, MD5, MD5) is None


def test_a_restored_master_with_another_md5_is_a_checksum_mismatch() -> None:
    problem = assert_problem(rules.restored_mismatch(MASTER, MD5, OTHER_MD5),
                             Reason.CHECKSUM_MISMATCH, MASTER.key)
    assert problem.message == (f"{MASTER.name} is catalogued as kept on tape with MD5 {MD5}, "
                               f"but the copy in the bucket has MD5 {OTHER_MD5}: restore it "
                               "again")


# -- the master's header, the tape master ----------------------------------------------


def test_a_master_whose_header_is_its_metadata_container_is_accepted() -> None:
    assert rules.container_mismatch(asset(MASTER, META), MASTER, video(), video()) is None


@pytest.mark.parametrize(("master", "probed", "actual"), [
    (file(f"{CODE}.mov", size=0), None, "empty (0 bytes)"),
    (MASTER, None, "1000 bytes of no media format mediainfo recognises"),
    (MASTER, MediaInfo("mediainfo", Container.OTHER, "HLS"), "HLS with no audio or video "
                                                              "streams"),
])
def test_a_master_that_is_not_what_its_metadata_says_is_a_container_mismatch(
        master: Candidate, probed: MediaInfo | None, actual: str) -> None:
    problem = assert_problem(rules.container_mismatch(asset(master, META), master, video(),
                                                      probed),
                             Reason.CONTAINER_MISMATCH, master.key)
    assert problem.message == (f"the master {CODE}.mov is {actual}, but its metadata "
                               f"{META.name} says QuickTime (QuickTime): upload the real "
                               "master, or regenerate the metadata from the file you mean to "
                               "keep")


def test_a_master_on_tape_is_catalogued_under_its_code_never_a_sidecar_name() -> None:
    info = video(file_name=f"../../{CODE}.MOV")
    tape, problems = rules.tape_master(asset(STREAM, META), info, {f"{CODE}.MOV": MD5})
    assert problems == []
    assert tape == rules.TapeMaster(f"FILE/{CODE}.mov", MD5, info)


def test_a_master_on_tape_with_no_declared_md5_is_missing_checksum() -> None:
    tape, problems = rules.tape_master(asset(STREAM, META), video(file_name=f"{CODE}.mov"), {})
    problem = assert_problem(one(problems), Reason.MISSING_CHECKSUM, META.key)
    assert tape is None
    assert problem.message == (f"the master {CODE}.mov of {CODE} is not in the bucket and no "
                               f"MD5 is declared for it: add it to {CODE}.md5")


def test_a_master_on_tape_named_as_no_master_is_a_metadata_mismatch() -> None:
    name = f"{CODE}.mp4"
    tape, problems = rules.tape_master(asset(STREAM, META), video(file_name=name), {name: MD5})
    problem = assert_problem(one(problems), Reason.METADATA_MISMATCH, META.key)
    assert tape is None
    assert problem.message == (f"the master of {CODE} is not in the bucket and its metadata "
                               f"names no master file ({name!r}): regenerate {META.name} from "
                               "the master")


def test_a_master_on_tape_is_held_to_the_master_container_rules() -> None:
    info = video(Container.MATROSKA, file_name=f"{CODE}.mov")
    tape, problems = rules.tape_master(asset(STREAM, META), info, {f"{CODE}.mov": MD5})
    assert tape is not None  # its row is planned; the problem keeps the asset out
    assert_problem(one(problems), Reason.CONTAINER_MISMATCH, f"FILE/{CODE}.mov")


# -- the streaming copy, the QC report ----------------------------------------------------


def test_an_h264_aac_mp4_is_a_streaming_copy() -> None:
    probed = MediaInfo("mediainfo", Container.MPEG4, "MPEG-4", video_codecs=("h264",),
                       audio_codecs=("aac",))
    assert rules.streaming_problems(asset(STREAM), STREAM, probed) == []


def test_a_streaming_copy_mediainfo_cannot_read_is_a_container_mismatch() -> None:
    problem = assert_problem(one(rules.streaming_problems(asset(STREAM), STREAM,
                                                          "no media format found")),
                             Reason.CONTAINER_MISMATCH, STREAM.key)
    assert problem.message == ("no media format found: a .mp4 streaming copy must be MPEG-4 "
                               "with H.264 and AAC")


def test_a_pdf_qc_report_is_accepted() -> None:
    assert rules.qc_report_problems(asset(MASTER, QC), {QC.key: b"%PDF-1.7\n"}) == []


def test_a_qc_report_that_is_no_pdf_is_invalid() -> None:
    problem = assert_problem(one(rules.qc_report_problems(asset(MASTER, QC), {QC.key: b"<html>"})),
                             Reason.INVALID_QC_REPORT, QC.key)
    assert problem.message == f"QC report {QC.name} is not a PDF (no %PDF- header): upload the " \
                              "report as a PDF"


def test_an_empty_qc_report_is_invalid() -> None:
    problem = one(rules.qc_report_problems(asset(MASTER, file(QC.name, size=0)), {}))
    assert_problem(problem, Reason.INVALID_QC_REPORT, QC.key)
    assert "is empty" in problem.message


def test_a_catalogued_asset_needs_no_qc_report() -> None:
    assert rules.qc_report_problems(asset(STREAM, existing=Catalogue()), {}) == []


def test_a_new_asset_with_no_qc_report_is_imported_with_a_warning() -> None:
    problem = assert_problem(one(rules.qc_report_problems(asset(MASTER, STREAM), {})),
                             Reason.MISSING_QC_REPORT, MASTER.key, severity=Severity.WARNING)
    assert problem.message == (f"{CODE} has no QC report: deliver {CODE}_qc.pdf when it is "
                               "ready (imported without it)")
