"""A fixity run's Prometheus metrics (`mpr fixity --metrics-file`), all named `mpr_fixity_*`.

A file of their own for node_exporter's textfile collector (e.g. beside mpr's own metrics
file, as mpr-fixity.prom): none of these names is one of `mpr import`'s, so both files can be
collected together. `mpr_fixity_last_success_timestamp_seconds{method}` moves only on a run
with no new errors that S3 did not fail; each method (quick, full) keeps its own, carried over
from the existing file.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from mpr_cli.atomic import atomic_write
from mpr_cli.fixity.outcome import FixityOutcome, Method
from mpr_cli.metrics import _family

LAST_SUCCESS = "mpr_fixity_last_success_timestamp_seconds"
_LAST_SUCCESS_LINE = re.compile(rf'^{LAST_SUCCESS}{{method="(\w+)"}}\s+(\S+)\s*$', re.MULTILINE)


def previous_successes(path: Path) -> dict[str, float]:
    """method -> last-success timestamp of an existing fixity metrics file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {m.group(1): float(m.group(2)) for m in _LAST_SUCCESS_LINE.finditer(text)}


def render(report: dict[str, Any], *, success: bool, last: dict[str, float],
           now: float | None = None) -> str:
    now = time.time() if now is None else now
    counts, method = report.get("counts", {}), str(report.get("method", Method.QUICK.value))
    label = {"method": method}
    lines = _family("mpr_fixity_files", "gauge", "Files of the last fixity run, by outcome.",
                    [({**label, "outcome": o.value}, float(counts.get(o.value, 0)))
                     for o in FixityOutcome])
    lines += _family("mpr_fixity_files_not_reached", "gauge", "Selected files the last run "
                     "left for the next (budget, stop or S3 failure).",
                     [(label, float(counts.get("not_reached", 0)))])
    lines += _family("mpr_fixity_bytes_read", "gauge", "Bytes the last fixity run streamed "
                     "through MD5.", [(label, float(counts.get("bytes_verified", 0)))])
    lines += _family("mpr_fixity_errors_new", "gauge", "Errors of the last fixity run not "
                     "found by the check before.", [(label, float(counts.get("new_errors", 0)))])
    lines += _family("mpr_fixity_duration_seconds", "gauge", "Duration of the last fixity "
                     "run.", [(label, float(report.get("durations_s", {}).get("total", 0)))])
    lines += _family("mpr_fixity_last_run_exit_code", "gauge", "Exit code of the last fixity "
                     "run.", [(label, float(report.get("exit_code", 0)))])
    lines += _family("mpr_fixity_last_run_timestamp_seconds", "gauge", "When the last fixity "
                     "run ended.", [(label, now)])
    stamps = {**last, **({method: now} if success else {})}
    stamps.setdefault(method, 0.0)
    lines += _family(LAST_SUCCESS, "gauge", "When a fixity run last succeeded (0: never).",
                     [({"method": m}, v) for m, v in sorted(stamps.items())])
    return "\n".join(lines) + "\n"


def write_fixity_metrics(path: Path, report: dict[str, Any], *, success: bool) -> None:
    """Written atomically (a temp file in the same folder, then renamed over the target)."""
    text = render(report, success=success, last=previous_successes(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, permissions=0o644, suffix="")
