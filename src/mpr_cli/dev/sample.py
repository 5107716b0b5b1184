"""A small but realistic sample archive on local disk, for the demo, the tests and the benchmark.

The tree mirrors the S3 input bucket (relative paths are the S3 keys). Each asset is a master,
a streaming copy, technical-metadata sidecars (real mediainfo or ffprobe output), checksums, and
a QC report; ``build_sample_archive`` also plants one file or asset per rule the importer
enforces, and returns a manifest saying what each key should produce.

The output is deterministic: no randomness, bit-exact ffmpeg output, fixed modification times.
Each kind of media is encoded once and copied where the content may repeat, so even a large
archive takes a few seconds. Run ``python -m mpr_cli.dev.sample OUTDIR`` for one from the shell.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pymediainfo import MediaInfo

from mpr_cli.atomic import replacing
from mpr_cli.errors import FfmpegError, MprError, UsageError
from mpr_cli.ffmpeg import INSTALL_HINT
from mpr_cli.problems import Reason
from mpr_cli.rules import Role, Rules, load_rules

log = logging.getLogger(__name__)

FIXED_MTIME = 1_704_067_200  # 2024-01-01 00:00 UTC, so mediainfo's file dates never vary
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"  # the wrong hash: that of a zero-byte upload
BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-flags:a", "+bitexact", "-threads", "2")
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


class MetadataTool(StrEnum):
    MEDIAINFO = "mediainfo"
    FFPROBE = "ffprobe"


@dataclass(frozen=True)
class MediaKind:
    """How ffmpeg makes one kind of file, and what ffprobe should then find in it."""

    muxer: str
    extension: str
    format_name: str  # ffprobe's format.format_name
    codecs: tuple[str, ...]  # ffprobe's codec_name of each audio/video stream, in order
    video_args: tuple[str, ...] = ()
    audio_args: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()


_X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
_ISO = "mov,mp4,m4a,3gp,3g2,mj2"
MEDIA_KINDS: dict[str, MediaKind] = {
    "mov": MediaKind("mov", "mov", _ISO, ("h264", "pcm_s16le"), (*_X264, "-crf", "18"),
                     ("-c:a", "pcm_s16le")),
    "prores": MediaKind("mov", "mov", _ISO, ("prores", "pcm_s24le"),
                        ("-c:v", "prores_ks", "-profile:v", "0", "-pix_fmt", "yuv422p10le"),
                        ("-c:a", "pcm_s24le")),
    "mkv": MediaKind("matroska", "mkv", "matroska,webm", ("ffv1", "flac"),
                     ("-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1"),
                     ("-c:a", "flac")),
    "mxf": MediaKind("mxf", "mxf", "mxf", ("mpeg2video", "pcm_s16le"),
                     ("-c:v", "mpeg2video", "-b:v", "4M"), ("-c:a", "pcm_s16le", "-ar", "48000")),
    "avi": MediaKind("avi", "avi", "avi", ("mjpeg", "pcm_s16le"),
                     ("-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"), ("-c:a", "pcm_s16le")),
    "wav": MediaKind("wav", "wav", "wav", ("pcm_s24le",), audio_args=("-c:a", "pcm_s24le")),
    "flac": MediaKind("flac", "flac", "flac", ("flac",), audio_args=("-c:a", "flac")),
    "mp4": MediaKind("mp4", "mp4", _ISO, ("h264", "aac"), _X264, ("-c:a", "aac", "-b:a", "96k"),
                     ("-movflags", "+faststart")),
    "mp3": MediaKind("mp3", "mp3", "mp3", ("mp3",),
                     audio_args=("-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100")),
    "mkv_h264": MediaKind("matroska", "mkv", "matroska,webm", ("h264", "aac"), _X264,
                          ("-c:a", "aac", "-b:a", "96k")),
    "jpg": MediaKind("mjpeg", "jpg", "image2", ("mjpeg",),
                     ("-c:v", "mjpeg", "-pix_fmt", "yuvj420p"), extra_args=("-frames:v", "1")),
}


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


# -- media, metadata, checksums, QC reports ------------------------------------------------------


def media_argv(out: Path, kind: str, *, duration: float = 2.0, size: str = "320x240") -> list[str]:
    """The ffmpeg argv writing ``kind`` (a MEDIA_KINDS key) to ``out``, whatever its suffix."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}; one of {', '.join(MEDIA_KINDS)}")
    spec = MEDIA_KINDS[kind]
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    if spec.video_args:
        argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration:g}"]
    if spec.audio_args:
        tone = f"sine=frequency=1000:sample_rate=48000:duration={duration:g}"
        argv += ["-f", "lavfi", "-i", tone]
    stereo = ("-ac", "2") if spec.audio_args else ()
    return [*argv, *BITEXACT, *spec.video_args, *spec.audio_args, *stereo, *spec.extra_args,
            "-f", spec.muxer, str(out)]


def generate_media(path: Path, kind: str, *, duration: float = 2.0, size: str = "320x240") -> None:
    """Encode a test clip of ``kind`` at ``path``, through a temp file moved into place."""
    with replacing(path) as (part, _):
        _run(media_argv(part, kind, duration=duration, size=size), what=f"encoding {path.name}")
    _settle(path)


def metadata_json(media: Path, tool: str) -> str:
    """The JSON ``tool`` prints for ``media``, as if run in its folder (names, not paths)."""
    if tool == MetadataTool.FFPROBE:
        argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                media.name]
        return _run(argv, what=f"probing {media.name}", cwd=media.parent)
    if tool == MetadataTool.MEDIAINFO:
        try:
            text = str(MediaInfo.parse(media, output="JSON", full=False))
        except (OSError, RuntimeError) as exc:
            raise MprError(f"mediainfo could not read {media.name}: {exc}") from exc
        ref = json.dumps(media.name)
        return re.sub(r'"@ref":"[^"]*"', lambda _: f'"@ref":{ref}', text, count=1)
    raise ValueError(f"unknown metadata tool {tool!r}; one of mediainfo, ffprobe")


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def md5_listing(entries: Sequence[tuple[str, str]]) -> bytes:
    """md5sum's format: one ``<hex>  <name>`` line per (name, hash)."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries).encode()


def qc_report_pdf(lines: Sequence[str]) -> bytes:
    """A one-page PDF 1.4 showing ``lines`` (ASCII), with a correct cross-reference table."""
    text = ["BT", "/F1 12 Tf", "16 TL", "72 770 Td"]
    text += [f"{'T* ' if i else ''}({_pdf_string(line)}) Tj" for i, line in enumerate(lines)]
    stream = "\n".join([*text, "ET"]).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(pdf)


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


def _pdf_string(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _run(argv: list[str], *, what: str, cwd: Path | None = None) -> str:
    log.debug("%s", shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise FfmpegError(f"{what}: {argv[0]} not found", hint=INSTALL_HINT) from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-20:]
        last = tail[-1] if tail else f"exit status {done.returncode}"
        raise FfmpegError(f"{what} failed: {last}", stderr_tail="\n".join(tail))
    return done.stdout


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _settle(path)


def _settle(path: Path) -> None:
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))


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
        _settle(path)
        return digest

    def describe(self, kind: str, media: Path, out: Path, tool: MetadataTool) -> None:
        """Real ``tool`` output for ``media``: run once per kind, name and suffix, then reused."""
        cache_key = (kind, media.suffix, tool)
        if cache_key not in self._metadata:
            self._metadata[cache_key] = (media.name, metadata_json(media, tool))
        name, text = self._metadata[cache_key]
        _write(out, text.replace(json.dumps(name), json.dumps(media.name)).encode())

    def stray(self, plan: StrayPlan) -> None:
        path = self.root / plan.key
        if plan.kind:
            self.place(plan.kind, path)
        else:
            _write(path, plan.content)
        code = None if plan.expect == Expect.EXCLUDED else inventory_code_of(path.name)
        self.files.append(SampleFile(plan.key, code, plan.expect))

    def asset(self, plan: AssetPlan) -> None:
        folder = self.root / plan.folder
        stream_name = f"{plan.code}.{'mp4' if plan.is_video else 'mp3'}"
        stream_kind = plan.streaming or ("mp4" if plan.is_video else "mp3")
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
            _write(qc, self._qc_report(plan, master_name, stream_name))
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
            _write(master_json, text[: len(text) // 2])
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
                _write(folder / f"{name}.md5", f"{digest}\n".encode())
            return [(folder / f"{name}.md5", Role.CHECKSUM) for name, _ in hashes]
        listing = md5_listing(hashes)
        if plan.defect == Reason.INVALID_CHECKSUM_SIDECAR:
            listing = b"MD5 pending - ask the lab\n"
        _write(folder / f"{plan.code}.md5", listing)
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
    with tempfile.TemporaryDirectory(prefix="mpr-sample-") as scratch:
        writer = _Writer(root, Path(scratch), duration)
        for plan in plans:
            writer.asset(plan)
        for stray in plan_strays(bad=bad):
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
