"""Make an asset's pictures with ffmpeg, then upload them to the output bucket.

`make_pictures(source, info, media, work)` runs the argvs of command.py on `source` (a local
path or a presigned URL) into `work` and returns what it made with the warnings of what it
could not: it never raises for a picture (a file that cannot be decoded, a master without the
stream a picture needs, ffmpeg failing or timing out are warnings naming the file and the
reason), only TranscodeCancelled when the caller's `cancel` is set. A video gets a poster and
a contact sheet (a video without a video stream but with audio gets a waveform instead, with
a warning), an audio asset a waveform.

The poster: the window at 10 % of the duration first (from the keyframe before it: cheap);
while the frame `thumbnail` picks is black (mean luma under BLACK_LUMA) the next window (30 %,
50 %, 70 %, sought accurately); when every window is black the brightest pick is kept, with a
warning.

`publish` uploads what was made to thumbnails/<folder>/<code>... (model.picture_key) with its
Content-Type and returns the Picture records (a failed upload is a warning too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpr_cli.errors import FfmpegError, StorageError
from mpr_cli.ffmpeg.runner import TranscodeCancelled, run_ffmpeg
from mpr_cli.pictures import command
from mpr_cli.pictures.imagesize import image_size
from mpr_cli.pictures.model import Picture, PictureKind, picture_key
from mpr_cli.rules import MediaType
from mpr_cli.secrets import redact_query
from mpr_cli.storage import Storage
from mpr_cli.validation.containers import MediaInfo

log = logging.getLogger(__name__)

TIMEOUT_S = 120.0  # a poster or contact sheet: a few frames (a URL's slow start included)
WAVEFORM_S_PER_HOUR = 120.0  # a waveform decodes the whole track: more time for a long one
# what ffmpeg (5.1) prints when its decoder gave no frame. The contact sheet decodes 12 inputs at
# once and their errors interleave, so the stderr tail may end with any of them: the end
# markers (the first three) or a decoder's own complaints
_UNDECODABLE = ("Error marking filters as finished", "Cannot determine format of input stream",
                "Output file is empty", "Error while decoding stream",
                "missing picture in access unit", "Invalid NAL unit size")


@dataclass(frozen=True)
class MadePicture:
    """A picture written to a local file, checked to be an image of its size."""

    kind: PictureKind
    path: Path
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class Made:
    """What `make_pictures` made, and why any other picture was not made."""

    pictures: tuple[MadePicture, ...] = ()
    warnings: tuple[str, ...] = ()


def make_pictures(source: str, info: MediaInfo | None, media: MediaType, work: Path, *,
                  name: str, cancel: threading.Event | None = None) -> Made:
    """The pictures of `source` (see the module docstring); `name` (s3://bucket/key) is how
    warnings name it. `info` is what ffprobe or mediainfo says of it (None: unknown)."""
    work.mkdir(parents=True, exist_ok=True)
    run = _Run(source, info, work, name, cancel)
    has_video = info is None or info.has_video
    has_audio = info is None or info.has_audio
    if media is MediaType.VIDEO and has_video:
        run.poster()
        run.contact_sheet()
    elif media is MediaType.VIDEO and has_audio:
        run.warn("it has no video stream, only audio: a waveform instead of a poster")
        run.waveform()
    elif media is MediaType.AUDIO and has_audio:
        run.waveform()
    else:
        run.warn(f"it has no {media.value} stream: no picture made")
    return Made(tuple(run.made), tuple(run.warnings))


class _Run:
    """One file's pictures: the runs of ffmpeg and what came of them."""

    def __init__(self, source: str, info: MediaInfo | None, work: Path, name: str,
                 cancel: threading.Event | None) -> None:
        self.source, self.info, self.work, self.name = source, info, work, name
        self.cancel = cancel
        self.duration = info.duration_s if info is not None and info.duration_s else None
        self.interlaced = bool(info is not None and info.interlaced)
        self.made: list[MadePicture] = []
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.name}: {text}")
        log.warning("%s: %s", self.name, text)

    def poster(self) -> None:
        """The first non-black pick of the windows, else the brightest, else a warning."""
        best: tuple[float, MadePicture] | None = None
        failure = ""
        for i, start in enumerate(command.poster_starts(self.duration)):
            out = self.work / f"poster-{i}.jpg"
            argv = command.poster_argv(self.source, str(out), start_s=start, accurate=i > 0,
                                       deinterlace=self.interlaced)
            stderr, failure = self._ffmpeg(argv, TIMEOUT_S)
            made = self._check(PictureKind.POSTER, out) if not failure else None
            if made is None:
                failure = failure or "ffmpeg decoded no frame"
                continue
            luma = command.luma_of(stderr)
            if not command.is_black(luma):
                self.made.append(made)
                return
            if best is None or (luma or 0.0) > best[0]:
                best = (luma or 0.0, made)
        if best is not None:
            self.made.append(best[1])
            self.warn(f"every poster window is black (mean luma {best[0]:.0f} of 255): "
                      "the brightest kept")
            return
        self.warn(f"no poster: {failure}")

    def contact_sheet(self) -> None:
        if self.duration is None:
            self.warn("no contact sheet: its duration is unknown")
            return
        out = self.work / "sheet.jpg"
        argv = command.contact_sheet_argv(self.source, str(out), duration_s=self.duration,
                                          deinterlace=self.interlaced)
        self._keep(PictureKind.CONTACT_SHEET, out, argv, TIMEOUT_S)

    def waveform(self) -> None:
        out = self.work / "waveform.png"
        hours = (self.duration or 0.0) / 3600
        self._keep(PictureKind.WAVEFORM, out, command.waveform_argv(self.source, str(out)),
                   TIMEOUT_S + WAVEFORM_S_PER_HOUR * hours)

    def _keep(self, kind: PictureKind, out: Path, argv: list[str], timeout: float) -> None:
        _, failure = self._ffmpeg(argv, timeout)
        made = self._check(kind, out) if not failure else None
        if made is not None:
            self.made.append(made)
        else:
            self.warn(f"no {kind.value.replace('_', ' ')}: {failure or 'ffmpeg made no image'}")

    def _ffmpeg(self, argv: list[str], timeout: float) -> tuple[str, str]:
        """(stderr tail, "" or why it failed); TranscodeCancelled propagates."""
        try:
            result = run_ffmpeg(argv, duration_s=None, cancel=self.cancel, timeout=timeout)
        except TranscodeCancelled:
            raise
        except FfmpegError as exc:
            return exc.stderr_tail, _reason(exc, self.source, self.name)
        return result.stderr_tail, ""

    def _check(self, kind: PictureKind, path: Path) -> MadePicture | None:
        """The file as a MadePicture when it is a JPEG/PNG with a size; None if not."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        found = image_size(data)
        if found is None or found[1] != kind.mime_type:
            return None
        width, height = found[0]
        return MadePicture(kind, path, width, height, len(data))


def _reason(exc: FfmpegError, source: str, name: str) -> str:
    """Why ffmpeg made no picture: "no frame of it could be decoded (...)" when its decoder
    gave nothing, else its message; the presigned URL (its query redacted or not) or the temp
    path replaced by the file's name."""
    message = exc.message
    if any(sign in message or sign in exc.stderr_tail for sign in _UNDECODABLE):
        decoding = [line.strip() for line in exc.stderr_tail.splitlines()
                    if line.startswith("Error while decoding")]
        message = "no frame of it could be decoded" + (f" ({decoding[-1]})" if decoding else "")
    for shown in (source, redact_query(source)):
        message = message.replace(shown, name)
    return message


def publish(storage: Storage, bucket: str, folder: str, code: str, made: Made,
            on_upload: Callable[[str], None] | None = None) -> tuple[list[Picture], list[str]]:
    """Upload what was made to its keys with its Content-Type: (the Pictures now in S3, a
    warning per picture whose upload failed). `on_upload` is told each key uploaded (to
    remove them again when the caller's work is not recorded)."""
    pictures: list[Picture] = []
    warnings: list[str] = []
    for made_one in made.pictures:
        kind = made_one.kind
        key = picture_key(folder, code, kind)
        try:
            obj = storage.upload_file(made_one.path, bucket, key, content_type=kind.mime_type)
        except StorageError as exc:
            warnings.append(f"s3://{bucket}/{key}: not uploaded: {exc.one_line()}")
            continue
        if on_upload is not None:
            on_upload(key)
        pictures.append(Picture(kind, bucket, key, kind.mime_type, made_one.width,
                                made_one.height, obj.size))
    return pictures, warnings
