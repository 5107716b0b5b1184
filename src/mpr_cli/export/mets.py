"""One asset as a METS document with PREMIS 3 inside (`mpr export mets`).

`load_asset` reads an asset from the catalogue (its files with size, MD5, ETag and MIME type,
and every event recorded for it, mpr_cli.events); `build` makes the document with metsrw:

- the METS root has OBJID = the inventory code and a metsHdr naming mpr as its creator;
- one fileSec fileGrp per role (USE = master, streaming, metadata, checksum, qc_report), one
  mets:file per catalogued file (CHECKSUM = its MD5) with an FLocat whose xlink:href is the
  object's S3 URL, `s3://<bucket>/<key>` with the key percent-encoded (RFC 3986, `/` kept), so
  any key gives a valid URI and decodes back to itself;
- each file's amdSec holds its PREMIS object (techMD) and its events and their agents
  (digiprovMD); the one (physical) structMap is a div for the asset with a div per file; a
  copy mpr made shares its master's GROUPID;
- the PREMIS object: identifiers (a UUID derived from the S3 URL, uuid5, so every export
  names the file alike, and the URL itself), fixity (MD5), size, format (the MIME type, or
  "unknown"), for a copy mpr made the creating application (mpr and the preset) and a
  derivation relationship to the master, originalName (the key), storage (the URL), and an
  extension in mpr's namespace (`EXTENSION_NS`) with bucket, key, ETag, role, whether the
  object is in the bucket and since when it is missing;
- each event: its UUID, PREMIS 3 type, time, detail, outcome (with the run and the ETag it
  saw), the agent (`mpr <version> on <host>`, identifier type "preservation system") and the
  object it concerns. An event of a key the asset no longer has a file at (a file since
  removed from the catalogue) is kept, on the asset's div.

Every text from keys and metadata reaches the document through lxml (escaped by
construction); characters XML 1.0 cannot hold are written as visible escapes
(mpr_cli.display.for_xml). `render` builds, validates against the METS schema offline
(schema.py) and serializes: an invalid document is an error, never returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote
from uuid import NAMESPACE_URL, UUID, uuid5

import metsrw
import psycopg
from lxml import etree
from metsrw.plugins import premisrw

from mpr_cli import __version__, db, events
from mpr_cli.display import for_xml
from mpr_cli.export import schema

PREMIS = premisrw.PREMIS_3_0_VERSION
PREMIS_META = premisrw.PREMIS_3_0_META
EXTENSION_NS = "urn:x-mpr:premis-extension:1"
ROLE_ORDER = ("master", "streaming", "metadata", "checksum", "qc_report")
_AGENT = re.compile(r"^(?P<name>\S+) (?P<version>\S+) on (?P<host>.+)$")
_METS = "{http://www.loc.gov/METS/}"


@dataclass(frozen=True)
class CataloguedFile:
    """One file of the asset as the catalogue records it."""

    bucket: str
    key: str
    role: str
    in_bucket: bool
    size: int | None
    etag: str | None
    md5: str | None
    mime_type: str | None
    preset: str | None
    created_at: datetime
    missing_since: datetime | None

    @property
    def url(self) -> str:
        return s3_url(self.bucket, self.key)

    @property
    def object_uuid(self) -> UUID:
        return uuid5(NAMESPACE_URL, self.url)


@dataclass(frozen=True)
class AssetRecord:
    """What one METS document describes: the asset, its files and its events."""

    asset_id: int
    inventory_code: str
    media_type: str
    created_at: datetime
    files: tuple[CataloguedFile, ...]
    events: tuple[events.Event, ...]

    @property
    def master(self) -> CataloguedFile | None:
        return next((f for f in self.files if f.role == "master"), None)

    @property
    def folder(self) -> str:
        """The folder of the master's key ("" at the top): where transcodes put the asset's
        streaming copy in the output bucket (`<folder>/<code><ext>`), and the METS document."""
        anchor = self.master or (self.files[0] if self.files else None)
        parent = str(PurePosixPath(anchor.key).parent) if anchor is not None else "."
        return "" if parent == "." else parent

    @property
    def mets_key(self) -> str:
        """`<folder>/<code>.mets.xml`: beside the asset's outputs in the output bucket."""
        name = f"{self.inventory_code}.mets.xml"
        return f"{self.folder}/{name}" if self.folder else name


def s3_url(bucket: str, key: str) -> str:
    """`s3://bucket/key` with the key percent-encoded: a valid URI for any key."""
    return f"s3://{bucket}/{quote(key, safe='/')}"


# -- the catalogue -----------------------------------------------------------------------------


def load_asset(conn: psycopg.Connection[Any], code: str) -> AssetRecord | None:
    """The asset of an inventory code with its files and events; None when not catalogued."""
    row = conn.execute(db.query("mets_asset"), {"code": code}).fetchone()
    if row is None:
        return None
    files = conn.execute(db.query("mets_files_of_asset"), {"asset_id": row["id"]}).fetchall()
    return AssetRecord(row["id"], row["inventory_code"], row["media_type"], row["created_at"],
                       tuple(_file(f) for f in files),
                       tuple(events.for_asset(conn, row["id"])))


def _file(row: dict[str, Any]) -> CataloguedFile:
    return CataloguedFile(row["bucket"], row["key"], row["role"], row["in_bucket"],
                          row["size"], row["etag"], row["md5"], row["mime_type"],
                          row["preset"], row["created_at"], row["missing_since"])


def codes_under(conn: psycopg.Connection[Any], prefix: str) -> list[str]:
    """The inventory codes of every asset with a file whose key starts with `prefix`."""
    rows = conn.execute(db.query("mets_assets_under_prefix"), {"prefix": prefix}).fetchall()
    return [r["inventory_code"] for r in rows]


# -- PREMIS ------------------------------------------------------------------------------------


def _extension(f: CataloguedFile) -> etree._Element:
    """mpr's own facts about the object: where it is, its ETag, its role."""
    root = etree.Element(f"{{{EXTENSION_NS}}}s3Object", nsmap={"mpr": EXTENSION_NS})
    facts = [("bucket", f.bucket), ("key", f.key), ("etag", f.etag),
             ("role", f.role), ("inBucket", "true" if f.in_bucket else "false"),
             ("missingSince", f.missing_since.isoformat() if f.missing_since else None)]
    for name, value in facts:
        if value is not None:
            etree.SubElement(root, f"{{{EXTENSION_NS}}}{name}").text = for_xml(value)
    return root


def _characteristics(f: CataloguedFile) -> tuple[Any, ...]:
    parts: list[Any] = ["object_characteristics", ("composition_level", "0")]
    if f.md5:
        parts.append(("fixity", ("message_digest_algorithm", "MD5"), ("message_digest", f.md5)))
    if f.size is not None:
        parts.append(("size", str(f.size)))
    parts.append(("format", ("format_designation",
                             ("format_name", for_xml(f.mime_type or "unknown")))))
    if f.preset:
        parts.append(("creating_application",
                      ("creating_application_name", for_xml(f"mpr, ffmpeg preset {f.preset}")),
                      ("date_created_by_application", f.created_at.isoformat())))
    parts.append(("object_characteristics_extension", _extension(f)))
    return tuple(parts)


def premis_object(f: CataloguedFile, master: CataloguedFile | None) -> premisrw.PREMISObject:
    """The PREMIS 3 object of one file (see the module's docstring)."""
    data: list[Any] = [
        "object", {**PREMIS_META, "xsi:type": "premis:file"},
        ("object_identifier", ("object_identifier_type", "UUID"),
         ("object_identifier_value", str(f.object_uuid))),
        ("object_identifier", ("object_identifier_type", "URI"),
         ("object_identifier_value", f.url)),
        _characteristics(f),
        ("original_name", for_xml(f.key)),
        ("storage", ("content_location", ("content_location_type", "URI"),
                     ("content_location_value", f.url))),
    ]
    if f.preset and master is not None:
        data.append(("relationship", ("relationship_type", "derivation"),
                     ("relationship_sub_type", "has source"),
                     ("related_object_identifier", ("related_object_identifier_type", "UUID"),
                      ("related_object_identifier_value", str(master.object_uuid)))))
    return premisrw.PREMISObject(data=tuple(data))


def premis_event(event: events.Event) -> premisrw.PREMISEvent:
    """The PREMIS 3 event of one recorded event, linked to its agent and its object."""
    notes = [f"run {event.run_key}" if event.run_key else None,
             f"object ETag {event.etag}" if event.etag else None]
    outcome: list[Any] = ["event_outcome_information", ("event_outcome", event.outcome.value)]
    if any(notes):
        outcome.append(("event_outcome_detail", ("event_outcome_detail_note",
                                                 for_xml("; ".join(n for n in notes if n)))))
    return premisrw.PREMISEvent(data=(
        "event", PREMIS_META,
        ("event_identifier", ("event_identifier_type", "UUID"),
         ("event_identifier_value", str(event.event_uuid))),
        ("event_type", event.event_type.value),
        ("event_date_time", event.occurred_at.isoformat()),
        ("event_detail_information", ("event_detail", for_xml(event.detail))),
        tuple(outcome),
        ("linking_agent_identifier", ("linking_agent_identifier_type", "preservation system"),
         ("linking_agent_identifier_value", for_xml(event.agent)),
         ("linking_agent_role", "executing program")),
        ("linking_object_identifier", ("linking_object_identifier_type", "UUID"),
         ("linking_object_identifier_value",
          str(uuid5(NAMESPACE_URL, s3_url(event.bucket, event.key))))),
    ))


def premis_agent(agent: str) -> premisrw.PREMISAgent:
    """The software agent `mpr <version> on <host>` (identified by that whole text)."""
    found = _AGENT.match(agent)
    data: list[Any] = ["agent", PREMIS_META,
                       ("agent_identifier", ("agent_identifier_type", "preservation system"),
                        ("agent_identifier_value", for_xml(agent))),
                       ("agent_name", for_xml(found["name"] if found else agent)),
                       ("agent_type", "software")]
    if found:
        data += [("agent_version", for_xml(found["version"])),
                 ("agent_note", for_xml(f"host {found['host']}"))]
    return premisrw.PREMISAgent(data=tuple(data))


# -- METS --------------------------------------------------------------------------------------


def _file_entry(f: CataloguedFile, master: CataloguedFile | None) -> metsrw.FSEntry:
    entry = metsrw.FSEntry(label=for_xml(PurePosixPath(f.key).name), use=f.role, type="Item",
                           file_uuid=str(f.object_uuid), checksum=f.md5,
                           checksumtype="MD5" if f.md5 else None)
    entry.add_premis_object(premis_object(f, master))
    return entry


def _add_events(entry: metsrw.FSEntry, chosen: list[events.Event]) -> None:
    for event in chosen:
        entry.add_premis_event(premis_event(event))
    for agent in dict.fromkeys(e.agent for e in chosen):
        entry.add_premis_agent(premis_agent(agent))


def _document(record: AssetRecord) -> metsrw.METSDocument:
    master = record.master
    entries = {(f.bucket, f.key): _file_entry(f, master) for f in record.files}
    if master is not None:  # a copy mpr made shares its master's GROUPID
        for f in record.files:
            if f.preset:
                entries[(f.bucket, f.key)].derived_from = entries[(master.bucket, master.key)]
    asset = metsrw.FSEntry.dir(record.inventory_code, list(entries.values()))
    placed: dict[tuple[str, str], list[events.Event]] = {place: [] for place in entries}
    orphans: list[events.Event] = []  # of keys the asset has no file at any more
    for event in record.events:
        placed.get((event.bucket, event.key), orphans).append(event)
    for place, entry in entries.items():
        _add_events(entry, placed[place])
    _add_events(asset, orphans)
    document = metsrw.METSDocument()
    document.objid = record.inventory_code
    document.agents.append(metsrw.Agent("CREATOR", type="SOFTWARE", name=f"mpr {__version__}"))
    document.append_file(asset)
    return document


def _locate_and_order(root: etree._Element, record: AssetRecord) -> None:
    """Each mets:file gets its FLocat (the S3 URL); fileGrps and files in catalogue order
    (metsrw orders them by a set's iteration)."""
    order = {f"file-{f.object_uuid}": i for i, f in enumerate(record.files)}
    by_id = {f"file-{f.object_uuid}": f for f in record.files}
    filesec = root.find(f"{_METS}fileSec")
    assert filesec is not None
    for group in filesec:
        for element in group:
            flocat = etree.SubElement(element, f"{_METS}FLocat", LOCTYPE="URL")
            flocat.set("{http://www.w3.org/1999/xlink}href", by_id[element.get("ID")].url)
        group[:] = sorted(group, key=lambda e: order[e.get("ID")])
    filesec[:] = sorted(filesec, key=lambda g: ROLE_ORDER.index(g.get("USE"))
                        if g.get("USE") in ROLE_ORDER else len(ROLE_ORDER))


def build(record: AssetRecord) -> etree._Element:
    """The METS document of `record` (not yet validated)."""
    root: etree._Element = _document(record).serialize(normative_structmap=False)
    _locate_and_order(root, record)
    for structmap in root.iterfind(f"{_METS}structMap"):
        structmap.set("LABEL", "mpr catalogue")  # metsrw's default names Archivematica
    return root


def render(record: AssetRecord) -> bytes:
    """The document as UTF-8 bytes with an XML declaration, validated against the METS schema
    first (InternalError when the schema refuses it: nothing is returned)."""
    root = build(record)
    schema.require_valid(root, f"the METS document of {record.inventory_code}")
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                 pretty_print=True)
    return data
