"""ffprobe and pymediainfo on real files made with ffmpeg at test time (1 s, 160x120)."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpr_cli.errors import FfmpegError
from mpr_cli.ffmpeg import probe
from mpr_cli.validation.containers import Container, MediaInfo
from mpr_cli.validation.sidecars import parse_metadata_sidecar

pytestmark = pytest.mark.integration

VIDEO = ["-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=25"]
AUDIO = ["-f", "lavfi", "-i", "sine=duration=1:sample_rate=48000"]
PIX = ["-pix_fmt", "yuv420p"]
MEDIA = {
    # file name: (ffmpeg arguments, container, video codecs, audio codecs)
    "VO-TST-00001.mov": (VIDEO + AUDIO + ["-c:v", "prores", "-c:a", "pcm_s16le"],
                         Container.QUICKTIME, ("prores",), ("pcm",)),
    "VO-TST-00002.mkv": (VIDEO + AUDIO + ["-c:v", "ffv1", "-c:a", "flac"],
                         Container.MATROSKA, ("ffv1",), ("flac",)),
    "VO-TST-00003.mxf": (VIDEO + AUDIO + ["-c:v", "mpeg2video", "-c:a", "pcm_s16le"],
                         Container.MXF, ("mpeg2video",), ("pcm",)),
    "VO-TST-00004.avi": (VIDEO + AUDIO + ["-c:v", "mpeg4", "-c:a", "pcm_s16le"],
                         Container.AVI, ("mpeg4",), ("pcm",)),
    "VO-TST-00005.mp4": (VIDEO + AUDIO + ["-c:v", "libx264", *PIX, "-c:a", "aac"],
                         Container.MPEG4, ("h264",), ("aac",)),
    "AO-TST-00006.wav": (AUDIO + ["-c:a", "pcm_s24le"], Container.WAVE, (), ("pcm",)),
    "AO-TST-00007.flac": (AUDIO + ["-c:a", "flac"], Container.FLAC, (), ("flac",)),
    "AO-TST-00008.mp3": (AUDIO + ["-c:a", "libmp3lame"], Container.MPEG_AUDIO, (), ("mp3",)),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for name, (args, *_) in MEDIA.items():
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(folder / name)], check=True)
    return folder


@pytest.mark.parametrize("name", list(MEDIA))
def test_probe_reads_container_and_codecs(media: Path, name: str) -> None:
    _, container, video, audio = MEDIA[name]
    info = probe.probe(media / name)
    assert (info.container, info.video_codecs, info.audio_codecs) == (container, video, audio)
    assert info.source == "ffprobe"
    assert info.file_name == name
    assert info.size == (media / name).stat().st_size
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    if video:
        assert (info.width, info.height) == (160, 120)


@pytest.mark.parametrize("name", list(MEDIA))
def test_mediainfo_json_agrees_with_probe(media: Path, name: str) -> None:
    document = probe.mediainfo_json(media / name, ref=name)
    assert document["media"]["@ref"] == name
    from_sidecar = parse_metadata_sidecar(f"{name}.json", json.dumps(document).encode())
    assert isinstance(from_sidecar, MediaInfo)
    live = probe.probe(media / name)
    assert (from_sidecar.container, from_sidecar.video_codecs, from_sidecar.audio_codecs) == (
        live.container, live.video_codecs, live.audio_codecs)


@pytest.mark.parametrize("name", list(MEDIA))
def test_probe_stream_reads_a_file_object_like_ffprobe(media: Path, name: str) -> None:
    # the streaming copies (.mp4, .mp3) go through libmediainfo's named parser, the others
    # through its format detection: both must say what ffprobe says
    with (media / name).open("rb") as handle:
        info = probe.probe_stream(handle, name)
    live = probe.probe(media / name)
    assert info.raw["media"]["@ref"] == name
    assert (info.container, info.video_codecs, info.audio_codecs) == (
        live.container, live.video_codecs, live.audio_codecs)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("content", "named", "container"), [
    ("AO-TST-00008.mp3", "VO-TST-00009.mp4", Container.MPEG_AUDIO),
    ("VO-TST-00005.mp4", "AO-TST-00009.mp3", Container.MPEG4),
    ("VO-TST-00002.mkv", "VO-TST-00009.mp4", Container.MATROSKA),
])
def test_probe_stream_says_what_a_mislabelled_file_really_is(media: Path, content: str,
                                                            named: str,
                                                            container: Container) -> None:
    # the parser named after the extension does not recognise it: the probe falls back to
    # format detection, so a container_mismatch can name the real container
    with (media / content).open("rb") as handle:
        assert probe.probe_stream(handle, named).container is container


def test_probe_stream_on_bytes_that_are_not_media_raises_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "VO-TST-00010.mp4"
    fake.write_bytes(b"this is not a movie\n" * 200)
    with fake.open("rb") as handle, pytest.raises(FfmpegError) as caught:
        probe.probe_stream(handle, fake.name)
    assert "VO-TST-00010.mp4 is not a media file" in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_probe_on_a_non_media_file_raises_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.mov"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(FfmpegError) as caught:
        probe.probe(text)
    message = caught.value.one_line()
    assert message == f"ffprobe could not read {text}: Invalid data found when processing input"
    assert "\n" not in message


def test_probe_on_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError, match=r"could not read .*nope\.mov: No such file"):
        probe.probe(tmp_path / "nope.mov")


def test_a_file_name_starting_with_a_dash_is_not_an_option(media: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "-version").write_bytes((media / "AO-TST-00007.flac").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert probe.probe("-version").container is Container.FLAC


@pytest.fixture()
def http_root(media: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(media))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_probe_reads_a_url(http_root: str) -> None:
    info = probe.probe(f"{http_root}/VO-TST-00002.mkv?X-Amz-Signature=s3cr3t", timeout=20)
    assert (info.container, info.video_codecs) == (Container.MATROSKA, ("ffv1",))


def test_a_failing_url_never_shows_its_signature(http_root: str) -> None:
    with pytest.raises(FfmpegError) as caught:
        probe.probe(f"{http_root}/missing.mov?X-Amz-Signature=s3cr3t", timeout=20)
    error = caught.value
    assert error.one_line().startswith(f"ffprobe could not read {http_root}/missing.mov: ")
    assert "404" in error.one_line()
    assert "s3cr3t" not in error.one_line() and "s3cr3t" not in error.stderr_tail


def test_missing_ffprobe_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(probe, "FFPROBE", "ffprobe-not-installed")
    with pytest.raises(FfmpegError) as caught:
        probe.probe(tmp_path / "x.mov")
    assert caught.value.one_line() == "ffprobe-not-installed not found (apt-get install -y ffmpeg)"


@pytest.mark.parametrize("program", ["ffmpeg", "ffprobe"])
def test_versions_are_the_first_lines_token(program: str) -> None:
    version = getattr(probe, f"{program}_version")()
    first_line = subprocess.run([program, "-version"], capture_output=True, text=True,
                                check=True).stdout.splitlines()[0]
    assert first_line.startswith(f"{program} version {version} ")


def test_mediainfo_works() -> None:
    assert probe.mediainfo_works() is True


def test_a_missing_ffmpeg_version_check_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "FFMPEG", "ffmpeg-not-installed")
    with pytest.raises(FfmpegError, match="ffmpeg-not-installed not found"):
        probe.ffmpeg_version()
