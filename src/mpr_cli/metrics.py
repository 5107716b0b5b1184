"""Prometheus text format for node_exporter's textfile collector, written atomically.

`mpr_last_success_timestamp_seconds` only moves forward on a successful run: a failed run
carries the previous value over from the existing file, and before the first success it is 0
(so an alert on its age fires for a tool that never succeeded). A run succeeds when it has no
new errors: known problems (mpr_cli.known) are counted apart, in `mpr_problems_new` and
`mpr_problems_known`, and never hold the timestamp back unless the run is strict.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mpr_cli.atomic import atomic_write

OUTCOMES = ("listed", "excluded", "rejected", "skipped", "accepted", "inserted_files")
LAST_SUCCESS = "mpr_last_success_timestamp_seconds"
_LAST_SUCCESS_LINE = re.compile(rf"^{LAST_SUCCESS}(?:{{[^}}]*}})?\s+(\S+)\s*$", re.MULTILINE)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """Exact: integers as integers, other values with full precision (never 6 digits)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(name: str, kind: str, help_text: str,
            samples: list[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items()))
        number = _number(value)
        lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")
    return lines


def previous_success(path: Path) -> float | None:
    """The last-success timestamp of an existing metrics file, if any."""
    try:
        match = _LAST_SUCCESS_LINE.search(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return float(match.group(1)) if match else None


def render(report: dict[str, Any], *, success: bool, exit_code: int,
           last_success: float | None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    counts = report.get("counts", {})
    reasons = Counter(p["reason"] for p in report.get("problems", []))
    jobs = report.get("transcode", {}).get("jobs", {})
    lines: list[str] = []
    lines += _family("mpr_files", "gauge", "Files of the last run, by outcome.",
                     [({"outcome": o}, float(counts.get(o, 0))) for o in OUTCOMES])
    lines += _family("mpr_problems", "gauge", "Problems of the last run, by reason.",
                     [({"reason": r}, float(n)) for r, n in sorted(reasons.items())])
    for standing in ("new", "known"):
        lines += _family(f"mpr_problems_{standing}", "gauge", f"Problems of the last run "
                         f"{'not reported before' if standing == 'new' else 'reported before'}"
                         " (same key, ETag and reason), by severity.",
                         [({"severity": s}, float(counts.get(f"{standing}_{s}s", 0)))
                          for s in ("error", "warning")])
    lines += _family("mpr_phase_duration_seconds", "gauge", "Duration of each step of the "
                     "last run.", [({"phase": p}, float(s)) for p, s in
                                   sorted(report.get("durations_s", {}).items())])
    lines += _family("mpr_bytes_verified", "gauge", "Bytes streamed through MD5 by the last "
                     "run.", [({}, float(counts.get("bytes_verified", 0)))])
    lines += _family("mpr_transcode_jobs", "gauge", "Transcode jobs of the last run, by "
                     "status.", [({"status": s}, float(n)) for s, n in sorted(jobs.items())])
    lines += _family("mpr_last_run_timestamp_seconds", "gauge", "When the last run ended.",
                     [({}, now)])
    lines += _family("mpr_last_run_exit_code", "gauge", "Exit code of the last run.",
                     [({}, float(exit_code))])
    moved = now if success else last_success
    lines += _family(LAST_SUCCESS, "gauge", "When a run last succeeded (0: never).",
                     [({}, moved or 0.0)])
    return "\n".join(lines) + "\n"


def write_metrics(path: Path, report: dict[str, Any], *, success: bool, exit_code: int) -> None:
    """Write atomically: a temp file in the same folder, then rename over the target."""
    text = render(report, success=success, exit_code=exit_code,
                  last_success=previous_success(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text, permissions=0o644, suffix="")
