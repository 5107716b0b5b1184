"""The concurrent lister (mpr_cli.listing) and Storage.list_page against a real SeaweedFS: the
same records in the same order as a plain boto3 paginator, hostile keys included; botocore's
retries still apply (SlowDown, a 200 with an error, a body cut short); failures are the usual
one-line StorageError / S3Unavailable."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from mpr_cli import listing
from mpr_cli.config import Settings, load_settings
from mpr_cli.dev.devservices import free_port
from mpr_cli.errors import S3Unavailable, StorageError
from mpr_cli.storage import Storage, make_client
from tests.integration.proxy import forwarder

pytestmark = pytest.mark.integration

FOLDERS = ("BRD", "CD", "DAT", "DVD", "FILE")
HOSTILE = ["BRD/a b.mov", "BRD/a+b.mov", "BRD/a&b.mov", "BRD/a<b>.mov", "BRD/q\"uote's.mov",
           "CD/été 日本.wav", "CD/%20literal.wav", "DAT/ctl\x01x.wav", "DAT/tab\there.wav",
           "DVD/semi;colon=eq?.mp4", "FILE/sub/", "FILE/sub/a b+c&d.wav",
           "FILE/deep/er/x.mov", "DVD/"]
ROOT = ["README.txt", "BRD-notes.txt", "BRD.txt", "BRD!", "zz last+1.txt", "été.txt"]
KEYS = ([f"{folder}/VO-{n:03d}{ext}" for folder in FOLDERS for n in range(8)
         for ext in (".mov", ".json")] + HOSTILE + ROOT)
PAGE = 7  # every folder takes more than one page

Record = tuple[str, int, str, datetime]


@pytest.fixture()
def seeded(s3_admin: Any, buckets: tuple[str, str]) -> str:
    bucket = buckets[0]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3_admin.put_object(Bucket=bucket, Key=key,
                                                      Body=key.encode()), KEYS))
    return bucket


def paginated(s3_admin: Any, bucket: str, prefix: str = "") -> list[Record]:
    """What a plain boto3 paginator lists, folder markers left out as mpr leaves them."""
    pages = s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [(o["Key"], o["Size"], o["ETag"].strip('"'), o["LastModified"])
            for page in pages for o in page.get("Contents", ()) if not o["Key"].endswith("/")]


def records(objects: Iterator[Any]) -> list[Record]:
    return [(o.key, o.size, o.etag, o.last_modified) for o in objects]


@pytest.mark.parametrize(("concurrency", "split"), [(5, True), (2, True), (1, True), (5, False)])
def test_the_listing_equals_the_boto3_paginator(settings: Settings, s3_admin: Any, seeded: str,
                                                concurrency: int, split: bool) -> None:
    storage = Storage(settings)
    expected = paginated(s3_admin, seeded)
    assert {key for key, *_ in expected} == {k for k in KEYS if not k.endswith("/")}
    got = records(listing.list_objects(storage, seeded, concurrency=concurrency, split=split,
                                       page_size=PAGE))
    assert got == expected
    assert records(storage.list_objects(seeded)) == expected  # the paginator is untouched


def test_a_prefix_is_listed_like_the_paginator_lists_it(settings: Settings, s3_admin: Any,
                                                        seeded: str) -> None:
    storage = Storage(settings)
    for prefix in ("FILE/", "BRD", "CD/é", "nothing-here/"):
        got = records(listing.list_objects(storage, seeded, prefix, concurrency=4,
                                           page_size=3))
        assert got == paginated(s3_admin, seeded, prefix), prefix


def test_list_page_pages_like_the_server(settings: Settings, seeded: str) -> None:
    storage = Storage(settings)
    first = storage.list_page(seeded, "", None, "/", max_keys=PAGE)
    assert first.next_token is not None
    assert len(first.objects) + len(first.prefixes) == PAGE
    everything: list[str] = []
    token = None
    while True:
        page = storage.list_page(seeded, "", token, "/", max_keys=PAGE)
        everything += [o.key for o in page.objects] + page.prefixes
        token = page.next_token
        if token is None:
            break
    assert sorted(everything) == sorted(ROOT + [f"{folder}/" for folder in FOLDERS])


def test_an_unknown_bucket_is_one_line_naming_it(settings: Settings) -> None:
    storage = Storage(settings)
    with pytest.raises(StorageError) as caught:
        list(listing.list_objects(storage, "no-such-bucket-mpr", concurrency=4))
    assert "bucket no-such-bucket-mpr does not exist" in caught.value.one_line()
    assert not isinstance(caught.value, S3Unavailable)


def fast_failing(settings: Settings, endpoint: str) -> Storage:
    changed = settings.model_copy(update={"s3_endpoint_url": endpoint})
    return Storage(changed, client=make_client(changed, connect_timeout=1, read_timeout=2,
                                               max_attempts=1))


def test_s3_unreachable_is_s3_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(env_file=None, s3_endpoint_url=endpoint,
                             aws_access_key_id="mprkey", aws_secret_access_key="s3cr3t-x")
    with pytest.raises(S3Unavailable) as caught:
        next(listing.list_objects(fast_failing(settings, endpoint), "b", concurrency=4))
    assert f"S3 unreachable at {endpoint}" in caught.value.one_line()
    assert "s3cr3t" not in caught.value.one_line()


def test_s3_gone_in_the_middle_stops_the_stream_where_it_failed(settings: Settings, s3_admin: Any,
                                                                seeded: str) -> None:
    def dat_second_page(data: bytes) -> bool:  # the fault at a chosen request, not a time
        return b"prefix=DAT%2F" in data and b"continuation-token=" in data

    expected = paginated(s3_admin, seeded)
    got: list[Record] = []
    with forwarder(settings.s3_endpoint_url or "", watch=dat_second_page) as proxy:
        storage = fast_failing(settings, f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(S3Unavailable) as caught:
            got += records(listing.list_objects(storage, seeded, concurrency=5,
                                                page_size=PAGE))
    assert "S3 unreachable at http://127.0.0.1:" in caught.value.one_line()
    assert got == expected[:len(got)]  # nothing skipped, nothing out of order
    assert len(got) < next(i for i, r in enumerate(expected) if r[0].startswith("DAT/")) + PAGE


class Faults:
    """botocore's before-send hook answering the first ListObjectsV2 requests itself (as a
    server would), then letting the real ones through."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if not self.answers:
            return None
        status, body = self.answers.pop(0)
        return AWSResponse(request.url, status, {"content-type": "application/xml"},
                           _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


SLOW_DOWN = (503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                  b"</Message></Error>")
ERROR_IN_200 = (200, b"<Error><Code>InternalError</Code><Message>We encountered an internal "
                     b"error.</Message></Error>")
CUT_SHORT = (200, b'<?xml version="1.0"?><ListBucketResult><Contents><Key>BR')


def faulty(settings: Settings, faults: Faults) -> Storage:
    client = make_client(settings, max_attempts=4)
    client.meta.events.register("before-send.s3.ListObjectsV2", faults)
    return Storage(settings, client=client)


@pytest.mark.parametrize("answer", [SLOW_DOWN, ERROR_IN_200, CUT_SHORT],
                         ids=["503 SlowDown", "200 with an error", "body cut short"])
def test_botocore_retries_a_listing_page(settings: Settings, seeded: str,
                                         answer: tuple[int, bytes]) -> None:
    faults = Faults(answer, answer)
    page = faulty(settings, faults).list_page(seeded, "BRD/", max_keys=PAGE)
    assert faults.sent == 3  # two faults, then the real page
    assert [o.key for o in page.objects] == [
        key for key, *_ in paginated(faulty(settings, Faults()).client, seeded, "BRD/")][:PAGE]


def test_slow_down_on_every_attempt_is_s3_unavailable_naming_the_bucket(
        settings: Settings, seeded: str) -> None:
    faults = Faults(*[SLOW_DOWN] * 5)  # max_attempts=4 retries: five requests
    with pytest.raises(S3Unavailable) as caught:
        list(listing.list_objects(faulty(settings, faults), seeded, concurrency=1))
    assert faults.sent == 5
    line = caught.value.one_line()
    assert f"bucket {seeded}" in line and "SlowDown" in line


def test_other_operations_keep_botocores_parse(settings: Settings, seeded: str) -> None:
    storage = Storage(settings)
    storage.list_page(seeded, "CD/", max_keys=2)
    reply: dict[str, Any] = storage.client.list_objects_v2(Bucket=seeded, Prefix="CD/",
                                                           MaxKeys=2)
    assert "MprPage" not in reply and len(reply["Contents"]) == 2
    assert storage.head(seeded, "CD/été 日本.wav") is not None
