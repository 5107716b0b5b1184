"""Phase 2's decisions on catalogued objects that changed or came back (phases/crossref.py),
and what `mpr replace` prints: pure, no S3 and no database."""

from __future__ import annotations

from mpr_cli.commands.replace import summary_lines
from mpr_cli.db import FileRow
from mpr_cli.phases.crossref import (
    Bytes,
    CataloguedChange,
    compare_bytes,
    settle_changes,
)
from mpr_cli.problems import Phase, Problem, Reason, Severity
from mpr_cli.replace import FileChange, FileState, ReplaceResult
from mpr_cli.rules import Role, load_rules
from mpr_cli.validation.inventory import Candidate, classify_key

RULES = load_rules()
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
OTHER = "0123456789abcdef0123456789abcdef"
KEY = "BRD/VO-SMP-00001.mov"


def listed(size: int = 1000, etag: str = "0123456789abcdef0123456789abcdef-2") -> Candidate:
    found = classify_key(KEY, size, etag, RULES)
    assert isinstance(found, Candidate)
    return found


def change(*, size: int = 1000, catalogued_size: int | None = 1000, md5: str | None = MD5,
           changed: bool = True, missing: bool = False) -> CataloguedChange:
    return CataloguedChange(listed(size), md5, catalogued_size, changed, missing)


def test_the_same_bytes_under_a_new_etag_are_the_same():
    assert compare_bytes(change(), MD5) is Bytes.SAME
    assert compare_bytes(change(), OTHER) is Bytes.DIFFERENT


def test_the_md5_is_read_only_when_it_can_tell():
    assert change().needs_md5()
    assert not change(size=999).needs_md5()  # other size: other bytes, nothing to read
    assert compare_bytes(change(size=999), None) is Bytes.DIFFERENT
    assert not change(md5=None).needs_md5()  # nothing catalogued to compare with
    assert compare_bytes(change(md5=None), None) is Bytes.UNKNOWN
    assert not change(changed=False, missing=True).needs_md5()  # back as catalogued
    assert compare_bytes(change(changed=False, missing=True), None) is Bytes.SAME
    assert compare_bytes(change(), None) is Bytes.UNKNOWN  # --verify none, multipart ETag
    read_before = CataloguedChange(listed(), MD5, 1000, True, False, known_different=True)
    assert not read_before.needs_md5()  # an earlier run read this ETag's bytes
    assert compare_bytes(read_before, None) is Bytes.DIFFERENT


def test_settling_refreshes_the_same_bytes_and_warns_about_the_others():
    read: list[str] = []

    def md5_of(candidate: Candidate) -> str:
        read.append(candidate.key)
        return OTHER

    settled = settle_changes([change(md5=OTHER), change(), change(size=5)], md5_of)
    assert read == [KEY, KEY]  # not for the one whose size differs
    assert len(settled.refreshed) == 1 and settled.restored == 0
    assert len(settled.differing) == 1  # read and found other: its ETag is noted
    assert [p.reason for p in settled.problems] == [Reason.CHANGED_SINCE_IMPORT] * 2
    problem = settled.problems[0]
    assert (problem.phase, problem.severity) == (Phase.CROSSREF, Severity.WARNING)
    assert f"`mpr replace {KEY}`" in problem.message


def test_an_object_back_with_other_bytes_is_a_checksum_mismatch():
    settled = settle_changes([change(missing=True), change(changed=False, missing=True)],
                             lambda c: OTHER)
    assert settled.restored == 1
    [problem] = settled.problems
    assert (problem.reason, problem.severity) == (Reason.CHECKSUM_MISMATCH, Severity.ERROR)
    assert OTHER in problem.message and MD5 in problem.message


def _row(md5: str) -> FileRow:
    return FileRow("VO-SMP-00001", "in", KEY, Role.MASTER, True, 1000, "e-2", md5, None, None)


def test_replace_prints_each_change_then_the_outcome():
    result = ReplaceResult(KEY, "VO-SMP-00001", dry_run=True,
                           changes=[FileChange(FileState(1000, "abc", MD5), _row(OTHER))])
    lines = summary_lines(result)
    assert lines[0] == (f"replace {KEY} (master): ETag abc -> e-2, MD5 {MD5} -> {OTHER}")
    assert lines[-1].endswith("would replace 1 file record(s); nothing changed")


def test_a_refused_replace_prints_each_problem_on_one_line():
    problem = Problem.make(Reason.CHECKSUM_MISMATCH, "BRD/VO-SMP-00001\x1b.mov", "bad\nbytes")
    result = ReplaceResult(KEY, "VO-SMP-00001", dry_run=False, problems=[problem])
    lines = summary_lines(result)
    assert not result.ok
    assert lines[0] == "error checksum_mismatch BRD/VO-SMP-00001\\x1b.mov: bad\\nbytes"
    assert lines[-1] == "VO-SMP-00001: not replaced, nothing changed (1 problem(s))"
