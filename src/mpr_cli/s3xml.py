"""A ListObjectsV2 result page read straight from its XML: pure, no I/O.

botocore's generic, model-driven XML parser costs most of the CPU of a listing: about 20 ms
per 1000-key SeaweedFS page on the 2-core development machine, where this one (lxml, the
fields gathered by compiled XPath queries in C) takes 5-7 ms (bench/bench_listing.py,
`parse_per_page` in bench/results/listing-2026-12-01.json).
`Storage.list_page` hands the raw body of every successful ListObjectsV2 response here, after
botocore's own checks (signing, retries, the 200-with-an-error-body check) have run.

The records equal botocore's: keys and common prefixes are URL-decoded exactly as botocore's
`decode_list_object_v2` handler does (`unquote_plus`, only when the document says
`<EncodingType>url</EncodingType>`), ETags lose their quotes and timestamps are parsed as
`storage._parse_timestamp` parses them. Entities (`&amp;`, `&#34;`, `&#x..;`) are resolved by
the XML parser; DTDs, external entities and the network are never touched. Documents with and
without the S3 namespace are read alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from lxml import etree

from mpr_cli.errors import S3Unavailable
from mpr_cli.storage import ObjectInfo

_PARSER = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False,
                          remove_comments=True, remove_pis=True)
_HINT = "the S3 server answered with a broken listing: check its logs, then run again"


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: its objects and common prefixes in the server's order, and the
    continuation token of the next page (None on the last page)."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    next_token: str | None


@dataclass(slots=True)
class _Raw:
    """What the document holds, before decoding (the EncodingType may come last)."""

    contents: list[tuple[str, str, str, str]]  # key, size, etag, last modified
    prefixes: list[str]
    truncated: bool = False
    token: str | None = None
    encoding: str | None = None


def parse_list_page(body: bytes) -> ListPage:
    """The page a ListObjectsV2 response body describes; S3Unavailable for a body that is not
    a `<ListBucketResult>`, an entry without a key, a size that is not a number, or a
    truncated page without a continuation token (it would end the listing early)."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise S3Unavailable(f"S3 sent a listing that is not XML ({exc})", hint=_HINT) from exc
    namespace = _namespace(root.tag)
    if root.tag != namespace + "ListBucketResult":
        raise S3Unavailable(f"S3 sent {_local(root.tag)!r} where a ListBucketResult belongs",
                            hint=_HINT)
    raw = _read_fast(root, namespace[1:-1]) or _read(root, namespace)
    if raw.truncated and not raw.token:
        raise S3Unavailable("S3 sent a truncated listing page without a continuation token",
                            hint=_HINT)
    return _page(raw)


def _namespace(tag: str) -> str:
    """`{uri}` of a Clark-notation tag, "" for a tag without a namespace."""
    return tag[:tag.index("}") + 1] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag[tag.find("}") + 1:]


_FIELDS = ("Key", "Size", "ETag", "LastModified")


@functools.cache
def _queries(uri: str) -> tuple[etree.XPath, ...]:
    """Compiled XPath queries over a document in namespace `uri` ("" for none): each field of
    every Contents, the number of Contents, the prefixes, IsTruncated, the token, the encoding.
    XPath walks the tree in C: 0.4 ms a field per 1000 entries, where visiting the elements
    from Python costs 6 ms."""
    p = "s:" if uri else ""
    paths = [f"{p}Contents/{p}{name}/text()" for name in _FIELDS] + [
        f"count({p}Contents)", f"{p}CommonPrefixes/{p}Prefix/text()", f"string({p}IsTruncated)",
        f"string({p}NextContinuationToken)", f"string({p}EncodingType)"]
    spaces = {"s": uri} if uri else None
    return tuple(etree.XPath(path, namespaces=spaces, smart_strings=False) for path in paths)


def _read_fast(root: etree._Element, uri: str) -> _Raw | None:
    """The document's fields by XPath; None when the fields of the entries do not line up
    (a field missing, empty or split by a CDATA section): `_read` then reads entry by entry."""
    *fields, count, prefixes, truncated, token, encoding = (query(root) for query in
                                                            _queries(uri))
    if any(len(values) != count for values in fields):
        return None
    return _Raw(contents=list(zip(*fields, strict=True)), prefixes=list(prefixes),
                truncated=str(truncated).strip().lower() == "true", token=str(token) or None,
                encoding=str(encoding).strip())


def _read(root: etree._Element, ns: str) -> _Raw:
    raw = _Raw(contents=[], prefixes=[])
    contents, prefixes = ns + "Contents", ns + "CommonPrefixes"
    truncated, token, encoding = ns + "IsTruncated", ns + "NextContinuationToken", \
        ns + "EncodingType"
    for child in root:
        tag = child.tag
        if tag == contents:
            raw.contents.append(_entry(child, ns))
        elif tag == prefixes:
            raw.prefixes.extend(_texts(child, ns + "Prefix"))
        elif tag == truncated:
            raw.truncated = (child.text or "").strip().lower() == "true"
        elif tag == token:
            raw.token = child.text or None
        elif tag == encoding:
            raw.encoding = (child.text or "").strip()
    return raw


def _entry(element: etree._Element, ns: str) -> tuple[str, str, str, str]:
    """(key, size, etag, last modified) of one `<Contents>`, as text."""
    fields = {field.tag: field.text or "" for field in element}
    key = fields.get(ns + "Key")
    if not key:
        raise S3Unavailable("S3 sent a listing entry without a key", hint=_HINT)
    return (key, fields.get(ns + "Size", "0"), fields.get(ns + "ETag", ""),
            fields.get(ns + "LastModified", ""))


def _texts(element: etree._Element, tag: str) -> list[str]:
    return [child.text or "" for child in element if child.tag == tag]


def _page(raw: _Raw) -> ListPage:
    decode = _url_decoded if raw.encoding == "url" else _same
    objects = []
    for key, size, etag, modified in raw.contents:
        try:
            length = int(size)
        except ValueError as exc:
            raise S3Unavailable(f"S3 sent a listing entry whose size is {size!r}",
                                hint=_HINT) from exc
        objects.append(ObjectInfo(key=decode(key), size=length, etag=etag.strip('"'),
                                  last_modified=parse_timestamp(modified)))
    return ListPage(objects=objects, prefixes=[decode(prefix) for prefix in raw.prefixes],
                    next_token=raw.token if raw.truncated else None)


def _same(text: str) -> str:
    return text


def _url_decoded(text: str) -> str:
    """botocore's `unquote_str` (unquote_plus), skipped for the many keys it would not change."""
    return unquote_plus(text) if "%" in text or "+" in text else text


def parse_timestamp(value: str) -> datetime:
    """A listing's ISO 8601 LastModified (`2026-12-01T18:01:22.000Z`) as an aware datetime,
    the value `storage._parse_timestamp` gives botocore; S3Unavailable if it is not one."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise S3Unavailable(f"S3 sent a listing entry dated {value!r}", hint=_HINT) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
