"""Logging for unattended runs: text or JSON lines, optional rotating file, the run key on
every line (JSON field `run_key`, the same name as in the report and `import_runs`), and every
configured secret scrubbed from every line.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import secrets
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from mpr_cli.display import visible
from mpr_cli.secrets import scrub

LOGGER = "mpr"
MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def new_run_key() -> str:
    """A short key naming one invocation in logs, reports, metrics and e-mails."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class RunContext(logging.Filter):
    """Adds `run_key` to every record, removes secrets from its message and traceback, and
    shows the message's control characters as escapes (display.visible)."""

    def __init__(self, run_key: str, secrets_to_hide: list[str]) -> None:
        super().__init__()
        self.run_key = run_key
        self.secrets = list(secrets_to_hide)

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_key = self.run_key
        # one record, one line: a newline or ESC from a key or a server is shown, not obeyed
        record.msg = visible(scrub(record.getMessage(), self.secrets))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "run_key": getattr(record, "run_key", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(run_key)s] %(message)s"


def configure(run_key: str, secrets_to_hide: list[str], *, fmt: LogFormat = LogFormat.TEXT,
              log_file: Path | None = None, stream: bool = True,
              level: int = logging.INFO) -> logging.Logger:
    """Set up the `mpr` logger for one run (replacing handlers of an earlier run)."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    context = RunContext(run_key, secrets_to_hide)
    formatter = JsonLines() if fmt is LogFormat.JSON else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = []
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(context)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)
