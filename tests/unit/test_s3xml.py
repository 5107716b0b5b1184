"""s3xml.parse_list_page: a ListObjectsV2 body read into the records botocore's parser gives
(same keys, sizes, ETags, timestamps), entities and URL-encoding decoded, broken pages refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import botocore.session
import pytest
from botocore.handlers import decode_list_object_v2
from botocore.parsers import ResponseParserFactory

from mpr_cli import storage
from mpr_cli.errors import S3Unavailable
from mpr_cli.s3xml import parse_list_page
from mpr_cli.storage import ObjectInfo

NS = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
STAMP = "2026-12-01T18:01:22.000Z"


def contents(key: str, size: int = 1, etag: str = "&#34;c4ca4238a0b923820dcc509a6f75849b&#34;",
             stamp: str = STAMP) -> str:
    return (f"<Contents><Key>{key}</Key><LastModified>{stamp}</LastModified><ETag>{etag}</ETag>"
            f"<Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>")


def document(*parts: str, ns: str = NS, truncated: bool = False, token: str | None = None,
             encoding: str | None = "url") -> bytes:
    tail = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    tail += f"<EncodingType>{encoding}</EncodingType>" if encoding else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult{ns}><Name>b</Name>'
            f"<Prefix></Prefix><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            + "".join(parts) + tail + "</ListBucketResult>").encode()


def botocore_records(body: bytes) -> tuple[list[ObjectInfo], list[str], str | None]:
    """What Storage.list_objects makes of the same body: botocore's parser with mpr's
    timestamp parser, then botocore's decode handler (EncodingType set by botocore)."""
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("ListObjectsV2").output_shape
    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=storage._parse_timestamp)
    parsed = factory.create_parser("rest-xml").parse(
        {"body": body, "headers": {}, "status_code": 200}, shape)
    decode_list_object_v2(parsed, {"encoding_type_auto_set": True})
    objects = [ObjectInfo(o["Key"], o["Size"], o.get("ETag", "").strip('"'), o["LastModified"])
               for o in parsed.get("Contents", ())]
    prefixes = [p["Prefix"] for p in parsed.get("CommonPrefixes", ())]
    token = parsed.get("NextContinuationToken") if parsed.get("IsTruncated") else None
    return objects, prefixes, token


def records(body: bytes) -> tuple[list[ObjectInfo], list[str], str | None]:
    page = parse_list_page(body)
    return page.objects, page.prefixes, page.next_token


HOSTILE = [  # (as sent with EncodingType=url, the key)
    ("a%2Bb+c%26d%3Ce%27%22f", "a+b c&d<e'\"f"),
    ("%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.mov", "été/日本.mov"),
    ("ctl%01x", "ctl\x01x"),
    ("z%2520", "z%20"),
    ("BRD/with%20space+and+plus%2B.mov", "BRD/with space and plus+.mov"),
]


@pytest.mark.parametrize(("sent", "key"), HOSTILE)
def test_url_encoded_keys_are_decoded_as_botocore_decodes_them(sent: str, key: str) -> None:
    body = document(contents(sent))
    assert records(body) == botocore_records(body)
    assert records(body)[0][0].key == key


def test_a_page_gives_the_same_records_as_botocore() -> None:
    body = document(*(contents(f"BRD/ABC{i:04d}.mov", size=i) for i in range(50)),
                    contents("BRD/m", etag="&#34;0123456789abcdef0123456789abcdef-3&#34;"),
                    truncated=True, token="tok&amp;1/2")
    objects, prefixes, token = records(body)
    assert (objects, prefixes, token) == botocore_records(body)
    assert objects[7] == ObjectInfo("BRD/ABC0007.mov", 7, "c4ca4238a0b923820dcc509a6f75849b",
                                    datetime(2026, 12, 1, 18, 1, 22, tzinfo=UTC))
    assert objects[-1].etag == "0123456789abcdef0123456789abcdef-3"
    assert token == "tok&1/2"  # the token is opaque: entities resolved, never URL-decoded


def test_entities_in_a_document_without_url_encoding() -> None:
    body = document(contents("a&amp;b&lt;c&gt;&#x00E9;&#233;&quot;&apos;"), encoding=None)
    assert records(body)[0][0].key == "a&b<c>éé\"'"
    assert records(body) == botocore_records(body)


def test_keys_are_not_decoded_when_the_server_did_not_encode_them() -> None:
    body = document(contents("a%2Bb+c"), encoding=None)
    assert records(body)[0][0].key == "a%2Bb+c"
    assert records(body) == botocore_records(body)


def test_raw_unicode_keys() -> None:
    body = document(contents("日本/été ü.wav"), encoding=None)
    assert records(body)[0][0].key == "日本/été ü.wav"


def test_an_empty_result() -> None:
    assert records(document()) == ([], [], None)
    assert records(document(ns="")) == ([], [], None)


def test_common_prefixes_only() -> None:
    body = document("<CommonPrefixes><Prefix>BRD/</Prefix></CommonPrefixes>"
                    "<CommonPrefixes><Prefix>%C3%A9+x/</Prefix></CommonPrefixes>")
    assert records(body) == ([], ["BRD/", "é x/"], None)
    assert records(body) == botocore_records(body)


def test_namespaced_and_plain_documents_read_alike() -> None:
    parts = (contents("a"), contents("b", size=5),
             "<CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>")
    with_ns = document(*parts, truncated=True, token="t")
    without = document(*parts, ns="", truncated=True, token="t")
    assert records(with_ns) == records(without) == botocore_records(with_ns)
    assert [o.key for o in records(without)[0]] == ["a", "b"]


def test_a_page_that_is_not_truncated_has_no_next_token() -> None:
    assert records(document(contents("a"), truncated=False, token="stale"))[2] is None


@pytest.mark.parametrize("body", [
    b"<ListBucketResult><Contents><Key>a</Key>",  # cut off
    b"not xml at all",
    b"<Error><Code>SlowDown</Code></Error>",  # not a listing
    document(contents("a"), truncated=True),  # truncated without a token: would end early
    document(contents("a", size="x")),  # type: ignore[arg-type]
    document(contents("a", stamp="yesterday")),
    document("<Contents><Size>1</Size></Contents>"),  # no key
])
def test_a_broken_page_is_refused_never_cut_short(body: bytes) -> None:
    with pytest.raises(S3Unavailable, match="S3 sent"):
        parse_list_page(body)


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    body = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
            f"<ListBucketResult{NS}><Contents><Key>k&x;</Key><Size>1</Size>"
            f"<LastModified>{STAMP}</LastModified></Contents></ListBucketResult>").encode()
    try:
        page = parse_list_page(body)
    except S3Unavailable:
        return
    assert "SECRET" not in page.objects[0].key


def test_entries_whose_fields_do_not_line_up_are_read_one_by_one() -> None:
    body = document(contents("a"),
                    f"<Contents><Key>b</Key><Size>2</Size><LastModified>{STAMP}</LastModified>"
                    "</Contents>",  # no ETag
                    contents("c<![CDATA[&d]]>e"), contents("f", etag=""), encoding=None)
    objects = records(body)[0]
    assert [(o.key, o.etag) for o in objects] == [
        ("a", "c4ca4238a0b923820dcc509a6f75849b"), ("b", ""),
        ("c&de", "c4ca4238a0b923820dcc509a6f75849b"), ("f", "")]
    assert records(body) == botocore_records(body)
