"""The METS schema loads and validates with no network at all (its XLink import resolved to the
schema mpr ships), and the documents mpr builds from catalogue records pass it, hostile keys
included. No services: the records are made here."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote
from uuid import uuid4

import pytest
from lxml import etree

from mpr_cli import events
from mpr_cli.display import for_xml
from mpr_cli.errors import ConfigError, ExitCode, InternalError
from mpr_cli.export import mets, schema

NS = {"mets": "http://www.loc.gov/METS/", "premis": "http://www.loc.gov/premis/v3",
      "xlink": "http://www.w3.org/1999/xlink", "mpr": mets.EXTENSION_NS}
MINIMAL = b"""<mets:mets xmlns:mets="http://www.loc.gov/METS/"
    xmlns:xlink="http://www.w3.org/1999/xlink">
  <mets:structMap><mets:div LABEL="asset">
    <mets:mptr LOCTYPE="URL" xlink:type="simple" xlink:href="s3://out/BRD/VO-UMT-14387.mets.xml"
               xlink:show="%s" xlink:actuate="onRequest"/>
  </mets:div></mets:structMap>
</mets:mets>"""
HOSTILE = 'BRD/q"uo\'te <lt> &amp; \x01\x1b\\x41 tab\there\nü/VO-UMT-14387.mov'
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[object, ...]]]:
    """Every socket refused (and recorded); the schema compiled afresh under that."""
    tried: list[tuple[object, ...]] = []

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        tried.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    schema.mets_schema.cache_clear()
    yield tried
    schema.mets_schema.cache_clear()


def test_the_schema_loads_and_validates_with_no_network(no_network) -> None:
    compiled = schema.mets_schema()
    assert compiled.validate(etree.fromstring(MINIMAL % b"new"))
    # the XLink attributes are checked by the schema mpr ships, not skipped
    [complaint] = schema.validate(etree.fromstring(MINIMAL % b"sideways"))
    assert "xlink}show" in complaint and "sideways" in complaint
    assert no_network == []


def test_the_metsrw_schema_alone_cannot_be_compiled_offline() -> None:
    """What the shipped XLink schema is for: without it the import is skipped and the XLink
    attribute groups mets.xsd uses are unresolved."""
    tree = etree.parse(str(schema.METS_XSD), schema.offline_parser())
    with pytest.raises(etree.XMLSchemaParseError, match="simpleLink"):
        etree.XMLSchema(tree)


def test_a_remote_import_mpr_has_no_copy_of_is_refused() -> None:
    tree = etree.ElementTree(etree.fromstring(
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:import namespace="urn:x"'
        b' schemaLocation="http://example.org/x.xsd"/></xs:schema>'))
    with pytest.raises(ConfigError, match="example.org/x.xsd"):
        schema._point_imports_home(tree, {schema.XLINK_NS: schema.xlink_xsd()})


def test_the_shipped_schemas_are_package_data() -> None:
    for path in (schema.xlink_xsd(), schema.premis_xsd()):
        assert path.is_file() and path.parent.name == "schemas"
        etree.parse(str(path), schema.offline_parser())


# -- documents built from catalogue records ---------------------------------------------------


def _file(bucket: str, key: str, role: str, md5: str | None, size: int,
          preset: str | None = None) -> mets.CataloguedFile:
    return mets.CataloguedFile(bucket, key, role, True, size, md5 or "etag-2", md5,
                               "video/quicktime" if role == "master" else None, preset, NOW,
                               None)


def _event(key: str, kind: events.EventType, detail: str, bucket: str = "in") -> events.Event:
    return events.Event(uuid4(), kind, NOW, events.Outcome.SUCCESS, detail,
                        "mpr 0.1.0 on host-1", 1, "VO-UMT-14387", bucket, key, None, "run-7")


def _record(master_key: str) -> mets.AssetRecord:
    files = (_file("in", master_key, "master", "a" * 32, 10),
             _file("out", "BRD/VO-UMT-14387.mp4", "streaming", "b" * 32, 5, preset="h264"),
             _file("in", "BRD/VO-UMT-14387.mov.md5", "checksum", None, 44))
    history = (_event(master_key, events.EventType.INGESTION, "inserted <&> \x02 by run-7"),
               _event(master_key, events.EventType.FIXITY_CHECK, "fixity_ok"),
               _event("BRD/VO-UMT-14387.mp4", events.EventType.CREATION, "made", "out"),
               _event("OLD/VO-UMT-14387.mov", events.EventType.DELETION, "gone"))
    return mets.AssetRecord(1, "VO-UMT-14387", "video", NOW, files, history)


def _objects(root: etree._Element) -> dict[str, etree._Element]:
    return {o.findtext("premis:originalName", namespaces=NS): o
            for o in root.iterfind(".//premis:object", NS)}


def test_a_hostile_key_gives_a_valid_document(no_network) -> None:
    record = _record(HOSTILE)
    data = mets.render(record)
    root = etree.fromstring(data, schema.offline_parser())
    assert schema.validate(root) == []
    objects = _objects(root)
    assert set(objects) == {for_xml(f.key) for f in record.files}
    master = objects[for_xml(HOSTILE)]
    assert master.findtext(".//premis:messageDigest", namespaces=NS) == "a" * 32
    assert master.findtext(".//premis:size", namespaces=NS) == "10"
    assert master.findtext(".//mpr:etag", namespaces=NS) == "a" * 32
    hrefs = [f.get(f"{{{NS['xlink']}}}href") for f in root.iterfind(".//mets:FLocat", NS)]
    assert f"s3://in/{HOSTILE}" in [unquote(h) for h in hrefs]
    assert all(" " not in h and '"' not in h and "<" not in h for h in hrefs)
    assert no_network == []


def test_every_event_is_listed_with_its_agent_and_object() -> None:
    record = _record("BRD/VO-UMT-14387.mov")
    root = etree.fromstring(mets.render(record))
    listed = {e.findtext("premis:eventIdentifier/premis:eventIdentifierValue", namespaces=NS): e
              for e in root.iterfind(".//premis:event", NS)}
    assert set(listed) == {str(e.event_uuid) for e in record.events}
    uuid_of = {str(f.object_uuid) for f in record.files}
    for event in record.events[:3]:  # the files' own; the fourth's key has no file any more
        linked = listed[str(event.event_uuid)].findtext(".//premis:linkingObjectIdentifierValue",
                                                        namespaces=NS)
        assert linked in uuid_of
    agents = {a.findtext(".//premis:agentIdentifierValue", namespaces=NS)
              for a in root.iterfind(".//premis:agent", NS)}
    assert agents == {"mpr 0.1.0 on host-1"}
    copy = _objects(root)["BRD/VO-UMT-14387.mp4"]
    assert copy.findtext(".//premis:relatedObjectIdentifierValue", namespaces=NS) == str(
        record.files[0].object_uuid)
    assert [g.get("USE") for g in root.iterfind(".//mets:fileGrp", NS)] == [
        "master", "streaming", "checksum"]


def test_the_document_lies_beside_the_outputs() -> None:
    assert _record("BRD/2019/VO-UMT-14387.mov").mets_key == "BRD/2019/VO-UMT-14387.mets.xml"
    assert _record("VO-UMT-14387.mov").mets_key == "VO-UMT-14387.mets.xml"


def test_an_invalid_document_is_an_error() -> None:
    root = mets.build(_record("BRD/VO-UMT-14387.mov"))
    size = root.find(".//premis:size", NS)
    assert size is not None
    size.text = "ten"  # PREMIS is validated too (mpr's PREMIS 3 schema)
    with pytest.raises(InternalError) as refused:
        schema.require_valid(root, "the METS document of VO-UMT-14387")
    assert refused.value.exit_code == ExitCode.FILE_ERRORS
    assert "VO-UMT-14387 is not valid METS" in refused.value.one_line()
    assert "\n" not in refused.value.one_line()


def test_a_document_the_schema_refuses_is_never_rendered(monkeypatch) -> None:
    record = _record("BRD/VO-UMT-14387.mov")
    build = mets.build

    def broken(chosen: mets.AssetRecord) -> etree._Element:
        root = build(chosen)
        for structmap in root.findall("mets:structMap", NS):  # METS requires one
            root.remove(structmap)
        return root

    monkeypatch.setattr(mets, "build", broken)
    with pytest.raises(InternalError, match="structMap"):
        mets.render(record)
