"""A ListObjectsV2 result page read straight from its XML: pure, no I/O.

botocore's generic, model-driven XML parser costs most of the CPU of a listing (34 ms per
1000-key page on the development machine; this parser, lxml over the same bytes, 5 ms:
/tmp/task-lister/bench_parse.py, quoted in bench/results/listing-2026-12-01.json's note).
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
    raw = _read(root, namespace)
    if raw.truncated and not raw.token:
        raise S3Unavailable("S3 sent a truncated listing page without a continuation token",
                            hint=_HINT)
    return _page(raw)


def _namespace(tag: str) -> str:
    """`{uri}` of a Clark-notation tag, "" for a tag without a namespace."""
    return tag[:tag.index("}") + 1] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag[tag.find("}") + 1:]


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
    decode = unquote_plus if raw.encoding == "url" else _same
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


def parse_timestamp(value: str) -> datetime:
    """A listing's ISO 8601 LastModified (`2026-12-01T18:01:22.000Z`) as an aware datetime,
    the value `storage._parse_timestamp` gives botocore; S3Unavailable if it is not one."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise S3Unavailable(f"S3 sent a listing entry dated {value!r}", hint=_HINT) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
