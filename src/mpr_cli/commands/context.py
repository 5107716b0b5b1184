"""What every command shares: lazily built Settings and the error-to-exit-code mapping."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from mpr_cli.config import Executor, Settings, load_settings
from mpr_cli.display import for_console
from mpr_cli.errors import ExitCode, ImportInterrupted, MprError, describe
from mpr_cli.rules import Rules, load_rules, profile_names

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

    def rules(self, rules_file: Path | str | None = None) -> Rules:
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
    """Turn MprError into one line on stderr and its exit code; Ctrl-C (or an import
    stopped by it) into "interrupted" and 130; any other exception (a bug) into one line and
    exit 4."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (KeyboardInterrupt, ImportInterrupted):
            err_console.print("interrupted")
            raise SystemExit(int(ExitCode.INTERRUPTED)) from None
        except MprError as exc:
            fail(exc)
        except Exception as exc:  # a bug: one line; MPR_DEBUG=1 shows the traceback
            if os.environ.get("MPR_DEBUG"):
                raise
            err_console.print(f"[bold red]error:[/] internal error "
                              f"({for_console(describe(exc))}): report this as a bug "
                              "(MPR_DEBUG=1 shows the traceback)", highlight=False)
            raise SystemExit(int(ExitCode.INFRASTRUCTURE)) from None

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


def writable_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback for an output file option (`--report PATH`): its folder must exist and
    be writable before anything runs, so a run never ends without the report it was asked
    for. `-` (stdout) passes."""
    if value is None or value == "-":
        return value
    path = Path(value)
    if path.is_dir():
        raise click.BadParameter(f"{value} is a folder: name a file in it", ctx, param)
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist: create it or write the "
                                 "report elsewhere", ctx, param)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{value} cannot be written (permission denied): choose a "
                                 f"path this user may write, or fix the folder's rights", ctx,
                                 param)
    return value


def rules_source(ctx: click.Context, param: click.Parameter,
                 value: str | None) -> Path | str | None:
    """--rules: an existing file, or the name of a shipped profile (when no file has it)."""
    if value is None or (value in profile_names() and not Path(value).exists()):
        return value
    path: Path = click.Path(exists=True, dir_okay=False, path_type=Path).convert(value, param,
                                                                                 ctx)
    return path


executor_option = click.option(
    "--executor", type=click.Choice([e.value for e in Executor], case_sensitive=False),
    help="Where the jobs run: local (this process's ffmpeg pool) or celery (`mpr worker` "
         "processes, through CELERY_BROKER_URL); default MPR_EXECUTOR.")


def chosen_executor(settings: Settings, option: str | None) -> Executor:
    """--executor when given, else MPR_EXECUTOR."""
    return Executor(option.lower()) if option else settings.executor
