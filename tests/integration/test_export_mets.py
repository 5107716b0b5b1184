"""`mpr export mets` as an archive uses it: a video asset of the sample archive imported and
transcoded by the real `mpr`, exported as METS with PREMIS (to a file, stdout and the output
bucket), each document read back and validated offline against the METS schema, its PREMIS
objects and events compared with the catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from uuid import NAMESPACE_URL, uuid5

import psycopg
import pytest
from lxml import etree

from mpr_cli import events
from mpr_cli.dev.sample import SampleArchive
from mpr_cli.display import for_xml
from mpr_cli.export import mets, schema
from tests.integration.archive import TAPE_CODE, clean_codes, keys_of, query

pytestmark = pytest.mark.integration

NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3",
      "xlink": "http://www.w3.org/1999/xlink", "mpr": mets.EXTENSION_NS}
HOSTILE_FOLDER = "q\"uo'te <lt> &amp; ü"


def pick(archive: SampleArchive, media: str) -> str:
    return next(c for c in clean_codes(archive) if c[0] == media and c != TAPE_CODE)


def files_of(database_url: str, code: str) -> list[dict[str, Any]]:
    return query(database_url, "SELECT f.bucket, f.key, f.role, f.size, f.md5, f.etag, f.preset"
                               " FROM asset_files f JOIN assets a ON a.id = f.asset_id"
                               " WHERE a.inventory_code = %s", (code,))


def events_of(database_url: str, code: str) -> list[dict[str, Any]]:
    return query(database_url, "SELECT e.event_uuid, e.event_type, e.bucket, e.key FROM events e"
                               " JOIN assets a ON a.id = e.asset_id WHERE a.inventory_code = %s",
                 (code,))


def object_uuid(bucket: str, key: str) -> str:
    return str(uuid5(NAMESPACE_URL, mets.s3_url(bucket, key)))


def master_key(database_url: str, code: str) -> str:
    return next(f["key"] for f in files_of(database_url, code) if f["role"] == "master")


def assert_describes(root: etree._Element, database_url: str, code: str) -> None:
    """Valid METS; one PREMIS object per catalogued file with its MD5 and size; every event of
    the asset listed, linked to its file's object."""
    assert schema.validate(root) == []
    assert root.get("OBJID") == code
    objects = {unquote(o.findtext("premis:objectIdentifier[2]/premis:objectIdentifierValue",
                                  namespaces=NS)): o
               for o in root.iterfind(".//premis:object", NS)}
    rows = files_of(database_url, code)
    assert len(objects) == len(rows) == len(root.findall(".//mets:file", NS))
    for row in rows:
        found = objects[f"s3://{row['bucket']}/{row['key']}"]
        assert found.findtext("premis:originalName", namespaces=NS) == for_xml(row["key"])
        assert found.findtext(".//premis:messageDigest", namespaces=NS) == row["md5"]
        assert found.findtext(".//premis:size", namespaces=NS) == str(row["size"])
        assert found.findtext(".//mpr:etag", namespaces=NS) == row["etag"]
        assert found.findtext("premis:objectIdentifier/premis:objectIdentifierValue",
                              namespaces=NS) == object_uuid(row["bucket"], row["key"])
    listed = {e.findtext(".//premis:eventIdentifierValue", namespaces=NS): e
              for e in root.iterfind(".//premis:event", NS)}
    recorded = events_of(database_url, code)
    assert recorded and set(listed) == {str(e["event_uuid"]) for e in recorded}
    for event in recorded:
        shown = listed[str(event["event_uuid"])]
        assert shown.findtext("premis:eventType", namespaces=NS) == event["event_type"]
        # a file's own events link to its object (an event of a key the asset has no file
        # at any more, e.g. a delivered copy the transcode replaced, to that key's identifier)
        assert shown.findtext(".//premis:linkingObjectIdentifierValue",
                              namespaces=NS) == object_uuid(event["bucket"], event["key"])
        assert shown.findtext(".//premis:linkingAgentIdentifierValue",
                              namespaces=NS).startswith("mpr ")


@pytest.fixture()
def imported(sample_archive, upload, run_mpr, database_url) -> tuple[str, str]:
    """A video and an audio asset imported; the video one then transcoded by mpr (its
    streaming copy in the output bucket, replacing the delivered one)."""
    video, audio = pick(sample_archive, "V"), pick(sample_archive, "A")
    upload(sample_archive.root, keys_of(sample_archive, [video, audio]))
    assert run_mpr("import").returncode == 0
    made = run_mpr("transcode", master_key(database_url, video), "--force")
    assert made.returncode == 0, made.stderr
    return video, audio


@pytest.fixture()
def transcoded(imported) -> str:
    return imported[0]


def test_a_transcoded_video_asset_exports_valid_mets_with_its_events(
        transcoded, run_mpr, database_url, buckets, tmp_path) -> None:
    code = transcoded
    streaming = next(f for f in files_of(database_url, code) if f["role"] == "streaming")
    assert (streaming["bucket"], streaming["preset"] is not None) == (buckets[1], True)
    assert {"ingestion", "creation"} <= {e["event_type"] for e in events_of(database_url, code)}

    path = tmp_path / "out" / f"{code}.mets.xml"
    path.parent.mkdir()
    written = run_mpr("export", "mets", code, "-o", str(path))
    assert written.returncode == 0, written.stderr
    root = schema.parse_file(path).getroot()
    assert_describes(root, database_url, code)
    [copy] = [o for o in root.iterfind(".//premis:object", NS)
              if o.findtext("premis:originalName", namespaces=NS) == streaming["key"]]
    assert copy.findtext(".//premis:relationshipSubType", namespaces=NS) == "has source"
    href = {unquote(f.get(f"{{{NS['xlink']}}}href")) for f in root.iterfind(".//mets:FLocat", NS)}
    assert f"s3://{buckets[1]}/{streaming['key']}" in href

    # stdout: the same document
    shown = run_mpr("export", "mets", code)
    assert shown.returncode == 0, shown.stderr
    assert_describes(etree.fromstring(shown.stdout.encode(), schema.offline_parser()),
                     database_url, code)


def test_to_bucket_writes_each_document_beside_the_outputs(
        imported, run_mpr, database_url, buckets, s3_admin, service_env) -> None:
    transcoded, audio = imported

    one = run_mpr("export", "mets", transcoded, "--to-bucket")
    assert one.returncode == 0, one.stderr
    folder = str(Path(master_key(database_url, transcoded)).parent)
    key = f"{folder}/{transcoded}.mets.xml"
    assert one.stdout.strip() == f"s3://{buckets[1]}/{key}"
    body = s3_admin.get_object(Bucket=buckets[1], Key=key)["Body"].read()
    assert_describes(etree.fromstring(body, schema.offline_parser()), database_url, transcoded)

    s3_admin.delete_object(Bucket=buckets[1], Key=key)
    every = run_mpr("export", "mets", "--prefix", "", "--to-bucket")
    assert every.returncode == 0, every.stderr
    expected = {f"{Path(master_key(database_url, c)).parent}/{c}.mets.xml"
                for c in (transcoded, audio)}
    assert set(every.stdout.split()) == {f"s3://{buckets[1]}/{k}" for k in expected}
    for code in (transcoded, audio):
        written = f"{Path(master_key(database_url, code)).parent}/{code}.mets.xml"
        data = s3_admin.get_object(Bucket=buckets[1], Key=written)["Body"].read()
        assert_describes(etree.fromstring(data, schema.offline_parser()), database_url, code)

    # never over a catalogued file: that asset fails, the other is still written (exit 1)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO asset_files (asset_id, bucket, key, role, size)"
                     " SELECT id, %s, %s, 'qc_report', 1 FROM assets WHERE inventory_code = %s",
                     (buckets[1], key, audio))
    s3_admin.delete_object(Bucket=buckets[1], Key=key)
    partly = run_mpr("export", "mets", "--prefix", "", "--to-bucket")
    assert partly.returncode == 1
    assert partly.stdout.split() == [f"s3://{buckets[1]}/{k}" for k in expected if audio in k]
    assert f"error: {transcoded}: s3://{buckets[1]}/{key} is catalogued as the qc_report file " \
           f"of {audio}" in partly.stderr
    assert "Contents" not in s3_admin.list_objects_v2(Bucket=buckets[1], Prefix=key)

    # never into the input bucket
    same = run_mpr("export", "mets", audio, "--to-bucket",
                   env={**service_env, "S3_BUCKET_OUT": buckets[0]})
    assert same.returncode == 2
    [line] = same.stderr.splitlines()
    assert "S3_BUCKET_OUT is the input bucket" in line


def test_unknown_codes_and_bad_arguments(run_mpr, database_url, tmp_path) -> None:
    path = tmp_path / "never.xml"
    unknown = run_mpr("export", "mets", "VO-NON-00001", "-o", str(path))
    assert (unknown.returncode, unknown.stdout, path.exists()) == (1, "", False)
    [line] = unknown.stderr.splitlines()
    assert line.startswith("error: no asset VO-NON-00001 in the catalogue")

    nothing = run_mpr("export", "mets", "--prefix", "NOPE/", "--to-bucket")
    assert nothing.returncode == 1
    [line] = nothing.stderr.splitlines()
    assert "no catalogued asset has a file under 'NOPE/'" in line

    for args in (("VO\nX",), ("--prefix", "BRD/"), ("VO-NON-00001", "-o", "x", "--to-bucket"),
                 ()):
        refused = run_mpr("export", "mets", *args)
        assert refused.returncode == 2, args
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: "), args


def test_a_hostile_key_gives_a_valid_document(sample_archive, s3_admin, buckets, run_mpr,
                                              database_url, tmp_path) -> None:
    """Quotes, <, & and a non-ASCII letter in a folder the import accepts, and a key with
    control characters (which no import accepts: put into the catalogue directly, with an
    event): the document is valid and names both keys."""
    video = pick(sample_archive, "V")
    tree = tmp_path / "hostile"
    for key in keys_of(sample_archive, [video]):
        target = tree / Path(key).parent / HOSTILE_FOLDER / Path(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample_archive.root / key, target)
        s3_admin.upload_file(str(target), buckets[0], target.relative_to(tree).as_posix())
    imported = run_mpr("import")
    assert imported.returncode == 0, imported.stderr
    master = master_key(database_url, video)
    assert HOSTILE_FOLDER in master
    control = f"{Path(master).parent}/{video}_qc\x01\x1b]0;x\x07.pdf"
    with psycopg.connect(database_url) as conn:
        asset_id = conn.execute("SELECT id FROM assets WHERE inventory_code = %s",
                                (video,)).fetchone()[0]
        conn.execute("INSERT INTO asset_files (asset_id, bucket, key, role, size, etag, md5,"
                     " mime_type) VALUES (%s, %s, %s, 'qc_report', 3, %s, %s, 'application/pdf')",
                     (asset_id, buckets[0], control, "c" * 32, "c" * 32))
        events.record(conn, [events.NewEvent(events.EventType.VALIDATION, events.Outcome.WARNING,
                                             "detail with <, & and \x02", buckets[0], control,
                                             asset_id=asset_id)])

    out = run_mpr("export", "mets", video, "--to-bucket")
    assert out.returncode == 0, out.stderr
    key = f"{Path(master).parent}/{video}.mets.xml"
    body = s3_admin.get_object(Bucket=buckets[1], Key=key)["Body"].read()
    root = etree.fromstring(body, schema.offline_parser())
    assert_describes(root, database_url, video)
    names = {o.findtext("premis:originalName", namespaces=NS)
             for o in root.iterfind(".//premis:object", NS)}
    assert {master, for_xml(control)} <= names
    details = {e.text for e in root.iterfind(".//premis:eventDetail", NS)}
    assert "detail with <, & and \\x02" in details
