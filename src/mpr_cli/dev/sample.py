"""A small but realistic sample archive on local disk, for the demo, the tests and the benchmark.

The tree mirrors the S3 input bucket (relative paths are the S3 keys). Each asset is a master,
a streaming copy, technical-metadata sidecars (real mediainfo or ffprobe output), checksums, and
a QC report; ``build_sample_archive`` also plants one file or asset per rule the importer
enforces, and returns a manifest saying what each key should produce.

The output is deterministic (the files come from `dev.media`: bit-exact ffmpeg output, fixed
modification times). Each kind of media is encoded once and copied where the content may
repeat, so even a large archive takes a few seconds. Run ``python -m mpr_cli.dev.sample OUTDIR``
for one from the shell.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mpr_cli.dev.media import (
    MEDIA_KINDS,
    MetadataTool,
    generate_media,
    md5_file,
    md5_listing,
    metadata_json,
    qc_report_pdf,
    settle,
    write_fixed,
)
from mpr_cli.errors import MprError, UsageError
from mpr_cli.problems import Reason
from mpr_cli.rules import Role, Rules, load_rules

log = logging.getLogger(__name__)

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"  # the wrong hash: that of a zero-byte upload
VIDEO_FOLDERS = ("BRD", "DVD", "FILE")
VIDEO_MASTERS = ("mov", "mkv", "mxf", "avi")
AUDIO_FOLDERS = ("CD", "DAT", "FILE")
AUDIO_MASTERS = ("wav", "flac")


class Expect(StrEnum):
    """What a key should produce when imported, besides a reason code (`problems.Reason`)."""

    IMPORT = "import"
    EXCLUDED = "excluded"
    REJECTED_WITH_ASSET = "rejected_with_asset"  # a good file of an asset rejected for another


# a warning: the file and its asset are imported; every other reason keeps the asset out
ASSET_SURVIVES = frozenset({Reason.MISSING_QC_REPORT})


@dataclass(frozen=True)
class SampleFile:
    key: str
    inventory_code: str | None  # None when excluded or when the name carries no valid code
    expect: str  # an Expect value or a reason code
    role: Role | None = None  # None for the single stray files

    @property
    def imported(self) -> bool:
        return self.expect in (Expect.IMPORT, Reason.MISSING_QC_REPORT)


@dataclass(frozen=True)
class SampleArchive:
    root: Path
    files: list[SampleFile]
    assets_ok: list[str]  # codes expected to be imported
    assets_rejected: dict[str, str] = field(default_factory=dict)  # code -> reason

    def problems(self) -> dict[str, str]:
        """Key -> reason, for every key that should be reported (warnings included)."""
        quiet = (Expect.IMPORT, Expect.EXCLUDED, Expect.REJECTED_WITH_ASSET)
        return {f.key: f.expect for f in self.files if f.expect not in quiet}

    def summary(self) -> str:
        excluded = sum(f.expect == Expect.EXCLUDED for f in self.files)
        return (f"{len(self.files)} files in {self.root}: {len(self.assets_ok)} assets to import, "
                f"{len(self.assets_rejected)} assets rejected, {len(self.problems())} keys with "
                f"problems, {excluded} excluded")


def inventory_code_of(name: str) -> str | None:
    """The code a base name starts with (followed by ``.`` or ``_``), by the built-in rules
    (rules.toml: the sample archive is made for them), or None."""
    rules = _builtin_rules()
    code = name[:rules.code_length]
    followed = name[rules.code_length:rules.code_length + 1] in (".", "_")
    return code if followed and rules.is_code(code) else None


@functools.cache
def _builtin_rules() -> Rules:
    return load_rules()


# -- the archive plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetPlan:
    code: str
    folder: str
    master: str  # MEDIA_KINDS key of the master
    tool: MetadataTool  # writes <code>.json; the other tool describes the streaming copy
    per_file_md5: bool = False  # <file>.md5 with a bare hash instead of <code>.md5
    on_tape: bool = False  # master described and listed in the checksums, but not in the tree
    defect: Reason | None = None
    streaming: str | None = None  # MEDIA_KINDS key behind the streaming name; None: the right one
    # MEDIA_KINDS key of a streaming copy named by its own extension (e.g. "webm": <code>.webm),
    # for the formats of the extended rules profile; None: <code>.mp4 or <code>.mp3
    stream_as: str | None = None
    awaiting_transcode: bool = False  # master and sidecars only: no streaming copy yet

    @property
    def is_video(self) -> bool:
        return self.code.startswith("V")


@dataclass(frozen=True)
class StrayPlan:
    """A single file: a media kind copied in, or literal bytes."""

    key: str
    expect: Expect | Reason
    kind: str | None = None
    content: bytes = b""


def plan_assets(video: int, audio: int, *, bad: bool, tape_master: bool,
                awaiting: int = 0) -> list[AssetPlan]:
    tools = (MetadataTool.MEDIAINFO, MetadataTool.FFPROBE)
    plans = [AssetPlan(f"VO-SMP-{i + 1:05d}", VIDEO_FOLDERS[i % 3], VIDEO_MASTERS[i % 4],
                       tools[i % 2], per_file_md5=i % 2 == 1) for i in range(video)]
    plans += [AssetPlan(f"AO-SMP-{i + 1:05d}", AUDIO_FOLDERS[i % 3], AUDIO_MASTERS[i % 2],
                        tools[(video + i) % 2], per_file_md5=i % 2 == 1) for i in range(audio)]
    if tape_master:
        plans.append(AssetPlan("VO-TAP-00001", "FILE", "prores", MetadataTool.MEDIAINFO,
                               on_tape=True))
    plans += [AssetPlan(f"{'VA'[i % 2]}O-NEW-{i + 1:05d}", ("FILE", "CD")[i % 2],
                        ("mov", "wav")[i % 2], tools[i % 2], awaiting_transcode=True)
              for i in range(awaiting)]
    if bad:
        plans += BAD_ASSETS
    return plans


def plan_strays(*, bad: bool) -> list[StrayPlan]:
    return list(BAD_STRAYS) if bad else []


_MI, _FF = MetadataTool.MEDIAINFO, MetadataTool.FFPROBE
BAD_ASSETS = (
    AssetPlan("VO-BAD-00002", "BRD", "mov", _MI, defect=Reason.CHECKSUM_MISMATCH),
    AssetPlan("VO-BAD-00003", "DVD", "mkv", _FF, defect=Reason.MISSING_METADATA_SIDECAR),
    AssetPlan("VO-BAD-00004", "FILE", "mxf", _MI, defect=Reason.INVALID_METADATA_SIDECAR),
    AssetPlan("VO-BAD-00005", "BRD", "mov", _FF, defect=Reason.MISSING_CHECKSUM),
    AssetPlan("AO-BAD-00006", "CD", "wav", _MI, defect=Reason.INVALID_CHECKSUM_SIDECAR),
    AssetPlan("VO-BAD-00007", "DVD", "mkv", _FF, defect=Reason.CONTAINER_MISMATCH,
              streaming="mp3"),
    AssetPlan("VO-BAD-00008", "FILE", "mov", _MI, defect=Reason.CONTAINER_MISMATCH,
              streaming="mkv_h264"),
    AssetPlan("VO-BAD-00010", "BRD", "mov", _FF, defect=Reason.INVALID_QC_REPORT),
    AssetPlan("AO-BAD-00011", "DAT", "flac", _MI, defect=Reason.MISSING_QC_REPORT),
)
BAD_STRAYS = (
    StrayPlan("FILE/VO-BAD-00001.txt", Reason.UNSUPPORTED_EXTENSION,
              content=b"Notes on VO-BAD-00001: tape cleaned before capture.\n"),
    StrayPlan("DAT/AO-BAD-00009.md5", Reason.ORPHAN_SIDECAR,
              content=md5_listing([("AO-BAD-00009.wav", "0f343b0931126a20f133d67c2b018a3b")])),
    StrayPlan("BRD/VO-UMT-1438.mp4", Reason.INVALID_INVENTORY_CODE, kind="mp4"),
    StrayPlan("CD/VO-UMT-20001.mov", Reason.PREFIX_TYPE_MISMATCH, kind="mov"),
    StrayPlan("XYZ/VO-UMT-20002.mp4", Reason.UNKNOWN_FOLDER, kind="mp4"),
    StrayPlan("VO-UMT-20003.mp4", Reason.UNKNOWN_FOLDER, kind="mp4"),
    StrayPlan("TEST-FOLDER-DEV/BRD/VO-UMT-20004.mp4", Expect.EXCLUDED, kind="mp4"),
    StrayPlan("UMT/VO-UMT-20005.mp4", Expect.EXCLUDED, kind="mp4"),
    StrayPlan("DOCUMENTAZIONE_FOTOGRAFICA/VO-UMT-20006_foto01.jpg", Expect.EXCLUDED, kind="jpg"),
)


# -- writing the tree ----------------------------------------------------------------------------


class _Writer:
    """Writes planned assets and strays under ``root``, encoding each media kind only once."""

    def __init__(self, root: Path, scratch: Path, duration: float) -> None:
        self.root, self.scratch, self.duration = root, scratch, duration
        self.files: list[SampleFile] = []
        self._encoded: dict[str, tuple[Path, str]] = {}  # kind -> (file, md5)
        self._metadata: dict[tuple[str, str, str], tuple[str, str]] = {}  # -> (name, json)

    def encoded(self, kind: str) -> tuple[Path, str]:
        if kind not in self._encoded:
            path = self.scratch / f"{kind}.{MEDIA_KINDS[kind].extension}"
            generate_media(path, kind, duration=self.duration)
            self._encoded[kind] = (path, md5_file(path))
        return self._encoded[kind]

    def place(self, kind: str, path: Path) -> str:
        """Copy the encoded ``kind`` to ``path``; return its md5."""
        source, digest = self.encoded(kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        settle(path)
        return digest

    def describe(self, kind: str, media: Path, out: Path, tool: MetadataTool) -> None:
        """Real ``tool`` output for ``media``: run once per kind, name and suffix, then reused."""
        cache_key = (kind, media.suffix, tool)
        if cache_key not in self._metadata:
            self._metadata[cache_key] = (media.name, metadata_json(media, tool))
        name, text = self._metadata[cache_key]
        write_fixed(out, text.replace(json.dumps(name), json.dumps(media.name)).encode())

    def stray(self, plan: StrayPlan) -> None:
        path = self.root / plan.key
        if plan.kind:
            self.place(plan.kind, path)
        else:
            write_fixed(path, plan.content)
        code = None if plan.expect == Expect.EXCLUDED else inventory_code_of(path.name)
        self.files.append(SampleFile(plan.key, code, plan.expect))

    def asset(self, plan: AssetPlan) -> None:
        folder = self.root / plan.folder
        stream_kind = plan.stream_as or plan.streaming or ("mp4" if plan.is_video else "mp3")
        stream_name = f"{plan.code}.{_stream_extension(plan)}"
        master_name = f"{plan.code}.{MEDIA_KINDS[plan.master].extension}"
        # a master on tape is made in the scratch folder, described, hashed, and deleted with it
        master = (self.scratch / "tape" if plan.on_tape else folder) / master_name
        written: list[tuple[Path, Role]] = [] if plan.on_tape else [(master, Role.MASTER)]
        hashes = [(master_name, self.place(plan.master, master))]
        if plan.awaiting_transcode:
            master_json = folder / f"{plan.code}.json"
            self.describe(plan.master, master, master_json, plan.tool)
            written.append((master_json, Role.METADATA))
        else:
            hashes.append((stream_name, self.place(stream_kind, folder / stream_name)))
            written.append((folder / stream_name, Role.STREAMING))
            written += self._metadata_sidecars(plan, master, folder / stream_name, stream_kind)
        written += self._checksums(plan, folder, hashes)
        if plan.defect != Reason.MISSING_QC_REPORT:
            qc = folder / f"{plan.code}_qc.pdf"
            write_fixed(qc, self._qc_report(plan, master_name, stream_name))
            written.append((qc, Role.QC_REPORT))
        self._record(plan, written)

    def _metadata_sidecars(self, plan: AssetPlan, master: Path, stream: Path,
                           stream_kind: str) -> list[tuple[Path, Role]]:
        other = _FF if plan.tool == _MI else _MI
        stream_json = stream.with_name(f"{stream.name}.json")
        self.describe(stream_kind, stream, stream_json, other)
        if plan.defect == Reason.MISSING_METADATA_SIDECAR:
            return [(stream_json, Role.METADATA)]
        master_json = stream.with_name(f"{plan.code}.json")
        self.describe(plan.master, master, master_json, plan.tool)
        if plan.defect == Reason.INVALID_METADATA_SIDECAR:  # an upload cut short
            text = master_json.read_bytes()
            write_fixed(master_json, text[: len(text) // 2])
        return [(master_json, Role.METADATA), (stream_json, Role.METADATA)]

    @staticmethod
    def _checksums(plan: AssetPlan, folder: Path,
                   hashes: list[tuple[str, str]]) -> list[tuple[Path, Role]]:
        if plan.defect == Reason.MISSING_CHECKSUM:
            return []
        if plan.defect == Reason.CHECKSUM_MISMATCH:
            hashes = [hashes[0], (hashes[1][0], EMPTY_MD5)]
        if plan.per_file_md5:
            for name, digest in hashes:
                write_fixed(folder / f"{name}.md5", f"{digest}\n".encode())
            return [(folder / f"{name}.md5", Role.CHECKSUM) for name, _ in hashes]
        listing = md5_listing(hashes)
        if plan.defect == Reason.INVALID_CHECKSUM_SIDECAR:
            listing = b"MD5 pending - ask the lab\n"
        write_fixed(folder / f"{plan.code}.md5", listing)
        return [(folder / f"{plan.code}.md5", Role.CHECKSUM)]

    @staticmethod
    def _qc_report(plan: AssetPlan, master_name: str, stream_name: str) -> bytes:
        if plan.defect == Reason.INVALID_QC_REPORT:  # an error page saved as the report
            return b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
        return qc_report_pdf(["Quality control report", f"Inventory code: {plan.code}",
                              f"Master: {master_name}", f"Streaming copy: {stream_name}",
                              "Result: PASS"])

    def _record(self, plan: AssetPlan, written: list[tuple[Path, Role]]) -> None:
        defect_key = self._key(_defect_path(plan, written)) if plan.defect else None
        rejected = plan.defect is not None and plan.defect not in ASSET_SURVIVES
        fallback = Expect.REJECTED_WITH_ASSET if rejected else Expect.IMPORT
        for path, role in written:
            key = self._key(path)
            expect = plan.defect if plan.defect and key == defect_key else fallback
            self.files.append(SampleFile(key, plan.code, expect, role))

    def _key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _stream_extension(plan: AssetPlan) -> str:
    if plan.stream_as is not None:
        return MEDIA_KINDS[plan.stream_as].extension
    return "mp4" if plan.is_video else "mp3"


def _defect_path(plan: AssetPlan, written: list[tuple[Path, Role]]) -> Path:
    """The file the importer should name for the asset's defect."""
    role = {Reason.CHECKSUM_MISMATCH: Role.STREAMING, Reason.CONTAINER_MISMATCH: Role.STREAMING,
            Reason.INVALID_METADATA_SIDECAR: Role.METADATA,
            Reason.INVALID_CHECKSUM_SIDECAR: Role.CHECKSUM,
            Reason.INVALID_QC_REPORT: Role.QC_REPORT}.get(plan.defect) if plan.defect else None
    primary = Role.STREAMING if plan.on_tape else Role.MASTER  # for what is missing
    return next(path for path, r in written if r == (role or primary))


def build_sample_archive(root: Path, *, assets_video: int = 3, assets_audio: int = 2,
                         bad: bool = True, tape_master: bool = True,
                         duration: float = 2.0, awaiting: int = 0) -> SampleArchive:
    """Write the sample archive under ``root`` (missing or empty) and return its manifest."""
    if assets_video < 0 or assets_audio < 0 or duration <= 0:
        raise UsageError("asset counts must be >= 0 and the duration > 0")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} is not empty", hint="choose a new folder or empty it first")
    root.mkdir(parents=True, exist_ok=True)
    plans = plan_assets(assets_video, assets_audio, bad=bad, tape_master=tape_master,
                        awaiting=awaiting)
    return _write_archive(root, plans, plan_strays(bad=bad), duration)


# One complete delivery (master, streaming copy, metadata of both, MD5s, QC report) per
# streaming format the extended rules profile adds (profiles/extended.toml: MPR_RULES=extended)
EXTENDED_ASSETS = (
    AssetPlan("VO-FMT-00001", "FILE", "mkv", _MI, stream_as="webm"),
    AssetPlan("VO-FMT-00002", "BRD", "mov", _FF, stream_as="webm_vp8", per_file_md5=True),
    AssetPlan("VO-FMT-00003", "DVD", "mov", _MI, stream_as="m4v"),
    AssetPlan("VO-FMT-00004", "FILE", "avi", _FF, stream_as="flv"),
    AssetPlan("VO-FMT-00005", "BRD", "mkv", _MI, stream_as="wmv"),
    AssetPlan("AO-FMT-00001", "CD", "wav", _MI, stream_as="ogg_vorbis"),
    AssetPlan("AO-FMT-00002", "DAT", "flac", _FF, stream_as="m4a", per_file_md5=True),
    AssetPlan("AO-FMT-00003", "FILE", "wav", _FF, stream_as="aac"),
)


def build_extended_archive(root: Path, *, duration: float = 1.0) -> SampleArchive:
    """Write one good asset per streaming format of the extended profile (EXTENDED_ASSETS)
    under ``root`` (missing or empty): what `mpr import` with MPR_RULES=extended accepts and
    the shipped rules refuse (unsupported_extension)."""
    if duration <= 0:
        raise UsageError("the duration must be > 0")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} is not empty", hint="choose a new folder or empty it first")
    root.mkdir(parents=True, exist_ok=True)
    return _write_archive(root, list(EXTENDED_ASSETS), [], duration)


def _write_archive(root: Path, plans: list[AssetPlan], strays: Sequence[StrayPlan],
                   duration: float) -> SampleArchive:
    with tempfile.TemporaryDirectory(prefix="mpr-sample-") as scratch:
        writer = _Writer(root, Path(scratch), duration)
        for plan in plans:
            writer.asset(plan)
        for stray in strays:
            writer.stray(stray)
    rejected = {p.code: str(p.defect) for p in plans
                if p.defect is not None and p.defect not in ASSET_SURVIVES}
    return SampleArchive(root=root, files=sorted(writer.files, key=lambda f: f.key),
                         assets_ok=sorted(p.code for p in plans if p.code not in rejected),
                         assets_rejected=rejected)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpr_cli.dev.sample",
                                     description="Write a sample archive (a local bucket mirror).")
    parser.add_argument("outdir", type=Path, help="a missing or empty folder")
    parser.add_argument("--video", type=int, default=3, help="good video assets (default 3)")
    parser.add_argument("--audio", type=int, default=2, help="good audio assets (default 2)")
    parser.add_argument("--no-bad", action="store_true", help="leave out the bad cases")
    parser.add_argument("--no-tape", action="store_true", help="leave out the master on tape")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per clip")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        archive = build_sample_archive(args.outdir, assets_video=args.video,
                                       assets_audio=args.audio, bad=not args.no_bad,
                                       tape_master=not args.no_tape, duration=args.duration)
    except MprError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"{archive.summary()} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
