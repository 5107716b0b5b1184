"""What every command shares: lazily built Settings and the error-to-exit-code mapping."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from mpr_cli.config import Settings, load_settings
from mpr_cli.display import for_console
from mpr_cli.errors import ExitCode, MprError
from mpr_cli.rules import Rules, load_rules

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class App:
    env_file: str
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.env_file)
        return self._settings

    def rules(self, rules_file: Path | None = None) -> Rules:
        """--rules FILE, else MPR_RULES, else the packaged rules; MPR_EXCLUDE_PREFIXES, when
        set, replaces the file's excluded prefixes."""
        settings = self.settings
        override = (settings.exclude_prefixes if "exclude_prefixes" in settings.model_fields_set
                    else None)
        return load_rules(rules_file or settings.rules_file, exclude_prefixes=override)


def fail(error: MprError) -> None:
    err_console.print(f"[bold red]error:[/] {for_console(error.one_line())}", markup=True,
                      highlight=False)
    raise SystemExit(int(error.exit_code))


def handles_errors(func: F) -> F:
    """Turn MprError into one line on stderr and its exit code; Ctrl-C into 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MprError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise SystemExit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]


pass_app = click.make_pass_decorator(App)


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM set an event that the work checks at safe points (between assets,
    between jobs), so no database round trip is ever cut in half. A second signal stops at
    once (KeyboardInterrupt)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
