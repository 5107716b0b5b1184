"""`mpr report last --html` checked in a real browser, and the digest e-mail's HTML part.

A real import of the small sample (one good video and audio asset, the tape master, every bad
case, two masters awaiting transcode) plus one object whose key is hostile HTML; the pictures
the catalogue holds for the imported assets; then the page is opened in Debian's chromium,
headless, through chromedriver (selenium): it renders, every embedded picture decodes
(naturalWidth > 0), the problem table lists every reason of the run's report, the hostile key
is text (no element injected, nothing run). A screenshot of the whole page is kept beside
the test's files (and copied to $MPR_HTML_SCREENSHOT when set, to look at).

The digest: the same import with a local SMTP server (aiosmtpd) receives a message whose
text/plain part comes first and whose text/html part is the page, its pictures as related
parts named by the page's cid: references; the digest's page (htmlreport.page_for_report, read
from the catalogue) leaves out the pictures that would take it past its size, and says so.
Also: `--html -`, an unknown run, and a nightly's page listing its transcodes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from mpr_cli.dev.sample import SampleArchive
from mpr_cli.htmlreport import Limits, page_for_report, render
from mpr_cli.notify import DIGEST_HTML_MAX_BYTES
from tests.integration.archive import nightly_sample, query
from tests.integration.mail import smtp_server

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
HOSTILE_KEY = "BRD/<script>window.injected=1</script> & \"quoted\" 'x' <img src=x onerror=1>.mp4"
NOTIFY_TO = "archive@example.org"


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> SampleArchive:
    return nightly_sample(tmp_path_factory)


@pytest.fixture()
def browser() -> Iterator[Any]:
    """Headless chromium under chromedriver (no sandbox: the tests may run as root)."""
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("needs chromium and chromium-driver (scripts/bootstrap.sh installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def imported(small_archive: SampleArchive, upload, s3_admin, buckets, run_mpr,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """The sample and the hostile object uploaded, imported with pictures; the run's report."""
    upload(small_archive.root)
    s3_admin.put_object(Bucket=buckets[0], Key=HOSTILE_KEY, Body=b"not a video")
    result = run_mpr("import", "--report", "-", env=env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert HOSTILE_KEY in {p["key"] for p in report["problems"]}
    return report


def pictures_of(database_url: str) -> list[dict[str, Any]]:
    return query(database_url, "SELECT a.inventory_code, p.kind, p.key FROM asset_pictures p "
                               "JOIN assets a ON a.id = p.asset_id ORDER BY 1, 2")


def full_page_screenshot(driver: Any, target: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 100, 12000))
    target.write_bytes(driver.get_screenshot_as_png())
    if os.environ.get("MPR_HTML_SCREENSHOT"):
        shutil.copyfile(target, os.environ["MPR_HTML_SCREENSHOT"])


def test_the_html_report_renders_in_chromium_with_every_picture_and_reason(
        small_archive, upload, s3_admin, buckets, run_mpr, service_env, database_url,
        browser, tmp_path: Path) -> None:
    report = imported(small_archive, upload, s3_admin, buckets, run_mpr,
                      env={**service_env, "MPR_PICTURES": "on"})
    made = pictures_of(database_url)
    assert {p["kind"] for p in made} >= {"poster", "waveform"}, made
    page = tmp_path / "report.html"

    result = run_mpr("report", "last", "--html", str(page))

    assert result.returncode == 0, result.stderr
    browser.get(page.as_uri())
    assert browser.title.startswith(f"mpr import {report['run_key']}: completed")
    assert browser.execute_script(  # readable without scrolling sideways
        "return document.documentElement.scrollWidth <= window.innerWidth") is True
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    codes = {p["inventory_code"] for p in made}
    assert {alt.split(" of ")[1] for alt, _, _ in images} == codes, images
    assert all(complete and width > 0 for _, complete, width in images), images
    rows = browser.find_elements("css selector", "#problem-reasons td.reason")
    assert {r.text for r in rows} == {p["reason"] for p in report["problems"]}
    assert browser.find_elements("tag name", "script") == []
    assert browser.execute_script("return window.injected === undefined") is True
    keys = [cell.text for cell in browser.find_elements("css selector", "table.problems td.key")]
    assert HOSTILE_KEY in keys
    full_page_screenshot(browser, tmp_path / "report.png")


def test_report_html_to_stdout_and_an_unknown_run(run_mpr, small_archive, upload, s3_admin,
                                                  buckets) -> None:
    imported(small_archive, upload, s3_admin, buckets, run_mpr)

    shown = run_mpr("report", "last", "--html", "-")
    unknown = run_mpr("report", "no-such-run", "--html", "-")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("<!DOCTYPE html>") and "&lt;script&gt;" in shown.stdout
    assert "<script>" not in shown.stdout
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip() == "error: no run 'no-such-run' (see mpr runs list)"


def test_the_digest_carries_the_page_as_its_html_alternative(
        small_archive, upload, s3_admin, buckets, run_mpr, service_env, database_url) -> None:
    with smtp_server() as (port, mailbox):
        env = {**service_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
               "MPR_NOTIFY_TO": NOTIFY_TO, "MPR_NOTIFY_FROM": "mpr@example.org",
               "MPR_NOTIFY_ON": "problems", "MPR_PICTURES": "on"}
        report = imported(small_archive, upload, s3_admin, buckets, run_mpr, env=env)

    [received] = mailbox.messages
    message = received.message
    [alternative] = [p for p in message.walk()
                     if p.get_content_type() == "multipart/alternative"]
    first, second = alternative.iter_parts()
    assert first.get_content_type() == "text/plain"
    assert first.get_content().startswith(f"mpr import {report['run_key']}: completed")
    html_part = message.get_body(("html",))
    page = html_part.get_content()
    for reason in {p["reason"] for p in report["problems"]}:
        assert f'<td class="reason"><a href="#reason-{reason}">{reason}</a></td>' in page
    assert "&lt;script&gt;window.injected=1&lt;/script&gt;" in page and "<script" not in page
    related = list(second.iter_parts()) if second.is_multipart() else []
    pictures = {str(p["Content-ID"]).strip("<>"): p for p in related[1:]}
    assert len(pictures) == len({p["inventory_code"] for p in pictures_of(database_url)}) > 0
    assert all(f'src="cid:{cid}"' in page and part.get_content()
               for cid, part in pictures.items())


def test_a_nightlys_page_lists_its_transcodes_with_duration_and_speed(
        small_archive, upload, run_mpr, database_url, tmp_path: Path) -> None:
    upload(small_archive.root)
    night = run_mpr("nightly")
    assert night.returncode == 1, night.stderr

    shown = run_mpr("report", "last", "--html", "-")

    assert shown.returncode == 0, shown.stderr
    (tmp_path / "nightly.html").write_text(shown.stdout, encoding="utf-8")  # to look at
    tree = lxml.html.document_fromstring(shown.stdout)
    jobs = query(database_url, "SELECT id, inventory_code FROM transcode_jobs "
                               "WHERE status = 'COMPLETED' ORDER BY finished_at, id")
    rows = [[td.text_content() for td in tr.xpath("td")]
            for tr in tree.xpath("//table[@id='transcodes']//tr[td]")]
    assert [(int(r[0]), r[1], r[3]) for r in rows] == [
        (j["id"], j["inventory_code"], "completed") for j in jobs]
    assert len(jobs) == 2
    for row in rows:
        media, took, speed = row[4:7]
        assert media == "1.0 s" and took.endswith(" s") and speed.endswith("x"), row
        assert float(speed[:-1]) == pytest.approx(1.0 / float(took[:-2]), rel=0.1)


def test_the_digests_page_leaves_out_the_pictures_past_its_size_and_says_so(
        small_archive, upload, s3_admin, buckets, run_mpr, service_env, settings,
        database_url) -> None:
    report = imported(small_archive, upload, s3_admin, buckets, run_mpr,
                      env={**service_env, "MPR_PICTURES": "on"})
    made = {p["inventory_code"] for p in pictures_of(database_url)}
    roomy = page_for_report(settings, report, Limits(max_bytes=DIGEST_HTML_MAX_BYTES))
    bare = render(page_for_report(settings, report, Limits(max_pictures=0)))

    tight = page_for_report(settings, report, Limits(max_bytes=len(bare.encode())))

    assert {a.inventory_code for a in roomy.assets or [] if a.image} == made and made
    assert [a for a in tight.assets or [] if a.image] == []
    shown = lxml.html.document_fromstring(render(tight)).text_content()
    assert f"{len(made)} picture(s) left out to keep this page under" in shown
