"""The HTML page of a run (`mpr report RUN|last --html FILE`, and the digest e-mail's HTML
alternative, mpr_cli.notify): status and counts, problems by reason with the fix for each,
the assets imported with their picture and technical summary, the transcodes with their
duration and speed.

fixes.py    one fix sentence per reason
model.py    the page as records (RunPage), built from a stored or fresh JSON report
gather.py   the catalogue's part: assets, summaries, pictures (fetched from S3), transcodes
render.py   RunPage -> one self-contained HTML document (inline CSS, no JavaScript), every
            text escaped

`page_for_run` is the page of a recorded run; `page_for_report` the page of a report just
made (the digest), which reads the catalogue when it can and is a page of the report alone
when it cannot (a dry run, an unreachable database): the e-mail goes out either way.
"""

from __future__ import annotations

from typing import Any

import psycopg

from mpr_cli import db
from mpr_cli.config import Settings
from mpr_cli.errors import MprError
from mpr_cli.htmlreport.gather import add_catalogue, embed_pictures
from mpr_cli.htmlreport.model import Limits, RunPage, from_report
from mpr_cli.htmlreport.render import data_uri, render
from mpr_cli.storage import Storage

DEFAULT_LIMITS = Limits()
RUN_COMMANDS = ("import", "nightly")  # the commands an import_runs row records

__all__ = ["Limits", "RunPage", "data_uri", "page_for_report", "page_for_run", "render"]


def _embed(page: RunPage, settings: Settings, limits: Limits, storage: Storage | None) -> None:
    """The pictures of `page`'s assets, within `limits` (S3 asked only when there are some)."""
    if not any(a.picture is not None for a in page.assets or []):
        return
    base_size = len(render(page, problem_limit=limits.max_problems_per_reason).encode())
    embed_pictures(page, storage or Storage(settings), limits, base_size)


def page_for_run(conn: psycopg.Connection[Any], settings: Settings, row: dict[str, Any],
                 limits: Limits = DEFAULT_LIMITS, storage: Storage | None = None) -> RunPage:
    """The page of a recorded run (an import_runs row, `db.get_run`), pictures fetched.
    Raises MprError when the catalogue or S3 cannot be read."""
    page = from_report(row.get("report") or {}, row)
    add_catalogue(page, conn, row, limits)
    _embed(page, settings, limits, storage)
    return page


def page_for_report(settings: Settings, report: dict[str, Any],
                    limits: Limits = DEFAULT_LIMITS) -> RunPage:
    """The page of a finished run's report (the digest); never raises MprError: what could
    not be read is a note on the page."""
    page = from_report(report)
    if page.run_id is None or page.command not in RUN_COMMANDS:
        return page  # a dry run, or a command import_runs does not record (fixity)
    try:
        with db.connect(settings, autocommit=True) as conn:
            row = db.get_run(conn, str(page.run_id)) or {}
            page = from_report(report, row)
            add_catalogue(page, conn, row, limits)
        _embed(page, settings, limits, None)
    except MprError as exc:
        page.notes.append(f"the catalogue's part of this page is missing: {exc.one_line()}")
    return page
