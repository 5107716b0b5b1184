"""Phase 3: per asset, read and validate the sidecars, verify checksums, probe the streaming
copy, and turn the asset into rows to insert (or problems that keep it out).

`AssetPlanner.plan` does one asset's I/O (S3 reads of the sidecars; libmediainfo on ranged
reads of the master's and the streaming copy's headers); `plan_assets` runs it over many
assets on a bounded thread pool. Nothing here writes to the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby

from mpr_cli.db import ExistingAsset, FileRow
from mpr_cli.errors import FfmpegError, MprError, S3Unavailable, describe
from mpr_cli.ffmpeg.probe import probe_stream
from mpr_cli.problems import Problem, Reason, Severity
from mpr_cli.rules import MediaType, Role
from mpr_cli.storage import Storage, single_part_md5
from mpr_cli.validation.containers import (
    MASTER_CONTAINERS,
    Container,
    MediaInfo,
    check_kind,
    check_master,
    check_media_file,
)
from mpr_cli.validation.inventory import Candidate
from mpr_cli.validation.mime import mime_for_media, mime_for_sidecar
from mpr_cli.validation.sidecars import (
    base_name,
    check_qc_report,
    parse_checksum_sidecar,
    parse_metadata_sidecar,
)

MAX_SIDECAR_BYTES = 16 * 1024 * 1024
MASTER = ""  # the key a bare hash in <code>.md5 is filed under
QC_HEAD_BYTES = 1024  # a PDF signature must appear within the first KiB


class VerifyMode(StrEnum):
    AUTO = "auto"  # compare with a single-part ETag when possible, else stream through MD5
    FULL = "full"  # always stream the object through MD5
    NONE = "none"  # trust the checksum sidecar


@dataclass
class AssetFiles:
    """One asset's keys in this listing: `new` to import, `known` already catalogued."""

    code: str
    media_type: MediaType
    new: list[Candidate]
    known: list[Candidate]
    existing: ExistingAsset | None = None

    @property
    def all(self) -> list[Candidate]:
        return self.new + self.known


@dataclass
class AssetPlan:
    code: str
    media_type: MediaType
    rows: list[FileRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bytes_verified: int = 0
    sidecars_fetched: int = 0

    @property
    def ok(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)


def group_assets(new: list[Candidate], known: list[Candidate],
                 existing: dict[str, ExistingAsset]) -> list[AssetFiles]:
    """Group candidates by inventory code; only assets with at least one new file."""
    codes = {c.inventory_code for c in new}
    def by_code(c: Candidate) -> str:
        return c.inventory_code
    new_by = {k: list(v) for k, v in groupby(sorted(new, key=by_code), key=by_code)}
    known_rel = sorted((c for c in known if c.inventory_code in codes), key=by_code)
    known_by = {k: list(v) for k, v in groupby(known_rel, key=by_code)}
    return [AssetFiles(code, files[0].media_type, files, known_by.get(code, []),
                       existing.get(code)) for code, files in sorted(new_by.items())]


class AssetPlanner:
    """Plans one asset at a time; safe to use from many threads (no shared mutable state)."""

    def __init__(self, storage: Storage, bucket: str, verify: VerifyMode,
                 probe_workers: int | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self.storage = storage
        self.bucket = bucket
        self.verify = verify
        self.on_bytes = on_bytes  # told each chunk streamed through MD5 (progress)
        # libmediainfo costs a few MB per thread that ever runs it: probes get a small pool
        # of their own (CPU-bound, ~10 ms each) instead of running on every I/O thread
        self.probers = ThreadPoolExecutor(
            max_workers=probe_workers or 2 * (os.cpu_count() or 1),
            thread_name_prefix="probe")

    def close(self) -> None:
        self.probers.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> AssetPlanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def plan(self, asset: AssetFiles) -> AssetPlan:
        plan = AssetPlan(asset.code, asset.media_type)
        try:
            _AssetCheck(self, asset, plan).run()
        except S3Unavailable:  # S3 itself failed: the run stops (exit 4), no file is blamed
            raise
        except MprError as exc:  # S3 or ffprobe failed for this asset only
            plan.problems.append(Problem.make(Reason.FETCH_FAILED, asset.new[0].key,
                                              exc.one_line(), inventory_code=asset.code))
        except Exception as exc:  # a check no rule foresaw failed: this asset only
            plan.problems.append(Problem.make(
                Reason.INTERNAL_ERROR, asset.new[0].key,
                f"checking {asset.code} failed ({describe(exc)}): the asset was left out, the "
                "others go on; report this as a bug", inventory_code=asset.code))
        if not plan.ok:
            plan.rows.clear()
        return plan

    def read(self, candidate: Candidate) -> bytes:
        return self.storage.read_bytes(self.bucket, candidate.key, MAX_SIDECAR_BYTES)

    def probe(self, candidate: Candidate) -> MediaInfo:
        """The container and codecs of an object, from ranged reads of its headers only."""
        return self.probers.submit(self._probe, candidate).result()

    def _probe(self, candidate: Candidate) -> MediaInfo:
        with self.storage.open_ranged(self.bucket, candidate.key, candidate.size) as stream:
            return probe_stream(stream, candidate.name)

    def streams(self, candidate: Candidate) -> bool:
        """Does verifying this object's MD5 read the whole object?"""
        return self.verify is VerifyMode.FULL or (
            self.verify is VerifyMode.AUTO and single_part_md5(candidate.etag) is None)

    def bytes_to_verify(self, candidates: Iterable[Candidate]) -> int:
        """What verifying these media files will stream at most (a progress bar's total)."""
        return sum(c.size for c in candidates
                   if c.role in (Role.MASTER, Role.STREAMING) and self.streams(c))

    def object_md5(self, candidate: Candidate, expected: str) -> tuple[str, int]:
        """The object's MD5 as `verify` decides (ETag, streamed, or trusted), and the bytes
        streamed to get it."""
        if self.verify is VerifyMode.NONE:
            return expected, 0
        if not self.streams(candidate):
            return str(single_part_md5(candidate.etag)), 0
        return self.storage.md5_of_object(self.bucket, candidate.key, self.on_bytes)

    def check_restored(self, candidate: Candidate, catalogued: str | None) -> Problem | None:
        """A master catalogued as on tape, now in the bucket: is it the same file?"""
        if catalogued is None:
            return None
        actual, _ = self.object_md5(candidate, catalogued)
        if actual == catalogued:
            return None
        return Problem.make(Reason.CHECKSUM_MISMATCH, candidate.key,
                            f"{candidate.name} is catalogued as kept on tape with MD5 "
                            f"{catalogued}, but the copy in the bucket has MD5 {actual}: "
                            "restore it again", inventory_code=candidate.inventory_code)


class _AssetCheck:
    """The checks on one asset, in order; each adds rows or problems to the plan."""

    def __init__(self, planner: AssetPlanner, asset: AssetFiles, plan: AssetPlan) -> None:
        self.p = planner
        self.asset = asset
        self.plan = plan
        self.new_keys = {c.key for c in asset.new}
        self.names = {c.name for c in asset.all}
        by_role: dict[Role, list[Candidate]] = {role: [] for role in Role}
        for candidate in asset.all:
            by_role[candidate.role].append(candidate)
        self.by_role = by_role

    def read(self, sidecar: Candidate) -> bytes:
        self.plan.sidecars_fetched += 1
        return self.p.read(sidecar)

    def problem(self, reason: Reason, key: str, message: str) -> None:
        self.plan.problems.append(Problem.make(reason, key, message,
                                               inventory_code=self.asset.code))

    def run(self) -> None:
        if not self._roles_unique() or not self._has_media():
            return
        master = self._one(Role.MASTER)
        stream = self._one(Role.STREAMING)
        master_info = self._master_metadata(master)
        checksums = self._checksums(master, master_info)
        if not self.plan.ok or checksums is None:
            return
        if master is not None:
            self._add_media(master, master_info, checksums)
        elif master_info is not None and self._needs_master():
            self._add_tape_master(master_info, checksums)
        if stream is not None and stream.key in self.new_keys:
            self._add_streaming(stream, checksums)
        self._add_sidecars()
        self._check_qc()

    # -- structure ----------------------------------------------------------------

    def _one(self, role: Role) -> Candidate | None:
        found = self.by_role[role]
        return found[0] if found else None

    def _roles_unique(self) -> bool:
        existing = self.asset.existing
        for role in (Role.MASTER, Role.STREAMING):
            found = self.by_role[role]
            for extra in found[1:]:
                self.problem(Reason.DUPLICATE_ROLE, extra.key,
                             f"{self.asset.code} has {len(found)} {role} files "
                             f"({', '.join(c.name for c in found)}): keep one and re-run")
            catalogued = existing is not None and (
                existing.has_master if role is Role.MASTER else existing.has_streaming)
            for new in (c for c in found[:1] if c.key in self.new_keys and catalogued):
                self.problem(Reason.DUPLICATE_ROLE, new.key,
                             f"{self.asset.code} already has a {role} file in the catalogue: "
                             f"{new.key} would be a second one; remove it, or remove the "
                             "catalogued one first if the file was moved")
        return self.plan.ok

    def _has_media(self) -> bool:
        existing = self.asset.existing
        if self.by_role[Role.MASTER] or self.by_role[Role.STREAMING] or existing:
            return True
        for candidate in self.asset.new:
            self.problem(Reason.ORPHAN_SIDECAR, candidate.key,
                         f"{candidate.name} belongs to {self.asset.code}, which has no master or "
                         "streaming copy in the bucket or the catalogue: deliver the media with "
                         "it, or remove the sidecar")
        return False

    def _needs_master(self) -> bool:
        existing = self.asset.existing
        return existing is None or not existing.has_master

    # -- metadata -----------------------------------------------------------------

    def _metadata_for(self, name: str | None) -> Candidate | None:
        """The master's metadata: `<master>.json`, else `<code>.json`; with the master on
        tape (name None), `<code>.json` or a `.json` describing a master-type file."""
        sidecars = self.by_role[Role.METADATA]
        specific = [c for c in sidecars if c.describes is not None
                    and (c.describes == name if name else _is_master_name(c.describes))]
        general = [c for c in sidecars if c.describes is None]
        found = (specific or general) if name else (general or specific)
        return found[0] if found else None

    def _master_metadata(self, master: Candidate | None) -> MediaInfo | None:
        sidecar = self._metadata_for(master.name if master else None)
        self._orphan_metadata(master)
        needed = (master is not None and master.key in self.new_keys) or self._needs_master()
        if sidecar is None:
            if needed:
                target = master.key if master else self.asset.all[0].key
                self.problem(Reason.MISSING_METADATA_SIDECAR, target,
                             f"no technical metadata for the master of {self.asset.code}: add "
                             f"{self.asset.code}.json (mediainfo or ffprobe JSON output)")
            return None
        parsed = parse_metadata_sidecar(sidecar.name, self.read(sidecar), key=sidecar.key,
                                        inventory_code=self.asset.code)
        if isinstance(parsed, Problem):
            self.plan.problems.append(parsed)
            return None
        if (needed or sidecar.key in self.new_keys) and not self._describes_master(
                sidecar, master, parsed):
            return None
        if needed:
            key = master.key if master else sidecar.key
            extension = master.extension if master else None
            self._check_master_info(key, extension, parsed)
        return parsed

    def _describes_master(self, sidecar: Candidate, master: Candidate | None,
                          info: MediaInfo) -> bool:
        """The file the sidecar was made from (mediainfo's @ref, ffprobe's format.filename)
        must be this asset's master: its code with a master extension, and when the master
        is in the bucket, its name and size. Else METADATA_MISMATCH."""
        code = self.asset.code
        named = base_name(info.file_name) if info.file_name else None
        if named is None:
            return True  # the tool did not say which file it read: nothing to compare
        why = None
        stem = named.rpartition(".")[0]
        if stem != code or not _is_master_name(named):
            masters = "/".join(sorted(MASTER_CONTAINERS))
            why = f"describes {named}, which is not a master of {code} ({code}{masters})"
        elif master is not None and named != master.name:
            why = f"describes {named}, but the master in the bucket is {master.name}"
        elif master is not None and info.size is not None and info.size != master.size:
            why = (f"describes a file of {info.size} bytes, but the master {master.name} in "
                   f"the bucket has {master.size}")
        if why is None:
            return True
        self.problem(Reason.METADATA_MISMATCH, sidecar.key,
                     f"metadata file {sidecar.name} {why}: regenerate it from the master "
                     f"(`mediainfo --Output=JSON {master.name if master else code + '.<ext>'}`)")
        return False

    def _check_master_info(self, key: str, extension: str | None, info: MediaInfo) -> None:
        if extension is None:
            problems = check_kind(key, self.asset.code, self.asset.media_type, info)
        else:
            problems = check_media_file(key, self.asset.code, self.asset.media_type,
                                        extension, info)
        self.plan.problems.extend(problems)

    def _orphan_metadata(self, master: Candidate | None) -> None:
        for sidecar in self.by_role[Role.METADATA]:
            covered = sidecar.describes
            if covered is None or covered in self.names or sidecar.key not in self.new_keys:
                continue
            if master is None and _is_master_name(covered):
                continue  # the metadata of a master kept on tape
            self.problem(Reason.ORPHAN_SIDECAR, sidecar.key,
                         f"{sidecar.name} describes {covered}, which is not in the bucket: "
                         "deliver that file or remove the sidecar")

    # -- checksums ------------------------------------------------------------------

    def _checksums(self, master: Candidate | None,
                   master_info: MediaInfo | None) -> dict[str, str] | None:
        """Covered name -> MD5 from every checksum sidecar of the asset (a bare hash in
        <code>.md5 filed under the master's name). Two sidecars giving one name two MD5s is
        CONFLICTING_CHECKSUMS; a new sidecar giving a catalogued file an MD5 other than the
        catalogued one is CHECKSUM_MISMATCH."""
        claims: list[tuple[Candidate, str, str]] = []  # (sidecar, covered name, MD5)
        for sidecar in self.by_role[Role.CHECKSUM]:
            parsed = parse_checksum_sidecar(sidecar.name, self.read(sidecar), key=sidecar.key,
                                            inventory_code=self.asset.code)
            if isinstance(parsed, Problem):
                self.plan.problems.append(parsed)
                continue
            claims += [(sidecar, name, md5) for name, md5 in parsed.items()]
        names = {name: md5 for _, name, md5 in claims}
        master_name = (master.name if master else _tape_name(master_info, names)) or MASTER
        declared: dict[str, tuple[Candidate, str]] = {}
        for sidecar, name, md5 in claims:
            name = master_name if name == MASTER else name
            if sidecar.key in self.new_keys and not self._agrees_with_catalogue(
                    sidecar, name, md5):
                continue  # one problem per claim: the catalogue's word, not also a conflict
            earlier = declared.setdefault(name, (sidecar, md5))
            if earlier[1] != md5:
                self._conflicting(name, earlier, (sidecar, md5))
        return {name: md5 for name, (_, md5) in declared.items()} if self.plan.ok else None

    def _conflicting(self, name: str, first: tuple[Candidate, str],
                     second: tuple[Candidate, str]) -> None:
        (one, md5_one), (other, md5_other) = first, second
        blamed = other if other.key in self.new_keys or one.key not in self.new_keys else one
        self.problem(Reason.CONFLICTING_CHECKSUMS, blamed.key,
                     f"{one.name} gives {name} MD5 {md5_one} but {other.name} gives "
                     f"{md5_other}: correct or remove the wrong checksum file and re-run")

    def _agrees_with_catalogue(self, sidecar: Candidate, name: str, md5: str) -> bool:
        """A checksum sidecar delivered after the file it covers was catalogued."""
        existing = self.asset.existing
        if existing is None or name in {c.name for c in self.asset.new}:
            return True  # a new file is checked against its own bytes
        catalogued = {base_name(key): value for key, value in existing.md5s.items()}
        recorded = catalogued.get(name)
        if recorded is None or recorded == md5:
            return True
        self.problem(Reason.CHECKSUM_MISMATCH, sidecar.key,
                     f"{sidecar.name} gives {name} MD5 {md5}, but the catalogue records "
                     f"{recorded} for it: correct {sidecar.name} or remove it, and re-run")
        return False

    def _verified_md5(self, candidate: Candidate, declared: dict[str, str]) -> str | None:
        expected = declared.get(candidate.name)
        if expected is None:
            self.problem(Reason.MISSING_CHECKSUM, candidate.key,
                         f"no MD5 for {candidate.name}: add it to {self.asset.code}.md5 "
                         f"or deliver {candidate.name}.md5")
            return None
        actual = self._actual_md5(candidate, expected)
        if actual != expected:
            self.problem(Reason.CHECKSUM_MISMATCH, candidate.key,
                         f"{candidate.name} has MD5 {actual} but its sidecar says {expected}: "
                         "the file is damaged or the sidecar is wrong; deliver it again")
            return None
        return actual

    def _actual_md5(self, candidate: Candidate, expected: str) -> str:
        md5, streamed = self.p.object_md5(candidate, expected)
        self.plan.bytes_verified += streamed
        return md5

    # -- rows -----------------------------------------------------------------------

    def _row(self, candidate: Candidate, *, md5: str | None = None,
             mime: str | None = None, tech: dict | None = None) -> FileRow:
        return FileRow(self.asset.code, self.p.bucket, candidate.key, candidate.role.value, True,
                       candidate.size, candidate.etag, md5, mime, tech)

    def _add_media(self, master: Candidate, info: MediaInfo | None,
                   declared: dict[str, str]) -> None:
        if master.key not in self.new_keys or info is None:
            return
        if not self._master_is_as_described(master, info):
            return  # before the MD5: no object is streamed for a file that is not the master
        md5 = self._verified_md5(master, declared)
        if md5 is not None:
            self.plan.rows.append(self._row(master, md5=md5, mime=mime_for_media(info),
                                            tech=info.raw))

    def _master_is_as_described(self, master: Candidate, info: MediaInfo) -> bool:
        """The master's own header, probed with ranged reads, is the container its metadata
        describes; else CONTAINER_MISMATCH (an empty file, random bytes, a playlist). The
        header is all that is read: 512 KiB (2 GETs) of a 1.5 GB .mkv or faststart .mov,
        836 KiB (4 GETs) of a .mov with its moov at the end; bytes that are no media format
        cost what libmediainfo reads before it gives up, 16 MiB at most."""
        if master.size == 0:
            actual = "empty (0 bytes)"
        else:
            try:
                probed = self.p.probe(master)
            except FfmpegError:
                actual = f"{master.size} bytes of no media format mediainfo recognises"
            else:
                if probed.container is info.container:
                    return True
                actual = _what_it_is(probed)
        sidecar = self._metadata_for(master.name)
        said = f"its metadata {sidecar.name}" if sidecar else "its metadata"
        self.problem(Reason.CONTAINER_MISMATCH, master.key,
                     f"the master {master.name} is {actual}, but {said} says "
                     f"{info.container} ({info.format_name}): upload the real master, or "
                     "regenerate the metadata from the file you mean to keep")
        return False

    def _add_tape_master(self, info: MediaInfo, declared: dict[str, str]) -> None:
        sidecar = self._metadata_for(None)
        name = _tape_name(info, declared)
        if sidecar is None or not name:
            return
        md5 = declared.get(name)
        if md5 is None:
            self.problem(Reason.MISSING_CHECKSUM, sidecar.key,
                         f"the master {name} of {self.asset.code} is not in the bucket and no "
                         f"MD5 is declared for it: add it to {self.asset.code}.md5")
            return
        folder = sidecar.key.rsplit("/", 1)[0]
        if not _is_master_name(name):
            self.problem(Reason.METADATA_MISMATCH, sidecar.key,
                         f"the master of {self.asset.code} is not in the bucket and its "
                         f"metadata names no master file ({name!r}): regenerate "
                         f"{sidecar.name} from the master")
            return
        extension = "." + name.rsplit(".", 1)[-1].lower()
        key = f"{folder}/{self.asset.code}{extension}"  # never a name copied from the sidecar
        self.plan.problems.extend(check_master(key, self.asset.code, extension, info))
        self.plan.rows.append(FileRow(self.asset.code, self.p.bucket, key,
                                      Role.MASTER.value, False, info.size, None, md5,
                                      mime_for_media(info), info.raw))

    def _add_streaming(self, stream: Candidate, declared: dict[str, str]) -> None:
        md5 = self._verified_md5(stream, declared)
        try:
            info = self.p.probe(stream)
        except FfmpegError as exc:
            self.problem(Reason.CONTAINER_MISMATCH, stream.key,
                         f"{exc.message}: a {stream.extension} streaming copy must be "
                         f"{'MPEG-4 with H.264 and AAC' if stream.extension == '.mp4' else 'MP3'}")
            return
        problems = check_media_file(stream.key, self.asset.code, self.asset.media_type,
                                    stream.extension, info)
        self.plan.problems.extend(problems)
        if md5 is not None and not problems:
            self.plan.rows.append(self._row(stream, md5=md5, mime=mime_for_media(info),
                                            tech=info.raw))

    def _add_sidecars(self) -> None:
        for role in (Role.METADATA, Role.CHECKSUM, Role.QC_REPORT):
            for candidate in self.by_role[role]:
                if candidate.key in self.new_keys:
                    self.plan.rows.append(self._row(
                        candidate, md5=single_part_md5(candidate.etag),
                        mime=mime_for_sidecar(candidate.extension)))

    def _check_qc(self) -> None:
        reports = self.by_role[Role.QC_REPORT]
        for report in reports:
            if report.key in self.new_keys:
                self.plan.sidecars_fetched += 1 if report.size else 0
                head = (self.p.storage.read_head(self.p.bucket, report.key, QC_HEAD_BYTES)
                        if report.size else b"")
                problem = check_qc_report(report.name, head, key=report.key,
                                          inventory_code=self.asset.code)
                if problem is not None:
                    self.plan.problems.append(problem)
        if not reports and self.asset.existing is None:
            media = self.by_role[Role.MASTER] + self.by_role[Role.STREAMING]
            self.problem(Reason.MISSING_QC_REPORT, media[0].key,
                         f"{self.asset.code} has no QC report: deliver "
                         f"{self.asset.code}_qc.pdf when it is ready (imported without it)")


def _what_it_is(info: MediaInfo) -> str:
    """What a probe found, by the format's own name when no master container ("HLS with no
    audio or video streams")."""
    text = info.describe()
    if info.container is Container.OTHER:
        return text.replace(str(Container.OTHER), info.format_name or "an unknown format", 1)
    return text


def _tape_name(info: MediaInfo | None, declared: dict[str, str]) -> str | None:
    """The master's file name when it is not in the bucket: from its metadata, else the md5."""
    if info is not None and info.file_name:
        return base_name(info.file_name)
    return next((name for name in declared if _is_master_name(name)), None)


def _is_master_name(name: str) -> bool:
    return "." in name and "." + name.rsplit(".", 1)[-1].lower() in MASTER_CONTAINERS


def plan_assets(planner: AssetPlanner, assets: Iterable[AssetFiles], workers: int,
                on_done: Callable[[AssetPlan], None] | None = None) -> Iterator[AssetPlan]:
    """Plan assets on a bounded thread pool; yields plans in completion order."""
    pending: set[Future[AssetPlan]] = set()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        try:
            for asset in assets:
                pending.add(pool.submit(planner.plan, asset))
                if len(pending) >= workers * 4:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from _finished(done, on_done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from _finished(done, on_done)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _finished(done: set[Future[AssetPlan]],
              on_done: Callable[[AssetPlan], None] | None) -> Iterator[AssetPlan]:
    for future in done:
        plan = future.result()
        if on_done is not None:
            on_done(plan)
        yield plan
