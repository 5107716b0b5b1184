"""The asset-level rules of phase 3: one asset's files, and what was fetched of them, in;
problems (and the decisions phase 3 acts on) out.

Pure: no storage, no database, no clock. Phase 3 (`phases/ingest.py`) does the fetching, in
the order that keeps it cheap (sidecars first, then headers, an MD5 last and only for an asset
still valid), and asks these rules after each step:

  structure   duplicate_roles, orphan_sidecars        (nothing fetched yet)
  metadata    metadata_for, master_metadata            (the master's .json sidecar)
  checksums   declared_checksums                       (every .md5 sidecar)
  master      container_mismatch, expected_md5, checksum_mismatch, tape_master
  streaming   streaming_problems                       (its probe)
  QC report   qc_report_problems                       (the first KiB of each new report)
  restored    restored_mismatch                        (a master back from tape)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mpr_cli.problems import Problem, Reason
from mpr_cli.rules import MediaType, Role, Rules, default_rules
from mpr_cli.validation.containers import (
    Container,
    MediaInfo,
    check_kind,
    check_master,
    check_media_file,
)
from mpr_cli.validation.inventory import Candidate
from mpr_cli.validation.sidecars import MASTER, base_name, check_qc_report


class Catalogued(Protocol):
    """What the catalogue already holds of an asset (db.ExistingAsset)."""

    @property
    def has_master(self) -> bool: ...
    @property
    def has_streaming(self) -> bool: ...
    @property
    def md5s(self) -> Mapping[str, str]: ...  # key -> MD5 of each catalogued file with one


@dataclass
class AssetFiles:
    """One asset's keys in this listing: `new` to import, `known` already catalogued, and the
    run's rules (their formats: which names are masters, what each container must be)."""

    code: str
    media_type: MediaType
    new: list[Candidate]
    known: list[Candidate]
    existing: Catalogued | None = None
    rules: Rules = field(default_factory=default_rules)
    new_keys: set[str] = field(init=False, repr=False)
    names: set[str] = field(init=False, repr=False)
    by_role: dict[Role, list[Candidate]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.new_keys = {c.key for c in self.new}
        self.names = {c.name for c in self.all}
        self.by_role = {role: [] for role in Role}
        for candidate in self.all:
            self.by_role[candidate.role].append(candidate)

    @property
    def all(self) -> list[Candidate]:
        return self.new + self.known

    def one(self, role: Role) -> Candidate | None:
        """The file of this role (the first, when there are several)."""
        found = self.by_role[role]
        return found[0] if found else None

    def needs_master(self) -> bool:
        """No master catalogued yet: this delivery must bring (or describe) one."""
        return self.existing is None or not self.existing.has_master

    def problem(self, reason: Reason, key: str, message: str) -> Problem:
        return Problem.make(reason, key, message, inventory_code=self.code)


# -- structure ------------------------------------------------------------------------


def duplicate_roles(asset: AssetFiles) -> list[Problem]:
    """DUPLICATE_ROLE: a second master or streaming copy, in the listing or beside the one
    the catalogue already holds."""
    problems: list[Problem] = []
    existing = asset.existing
    for role in (Role.MASTER, Role.STREAMING):
        found = asset.by_role[role]
        for extra in found[1:]:
            problems.append(asset.problem(
                Reason.DUPLICATE_ROLE, extra.key,
                f"{asset.code} has {len(found)} {role} files "
                f"({', '.join(c.name for c in found)}): keep one and re-run"))
        catalogued = existing is not None and (
            existing.has_master if role is Role.MASTER else existing.has_streaming)
        for new in (c for c in found[:1] if c.key in asset.new_keys and catalogued):
            problems.append(asset.problem(
                Reason.DUPLICATE_ROLE, new.key,
                f"{asset.code} already has a {role} file in the catalogue: {new.key} would be "
                "a second one; remove it, or remove the catalogued one first if the file was "
                "moved"))
    return problems


def orphan_sidecars(asset: AssetFiles) -> list[Problem]:
    """ORPHAN_SIDECAR for every new file of an asset with no media anywhere (no master or
    streaming copy in the bucket, nothing in the catalogue)."""
    if asset.by_role[Role.MASTER] or asset.by_role[Role.STREAMING] or asset.existing:
        return []
    return [asset.problem(
        Reason.ORPHAN_SIDECAR, candidate.key,
        f"{candidate.name} belongs to {asset.code}, which has no master or streaming copy in "
        "the bucket or the catalogue: deliver the media with it, or remove the sidecar")
        for candidate in asset.new]


# -- metadata -------------------------------------------------------------------------


def metadata_for(asset: AssetFiles, name: str | None) -> Candidate | None:
    """The master's metadata: `<master>.json`, else `<code>.json`; with the master on
    tape (name None), `<code>.json` or a `.json` describing a master-type file."""
    sidecars = asset.by_role[Role.METADATA]
    specific = [c for c in sidecars if c.describes is not None
                and (c.describes == name if name else asset.rules.is_master_name(c.describes))]
    general = [c for c in sidecars if c.describes is None]
    found = (specific or general) if name else (general or specific)
    return found[0] if found else None


def master_metadata(asset: AssetFiles, master: Candidate | None, sidecar: Candidate | None,
                    parsed: MediaInfo | Problem | None) -> tuple[MediaInfo | None, list[Problem]]:
    """The master's technical metadata from its sidecar (`metadata_for`, parsed), or None;
    with ORPHAN_SIDECAR for a new .json describing a file not delivered,
    MISSING_METADATA_SIDECAR when the master needs one, METADATA_MISMATCH when it describes
    another file, and the container rules on what it describes."""
    problems = orphan_metadata(asset, master)
    needed = (master is not None and master.key in asset.new_keys) or asset.needs_master()
    if sidecar is None or parsed is None:
        if needed:
            target = master.key if master else asset.all[0].key
            problems.append(asset.problem(
                Reason.MISSING_METADATA_SIDECAR, target,
                f"no technical metadata for the master of {asset.code}: add {asset.code}.json "
                "(mediainfo or ffprobe JSON output)"))
        return None, problems
    if isinstance(parsed, Problem):
        return None, [*problems, parsed]
    if needed or sidecar.key in asset.new_keys:
        mismatch = metadata_mismatch(asset, sidecar, master, parsed)
        if mismatch is not None:
            return None, [*problems, mismatch]
    if needed:
        key = master.key if master else sidecar.key
        extension = master.extension if master else None
        problems += _master_info_problems(asset, key, extension, parsed)
    return parsed, problems


def orphan_metadata(asset: AssetFiles, master: Candidate | None) -> list[Problem]:
    """ORPHAN_SIDECAR: a new `<file>.json` describing a file that is not in the bucket (the
    metadata of a master kept on tape excepted)."""
    problems: list[Problem] = []
    for sidecar in asset.by_role[Role.METADATA]:
        covered = sidecar.describes
        if covered is None or covered in asset.names or sidecar.key not in asset.new_keys:
            continue
        if master is None and asset.rules.is_master_name(covered):
            continue  # the metadata of a master kept on tape
        problems.append(asset.problem(
            Reason.ORPHAN_SIDECAR, sidecar.key,
            f"{sidecar.name} describes {covered}, which is not in the bucket: deliver that "
            "file or remove the sidecar"))
    return problems


def metadata_mismatch(asset: AssetFiles, sidecar: Candidate, master: Candidate | None,
                      info: MediaInfo) -> Problem | None:
    """The file the sidecar was made from (mediainfo's @ref, ffprobe's format.filename)
    must be this asset's master: its code with a master extension, and when the master
    is in the bucket, its name and size. Else METADATA_MISMATCH."""
    code = asset.code
    named = base_name(info.file_name) if info.file_name else None
    if named is None:
        return None  # the tool did not say which file it read: nothing to compare
    why = None
    stem = named.rpartition(".")[0]
    if stem != code or not asset.rules.is_master_name(named):
        masters = "/".join(asset.rules.extensions_of(Role.MASTER))
        why = f"describes {named}, which is not a master of {code} ({code}{masters})"
    elif master is not None and named != master.name:
        why = f"describes {named}, but the master in the bucket is {master.name}"
    elif master is not None and info.size is not None and info.size != master.size:
        why = (f"describes a file of {info.size} bytes, but the master {master.name} in "
               f"the bucket has {master.size}")
    if why is None:
        return None
    return asset.problem(
        Reason.METADATA_MISMATCH, sidecar.key,
        f"metadata file {sidecar.name} {why}: regenerate it from the master "
        f"(`mediainfo --Output=JSON {master.name if master else code + '.<ext>'}`)")


def _master_info_problems(asset: AssetFiles, key: str, extension: str | None,
                          info: MediaInfo) -> list[Problem]:
    if extension is None:
        return check_kind(key, asset.code, asset.media_type, info)
    return check_media_file(key, asset.code, asset.media_type, extension, info, asset.rules)


# -- checksums ------------------------------------------------------------------------


def declared_checksums(asset: AssetFiles, master: Candidate | None, master_info: MediaInfo | None,
                       parsed: list[tuple[Candidate, dict[str, str] | Problem]],
                       ) -> tuple[dict[str, str], list[Problem]]:
    """Covered name -> MD5 from every checksum sidecar of the asset (each parsed, or its
    INVALID_CHECKSUM_SIDECAR problem; a bare hash in <code>.md5 filed under the master's
    name). Two sidecars giving one name two MD5s is CONFLICTING_CHECKSUMS; a new sidecar
    giving a catalogued file an MD5 other than the catalogued one is CHECKSUM_MISMATCH."""
    problems: list[Problem] = []
    claims: list[tuple[Candidate, str, str]] = []  # (sidecar, covered name, MD5)
    for sidecar, found in parsed:
        if isinstance(found, Problem):
            problems.append(found)
            continue
        claims += [(sidecar, name, md5) for name, md5 in found.items()]
    names = {name: md5 for _, name, md5 in claims}
    master_name = (master.name if master else tape_name(master_info, names, asset.rules)) or MASTER
    declared: dict[str, tuple[Candidate, str]] = {}
    for sidecar, name, md5 in claims:
        name = master_name if name == MASTER else name
        if sidecar.key in asset.new_keys:
            disagreement = _disagrees_with_catalogue(asset, sidecar, name, md5)
            if disagreement is not None:
                problems.append(disagreement)
                continue  # one problem per claim: the catalogue's word, not also a conflict
        earlier = declared.setdefault(name, (sidecar, md5))
        if earlier[1] != md5:
            problems.append(_conflicting(asset, name, earlier, (sidecar, md5)))
    return {name: md5 for name, (_, md5) in declared.items()}, problems


def _conflicting(asset: AssetFiles, name: str, first: tuple[Candidate, str],
                 second: tuple[Candidate, str]) -> Problem:
    (one, md5_one), (other, md5_other) = first, second
    blamed = other if other.key in asset.new_keys or one.key not in asset.new_keys else one
    return asset.problem(
        Reason.CONFLICTING_CHECKSUMS, blamed.key,
        f"{one.name} gives {name} MD5 {md5_one} but {other.name} gives {md5_other}: correct "
        "or remove the wrong checksum file and re-run")


def _disagrees_with_catalogue(asset: AssetFiles, sidecar: Candidate, name: str,
                              md5: str) -> Problem | None:
    """A checksum sidecar delivered after the file it covers was catalogued."""
    existing = asset.existing
    if existing is None or name in {c.name for c in asset.new}:
        return None  # a new file is checked against its own bytes
    catalogued = {base_name(key): value for key, value in existing.md5s.items()}
    recorded = catalogued.get(name)
    if recorded is None or recorded == md5:
        return None
    return asset.problem(
        Reason.CHECKSUM_MISMATCH, sidecar.key,
        f"{sidecar.name} gives {name} MD5 {md5}, but the catalogue records {recorded} for it: "
        f"correct {sidecar.name} or remove it, and re-run")


def expected_md5(asset: AssetFiles, candidate: Candidate,
                 declared: Mapping[str, str]) -> str | Problem:
    """The MD5 the sidecars declare for a media file, or MISSING_CHECKSUM."""
    expected = declared.get(candidate.name)
    if expected is not None:
        return expected
    return asset.problem(Reason.MISSING_CHECKSUM, candidate.key,
                         f"no MD5 for {candidate.name}: add it to {asset.code}.md5 "
                         f"or deliver {candidate.name}.md5")


def checksum_mismatch(asset: AssetFiles, candidate: Candidate, expected: str,
                      actual: str) -> Problem | None:
    """CHECKSUM_MISMATCH when the object's MD5 is not the one declared."""
    if actual == expected:
        return None
    return asset.problem(Reason.CHECKSUM_MISMATCH, candidate.key,
                         f"{candidate.name} has MD5 {actual} but its sidecar says {expected}: "
                         "the file is damaged or the sidecar is wrong; deliver it again")


def restored_mismatch(candidate: Candidate, catalogued: str, actual: str) -> Problem | None:
    """A master catalogued as on tape, now in the bucket: CHECKSUM_MISMATCH unless it is the
    same file (the catalogued MD5)."""
    if actual == catalogued:
        return None
    return Problem.make(Reason.CHECKSUM_MISMATCH, candidate.key,
                        f"{candidate.name} is catalogued as kept on tape with MD5 "
                        f"{catalogued}, but the copy in the bucket has MD5 {actual}: "
                        "restore it again", inventory_code=candidate.inventory_code)


# -- media files ----------------------------------------------------------------------


def container_mismatch(asset: AssetFiles, master: Candidate, info: MediaInfo,
                       probed: MediaInfo | None) -> Problem | None:
    """The master's own header (`probed`: None when empty or no format mediainfo
    recognises) is the container its metadata `info` describes; else CONTAINER_MISMATCH
    (an empty file, random bytes, a playlist)."""
    if master.size == 0:
        actual = "empty (0 bytes)"
    elif probed is None:
        actual = f"{master.size} bytes of no media format mediainfo recognises"
    elif probed.container is info.container:
        return None
    else:
        actual = _what_it_is(probed)
    sidecar = metadata_for(asset, master.name)
    said = f"its metadata {sidecar.name}" if sidecar else "its metadata"
    return asset.problem(
        Reason.CONTAINER_MISMATCH, master.key,
        f"the master {master.name} is {actual}, but {said} says {info.container} "
        f"({info.format_name}): upload the real master, or regenerate the metadata from the "
        "file you mean to keep")


@dataclass(frozen=True)
class TapeMaster:
    """A master kept on tape (not in the bucket), catalogued from its sidecars."""

    key: str  # <folder of its metadata>/<code><extension>, never a name copied from a sidecar
    md5: str
    info: MediaInfo


def tape_master(asset: AssetFiles, info: MediaInfo,
                declared: Mapping[str, str]) -> tuple[TapeMaster | None, list[Problem]]:
    """The master named by its metadata and checksum sidecars when it is not in the bucket;
    MISSING_CHECKSUM with no MD5 declared for it, METADATA_MISMATCH when the name is no
    master's, and the master container rules on its metadata."""
    sidecar = metadata_for(asset, None)
    name = tape_name(info, declared, asset.rules)
    if sidecar is None or not name:
        return None, []
    md5 = declared.get(name)
    if md5 is None:
        return None, [asset.problem(
            Reason.MISSING_CHECKSUM, sidecar.key,
            f"the master {name} of {asset.code} is not in the bucket and no MD5 is declared "
            f"for it: add it to {asset.code}.md5")]
    if not asset.rules.is_master_name(name):
        return None, [asset.problem(
            Reason.METADATA_MISMATCH, sidecar.key,
            f"the master of {asset.code} is not in the bucket and its metadata names no "
            f"master file ({name!r}): regenerate {sidecar.name} from the master")]
    folder = sidecar.key.rsplit("/", 1)[0]
    extension = "." + name.rsplit(".", 1)[-1].lower()
    key = f"{folder}/{asset.code}{extension}"
    return TapeMaster(key, md5, info), check_master(key, asset.code, extension, info,
                                                   asset.rules)


def streaming_problems(asset: AssetFiles, stream: Candidate,
                       probed: MediaInfo | str) -> list[Problem]:
    """The streaming copy's probe (or why probing failed) against the streaming rules."""
    if isinstance(probed, str):
        fmt = asset.rules.format_of(stream.extension, Role.STREAMING)
        wanted = fmt.brief() if fmt is not None else "a streaming format"
        return [asset.problem(Reason.CONTAINER_MISMATCH, stream.key,
                              f"{probed}: a {stream.extension} streaming copy must be {wanted}")]
    return check_media_file(stream.key, asset.code, asset.media_type, stream.extension, probed,
                            asset.rules)


def qc_report_problems(asset: AssetFiles, heads: Mapping[str, bytes]) -> list[Problem]:
    """Each new QC report's first bytes (`heads`, by key) must be a PDF; an asset new to the
    catalogue with no QC report gets a MISSING_QC_REPORT warning (imported without it)."""
    reports = asset.by_role[Role.QC_REPORT]
    problems = [problem for report in reports if report.key in asset.new_keys
                for problem in [check_qc_report(report.name, heads.get(report.key, b""),
                                                key=report.key, inventory_code=asset.code)]
                if problem is not None]
    if not reports and asset.existing is None:
        media = asset.by_role[Role.MASTER] + asset.by_role[Role.STREAMING]
        problems.append(asset.problem(
            Reason.MISSING_QC_REPORT, media[0].key,
            f"{asset.code} has no QC report: deliver {asset.code}_qc.pdf when it is ready "
            "(imported without it)"))
    return problems


# -- names ----------------------------------------------------------------------------


def _what_it_is(info: MediaInfo) -> str:
    """What a probe found, by the format's own name when no master container ("HLS with no
    audio or video streams")."""
    text = info.describe()
    if info.container is Container.OTHER:
        return text.replace(str(Container.OTHER), info.format_name or "an unknown format", 1)
    return text


def tape_name(info: MediaInfo | None, declared: Mapping[str, str],
              rules: Rules | None = None) -> str | None:
    """The master's file name when it is not in the bucket: from its metadata, else the md5."""
    if info is not None and info.file_name:
        return base_name(info.file_name)
    rules = rules or default_rules()
    return next((name for name in declared if rules.is_master_name(name)), None)
