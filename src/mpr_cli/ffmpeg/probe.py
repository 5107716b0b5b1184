"""ffprobe and pymediainfo -> typed `MediaInfo` (the same parser as the .json sidecars).

ffprobe runs as an argv list, never through a shell. A source is a local path or an
http(s) URL (e.g. a presigned S3 URL); a URL's query string (its signature) never appears in
an error message or in the kept stderr tail. ffprobe opens the source with the restrictions
ffmpeg gets (`command.input_restrictions`: its one protocol, the master containers' demuxers),
so a "master" that is really an HLS playlist is refused before any file it names is opened.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import json
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg.command import (
    FFMPEG,
    input_restrictions,
    last_message,
    redact_output,
    refusal,
)
from mpr_cli.validation.containers import MediaInfo
from mpr_cli.validation.sidecars import InvalidMetadata, media_info_from_json

FFPROBE = "ffprobe"
# the shorter text `mpr` has always shown for a missing ffprobe (its tests hold it); the
# package's INSTALL_HINT is the one for ffmpeg itself
INSTALL_HINT = "apt-get install -y ffmpeg"
_STDERR_TAIL_LINES = 20
_NO_MESSAGE = "no error message (not a media file?)"


def probe(source: str | Path, *, timeout: float = 60) -> MediaInfo:
    """What ffprobe says about `source`; FfmpegError (one line) when it cannot tell."""
    target, shown, is_url = _target(source)
    argv = [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    if is_url:
        argv += ["-rw_timeout", str(int(timeout * 1_000_000))]
    for option, value in input_restrictions(target).items():
        argv += [f"-{option}", value]
    argv.append(target)
    completed = _run(argv, timeout=timeout, what=f"ffprobe on {shown}")
    # the URL as shown (no query), and no stray copy of its query (a presigned signature)
    stderr = redact_output(completed.stderr.replace(target, shown), [target])
    refused = refusal(stderr) if completed.returncode != 0 else None
    if refused is not None:
        raise FfmpegError(f"{shown} cannot be transcoded: {refused}",
                          hint="replace it with the real master", stderr_tail=_tail(stderr))
    if completed.returncode != 0:
        reason = last_message(stderr, source=shown, none=_NO_MESSAGE)
        raise FfmpegError(f"ffprobe could not read {shown}: {reason}", stderr_tail=_tail(stderr))
    try:
        return media_info_from_json(json.loads(completed.stdout))
    except (ValueError, InvalidMetadata) as exc:
        raise FfmpegError(f"ffprobe output for {shown} is unusable: {exc}") from None


def ffprobe_version() -> str:
    """ffprobe's version token, e.g. "5.1.9-0+deb12u1"."""
    return _version(FFPROBE)


def ffmpeg_version() -> str:
    """ffmpeg's version token, e.g. "5.1.9-0+deb12u1"."""
    return _version(FFMPEG)


def mediainfo_json(path: Path, *, ref: str | None = None) -> dict[str, Any]:
    """`mediainfo --Output=JSON` for a local file, via pymediainfo.

    The JSON is the CLI's (not "full") output; its "@ref" is `ref` or the file's base name,
    so a temporary download path never ends up in a sidecar.
    """
    from pymediainfo import MediaInfo as PyMediaInfo

    try:
        text = PyMediaInfo.parse(str(path), output="JSON", full=False)
        document: dict[str, Any] = json.loads(text)
    except (OSError, RuntimeError, ValueError) as exc:
        raise FfmpegError(
            f"mediainfo could not read {path.name}: {exc}",
            hint="reinstall pymediainfo (its wheel bundles libmediainfo)",
        ) from None
    if isinstance(document.get("media"), dict):
        document["media"]["@ref"] = ref or path.name
    return document


# The libmediainfo parser for a streaming copy's extension. Naming it skips the format
# detection, which otherwise tries dozens of parsers on the first bytes: on the 0.4 s clips of
# bench/bench_import.py it cut the CPU of `probe_stream` from 2.9 to 1.6 ms (MP4) and from 2.2
# to 0.7 ms (MP3), measured side by side. When the named parser does not recognise the
# bytes, the probe runs again without it, so the error can say what the file really is.
PARSER_FOR_EXTENSION = {".mp4": "Mpeg4", ".mp3": "Mpega"}


def probe_stream(stream: Any, name: str) -> MediaInfo:
    """Technical metadata of a seekable binary file object (e.g. a `storage.RangedObject`)
    with libmediainfo in this process: no subprocess, and only the bytes it asks for.

    ParseSpeed 0 reads the container's headers (an MP4's moov, wherever it is; an MP3's first
    frames), which is all the container rules need: measured on a 30 MB faststart MP4, one
    256 KiB GET and about 10 ms of CPU, against about 100 ms for ffprobe over HTTP.
    """
    parser = PARSER_FOR_EXTENSION.get(PurePosixPath(name).suffix.lower(), "")
    try:
        document = json.loads(_libmediainfo().parse(stream, parser))
        if parser and not document.get("media"):  # not what its name says: what is it?
            document = json.loads(_libmediainfo().parse(stream, ""))
    except (OSError, RuntimeError, ValueError) as exc:
        raise FfmpegError(f"mediainfo could not read {name}: {exc}") from None
    if isinstance(document.get("media"), dict):
        document["media"]["@ref"] = name
    try:
        return media_info_from_json(document)
    except InvalidMetadata as exc:
        raise FfmpegError(f"{name} is not a media file mediainfo recognises ({exc})") from None


class _LibMediaInfo:
    """The libmediainfo that pymediainfo's wheel bundles, called through ctypes.

    pymediainfo itself cannot name a parser per file: its `mediainfo_options` resets every
    option of the library after the parse, which breaks parses running on other threads.
    Here a handle is made per parse (thread safe) and the process-wide options are set to
    the same values before each parse, as pymediainfo does.
    """

    OPTIONS = (("CharSet", "UTF-8"), ("Inform", "JSON"), ("Complete", ""),
               ("ParseSpeed", "0"), ("LegacyStreamDisplay", ""), ("Cover_Data", ""))
    BLOCK = 64 * 1024
    NO_SEEK = ctypes.c_uint64(-1).value

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        handle, text = ctypes.c_void_p, ctypes.c_wchar_p
        size, u64 = ctypes.c_size_t, ctypes.c_uint64
        for function, argtypes, restype in (
            ("MediaInfo_New", [], handle),
            ("MediaInfo_Option", [handle, text, text], text),
            ("MediaInfo_Open_Buffer_Init", [handle, u64, u64], size),
            ("MediaInfo_Open_Buffer_Continue", [handle, ctypes.c_char_p, size], size),
            ("MediaInfo_Open_Buffer_Continue_GoTo_Get", [handle], u64),
            ("MediaInfo_Open_Buffer_Finalize", [handle], size),
            ("MediaInfo_Inform", [handle, size], text),
            ("MediaInfo_Close", [handle], None),
            ("MediaInfo_Delete", [handle], None),
        ):
            getattr(lib, function).argtypes = argtypes
            getattr(lib, function).restype = restype
        self.lib = lib

    def parse(self, stream: Any, parser: str) -> str:
        """mediainfo's JSON for the bytes of `stream` (seekable, binary)."""
        lib = self.lib
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        handle = lib.MediaInfo_New()
        try:
            for option, value in self.OPTIONS:
                lib.MediaInfo_Option(handle, option, value)
            lib.MediaInfo_Option(handle, "File_ForceParser", parser)
            lib.MediaInfo_Open_Buffer_Init(handle, size, 0)
            while block := stream.read(self.BLOCK):
                if lib.MediaInfo_Open_Buffer_Continue(handle, block, len(block)) & 0x08:
                    break  # bit 3: the parser has what it needs
                wanted = lib.MediaInfo_Open_Buffer_Continue_GoTo_Get(handle)
                if wanted != self.NO_SEEK:
                    lib.MediaInfo_Open_Buffer_Init(handle, size, stream.seek(wanted))
            lib.MediaInfo_Open_Buffer_Finalize(handle)
            return str(lib.MediaInfo_Inform(handle, 0))
        finally:
            lib.MediaInfo_Close(handle)
            lib.MediaInfo_Delete(handle)


@functools.cache
def _libmediainfo() -> _LibMediaInfo:
    import pymediainfo

    folder = Path(pymediainfo.__file__).parent
    bundled = sorted(folder.glob("libmediainfo.so*")) + sorted(folder.glob("libmediainfo*.dylib"))
    path = str(bundled[0]) if bundled else ctypes.util.find_library("mediainfo")
    if path is None:
        raise OSError("libmediainfo not found (reinstall pymediainfo: its wheel bundles it)")
    return _LibMediaInfo(path)


def mediainfo_works() -> bool:
    """True when pymediainfo can load libmediainfo."""
    try:
        from pymediainfo import MediaInfo as PyMediaInfo

        return bool(PyMediaInfo.can_parse())
    except Exception:  # noqa: BLE001 - any failure to load the library means "no"
        return False


def _target(source: str | Path) -> tuple[str, str, bool]:
    """(argument for ffprobe, name safe to show, is it a URL)."""
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        parts = urlsplit(source)
        return source, urlunsplit(parts._replace(query="", fragment="")), True
    path = Path(source).absolute()  # absolute: a name starting with "-" is never an option
    return str(path), str(path), False


def _run(argv: list[str], *, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise FfmpegError(f"{argv[0]} not found", hint=INSTALL_HINT) from None
    except subprocess.TimeoutExpired:
        raise FfmpegError(f"{what} timed out after {timeout:g} s") from None


def _version(program: str) -> str:
    completed = _run([program, "-version"], timeout=30, what=f"{program} -version")
    words = completed.stdout.split(maxsplit=3)
    if completed.returncode != 0 or len(words) < 3 or words[1] != "version":
        raise FfmpegError(f"{program} -version gave no version", hint=INSTALL_HINT)
    return words[2]


def _tail(stderr: str) -> str:
    return "\n".join(stderr.splitlines()[-_STDERR_TAIL_LINES:])
