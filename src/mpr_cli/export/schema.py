"""The METS schema, loaded and used without any network access.

`metsrw` ships the METS 1.12 schema (metsrw/resources/mets.xsd). It imports the XLink namespace
from http://www.loc.gov/standards/xlink/xlink.xsd, which no machine here can reach (and an
archive's server may not either). `mets_schema()` parses mets.xsd with a parser that refuses
the network (`no_network=True`, no DTDs, no entities), points that import at the XLink schema
mpr ships (mpr_cli/schemas/xlink.xsd, XLink 1.1's attributes and the four attribute groups the
METS schema uses) and compiles it; an import or include the schema still names on the network
is refused (ConfigError: an installation problem, exit 2), so a newer metsrw with another
remote import fails loudly instead of waiting for a timeout. The compiled schema is cached for
the process.

PREMIS inside mdWrap/xmlData is, for the METS schema, `any` content checked laxly, but a lax
check still needs the type an xsi:type names (PREMIS 3 objects are abstract: a file is
`xsi:type="premis:file"`). The Library of Congress's PREMIS schema is as unreachable as its
XLink schema, so mpr ships its own schema of the part of PREMIS 3 it writes
(mpr_cli/schemas/premis-v3-mpr.xsd: object of type file, event, agent, in PREMIS 3's order and
cardinalities) and imports it beside mets.xsd: the PREMIS inside mpr's documents is validated
too, strictly, and anything mpr does not write is refused there.

`validate(root)` returns the schema's complaints, one line each (empty: valid);
`require_valid(root, what)` raises InternalError (exit 1, "report this as a bug": every text in
a document mpr builds is escaped by construction, so a document the schema refuses is mpr's
mistake) naming the document and the first complaint.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import metsrw
from lxml import etree

from mpr_cli.errors import ConfigError, InternalError

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XLINK_NS = "http://www.w3.org/1999/xlink"
PREMIS_NS = "http://www.loc.gov/premis/v3"
METS_XSD = Path(metsrw.__file__).resolve().parent / "resources" / "mets.xsd"


def shipped(name: str) -> Path:
    """A schema shipped with mpr (package data in mpr_cli/schemas)."""
    return Path(str(resources.files("mpr_cli") / "schemas" / name))


def xlink_xsd() -> Path:
    return shipped("xlink.xsd")


def premis_xsd() -> Path:
    return shipped("premis-v3-mpr.xsd")


def offline_parser() -> etree.XMLParser:
    """A parser that never reads the network, a DTD or an external entity."""
    return etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False,
                           huge_tree=False)


def _point_imports_home(tree: etree._ElementTree, local: dict[str, Path]) -> None:
    """Rewrite each xsd:import of a namespace in `local` to that file; refuse any other import
    or include whose schemaLocation is not a local file."""
    root = tree.getroot()
    for element in root.iterchildren(f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include",
                                     f"{{{XSD_NS}}}redefine"):
        namespace = element.get("namespace")
        if namespace in local:
            element.set("schemaLocation", local[namespace].as_uri())
            continue
        location = element.get("schemaLocation") or ""
        if "://" in location and not location.startswith("file://"):
            raise ConfigError(f"{METS_XSD} imports {location}, which mpr has no local copy of",
                              hint="install the metsrw version mpr was tested with")


def _import_premis(tree: etree._ElementTree) -> None:
    """Add an import of mpr's PREMIS 3 schema beside the METS schema's own imports."""
    element = etree.Element(f"{{{XSD_NS}}}import", namespace=PREMIS_NS,
                            schemaLocation=premis_xsd().as_uri())
    tree.getroot().insert(0, element)


@functools.cache
def mets_schema() -> etree.XMLSchema:
    """The METS schema with its XLink import resolved to mpr's own copy and mpr's PREMIS 3
    schema imported beside it (compiled once, cached)."""
    for needed in (METS_XSD, xlink_xsd(), premis_xsd()):
        if not needed.is_file():
            raise ConfigError(f"{needed} is missing", hint="reinstall mpr and metsrw")
    tree = etree.parse(str(METS_XSD), offline_parser())
    _point_imports_home(tree, {XLINK_NS: xlink_xsd()})
    _import_premis(tree)
    try:
        return etree.XMLSchema(tree)
    except etree.XMLSchemaParseError as exc:
        raise ConfigError(f"{METS_XSD} cannot be compiled offline: {exc}",
                          hint="reinstall mpr and metsrw") from exc


def validate(root: etree._Element | etree._ElementTree) -> list[str]:
    """The schema's complaints about a document, one line each; [] when it is valid."""
    schema = mets_schema()
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log] or ["invalid"]


def require_valid(root: etree._Element | etree._ElementTree, what: str) -> None:
    """Raise InternalError (naming `what` and the first complaint) unless `root` is valid."""
    errors = validate(root)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InternalError(ValueError(f"{what} is not valid METS: {errors[0]}{more}"))


def parse_file(path: Path) -> etree._ElementTree:
    """A written document read back offline (for checking what was written)."""
    return etree.parse(str(path), offline_parser())
