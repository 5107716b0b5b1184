"""One transcode: master in the input bucket -> verified streaming copy in the output bucket,
with its `.md5` and mediainfo `.json` sidecars, recorded in the catalogue.

Three stages, which `Transcoder.run` chains and the job pool (transcode/pool.py) overlaps across
jobs: `prepare` streams the master to a private temp folder (MD5 on the fly) and probes it;
`encode` runs ffmpeg into a temp file there (and, with full verification, decodes the whole
output); `finish` describes the output with mediainfo (the .json sidecar), checks it against
the preset, takes its MD5 and uploads it with both sidecars. `Prepared.discard` removes the temp
folder; `run` does so on success, failure and cancel, and so does the pool at every stage. An
upload that is not followed by its catalogue record is deleted again, so a cancel never leaves
a partial object behind.

Pictures (mpr_cli.pictures, unless MPR_PICTURES=off): `encode` makes the asset's poster and
contact sheet (or waveform) from the master ffmpeg just read, after the output, in the same
ffmpeg slot; `finish` uploads them after the output (TranscodeResult.pictures, recorded with
it). A picture that cannot be made is a warning (TranscodeResult.picture_warnings, logged),
never the job's failure.
"""


from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from mpr_cli.config import PicturesMode, Settings
from mpr_cli.errors import FfmpegError, MissingObject, StorageError, UsageError
from mpr_cli.ffmpeg.command import build_decode_check_argv, build_transcode_argv, plan_audio
from mpr_cli.ffmpeg.presets import Preset
from mpr_cli.ffmpeg.probe import mediainfo_json, probe
from mpr_cli.ffmpeg.runner import ProgressUpdate, TranscodeCancelled, run_ffmpeg
from mpr_cli.pictures.make import Made, make_pictures, publish
from mpr_cli.pictures.model import Picture
from mpr_cli.rules import MediaType, Role, Rules
from mpr_cli.storage import Download, ObjectInfo, Storage
from mpr_cli.transcode.workdirs import _new_workdir
from mpr_cli.validation.containers import Container, MediaInfo
from mpr_cli.validation.inventory import Candidate, classify_key
from mpr_cli.validation.mime import mime_for_media
from mpr_cli.validation.sidecars import InvalidMetadata, media_info_from_json

OnProgress = Callable[[ProgressUpdate], None]

@dataclass(frozen=True)
class Source:
    """A master in the input bucket, with what its name says."""

    key: str
    inventory_code: str
    media_type: MediaType
    folder: str


@dataclass(frozen=True)
class TranscodeResult:
    """An output checked and uploaded with its sidecars, not yet recorded in the catalogue
    (`outputs.record_output` does that, in the caller's transaction)."""

    output_key: str
    size: int
    etag: str
    md5: str
    mime: str | None
    tech: dict[str, Any]  # the mediainfo document, also uploaded as the .json sidecar
    sidecars: tuple[tuple[ObjectInfo, Role], ...]  # the .md5 (CHECKSUM) and .json (METADATA)
    duration_s: float | None
    elapsed_s: float
    pictures: tuple[Picture, ...] = ()  # uploaded to the output bucket, recorded with the output
    picture_warnings: tuple[str, ...] = ()

    @property
    def keys(self) -> list[str]:
        """Every key this output wrote: what to delete when it is not recorded."""
        return ([self.output_key] + [obj.key for obj, _ in self.sidecars]
                + [picture.key for picture in self.pictures])


def parse_source(key: str, rules: Rules) -> Source:
    """The key must name a master (e.g. BRD/VO-UMT-14387.mov) under the archive's rules."""
    found = classify_key(key, 0, "", rules)
    if not isinstance(found, Candidate):
        why = found.message if found is not None else "it is under an excluded prefix"
        raise UsageError(f"{key} cannot be transcoded: {why}")
    if found.role is not Role.MASTER:
        raise UsageError(f"{key} is not a master ({found.role}): give the key of a "
                         ".mov/.mkv/.mxf/.avi/.wav/.flac file")
    folder = str(PurePosixPath(key).parent)
    return Source(key, found.inventory_code, found.media_type, folder)


def default_output_key(source: Source, preset: Preset) -> str:
    """Mirror the input: <folder>/<code>.<ext>."""
    return f"{source.folder}/{source.inventory_code}{preset.extension}"


@dataclass(frozen=True)
class Prepared:
    """A transcode between its stages: the private temp folder, where ffmpeg reads the master
    (a local copy or a URL), the master's download facts and probe."""

    source: Source
    preset: Preset
    output_key: str
    work: Path
    location: str
    download: Download
    master: MediaInfo
    started: float
    source_bucket: str
    output_bucket: str
    made: list[Made] = field(default_factory=list)  # the pictures `encode` made, if any

    @property
    def output(self) -> Path:
        return self.work / f"out{self.preset.extension}"

    def discard(self) -> None:
        """Remove the temp folder (the master's copy and the output); safe to call twice."""
        shutil.rmtree(self.work, ignore_errors=True)


def _described(document: dict[str, Any], name: str) -> MediaInfo:
    """The output as its mediainfo document (the .json sidecar) describes it."""
    try:
        return media_info_from_json(document)
    except InvalidMetadata as exc:
        raise FfmpegError(f"mediainfo cannot describe the output {name}: {exc}") from None


def verify_output(info: MediaInfo, source: MediaInfo, preset: Preset) -> None:
    """The output is what the preset makes of this master, or FfmpegError (one line).

    Container and codecs as the preset says (`Preset.video_made` / `audio_made`: H.264 for
    libx264, HEVC for libx265), one audio stream when the master has audio, with the channels
    `plan_audio` gives the master's tracks (2 mono tracks -> 2 channels); duration within 1 %
    or 0.5 s of the source. The check follows the preset: what the argv builder was told to
    make is what is checked, so a preset never fails its own check.
    """
    plan = plan_audio(preset, source)
    audio = (preset.audio_made,) if plan.tracks else ()
    if preset.media is MediaType.VIDEO:
        ok = (info.container is Container.MPEG4 and info.video_codecs == (preset.video_made,)
              and info.audio_codecs == audio)
    else:
        ok = info.container is Container.MPEG_AUDIO and info.audio_codecs == audio
    if not ok:
        raise FfmpegError(f"output is {info.describe()}, not what preset {preset.name} makes")
    channels = info.audio_channels[:1]
    if plan.channels is not None and channels != (plan.channels,):
        got = "an unknown number of" if channels == (None,) else str(channels[0])
        raise FfmpegError(f"output has {got} audio channel(s); preset {preset.name} makes "
                          f"{plan.channels} from the master's {plan.describe()}",
                          hint="check the master's audio tracks with ffprobe, or set "
                               "audio_tracks = \"first\" in the preset")
    if source.duration_s and info.duration_s is not None:
        allowed = max(0.01 * source.duration_s, 0.5)
        if abs(info.duration_s - source.duration_s) > allowed:
            raise FfmpegError(f"output lasts {info.duration_s:.2f} s but the master "
                              f"{source.duration_s:.2f} s (allowed difference {allowed:.2f} s)")


@contextlib.contextmanager
def _named_by_key(work: Path, source: Source, bucket: str) -> Iterator[None]:
    """Errors name s3://bucket/key, never the temp folder the user never sees."""
    try:
        yield
    except TranscodeCancelled:
        raise
    except FfmpegError as exc:
        where = f"s3://{bucket}/{source.key}"
        temp = str(work / "in" / source.key)
        message = exc.message.replace(temp, where).replace(str(work), "<temp>")
        if where not in message:
            message = f"{where}: {message}"
        raise FfmpegError(message, stderr_tail=exc.stderr_tail.replace(temp, where),
                          hint=exc.hint) from None


class SourceMode(StrEnum):
    """How ffmpeg reads the master: a streamed local copy (default), or a presigned URL."""

    DOWNLOAD = "download"
    URL = "url"


class Transcoder:
    """Runs transcodes for one process; safe to share between worker threads.

    The master is downloaded to a temp file by default. bench/bench_transcode.py measured
    both: on a 90 MB compressed master they are equal within noise; on a 956 MiB uncompressed
    master the download costs 5-7 s against 2-3 s reading a presigned URL. The download stays
    the default because it gives the master's MD5 (needed to register a master that was never
    imported; a presigned URL only has it from a single-part ETag) and because ffmpeg's seeks
    in a .mov whose index is at the end are local instead of new HTTP requests.
    """

    def __init__(self, settings: Settings, storage: Storage | None = None, *,
                 threads: int = 0, full_verify: bool = False,
                 source_mode: SourceMode = SourceMode.DOWNLOAD,
                 pictures: bool | None = None) -> None:
        self.settings = settings
        self.pictures = settings.pictures is not PicturesMode.OFF if pictures is None else pictures
        self.storage = storage or Storage(settings)
        self.threads = threads
        self.full_verify = full_verify
        self.source_mode = source_mode

    def _source(self, source: Source, work: Path, bucket: str) -> tuple[str, Download]:
        """The master for ffmpeg; MissingObject when S3 answers that it is not there (a failure
        of that file), StorageError when S3 itself failed."""
        if self.source_mode is SourceMode.URL:
            head = self.storage.head(bucket, source.key)
            if head is None:
                raise MissingObject(f"s3://{bucket}/{source.key} does not exist", key=source.key)
            url = self.storage.presigned_get_url(bucket, source.key, expires=6 * 3600)
            return url, Download(Path(source.key), head.size, head.single_part_md5)
        try:
            download = self.storage.download_to(bucket, source.key, work / "in", md5=True)
        except StorageError as exc:
            if self.storage.head(bucket, source.key) is None:
                raise MissingObject(exc.message, key=source.key, hint=exc.hint) from None
            raise
        return str(download.path), download

    def run(self, source: Source, preset: Preset, output_key: str, *,
            on_progress: OnProgress | None = None,
            cancel: threading.Event | None = None) -> TranscodeResult:
        """Transcode and upload; returns what to record (not yet recorded)."""
        prepared = self.prepare(source, preset, output_key)
        try:
            self.encode(prepared, on_progress=on_progress, cancel=cancel)
            return self.finish(prepared, cancel=cancel)
        finally:
            prepared.discard()

    def prepare(self, source: Source, preset: Preset, output_key: str, *,
                source_bucket: str | None = None, output_bucket: str | None = None) -> Prepared:
        """Stage 1: the master downloaded (or its URL) and probed, in a new temp folder that the
        caller must `discard` (removed here when this stage fails). A job passes the buckets
        recorded on it; without them the settings' buckets are used."""
        started = time.monotonic()
        bucket_in = source_bucket or self.settings.s3_bucket_in
        bucket_out = output_bucket or self.settings.s3_bucket_out
        work = _new_workdir(self.settings)
        try:
            with _named_by_key(work, source, bucket_in):
                location, download = self._source(source, work, bucket_in)
                master = probe(location)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return Prepared(source, preset, output_key, work, location, download, master, started,
                        bucket_in, bucket_out)

    def encode(self, prepared: Prepared, *, on_progress: OnProgress | None = None,
               cancel: threading.Event | None = None) -> None:
        """Stage 2: ffmpeg writes the output into the temp folder; with full verification the
        whole output is decoded too (both are the CPU-heavy part of a job)."""
        with _named_by_key(prepared.work, prepared.source, prepared.source_bucket):
            argv = build_transcode_argv(prepared.location, prepared.output, prepared.preset,
                                        prepared.master, threads=self.threads)
            stall = self.settings.ffmpeg_stall_timeout
            run_ffmpeg(argv, duration_s=prepared.master.duration_s, on_progress=on_progress,
                       cancel=cancel, stall_timeout=stall)
            if self.full_verify:
                run_ffmpeg(build_decode_check_argv(str(prepared.output), progress=True),
                           duration_s=prepared.master.duration_s, cancel=cancel,
                           stall_timeout=stall)
        if self.pictures:
            prepared.made.append(make_pictures(
                prepared.location, prepared.master, prepared.source.media_type,
                prepared.work / "pictures", cancel=cancel,
                name=f"s3://{prepared.source_bucket}/{prepared.source.key}"))

    def finish(self, prepared: Prepared, *,
               cancel: threading.Event | None = None) -> TranscodeResult:
        """Stage 3: describe and check the output, upload it with its sidecars; returns what to
        record (not yet recorded). The temp folder stays for `discard`."""
        name = PurePosixPath(prepared.output_key).name
        with _named_by_key(prepared.work, prepared.source, prepared.source_bucket):
            meta = mediainfo_json(prepared.output, ref=name)
            made = _described(meta, name)
            verify_output(made, prepared.master, prepared.preset)
            md5_hex, obj, sidecars = self._upload(prepared.output, prepared.output_bucket,
                                                  prepared.output_key, made, meta, cancel)
        pictures, warnings = self._publish_pictures(prepared)
        return TranscodeResult(prepared.output_key, obj.size, obj.etag, md5_hex,
                               mime_for_media(made), meta, sidecars, made.duration_s,
                               time.monotonic() - prepared.started, pictures, warnings)

    def _publish_pictures(self, prepared: Prepared) -> tuple[tuple[Picture, ...],
                                                              tuple[str, ...]]:
        """The pictures `encode` made, uploaded beside the output (failures are warnings)."""
        pictures: list[Picture] = []
        warnings: list[str] = []
        for made in prepared.made:
            up, failed = publish(self.storage, prepared.output_bucket, prepared.source.folder,
                                 prepared.source.inventory_code, made)
            pictures += up
            warnings += [*made.warnings, *failed]
        return tuple(pictures), tuple(warnings)

    def _upload(self, output: Path, bucket: str, key: str, info: MediaInfo,
                meta: dict[str, Any], cancel: threading.Event | None,
                ) -> tuple[str, ObjectInfo, tuple[tuple[ObjectInfo, Role], ...]]:
        """The output's MD5, then the output and its two sidecars uploaded (the ones already
        uploaded are deleted again when one fails or `cancel` is set first)."""
        with output.open("rb") as handle:
            md5 = hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False))
        md5_hex, name = md5.hexdigest(), PurePosixPath(key).name
        uploaded: list[str] = []
        try:
            if cancel is not None and cancel.is_set():
                raise TranscodeCancelled("transcode cancelled before its upload")
            obj = self.storage.upload_file(output, bucket, key,
                                           content_type=mime_for_media(info))
            uploaded.append(key)
            md5_obj = self.storage.upload_bytes(f"{md5_hex}  {name}\n".encode(), bucket,
                                                key + ".md5", content_type="text/plain")
            uploaded.append(key + ".md5")
            json_obj = self.storage.upload_bytes(json.dumps(meta, indent=2).encode(), bucket,
                                                 key + ".json", content_type="application/json")
            uploaded.append(key + ".json")
        except BaseException:
            self.remove_outputs(uploaded, bucket)
            raise
        return md5_hex, obj, ((md5_obj, Role.CHECKSUM), (json_obj, Role.METADATA))

    def remove_outputs(self, keys: list[str], bucket: str | None = None) -> None:
        for key in keys:
            with contextlib.suppress(StorageError):
                self.storage.delete(bucket or self.settings.s3_bucket_out, key)


