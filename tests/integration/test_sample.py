"""The sample archive, against real ffmpeg, ffprobe and mediainfo (no S3, no database)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mpr_cli.dev import sample
from mpr_cli.dev.sample import MEDIA_KINDS, Expect, Role, SampleArchive
from mpr_cli.errors import UsageError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("ffmpeg") or not shutil.which("ffprobe"),
                       reason="needs ffmpeg and ffprobe"),
]

FULL = ".json .mp4 .mp4.json .md5 _qc.pdf"


def _keys(stem: str, suffixes: str) -> set[str]:
    return {stem + suffix for suffix in suffixes.split()}


EXPECTED_KEYS = {
    *_keys("BRD/VO-SMP-00001", f".mov {FULL}"),
    *_keys("DVD/VO-SMP-00002", ".mkv .mp4 .json .mp4.json .mkv.md5 .mp4.md5 _qc.pdf"),
    *_keys("FILE/VO-SMP-00003", f".mxf {FULL}"),
    *_keys("CD/AO-SMP-00001", ".wav .mp3 .json .mp3.json .md5 _qc.pdf"),
    *_keys("DAT/AO-SMP-00002", ".flac .mp3 .json .mp3.json .flac.md5 .mp3.md5 _qc.pdf"),
    *_keys("FILE/VO-TAP-00001", FULL),
    *_keys("BRD/VO-BAD-00002", f".mov {FULL}"),
    *_keys("DVD/VO-BAD-00003", ".mkv .mp4 .mp4.json .md5 _qc.pdf"),
    *_keys("FILE/VO-BAD-00004", f".mxf {FULL}"),
    *_keys("BRD/VO-BAD-00005", ".mov .json .mp4 .mp4.json _qc.pdf"),
    *_keys("CD/AO-BAD-00006", ".wav .mp3 .json .mp3.json .md5 _qc.pdf"),
    *_keys("DVD/VO-BAD-00007", f".mkv {FULL}"),
    *_keys("FILE/VO-BAD-00008", f".mov {FULL}"),
    *_keys("BRD/VO-BAD-00010", f".mov {FULL}"),
    *_keys("DAT/AO-BAD-00011", ".flac .mp3 .json .mp3.json .md5"),
    "FILE/VO-BAD-00001.txt",
    "DAT/AO-BAD-00009.md5",
    "BRD/VO-UMT-1438.mp4",
    "CD/VO-UMT-20001.mov",
    "XYZ/VO-UMT-20002.mp4",
    "VO-UMT-20003.mp4",
    "TEST-FOLDER-DEV/BRD/VO-UMT-20004.mp4",
    "UMT/VO-UMT-20005.mp4",
    "DOCUMENTAZIONE_FOTOGRAFICA/VO-UMT-20006_foto01.jpg",
}
EXPECTED_PROBLEMS = {
    "FILE/VO-BAD-00001.txt": "unsupported_extension",
    "BRD/VO-UMT-1438.mp4": "invalid_inventory_code",
    "CD/VO-UMT-20001.mov": "prefix_type_mismatch",
    "XYZ/VO-UMT-20002.mp4": "unknown_folder",
    "VO-UMT-20003.mp4": "unknown_folder",
    "BRD/VO-BAD-00002.mp4": "checksum_mismatch",
    "DVD/VO-BAD-00003.mkv": "missing_metadata_sidecar",
    "FILE/VO-BAD-00004.json": "invalid_metadata_sidecar",
    "BRD/VO-BAD-00005.mov": "missing_checksum",
    "CD/AO-BAD-00006.md5": "invalid_checksum_sidecar",
    "DVD/VO-BAD-00007.mp4": "container_mismatch",
    "FILE/VO-BAD-00008.mp4": "container_mismatch",
    "DAT/AO-BAD-00009.md5": "orphan_sidecar",
    "BRD/VO-BAD-00010_qc.pdf": "invalid_qc_report",
    "DAT/AO-BAD-00011.flac": "missing_qc_report",
}
EXPECTED_OK = ["AO-BAD-00011", "AO-SMP-00001", "AO-SMP-00002", "VO-SMP-00001",
               "VO-SMP-00002", "VO-SMP-00003", "VO-TAP-00001"]
EXPECTED_REJECTED = {
    "VO-BAD-00002": "checksum_mismatch", "VO-BAD-00003": "missing_metadata_sidecar",
    "VO-BAD-00004": "invalid_metadata_sidecar", "VO-BAD-00005": "missing_checksum",
    "AO-BAD-00006": "invalid_checksum_sidecar", "VO-BAD-00007": "container_mismatch",
    "VO-BAD-00008": "container_mismatch", "VO-BAD-00010": "invalid_qc_report",
}
EXCLUDED = {"TEST-FOLDER-DEV/BRD/VO-UMT-20004.mp4", "UMT/VO-UMT-20005.mp4",
            "DOCUMENTAZIONE_FOTOGRAFICA/VO-UMT-20006_foto01.jpg"}
KIND_BY_SUFFIX = {".mov": "mov", ".mkv": "mkv", ".mxf": "mxf", ".avi": "avi", ".wav": "wav",
                  ".flac": "flac", ".mp4": "mp4", ".mp3": "mp3", ".jpg": "jpg"}
RENAMED = {"DVD/VO-BAD-00007.mp4": "mp3", "FILE/VO-BAD-00008.mp4": "mkv_h264"}
LINE = re.compile(r"^([0-9a-f]{32})  (\S+)$")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleArchive, float]:
    started = time.perf_counter()
    archive = sample.build_sample_archive(tmp_path_factory.mktemp("sample") / "bucket")
    return archive, time.perf_counter() - started


@pytest.fixture(scope="module")
def archive(built: tuple[SampleArchive, float]) -> SampleArchive:
    return built[0]


def _expect_of(archive: SampleArchive, key: str) -> str:
    return next(f.expect for f in archive.files if f.key == key)


def _on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                          "-show_streams", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _assert_probes_as(path: Path, kind: str) -> dict:
    info = _probe(path)
    codecs = tuple(s["codec_name"] for s in info["streams"]
                   if s["codec_type"] in ("video", "audio"))
    assert (info["format"]["format_name"], codecs) == (
        MEDIA_KINDS[kind].format_name, MEDIA_KINDS[kind].codecs), path.name
    return info


def test_default_archive_has_the_expected_keys(archive: SampleArchive) -> None:
    keys = [f.key for f in archive.files]
    assert len(keys) == len(set(keys))
    assert set(keys) == EXPECTED_KEYS
    assert _on_disk(archive.root) == EXPECTED_KEYS


def test_manifest_says_what_each_key_should_produce(archive: SampleArchive) -> None:
    assert archive.problems() == EXPECTED_PROBLEMS
    assert archive.assets_ok == EXPECTED_OK
    assert archive.assets_rejected == EXPECTED_REJECTED
    assert {f.key for f in archive.files if f.expect == Expect.EXCLUDED} == EXCLUDED
    for f in archive.files:
        if f.inventory_code in EXPECTED_REJECTED and f.key not in EXPECTED_PROBLEMS:
            assert f.expect == Expect.REJECTED_WITH_ASSET, f.key
        elif f.inventory_code in EXPECTED_OK and f.key not in EXPECTED_PROBLEMS:
            assert f.expect == Expect.IMPORT and f.imported, f.key
    assert _expect_of(archive, "DAT/AO-BAD-00011.flac") == "missing_qc_report"
    assert next(f for f in archive.files if f.key == "DAT/AO-BAD-00011.flac").imported


def test_manifest_codes_and_roles(archive: SampleArchive) -> None:
    by_key = {f.key: f for f in archive.files}
    assert by_key["BRD/VO-UMT-1438.mp4"].inventory_code is None
    assert by_key["UMT/VO-UMT-20005.mp4"].inventory_code is None
    assert by_key["XYZ/VO-UMT-20002.mp4"].inventory_code == "VO-UMT-20002"
    assert by_key["CD/VO-UMT-20001.mov"].role is None
    assert by_key["BRD/VO-SMP-00001.mov"].role == Role.MASTER
    assert by_key["BRD/VO-SMP-00001.mp4"].role == Role.STREAMING
    assert by_key["BRD/VO-SMP-00001.mp4.json"].role == Role.METADATA
    assert by_key["DVD/VO-SMP-00002.mkv.md5"].role == Role.CHECKSUM
    assert by_key["BRD/VO-SMP-00001_qc.pdf"].role == Role.QC_REPORT
    for f in archive.files:
        if f.role is not None:
            assert Path(f.key).name.startswith(f.inventory_code or "?"), f.key


@pytest.mark.parametrize("kind", sorted(MEDIA_KINDS))
def test_generate_media_probes_as_claimed(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"clip.{MEDIA_KINDS[kind].extension}"
    sample.generate_media(path, kind, duration=1.0, size="160x120")
    info = _assert_probes_as(path, kind)
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert all((s["width"], s["height"]) == (160, 120) for s in video)
    if kind != "jpg":
        assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_streaming_mp4_is_yuv420p_and_faststart(tmp_path: Path) -> None:
    path = tmp_path / "copy.mp4"
    sample.generate_media(path, "mp4", duration=1.0)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    assert _probe(path)["streams"][0]["pix_fmt"] == "yuv420p"


def test_generate_media_rejects_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown media kind"):
        sample.generate_media(tmp_path / "x.ogg", "ogg")


def test_archive_media_probe_as_their_names_claim(archive: SampleArchive) -> None:
    media = [f.key for f in archive.files if Path(f.key).suffix in KIND_BY_SUFFIX]
    assert len(media) == 36
    for key in media:
        _assert_probes_as(archive.root / key, RENAMED.get(key, KIND_BY_SUFFIX[Path(key).suffix]))


def _listed_hashes(path: Path) -> list[tuple[str, str]]:
    text = path.read_text()
    if path.name.count(".") == 2:  # <file>.md5: a bare hash
        assert re.fullmatch(r"[0-9a-f]{32}\n", text), path.name
        return [(text.strip(), path.name.removesuffix(".md5"))]
    matches = [LINE.match(line) for line in text.splitlines()]
    assert all(matches), path.name
    return [(m.group(1), m.group(2)) for m in matches if m]


def test_checksums_match_the_files(archive: SampleArchive, tmp_path: Path) -> None:
    checked = 0
    for key in sorted(k for k in EXPECTED_KEYS if k.endswith(".md5")):
        if key == "CD/AO-BAD-00006.md5":
            assert not LINE.match(archive.root.joinpath(key).read_text().splitlines()[0])
            continue
        for digest, name in _listed_hashes(archive.root / key):
            target = (archive.root / key).with_name(name)
            if name in ("VO-TAP-00001.mov", "AO-BAD-00009.wav"):  # on tape; orphan
                assert not target.exists()
            elif target == archive.root / "BRD/VO-BAD-00002.mp4":
                assert digest != sample.md5_file(target)
            else:
                assert digest == sample.md5_file(target), name
                checked += 1
    assert checked == 24
    tape = tmp_path / "VO-TAP-00001.mov"  # the master on tape, made again: same bytes
    sample.generate_media(tape, "prores")
    tape_listing = archive.root / "FILE/VO-TAP-00001.md5"
    assert (sample.md5_file(tape), tape.name) in _listed_hashes(tape_listing)


def _sidecar_tool(doc: dict) -> str:
    if "media" in doc:
        assert doc["creatingLibrary"]["name"] == "MediaInfoLib"
        assert doc["media"]["track"][0]["@type"] == "General"
        return "mediainfo"
    assert isinstance(doc["streams"], list) and doc["streams"]
    assert doc["format"]["nb_streams"] == len(doc["streams"])
    return "ffprobe"


def _described_name(doc: dict) -> str:
    return doc["media"]["@ref"] if "media" in doc else doc["format"]["filename"]


def test_metadata_sidecars_are_real_tool_output(archive: SampleArchive, tmp_path: Path) -> None:
    tools: dict[str, str] = {}
    for key in sorted(k for k in EXPECTED_KEYS if k.endswith(".json")):
        path = archive.root / key
        if key == "FILE/VO-BAD-00004.json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(path.read_text())
            continue
        doc = json.loads(path.read_text())
        tools[key] = _sidecar_tool(doc)
        name = _described_name(doc)
        if key.count(".") == 2:  # <code>.mp4.json describes <code>.mp4
            assert name == path.name.removesuffix(".json")
        else:  # <code>.json describes the master
            assert name.startswith(path.stem + ".") and Path(name).suffix in KIND_BY_SUFFIX
        media = path.with_name(name)
        if media.exists():  # byte for byte what the tool says today
            assert path.read_text() == sample.metadata_json(media, tools[key]), key
    assert set(tools.values()) == {"mediainfo", "ffprobe"}
    for key, tool in tools.items():
        pair = re.sub(r"\.(mp4|mp3)\.json$", ".json", key)
        if pair != key and pair in tools:
            assert tools[pair] != tool, key
    tape = tmp_path / "VO-TAP-00001.mov"
    sample.generate_media(tape, "prores")
    tape_json = archive.root / "FILE/VO-TAP-00001.json"
    assert tape_json.read_text() == sample.metadata_json(tape, tools["FILE/VO-TAP-00001.json"])


def test_metadata_sidecar_of_a_renamed_mp3_says_mpeg_audio(archive: SampleArchive) -> None:
    doc = json.loads((archive.root / "DVD/VO-BAD-00007.mp4.json").read_text())
    fmt = doc["media"]["track"][0]["Format"] if "media" in doc else doc["format"]["format_name"]
    assert fmt in ("MPEG Audio", "mp3")


def _assert_valid_pdf(data: bytes) -> None:
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    startxref = re.search(rb"startxref\n(\d+)\n", data)
    assert startxref
    xref = int(startxref.group(1))
    assert data[xref:].startswith(b"xref\n0 6\n")
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[xref:])
    assert len(entries) == 5
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset):].startswith(b"%d 0 obj\n" % number)
    content = re.search(rb"/Length (\d+) >>\nstream\n(.*?)\nendstream", data, re.S)
    assert content and int(content.group(1)) == len(content.group(2))


def test_qc_reports_are_valid_pdfs(archive: SampleArchive) -> None:
    reports = sorted(k for k in EXPECTED_KEYS if k.endswith("_qc.pdf"))
    assert len(reports) == 14
    for key in reports:
        data = (archive.root / key).read_bytes()
        if key == "BRD/VO-BAD-00010_qc.pdf":
            assert not data.startswith(b"%PDF")
        else:
            _assert_valid_pdf(data)
            assert Path(key).name.removesuffix("_qc.pdf").encode() in data


def test_two_runs_write_the_same_bytes(archive: SampleArchive, tmp_path: Path) -> None:
    again = sample.build_sample_archive(tmp_path / "again")
    assert [f.key for f in again.files] == [f.key for f in archive.files]
    assert again.files == archive.files and again.assets_ok == archive.assets_ok
    for key in sorted(EXPECTED_KEYS):  # media, md5, pdf, and even the metadata sidecars
        assert (archive.root / key).read_bytes() == (again.root / key).read_bytes(), key


def test_default_generation_is_fast(built: tuple[SampleArchive, float]) -> None:
    assert built[1] < 30, f"took {built[1]:.1f} s; the target is well under 15 s"


def test_counts_and_switches(tmp_path: Path) -> None:
    archive = sample.build_sample_archive(tmp_path / "b", assets_video=4, assets_audio=3,
                                          bad=False, tape_master=False, duration=1.0)
    keys = {f.key for f in archive.files}
    assert {"BRD/VO-SMP-00004.avi", "FILE/AO-SMP-00003.wav", "DVD/VO-SMP-00002.mkv"} <= keys
    assert not any("BAD" in k or "TAP" in k or "UMT" in k for k in keys)
    assert all(f.expect == Expect.IMPORT for f in archive.files)
    assert len(archive.assets_ok) == 7 and archive.assets_rejected == {}
    assert _on_disk(archive.root) == keys
    _assert_probes_as(archive.root / "BRD/VO-SMP-00004.avi", "avi")


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "stale.mp4").write_bytes(b"")
    with pytest.raises(UsageError, match="not empty"):
        sample.build_sample_archive(tmp_path)


def test_main_prints_a_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert sample.main([str(tmp_path / "out"), "--video", "1", "--audio", "1", "--no-bad",
                        "--no-tape", "--duration", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert re.match(r"12 files in .*out: 2 assets to import, 0 assets rejected, 0 keys with "
                    r"problems, 0 excluded \(\d+\.\d s\)$", out.strip())
    assert sample.main([str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
