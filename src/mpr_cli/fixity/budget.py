"""Sizes, durations and budgets of `mpr fixity` and `mpr nightly` (pure: no I/O).

Sizes (`--max-bytes 500G`): a number with an optional unit, B, K/KB, M/MB, G/GB, T/TB, P/PB
(powers of 1000, as mpr shows sizes) or KiB, MiB, GiB, TiB, PiB (powers of 1024), any case; a
bare number is bytes. Durations (`--older-than 90d`, `--max-time 2h`): one or more numbers each
with a unit, s, m (minutes), h, d, w, e.g. `1h30m`. A budget (MPR_FIXITY_BUDGET) is either: a
duration when it parses as one (lower-case `m` is minutes), else a size (`200M` is bytes).

A budget always lets the first file of a run through, however big (so a file larger than the
budget is still verified, alone, and `--max-time 0s` verifies exactly one file); after that a
file is started only while the time spent is under the time budget and the bytes read, this file
included, stay within the byte budget. A file being read is finished, never cut short.

The nightly full pass (see `night_budget`) takes max(MPR_FIXITY_BUDGET, the cycle's share):
the share is the catalogued bytes divided by the nights in MPR_FIXITY_CYCLE, so that, least
recently verified first, every file is fully verified within the cycle; the pass goes on
while the share is not yet read, and then while the configured budget allows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DAY_S = 86_400.0
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    _SIZE_UNITS[_letter] = _SIZE_UNITS[_letter + "b"] = 1000 ** _power
    _SIZE_UNITS[_letter + "ib"] = 1024 ** _power
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}


def parse_size(text: str) -> int:
    """Bytes of `500G`, `1.5TiB`, `1024`; ValueError (saying what is accepted) otherwise."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: write a number of bytes with a unit such "
                         "as 500G, 200M, 1.5T or 64MiB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(text: str) -> float:
    """Seconds of `90d`, `2h`, `1h30m`, `45s`; ValueError (saying what is accepted) otherwise.
    A bare number is refused: 90 what?"""
    compact = text.strip()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(_DURATION_PART.sub("", compact).split()):
        raise ValueError(f"{text!r} is not a duration: write a number with a unit, s, m, h, d "
                         "or w, such as 90d, 2h or 1h30m")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Budget:
    """How much one run may verify. None: no limit of that kind. `floor_bytes`: read at least
    this much before the limits apply (the cycle's share, nightly)."""

    max_bytes: int | None = None
    max_seconds: float | None = None
    floor_bytes: int = 0

    def allows(self, *, files_done: int, bytes_done: int, elapsed: float,
               next_size: int) -> bool:
        """Whether the next file (of `next_size` bytes to read) may be started."""
        if files_done == 0 or bytes_done < self.floor_bytes:
            return True
        if self.max_seconds is not None and elapsed >= self.max_seconds:
            return False
        return self.max_bytes is None or bytes_done + next_size <= self.max_bytes

    def describe(self) -> dict[str, float | int | None]:
        return {"max_bytes": self.max_bytes, "max_seconds": self.max_seconds,
                "floor_bytes": self.floor_bytes}


def parse_budget(text: str) -> Budget:
    """MPR_FIXITY_BUDGET: a time (`1h`) or a size (`200G`) per night."""
    try:
        return Budget(max_seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        return Budget(max_bytes=parse_size(text))
    except ValueError:
        raise ValueError(f"{text!r} is neither a size nor a duration: write e.g. 200G (bytes "
                         "per night) or 1h (time per night)") from None


def cycle_share(total_bytes: int, cycle_seconds: float) -> int:
    """The bytes one night must read so that `total_bytes` are all read within the cycle (one
    run a day): total x 1 day / cycle, rounded up; all of it for a cycle of a day or less."""
    nights = max(1.0, cycle_seconds / DAY_S)
    return math.ceil(total_bytes / nights)


def night_budget(configured: Budget | None, total_bytes: int, cycle_seconds: float) -> Budget:
    """The nightly full pass's budget: the configured one (none: the share alone), floored by
    the cycle's share of `total_bytes`."""
    share = cycle_share(total_bytes, cycle_seconds)
    if configured is None:
        return Budget(max_bytes=share, floor_bytes=share)
    return Budget(configured.max_bytes, configured.max_seconds, floor_bytes=share)
