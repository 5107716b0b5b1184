"""The HTML run page without services: every text escaped (a hostile key is text, never
markup), problems grouped by reason with a fix for every reason the import knows, the
pictures' limits (count and bytes) with a note saying what was left out."""

from __future__ import annotations

import base64
from typing import Any

import lxml.html
import pytest

from mpr_cli.htmlreport import fixes
from mpr_cli.htmlreport.gather import embed_pictures
from mpr_cli.htmlreport.model import AssetEntry, Image, Limits, TranscodeEntry, from_report
from mpr_cli.htmlreport.render import render
from mpr_cli.pictures import Picture, PictureKind
from mpr_cli.problems import Reason

HOSTILE_KEY = 'BRD/<script>alert("x")</script>&amp;\'q\x1b[31m\n<img src=x onerror=alert(1)>.mov'
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
                       "GAhKmMIQAAAABJRU5ErkJggg==")  # 1x1


def problem(key: str, reason: str, severity: str = "error", **extra: Any) -> dict[str, Any]:
    return {"key": key, "reason": reason, "severity": severity, "message": f"{key}: bad",
            "inventory_code": None, "phase": 1, **extra}


REPORT = {
    "command": "import", "run_id": 7, "run_key": "r-7", "status": "completed",
    "counts": {"listed": 5, "errors": 2, "warnings": 1},
    "durations_s": {"discover": 0.1},
    "problems": [problem(HOSTILE_KEY, "invalid_inventory_code"),
                 problem("BRD/VO-BAD-00001.mov", "checksum_mismatch", known=True),
                 problem("BRD/VO-SMP-00001.mov", "missing_qc_report", "warning")],
}


def parsed(document: str) -> Any:
    return lxml.html.document_fromstring(document)


def test_a_hostile_key_shows_as_text_and_injects_no_element() -> None:
    tree = parsed(render(from_report(REPORT)))

    assert tree.xpath("//script") == [] and tree.xpath("//img") == []
    assert tree.xpath("//*[@onerror]") == []
    keys = [td.text_content() for td in tree.xpath("//table[@class='problems']//td[@class='key']")]
    shown = '<script>alert("x")</script>&amp;\'q\\x1b[31m\\n<img src=x onerror=alert(1)>'
    assert f"BRD/{shown}.mov" in keys


def test_problems_are_grouped_by_reason_errors_first_with_their_fix() -> None:
    tree = parsed(render(from_report(REPORT)))

    rows = tree.xpath("//table[@id='problem-reasons']//tr[td]")
    reasons = [row.xpath("td[@class='reason']")[0].text_content() for row in rows]
    assert reasons == ["checksum_mismatch", "invalid_inventory_code", "missing_qc_report"]
    assert rows[0].xpath("td")[4].text_content() == fixes.fix_for("checksum_mismatch")
    assert [h.get("id") for h in tree.xpath("//h3")] == [f"reason-{r}" for r in reasons]
    seen = tree.xpath("//h3[@id='reason-checksum_mismatch']/following-sibling::table[1]//td")
    assert seen[-1].text_content() == "known"


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_its_own_fix(reason: Reason) -> None:
    assert fixes.fix_for(reason.value) != fixes.UNKNOWN_FIX


def test_an_unknown_reason_gets_the_general_fix_and_no_error() -> None:
    page = from_report({"problems": [problem("A.mov", "something_new")]})

    assert page.groups[0].fix == fixes.UNKNOWN_FIX
    assert "something_new" in render(page)


def test_a_run_without_a_stored_report_shows_its_row() -> None:
    row = {"id": 3, "command": "nightly", "status": "running", "counts": {"listed": 2},
           "run_key": "k", "mode": "normal", "started_at": None, "finished_at": None}
    page = from_report({}, row)
    tree = parsed(render(page))

    assert tree.xpath("//span[@id='status']")[0].text_content() == "running"
    assert "no stored report yet" in tree.text_content()


def test_a_transcode_shows_its_speed() -> None:
    page = from_report(REPORT)
    page.transcodes = [TranscodeEntry(1, "VO-1", "h264", "COMPLETED", "a.mov", "b.mp4",
                                      wall_s=5.0, media_s=60.0, error=None)]
    cells = [td.text_content() for td in parsed(render(page)).xpath(
        "//table[@id='transcodes']//td")]

    assert cells[:7] == ["1", "VO-1", "h264", "completed", "60.0 s", "5.0 s", "12.00x"]


class Pictures:
    """Stands in for S3 (Storage.read_bytes): what fetch_bytes asked for, and a PNG."""

    def __init__(self, missing: str = "") -> None:
        self.asked: list[str] = []
        self.missing = missing

    def read_bytes(self, bucket: str, key: str, max_bytes: int) -> bytes:
        from mpr_cli.errors import StorageError
        self.asked.append(key)
        if key == self.missing:
            raise StorageError(f"s3://{bucket}/{key} does not exist", key=key)
        return PNG


def assets(n: int) -> list[AssetEntry]:
    return [AssetEntry(i, f"AO-SMP-{i:05d}", "audio", f"DAT/AO-SMP-{i:05d}.wav", None,
                       picture=Picture(PictureKind.WAVEFORM, "out", f"t/{i}.png", "image/png",
                                       1, 1, len(PNG)))
            for i in range(n)]


def test_at_most_max_pictures_are_embedded_and_the_page_says_so() -> None:
    page = from_report(REPORT)
    page.assets, page.assets_total = assets(5), 5
    storage = Pictures()

    embed_pictures(page, storage, Limits(max_pictures=3), base_size=0)  # type: ignore[arg-type]
    tree = parsed(render(page))

    assert storage.asked == ["t/0.png", "t/1.png", "t/2.png"]
    sources = [img.get("src") for img in tree.xpath("//img")]
    assert sources == ["data:image/png;base64," + base64.b64encode(PNG).decode()] * 3
    assert "2 picture(s) left out: a page embeds at most 3" in tree.text_content()


def test_pictures_past_the_size_bound_are_left_out_and_a_missing_one_is_a_note() -> None:
    page = from_report(REPORT)
    page.assets, page.assets_total = assets(4), 4
    storage = Pictures(missing="t/0.png")
    one = len(PNG) * 4 // 3 + 200

    embed_pictures(page, storage, Limits(max_bytes=1000 + 2 * one), base_size=1000)  # type: ignore[arg-type]
    text = parsed(render(page)).text_content()

    assert [a.image is not None for a in page.assets] == [False, True, True, False]
    assert "picture not readable: s3://out/t/0.png does not exist" in text
    assert "1 picture(s) left out to keep this page under" in text


def test_a_picture_of_an_unexpected_type_is_not_embedded() -> None:
    page = from_report(REPORT)
    [entry] = assets(1)
    entry.image = Image("poster", 'text/html"><script>', b"<script>", 1, 1)
    page.assets, page.assets_total = [entry], 1

    tree = parsed(render(page))

    assert tree.xpath("//img") == [] and tree.xpath("//script") == []


def test_a_reason_shows_at_most_its_limit_of_rows_and_says_how_many_more() -> None:
    many = [problem(f"BRD/VO-BAD-{n:05d}.mov", "checksum_mismatch") for n in range(7)]
    tree = parsed(render(from_report({"problems": many}), problem_limit=5))

    keys = [td.text_content() for td in tree.xpath("//table[@class='problems']//td[@class='key']")]
    assert keys == [f"BRD/VO-BAD-{n:05d}.mov" for n in range(5)]
    assert "... and 2 more: see `mpr runs show` or the JSON report" in tree.text_content()
    assert tree.xpath("//table[@id='problem-reasons']//td[@class='num']")[0].text == "7"


def test_the_assets_past_the_listed_ones_are_counted() -> None:
    page = from_report(REPORT)
    page.assets, page.assets_total = assets(2), 5
    text = parsed(render(page)).text_content()

    assert "Assets imported (5)" in text and "... and 3 more assets" in text
