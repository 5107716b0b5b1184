"""Phase 3: per asset, read and validate the sidecars, verify checksums, probe the streaming
copy, and turn the asset into rows to insert (or problems that keep it out).

`AssetPlanner.plan` does one asset's I/O (S3 reads of the sidecars; libmediainfo on ranged
reads of the master's and the streaming copy's headers) and asks the pure rules of
`validation.assets` what to make of it; `plan_ingest` runs it over many assets on a bounded
thread pool. Nothing here writes to the database (phases/insert.py does). A plan also carries
the preservation events of what was checked (message digest calculation, format
identification: mpr_cli.events), recorded by the insert for the files actually inserted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from typing import Any

from mpr_cli.db import ExistingAsset, FileRow
from mpr_cli.errors import FfmpegError, MprError, NoSuchObject, S3Unavailable, describe
from mpr_cli.events import EventType, NewEvent, Outcome
from mpr_cli.ffmpeg.probe import probe_stream
from mpr_cli.problems import Problem, Reason, Severity
from mpr_cli.rules import MediaType, Role, Rules, default_rules
from mpr_cli.storage import Storage, single_part_md5
from mpr_cli.validation import assets as asset_rules
from mpr_cli.validation.assets import AssetFiles
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.inventory import Candidate
from mpr_cli.validation.mime import mime_for_extension, mime_for_media, mime_for_sidecar
from mpr_cli.validation.sidecars import parse_checksum_sidecar, parse_metadata_sidecar

MAX_SIDECAR_BYTES = 16 * 1024 * 1024
QC_HEAD_BYTES = 1024  # a PDF signature must appear within the first KiB


class VerifyMode(StrEnum):
    AUTO = "auto"  # compare with a single-part ETag when possible, else stream through MD5
    FULL = "full"  # always stream the object through MD5
    NONE = "none"  # trust the checksum sidecar


@dataclass
class IngestPlan:
    """What phase 3 made of one asset: the rows to insert (none unless `ok`) and the
    problems, with what it cost (bytes streamed through MD5, sidecars fetched)."""

    code: str
    media_type: MediaType
    rows: list[FileRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bytes_verified: int = 0
    sidecars_fetched: int = 0
    events: list[NewEvent] = field(default_factory=list)  # of the checks (none unless `ok`)

    @property
    def ok(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)


def group_assets(new: list[Candidate], known: list[Candidate],
                 existing: dict[str, ExistingAsset],
                 rules: Rules | None = None) -> list[AssetFiles]:
    """Group candidates by inventory code; only assets with at least one new file; each
    checked with `rules` (the run's; the shipped rules when None)."""
    rules = rules or default_rules()
    codes = {c.inventory_code for c in new}
    def by_code(c: Candidate) -> str:
        return c.inventory_code
    new_by = {k: list(v) for k, v in groupby(sorted(new, key=by_code), key=by_code)}
    known_rel = sorted((c for c in known if c.inventory_code in codes), key=by_code)
    known_by = {k: list(v) for k, v in groupby(known_rel, key=by_code)}
    return [AssetFiles(code, files[0].media_type, files, known_by.get(code, []),
                       existing.get(code), rules) for code, files in sorted(new_by.items())]


def streams(verify: VerifyMode, candidate: Candidate) -> bool:
    """Does verifying this object's MD5 read the whole object?"""
    return verify is VerifyMode.FULL or (
        verify is VerifyMode.AUTO and single_part_md5(candidate.etag) is None)


def streamed_bytes(verify: VerifyMode, candidate: Candidate) -> int:
    """What verifying this file streams at most: a media file's size when its MD5 is read
    from its bytes, else nothing (a progress bar's total)."""
    media = candidate.role in (Role.MASTER, Role.STREAMING)
    return candidate.size if media and streams(verify, candidate) else 0


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

    def plan(self, asset: AssetFiles) -> IngestPlan:
        plan = IngestPlan(asset.code, asset.media_type)
        try:
            _AssetCheck(self, asset, plan).run()
        except S3Unavailable:  # S3 itself failed: the run stops (exit 4), no file is blamed
            raise
        except NoSuchObject as exc:  # listed (or in an inventory), gone when it was read
            plan.problems.append(_gone(asset, exc))
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
            plan.events.clear()
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
        return streams(self.verify, candidate)

    def object_md5(self, candidate: Candidate, expected: str) -> tuple[str, int]:
        """The object's MD5 as `verify` decides (ETag, streamed, or trusted), and the bytes
        streamed to get it."""
        if self.verify is VerifyMode.NONE:
            return expected, 0
        if not self.streams(candidate):
            return str(single_part_md5(candidate.etag)), 0
        return self.storage.md5_of_object(self.bucket, candidate.key, self.on_bytes)

    def current_md5(self, candidate: Candidate) -> tuple[str | None, int]:
        """The object's MD5 now, as `verify` allows (its single-part ETag, else streamed;
        with `none`, None for a multipart ETag), and the bytes streamed to get it. None also
        when the object cannot be read (S3 itself failing still raises)."""
        if self.verify is VerifyMode.NONE or not self.streams(candidate):
            return single_part_md5(candidate.etag), 0
        try:
            return self.storage.md5_of_object(self.bucket, candidate.key, self.on_bytes)
        except S3Unavailable:
            raise
        except MprError:
            return None, 0

    def check_restored(self, candidate: Candidate, catalogued: str | None) -> Problem | None:
        """A master catalogued as on tape, now in the bucket: is it the same file?"""
        if catalogued is None:
            return None
        actual, _ = self.object_md5(candidate, catalogued)
        return asset_rules.restored_mismatch(candidate, catalogued, actual)


class _AssetCheck:
    """One asset's fetching, in the order that keeps it cheap, with the rules of
    `validation.assets` asked after each step; each step adds rows or problems to the plan.
    The order: structure (nothing fetched), the master's metadata sidecar, every checksum
    sidecar, then (only for an asset still valid) the master's header before its MD5, the
    streaming copy's MD5 and header, and last the first KiB of each new QC report."""

    def __init__(self, planner: AssetPlanner, asset: AssetFiles, plan: IngestPlan) -> None:
        self.p = planner
        self.asset = asset
        self.plan = plan

    def add(self, problems: Iterable[Problem]) -> None:
        self.plan.problems.extend(problems)

    def read(self, sidecar: Candidate) -> bytes:
        self.plan.sidecars_fetched += 1
        return self.p.read(sidecar)

    def run(self) -> None:
        asset = self.asset
        self.add(asset_rules.duplicate_roles(asset))
        if not self.plan.ok:
            return
        orphans = asset_rules.orphan_sidecars(asset)
        if orphans:
            self.add(orphans)
            return
        master, stream = asset.one(Role.MASTER), asset.one(Role.STREAMING)
        master_info = self._master_metadata(master)
        declared = self._checksums(master, master_info)
        if not self.plan.ok:
            return
        if master is not None:
            self._add_media(master, master_info, declared)
        elif master_info is not None and asset.needs_master():
            self._add_tape_master(master_info, declared)
        if stream is not None and stream.key in asset.new_keys:
            self._add_streaming(stream, declared)
        self._add_sidecars()
        self._check_qc()

    def _master_metadata(self, master: Candidate | None) -> MediaInfo | None:
        sidecar = asset_rules.metadata_for(self.asset, master.name if master else None)
        parsed = None if sidecar is None else parse_metadata_sidecar(
            sidecar.name, self.read(sidecar), key=sidecar.key, inventory_code=self.asset.code)
        info, problems = asset_rules.master_metadata(self.asset, master, sidecar, parsed)
        self.add(problems)
        return info

    def _checksums(self, master: Candidate | None,
                   master_info: MediaInfo | None) -> dict[str, str]:
        parsed = [(sidecar, parse_checksum_sidecar(sidecar.name, self.read(sidecar),
                                                   key=sidecar.key,
                                                   inventory_code=self.asset.code))
                  for sidecar in self.asset.by_role[Role.CHECKSUM]]
        declared, problems = asset_rules.declared_checksums(self.asset, master, master_info, parsed)
        self.add(problems)
        return declared

    def _verified_md5(self, candidate: Candidate, declared: dict[str, str]) -> str | None:
        expected = asset_rules.expected_md5(self.asset, candidate, declared)
        if isinstance(expected, Problem):
            self.add([expected])
            return None
        md5, streamed = self.p.object_md5(candidate, expected)
        self.plan.bytes_verified += streamed
        mismatch = asset_rules.checksum_mismatch(self.asset, candidate, expected, md5)
        if mismatch is not None:
            self.add([mismatch])
            return None
        if self.p.verify is not VerifyMode.NONE:  # trusted, not checked: no event
            how = ("computed by reading the object" if self.p.streams(candidate)
                   else "read from its single-part ETag")
            self.event(candidate, EventType.DIGEST,
                       f"MD5 {md5} {how}: matches the declared checksum")
        return md5

    def event(self, candidate: Candidate, event_type: EventType, detail: str) -> None:
        """A successful check of a file, recorded if the file is inserted."""
        self.plan.events.append(NewEvent(event_type, Outcome.SUCCESS, detail, self.p.bucket,
                                         candidate.key, inventory_code=self.asset.code,
                                         etag=candidate.etag))

    def identified(self, candidate: Candidate, probed: MediaInfo, mime: str | None) -> None:
        self.event(candidate, EventType.FORMAT_IDENTIFICATION,
                   f"{probed.container} ({probed.format_name}) identified from its header by "
                   f"{probed.source}; MIME type {mime}")

    # -- rows -----------------------------------------------------------------------

    def _row(self, candidate: Candidate, *, md5: str | None = None,
             mime: str | None = None, tech: dict[str, Any] | None = None) -> FileRow:
        return FileRow(self.asset.code, self.p.bucket, candidate.key, candidate.role, True,
                       candidate.size, candidate.etag, md5, mime, tech)

    def _mime(self, extension: str, info: MediaInfo) -> str | None:
        """The MIME type the rules give the extension (its container's when they give none)."""
        return mime_for_extension(extension, self.asset.rules) or mime_for_media(info)

    def _add_media(self, master: Candidate, info: MediaInfo | None,
                   declared: dict[str, str]) -> None:
        if master.key not in self.asset.new_keys or info is None:
            return
        probed = self._probe_master(master)
        mismatch = asset_rules.container_mismatch(self.asset, master, info, probed)
        if mismatch is not None:
            self.add([mismatch])
            return  # before the MD5: no object is streamed for a file that is not the master
        mime = self._mime(master.extension, info)
        if probed is not None:
            self.identified(master, probed, mime)
        md5 = self._verified_md5(master, declared)
        if md5 is not None:
            self.plan.rows.append(self._row(master, md5=md5, tech=info.raw, mime=mime))

    def _probe_master(self, master: Candidate) -> MediaInfo | None:
        """The master's own header, probed with ranged reads (None when empty or no media
        format). The header is all that is read: 512 KiB (2 GETs) of a 1.5 GB .mkv or
        faststart .mov, 836 KiB (4 GETs) of a .mov with its moov at the end; bytes that are
        no media format cost what libmediainfo reads before it gives up, 16 MiB at most."""
        if master.size == 0:
            return None
        try:
            return self.p.probe(master)
        except FfmpegError:
            return None

    def _add_tape_master(self, info: MediaInfo, declared: dict[str, str]) -> None:
        tape, problems = asset_rules.tape_master(self.asset, info, declared)
        self.add(problems)
        if tape is not None:
            self.plan.rows.append(FileRow(self.asset.code, self.p.bucket, tape.key,
                                          Role.MASTER, False, info.size, None, tape.md5,
                                          self._mime(_extension(tape.key), info), info.raw))

    def _add_streaming(self, stream: Candidate, declared: dict[str, str]) -> None:
        md5 = self._verified_md5(stream, declared)
        probed: MediaInfo | str
        try:
            probed = self.p.probe(stream)
        except FfmpegError as exc:
            probed = exc.message
        problems = asset_rules.streaming_problems(self.asset, stream, probed)
        self.add(problems)
        if md5 is not None and not problems and isinstance(probed, MediaInfo):
            mime = self._mime(stream.extension, probed)
            self.identified(stream, probed, mime)
            self.plan.rows.append(self._row(stream, md5=md5, tech=probed.raw, mime=mime))

    def _add_sidecars(self) -> None:
        for role in (Role.METADATA, Role.CHECKSUM, Role.QC_REPORT):
            for candidate in self.asset.by_role[role]:
                if candidate.key in self.asset.new_keys:
                    self.plan.rows.append(self._row(
                        candidate, md5=single_part_md5(candidate.etag),
                        mime=mime_for_sidecar(candidate.extension, self.asset.rules)))

    def _check_qc(self) -> None:
        heads: dict[str, bytes] = {}
        for report in self.asset.by_role[Role.QC_REPORT]:
            if report.key in self.asset.new_keys and report.size:
                self.plan.sidecars_fetched += 1
                heads[report.key] = self.p.storage.read_head(self.p.bucket, report.key,
                                                             QC_HEAD_BYTES)
        self.add(asset_rules.qc_report_problems(self.asset, heads))


def _gone(asset: AssetFiles, exc: NoSuchObject) -> Problem:
    key = exc.key or asset.new[0].key
    return Problem.make(
        Reason.MISSING_OBJECT, key,
        f"{key} was listed (or named by the inventory) but is no longer in the bucket when it "
        f"was read: {asset.code} was left out; put the file back, or run again once the "
        "delivery is complete", inventory_code=asset.code)


def _extension(key: str) -> str:
    return "." + key.rsplit(".", 1)[-1].lower()


def plan_ingest(planner: AssetPlanner, assets: Iterable[AssetFiles], workers: int,
                on_done: Callable[[IngestPlan], None] | None = None) -> Iterator[IngestPlan]:
    """Plan assets on a bounded thread pool; yields plans in completion order."""
    pending: set[Future[IngestPlan]] = set()

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


def _finished(done: set[Future[IngestPlan]],
              on_done: Callable[[IngestPlan], None] | None) -> Iterator[IngestPlan]:
    for future in done:
        plan = future.result()
        if on_done is not None:
            on_done(plan)
        yield plan
