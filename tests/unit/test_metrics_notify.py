"""Pure parts of the nightly outputs: the Prometheus text and the e-mail policy and digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mpr_cli.config import NotifyOn, Settings, load_settings
from mpr_cli.htmlreport.model import AssetEntry, Image, from_report
from mpr_cli.metrics import LAST_SUCCESS, previous_success, render, write_metrics
from mpr_cli.notify import KEYS_PER_REASON, build_message, digest_text, should_send

NOW = 1_795_415_042.625  # a realistic epoch with a fraction (2026)
BEFORE = 1_795_300_000.5


def problem(key: str, reason: str, severity: str = "error") -> dict[str, Any]:
    return {"key": key, "inventory_code": None, "phase": 3, "severity": severity,
            "reason": reason, "message": f"{reason} in {key}"}


def report(*, errors: int = 0, warnings: int = 0, failed_jobs: int = 0,
           problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    jobs = {"COMPLETED": 2, **({"FAILED": failed_jobs} if failed_jobs else {})}
    return {
        "command": "nightly", "run_id": 7, "run_key": "20260101T000000-abcdef",
        "dry_run": False, "status": "completed", "message": "",
        "counts": {"listed": 1_234_567, "excluded": 3, "rejected": 2, "skipped": 0,
                   "accepted": 1_234_562, "inserted_assets": 4, "inserted_files": 20,
                   "errors": errors, "warnings": warnings, "bytes_verified": 52_428_800_123},
        "durations_s": {"discover": 0.25, "ingest": 12.5, "transcode": 30.125, "total": 43.0},
        "problems": problems or [],
        "transcode": {"created": 2 + failed_jobs, "jobs": jobs, "failures": [], "message": ""},
    }


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# -- metrics.render -------------------------------------------------------------------------------


def test_render_parses_with_every_family() -> None:
    data = report(errors=2, warnings=1, problems=[problem("a", "checksum_mismatch"),
                                                  problem("b", "checksum_mismatch"),
                                                  problem("c", "missing_qc_report", "warning")])
    found = samples(render(data, success=False, exit_code=1, last_success=BEFORE, now=NOW))
    assert found[("mpr_files", (("outcome", "excluded"),))] == 3
    assert found[("mpr_problems", (("reason", "checksum_mismatch"),))] == 2
    assert found[("mpr_problems", (("reason", "missing_qc_report"),))] == 1
    assert found[("mpr_phase_duration_seconds", (("phase", "transcode"),))] == 30.125
    assert found[("mpr_transcode_jobs", (("status", "COMPLETED"),))] == 2
    assert found[("mpr_last_run_exit_code", ())] == 1
    kinds = {f.name: f.type for f in text_string_to_metric_families(
        render(data, success=False, exit_code=1, last_success=BEFORE, now=NOW))}
    assert set(kinds.values()) == {"gauge"}


def test_render_keeps_last_success_on_failure() -> None:
    succeeded = samples(render(report(), success=True, exit_code=0, last_success=None,
                               now=BEFORE))[(LAST_SUCCESS, ())]
    failed = samples(render(report(errors=1), success=False, exit_code=1,
                            last_success=succeeded, now=NOW))
    assert failed[(LAST_SUCCESS, ())] == succeeded
    assert failed[("mpr_last_run_exit_code", ())] == 1
    never = samples(render(report(errors=1), success=False, exit_code=4, last_success=None,
                           now=NOW))
    assert never[(LAST_SUCCESS, ())] == 0  # never succeeded: 0, so an alert on its age fires


def test_write_metrics_carries_last_success_over_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "mpr.prom"
    write_metrics(path, report(), success=True, exit_code=0)
    kept = [line for line in path.read_text().splitlines() if line.startswith(LAST_SUCCESS)]
    assert len(kept) == 1 and previous_success(path) is not None
    write_metrics(path, report(errors=1), success=False, exit_code=1)
    assert [line for line in path.read_text().splitlines()
            if line.startswith(LAST_SUCCESS)] == kept
    assert samples(path.read_text())[("mpr_last_run_exit_code", ())] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["mpr.prom"]


def test_render_moves_last_success_to_now_on_success() -> None:
    """Exact, fraction included: two runs minutes apart must not share one value."""
    found = samples(render(report(), success=True, exit_code=0, last_success=BEFORE, now=NOW))
    assert found[(LAST_SUCCESS, ())] == NOW
    assert found[("mpr_last_run_timestamp_seconds", ())] == NOW


def test_render_keeps_large_values_exact() -> None:
    found = samples(render(report(), success=True, exit_code=0, last_success=None, now=NOW))
    assert found[("mpr_files", (("outcome", "listed"),))] == 1_234_567
    assert found[("mpr_bytes_verified", ())] == 52_428_800_123


# -- notify.should_send ---------------------------------------------------------------------------


def settings(notify_on: NotifyOn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"smtp_host": "127.0.0.1", "notify_to": ("ops@example.org",),
                              "notify_on": notify_on, **overrides}
    return load_settings(env_file=None, **values)


@pytest.mark.parametrize(("data", "exit_code"), [
    (report(), 0), (report(warnings=1), 0), (report(errors=3), 1),
    (report(failed_jobs=1), 1), (report(), 4),
])
def test_should_send_always_and_never(data: dict[str, Any], exit_code: int) -> None:
    assert should_send(settings(NotifyOn.ALWAYS), data, exit_code) is True
    assert should_send(settings(NotifyOn.NEVER), data, exit_code) is False


@pytest.mark.parametrize(("data", "exit_code", "expected"), [
    (report(), 0, False),
    (report(warnings=1), 0, True),
    (report(errors=3), 1, True),
    (report(failed_jobs=1), 0, True),
    (report(), 4, True),  # the run failed before counting anything
])
def test_should_send_problems(data: dict[str, Any], exit_code: int, expected: bool) -> None:
    assert should_send(settings(NotifyOn.PROBLEMS), data, exit_code) is expected


def test_should_send_needs_a_server_and_a_recipient() -> None:
    data = report(errors=1)
    assert should_send(settings(NotifyOn.ALWAYS, smtp_host=None), data, 1) is False
    assert should_send(settings(NotifyOn.ALWAYS, notify_to=()), data, 1) is False


# -- notify.digest_text ---------------------------------------------------------------------------


def test_digest_groups_problems_by_reason_at_most_five_keys_each() -> None:
    many = [problem(f"BRD/VO-BAD-{n:05d}.mp4", "checksum_mismatch") for n in range(1, 8)]
    few = [problem("CD/AO-BAD-00011.wav", "missing_qc_report", "warning"),
           problem("CD/AO-BAD-00012.wav", "missing_qc_report", "warning")]
    text = digest_text(report(errors=7, warnings=2, problems=many + few), 1)
    lines = text.splitlines()
    start = lines.index("Problems by reason")
    block = lines[start + 1:lines.index("", start)]
    assert KEYS_PER_REASON == 5
    assert block == [
        "checksum_mismatch (error): 7",
        *(f"    BRD/VO-BAD-{n:05d}.mp4" for n in range(1, 6)),
        "    ... and 2 more (see the attached report)",
        "missing_qc_report (warning): 2",
        "    CD/AO-BAD-00011.wav",
        "    CD/AO-BAD-00012.wav",
    ]
    assert "BRD/VO-BAD-00006.mp4" not in text
    assert lines[0].startswith("mpr nightly ") and lines[0].endswith(": completed (exit code 1)")
    assert "    errors           7" in lines and "    warnings         2" in lines


def test_digest_without_problems() -> None:
    lines = digest_text(report(), 0).splitlines()
    assert lines[lines.index("Problems by reason") + 1] == "no problems"


def test_digest_names_a_dry_run_by_its_run_key() -> None:
    """A dry run has no import_runs row (run_id None): the header must still name the run, by
    the run key its log lines carry, and never print "None"."""
    data = {**report(), "dry_run": True, "run_id": None}
    header = digest_text(data, 0).splitlines()[0]
    assert "None" not in header
    assert data["run_key"] in header


def test_digest_shows_control_characters_in_keys_and_messages_as_escapes() -> None:
    """A key can hold a newline or an ESC: in the e-mail it never forges a line of its own."""
    forged = "BRD/VO-BAD-00001.mp4\nchecksum_mismatch (error): 0\x1b[2J"
    data = {**report(errors=1, problems=[problem(forged, "invalid_key")]),
            "message": "S3 said:\r\nall good"}
    lines = digest_text(data, 1).splitlines()

    assert "    BRD/VO-BAD-00001.mp4\\nchecksum_mismatch (error): 0\\x1b[2J" in lines
    assert "checksum_mismatch (error): 0" not in lines
    assert "S3 said:\\r\\nall good" in lines
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_log_line_of_a_hostile_key_stays_one_line(tmp_path: Path) -> None:
    from mpr_cli.runlog import configure

    log_file = tmp_path / "mpr.log"
    logger = configure("run-1", [], log_file=log_file, stream=False)
    logger.warning("skipped %s", "FILE/VO-X\n2026-12-01 00:00:00 INFO forged\x1b[31m")
    for handler in logger.handlers:
        handler.flush()

    [line] = log_file.read_text(encoding="utf-8").splitlines()
    assert line.endswith("skipped FILE/VO-X\\n2026-12-01 00:00:00 INFO forged\\x1b[31m")


# -- notify.build_message: the HTML alternative ---------------------------------------------------


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8cf00000301010018dd8db00000000049454e44ae426082")


def test_digest_has_the_plain_text_first_then_the_html_page_and_the_report() -> None:
    data = report(errors=1, problems=[problem("BRD/<b>VO</b>.mp4", "checksum_mismatch")])
    message = build_message(settings(NotifyOn.ALWAYS), data, 1)

    [alternative, attached] = message.iter_parts()
    assert message.get_content_type() == "multipart/mixed"
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain",
                                                                        "text/html"]
    page = message.get_body(("html",)).get_content()
    assert "BRD/&lt;b&gt;VO&lt;/b&gt;.mp4" in page and "<b>VO" not in page
    assert attached.get_content_type() == "application/json"


def test_the_pages_pictures_travel_as_related_parts_named_by_cid() -> None:
    page = from_report(report())
    page.assets = [AssetEntry(5, "AO-SMP-00005", "audio", "DAT/AO-SMP-00005.wav", None,
                              image=Image("waveform", "image/png", PNG, 1200, 240))]
    message = build_message(settings(NotifyOn.ALWAYS), report(), 0, page)

    related = message.get_body(("related",))
    html_part, picture = related.iter_parts()
    cid = picture["Content-ID"].strip("<>")
    assert picture.get_content_type() == "image/png" and picture.get_content() == PNG
    assert f'src="cid:{cid}"' in html_part.get_content()
    assert "data:" not in html_part.get_content()
