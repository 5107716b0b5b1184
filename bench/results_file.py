"""Where a benchmark's JSON goes: printed, and with --save [NAME] kept under bench/results/."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_save_option(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--save", nargs="?", const="", metavar="NAME",
                        help=f"also write bench/results/{kind}-<date>[-NAME].json (never over "
                             "an existing file)")


def save_path(parser: argparse.ArgumentParser, kind: str, name: str | None) -> Path | None:
    """The file --save NAME writes (None without --save); refuses one that exists, before the
    benchmark spends its minutes."""
    if name is None:
        return None
    path = RESULTS / f"{kind}-{dt.date.today().isoformat()}{'-' + name if name else ''}.json"
    if path.exists():
        parser.error(f"{path} exists: give --save NAME for another file name")
    return path


def emit(result: dict[str, Any], path: Path | None) -> None:
    """The result on stdout, and in `path` when --save was given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"saved {path}", file=sys.stderr)
