"""The digest e-mail of a run: one plain-text message with the counts, the new problems grouped
by reason (the first keys of each), the known ones (reported before for the same key, ETag and
reason: mpr_cli.known) counted by reason apart, the durations, and the JSON report attached.

The text has an HTML alternative after it (multipart/alternative, the plain text first): the
run's page of `mpr report --html` (mpr_cli.htmlreport), its pictures attached to it as
related parts (cid: references, which e-mail clients show where many refuse data: URIs).
Pictures go in only while the page and its pictures stay under DIGEST_HTML_MAX_BYTES; the page
counts those left out. A page the catalogue cannot add to is the report's own page (counts and
problems); one that cannot be made at all leaves the plain text alone.

Sending never fails a run: an unreachable or refusing mail server is logged and forgotten.
"""

from __future__ import annotations

import html
import json
import smtplib
import socket
import ssl
from collections import defaultdict
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from mpr_cli.config import NotifyOn, Settings
from mpr_cli.display import visible
from mpr_cli.runlog import get_logger
from mpr_cli.secrets import scrub

if TYPE_CHECKING:  # the HTML page's modules (and boto3 under them) load only to send a digest
    from mpr_cli.htmlreport import RunPage

KEYS_PER_REASON = 5
SMTP_TIMEOUT_S = 20
DIGEST_HTML_MAX_BYTES = 2 * 1024 * 1024  # the HTML page and its pictures, before encoding


def should_send(settings: Settings, report: dict[str, Any], exit_code: int) -> bool:
    if not settings.smtp_host or not settings.notify_to:
        return False
    if settings.notify_on is NotifyOn.NEVER:
        return False
    if settings.notify_on is NotifyOn.ALWAYS:
        return True
    counts = report.get("counts", {})
    failed_jobs = report.get("transcode", {}).get("jobs", {}).get("FAILED", 0)
    return bool(exit_code or counts.get("errors") or counts.get("warnings") or failed_jobs)


def _known_lines(problems: list[dict[str, Any]]) -> list[str]:
    """Known problems: a count per reason (how many acknowledged), no keys."""
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for problem in problems:
        by_reason[problem["reason"]].append(problem)
    lines = []
    for reason, items in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        acknowledged = sum(bool(p.get("acknowledged")) for p in items)
        lines.append(f"{reason} ({items[0]['severity']}): {len(items)}"
                     + (f", {acknowledged} acknowledged" if acknowledged else ""))
    return lines


def _problem_lines(problems: list[dict[str, Any]]) -> list[str]:
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for problem in problems:
        by_reason[problem["reason"]].append(problem)
    lines = []
    for reason, items in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"{reason} ({items[0]['severity']}): {len(items)}")
        lines += [f"    {visible(str(p['key']))}" for p in items[:KEYS_PER_REASON]]
        if len(items) > KEYS_PER_REASON:
            more = len(items) - KEYS_PER_REASON
            lines.append(f"    ... and {more} more (see the attached report)")
    return lines or ["no problems"]


def run_name(report: dict[str, Any]) -> str:
    """The run key the log lines carry (every run has one), else the catalogue's run id."""
    return str(report.get("run_key") or report.get("run_id") or "run")


def digest_text(report: dict[str, Any], exit_code: int) -> str:
    counts = report.get("counts", {})
    lines = [f"mpr {report.get('command', 'run')} {run_name(report)}: "
             f"{report.get('status')} (exit code {exit_code})", ""]
    if report.get("dry_run"):
        lines += ["DRY RUN: nothing was written to the catalogue.", ""]
    lines += ["Import"] + [f"    {k:<16} {v}" for k, v in counts.items()] + [""]
    transcode = report.get("transcode")
    if transcode:
        jobs = ", ".join(f"{s.lower()} {n}" for s, n in sorted(transcode.get("jobs", {}).items()))
        lines += ["Transcode", f"    jobs created     {transcode.get('created', 0)}",
                  f"    jobs             {jobs or 'none'}"]
        failures = transcode.get("failures", [])[:KEYS_PER_REASON]
        lines += [f"    failed: {visible(str(f['source_key']))}: {visible(str(f['error']))}"
                  for f in failures] + [""]
    problems = report.get("problems", [])
    known = [p for p in problems if p.get("known")]
    new = [p for p in problems if not p.get("known")]
    lines += ["Problems by reason"] + (_problem_lines(new) if new or not known
                                       else ["no new problems"])
    if known:
        lines += ["", "Known problems (reported before, not counted in the exit code; "
                      "`mpr problems --known` lists them)"] + _known_lines(known)
    lines += [""]
    lines += ["Durations (s)"] + [f"    {k:<16} {v}" for k, v in
                                 report.get("durations_s", {}).items()]
    if report.get("message"):
        lines += ["", visible(str(report["message"]))]
    return "\n".join(lines) + "\n"


def _known_part(counts: dict[str, Any]) -> str:
    """" (2 known)" after the error count of the subject, when some errors are known."""
    known = counts.get("known_errors", 0)
    return f" ({known} known)" if known else ""


def _html_scrubbed(document: str, secrets: list[str]) -> str:
    """`document` with every secret gone, also as the page escaped it (`"` as `&quot;`)."""
    escaped = [html.escape(visible(s), quote=True) for s in secrets]
    return scrub(document, secrets + [e for e in escaped if e not in secrets])


def _add_html(message: EmailMessage, page: RunPage, secrets: list[str]) -> None:
    """The page as the text's HTML alternative, its pictures as related parts."""
    from mpr_cli.htmlreport.render import IMAGE_TYPES, render

    embedded = [a for a in page.assets or []
                if a.image is not None and a.image.mime_type in IMAGE_TYPES]
    cids = {a.asset_id: make_msgid(idstring=f"picture{a.asset_id}", domain="mpr.invalid")
            for a in embedded}
    document = render(page, image_src=lambda a: f"cid:{cids[a.asset_id][1:-1]}"
                      if a.asset_id in cids else "")
    message.add_alternative(_html_scrubbed(document, secrets), subtype="html")
    html_part = message.get_body(("html",))
    for asset in embedded:
        assert asset.image is not None and isinstance(html_part, EmailMessage)
        maintype, subtype = asset.image.mime_type.split("/")
        html_part.add_related(asset.image.data, maintype=maintype, subtype=subtype,
                              cid=cids[asset.asset_id],
                              filename=f"{asset.image.kind}-{asset.asset_id}.{subtype}")


def build_message(settings: Settings, report: dict[str, Any], exit_code: int,
                  page: RunPage | None = None) -> EmailMessage:
    """The digest; every secret the settings know, and any credentials the report's messages
    carry, scrubbed from the subject, the text, the HTML page and the attached report.
    `page`: the run's HTML page (htmlreport.page_for_report); None: the report's own page."""
    counts = report.get("counts", {})
    secrets = settings.secret_values()
    message = EmailMessage()
    done = (f"{counts.get('checked', 0)} files checked" if report.get("command") == "fixity"
            else f"{counts.get('inserted_files', 0)} files imported")
    message["Subject"] = scrub(f"mpr {report.get('command')} {report.get('status')}: {done}, "
                               f"{counts.get('errors', 0)} errors"
                               f"{_known_part(counts)}, "
                               f"{counts.get('warnings', 0)} warnings", secrets)
    message["From"] = settings.notify_from or f"mpr@{socket.getfqdn()}"
    message["To"] = ", ".join(settings.notify_to)
    message.set_content(scrub(digest_text(report, exit_code), secrets))
    from mpr_cli.htmlreport.model import from_report

    _add_html(message, page if page is not None else from_report(report), secrets)
    in_json = secrets + [json.dumps(s, ensure_ascii=False)[1:-1] for s in secrets]  # \" and \\
    attachment = scrub(json.dumps(report, indent=2, ensure_ascii=False), in_json).encode()
    message.add_attachment(attachment, maintype="application", subtype="json",
                           filename=f"mpr-report-{run_name(report)}.json")
    return message


def _page(settings: Settings, report: dict[str, Any]) -> RunPage | None:
    """The run's page with the catalogue's part, within the e-mail's size; None (the
    report's own page) when it cannot be made."""
    from mpr_cli.htmlreport import Limits, page_for_report

    try:
        return page_for_report(settings, report, Limits(max_bytes=DIGEST_HTML_MAX_BYTES))
    except Exception as exc:  # noqa: BLE001 - a page is never worth a digest not sent
        get_logger().warning("digest e-mail: the HTML page has only the report's part: %s",
                             scrub(visible(str(exc)), settings.secret_values()))
        return None


def send_digest(settings: Settings, report: dict[str, Any], exit_code: int) -> bool:
    """Send the digest when the settings say so; True when it was handed to the server."""
    log = get_logger()
    if not should_send(settings, report, exit_code):
        return False
    message = build_message(settings, report, exit_code, _page(settings, report))
    try:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port,
                          timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("digest e-mail not sent: %s:%s: %s (check SMTP_HOST/SMTP_PORT; the run "
                    "itself is unaffected)", settings.smtp_host, settings.smtp_port,
                    type(exc).__name__)
        return False
    log.info("digest e-mail sent to %s", ", ".join(settings.notify_to))
    return True
