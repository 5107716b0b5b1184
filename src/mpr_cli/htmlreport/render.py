"""A RunPage as one self-contained HTML document: inline CSS, no JavaScript, no external
resource, readable offline in a browser and in an e-mail client.

Every text that comes from the run (keys, messages, codes, hosts, summaries, reason codes)
goes through `text`: control characters shown as escapes (mpr_cli.display.visible), then
`<`, `>`, `&` and both quotes escaped, so a hostile key shows as the characters it holds and
never becomes markup. Markup is only ever written by this module's own literals; attribute
values are escaped the same way. A picture's source is given by the caller (`image_src`): a
data: URI for the page on disk, a cid: reference for the e-mail (mpr_cli.notify).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mpr_cli import __version__
from mpr_cli.display import visible
from mpr_cli.htmlreport.model import SHOWN_COUNTS, AssetEntry, ReasonGroup, RunPage, TranscodeEntry

SHOWN_WIDTH = 320  # pixels a picture is shown at (posters are made larger: sharp on HiDPI)
IMAGE_TYPES = ("image/jpeg", "image/png")  # the only types embedded

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1d2329;background:#fff;margin:0;padding:24px;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#d6dbe0;padding-bottom:4px}h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px}th,td{border:1px solid #d6dbe0;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f2f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.key{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;word-break:break-all}
.status{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.status-completed{background:#2e7d32}.status-aborted,.status-interrupted{background:#b26a00}
.status-failed{background:#c62828}.status-running,.status-unknown{background:#546e7a}
.error{color:#c62828;font-weight:600}.warning{color:#b26a00;font-weight:600}
.fix{background:#f6f8e9;border-left:4px solid #9aa63a;padding:4px 10px;margin:4px 0}
.muted{color:#5f6b76}.note{background:#fff6e0;border-left:4px solid #e0a800;padding:4px 10px}
img{display:block;border:1px solid #d6dbe0;background:#f2f4f6;max-width:100%;height:auto}
"""


def text(value: Any) -> str:
    """Any value as HTML text (and attribute value): one line, control characters visible,
    markup characters escaped."""
    return html.escape(visible(str(value)), quote=True)


def data_uri(entry: AssetEntry) -> str:
    """The embedded picture as a data: URI ("" without one, or of a type not embedded)."""
    image = entry.image
    if image is None or image.mime_type not in IMAGE_TYPES:
        return ""
    return f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode('ascii')}"


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S %Z}".strip() if value else "-"


def _header(page: RunPage) -> list[str]:
    title = f"mpr {page.command} run {page.run_id if page.run_id is not None else '(dry run)'}"
    status = page.status if page.status in ("completed", "aborted", "failed", "running",
                                            "interrupted") else "unknown"
    facts: list[tuple[str, Any]] = [
        ("run key", page.run_key or "-"), ("mode", page.mode or "-"),
        ("started", _when(page.started_at)), ("finished", _when(page.finished_at)),
        ("host", page.host or "-"), ("prefix", page.prefix or "(whole bucket)")]
    if page.exit_code is not None:  # a nightly's report records it; an import's does not
        facts.insert(2, ("exit code", page.exit_code))
    lines = [f"<h1>{text(title)}</h1>",
             f'<p><span class="status status-{status}" id="status">{text(page.status)}</span>'
             + (f" {text(page.message)}" if page.message else "") + "</p>",
             '<table id="facts">']
    lines += [f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in facts]
    return [*lines, "</table>"]


def _count_table(page: RunPage, names: list[str], table_id: str) -> str:
    head = "".join(f'<th class="num">{text(n.replace("_", " "))}</th>' for n in names)
    row = "".join(f'<td class="num">{text(page.counts[n])}</td>' for n in names)
    return f'<table id="{table_id}"><tr>{head}</tr><tr>{row}</tr></table>'


def _counts(page: RunPage) -> list[str]:
    """The main counts in one table, the others (the catalogue's quiet updates, the fixity
    pass's, ...) in a second one, so that neither is wider than a mail client's window."""
    main = [n for n in SHOWN_COUNTS if n in page.counts]
    other = [n for n in page.counts if n not in main and not isinstance(page.counts[n], dict)]
    if not main and not other:
        return ["<h2>Counts</h2>", '<p class="muted">no counts recorded</p>']
    tables = [_count_table(page, main, "counts")] if main else []
    tables += [_count_table(page, other, "other-counts")] if other else []
    return ["<h2>Counts</h2>", *tables]


def _problem_group(group: ReasonGroup, limit: int) -> list[str]:
    anchor = text(f"reason-{group.reason}")
    lines = [f'<h3 id="{anchor}">{text(group.reason)} '
             f'<span class="{text(group.severity)}">{text(group.severity)}</span> '
             f"({len(group.problems)})</h3>",
             f'<p class="fix"><b>Fix:</b> {text(group.fix)}</p>',
             '<table class="problems"><tr><th>key</th><th>message</th><th>seen</th></tr>']
    lines += [f'<tr><td class="key">{text(p.key)}</td><td>{text(p.message)}</td>'
              f"<td>{text(p.standing)}</td></tr>" for p in group.problems[:limit]]
    if len(group.problems) > limit:
        lines.append(f'<tr><td colspan="3" class="muted">... and {len(group.problems) - limit}'
                     " more: see `mpr runs show` or the JSON report</td></tr>")
    return [*lines, "</table>"]


def _problems(page: RunPage, limit: int) -> list[str]:
    lines = ["<h2>Problems by reason</h2>"]
    if not page.groups:
        return [*lines, '<p id="no-problems">no problems</p>']
    lines.append('<table id="problem-reasons"><tr><th>reason</th><th>severity</th>'
                 '<th class="num">problems</th><th class="num">new</th><th>fix</th></tr>')
    lines += [f'<tr><td class="reason"><a href="#{text("reason-" + g.reason)}">'
              f'{text(g.reason)}</a></td><td class="{text(g.severity)}">{text(g.severity)}</td>'
              f'<td class="num">{len(g.problems)}</td><td class="num">{g.new}</td>'
              f"<td>{text(g.fix)}</td></tr>" for g in page.groups]
    lines.append("</table>")
    for group in page.groups:
        lines += _problem_group(group, limit)
    return lines


def _picture_cell(entry: AssetEntry, image_src: Callable[[AssetEntry], str]) -> str:
    source = image_src(entry) if entry.image is not None else ""
    if not source or entry.image is None:
        return f'<td class="muted">{text(entry.picture_note or "no picture")}</td>'
    width, height = entry.image.width, entry.image.height
    size = (f' width="{SHOWN_WIDTH}" height="{round(SHOWN_WIDTH * height / width)}"'
            if width and height else f' width="{SHOWN_WIDTH}"')
    alt = f"{entry.image.kind} of {entry.inventory_code}"
    return f'<td><img src="{text(source)}"{size} alt="{text(alt)}"></td>'


def _file_cell(key: str | None, summary: str | None) -> str:
    if key is None:
        return '<td class="muted">none</td>'
    return (f'<td><div class="key">{text(key)}</div>'
            f'<div class="muted">{text(summary or "no technical summary")}</div></td>')


def _assets(page: RunPage, image_src: Callable[[AssetEntry], str]) -> list[str]:
    if page.assets is None:
        return []
    lines = [f"<h2>Assets imported ({page.assets_total})</h2>"]
    if not page.assets:
        return [*lines, '<p class="muted">no asset had a file imported by this run</p>']
    lines.append('<table id="assets"><tr><th>picture</th><th>asset</th><th>master</th>'
                 "<th>streaming copy</th></tr>")
    lines += [f"<tr>{_picture_cell(a, image_src)}<td><b>{text(a.inventory_code)}</b><br>"
              f"{text(a.media_type)}</td>{_file_cell(a.master_key, a.master_summary)}"
              f"{_file_cell(a.streaming_key, a.streaming_summary)}</tr>" for a in page.assets]
    if page.assets_total > len(page.assets):
        lines.append(f'<tr><td colspan="4" class="muted">... and '
                     f"{page.assets_total - len(page.assets)} more assets</td></tr>")
    return [*lines, "</table>"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _transcode_row(job: TranscodeEntry) -> str:
    speed = "-" if job.speed is None else f"{job.speed:.2f}x"
    return (f'<tr><td class="num">{job.job_id}</td><td>{text(job.inventory_code)}</td>'
            f"<td>{text(job.preset)}</td><td>{text(job.status.lower())}</td>"
            f'<td class="num">{_seconds(job.media_s)}</td><td class="num">{_seconds(job.wall_s)}'
            f'</td><td class="num">{speed}</td><td class="key">{text(job.output_key)}</td>'
            f"<td>{text(job.error or '')}</td></tr>")


def _transcodes(page: RunPage) -> list[str]:
    lines: list[str] = []
    section = page.transcode or {}
    if page.transcodes is None and not section:
        return lines
    lines.append("<h2>Transcodes</h2>")
    jobs = ", ".join(f"{text(str(s).lower())} {text(n)}"
                     for s, n in sorted((section.get("jobs") or {}).items()))
    if section:
        lines.append(f"<p>jobs created {text(section.get('created', 0))}; finished: "
                     f"{jobs or 'none'}" + (f"; {text(section['message'])}"
                                            if section.get("message") else "") + "</p>")
    if page.transcodes:
        lines.append('<table id="transcodes"><tr><th class="num">job</th><th>asset</th>'
                     '<th>preset</th><th>status</th><th class="num">media</th>'
                     '<th class="num">took</th><th class="num">speed</th><th>output</th>'
                     "<th>error</th></tr>")
        lines += [_transcode_row(j) for j in page.transcodes] + ["</table>"]
    elif page.transcodes is not None:
        lines.append('<p class="muted">no transcode job finished while this run ran</p>')
    return lines


def _durations(page: RunPage) -> list[str]:
    if not page.durations:
        return []
    rows = "".join(f'<tr><th>{text(k)}</th><td class="num">{text(v)}</td></tr>'
                   for k, v in page.durations.items())
    return ["<h2>Durations (s)</h2>", f'<table id="durations">{rows}</table>']


def render(page: RunPage, *, problem_limit: int = 200,
           image_src: Callable[[AssetEntry], str] = data_uri) -> str:
    """The page as an HTML document (a str; UTF-8 declared)."""
    title = f"mpr {page.command} {page.run_key or page.run_id or ''}: {page.status}"
    notes = [f'<p class="note">{text(n)}</p>' for n in page.notes]
    body = [*_header(page), *notes, *_counts(page), *_problems(page, problem_limit),
            *_assets(page, image_src), *_transcodes(page), *_durations(page),
            f'<p class="muted">made by mpr {text(__version__)}</p>']
    return "\n".join(['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{text(title)}</title><style>{CSS}</style></head><body>",
                      *body, "</body></html>", ""])
