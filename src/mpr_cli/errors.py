"""One error tree. Every error carries what the user needs: the thing and the fix.

Exit codes (see ``mpr --help``):
0 completed, no errors; 1 completed, some files had errors; 2 usage or configuration;
3 aborted by safe-run; 4 infrastructure failure (S3 or database unreachable).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report is a record of the run; errors import nothing at run time
    from mpr_cli.report import Report


class ExitCode(IntEnum):
    OK = 0
    FILE_ERRORS = 1
    USAGE = 2
    SAFE_RUN_ABORT = 3
    INFRASTRUCTURE = 4
    INTERRUPTED = 130


class MprError(Exception):
    """Base of every error mpr reports to a user as one line."""

    exit_code: ExitCode = ExitCode.INFRASTRUCTURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(MprError):
    exit_code = ExitCode.USAGE


class UsageError(MprError):
    exit_code = ExitCode.USAGE


class StorageError(MprError):
    """S3 failed (after retries) or refused an operation."""

    def __init__(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key


class S3Unavailable(StorageError):
    """S3 itself failed after retries: unreachable, timing out, refusing the credentials, or
    answering with server errors. The run's failure (exit 4), never one file's."""


class UnsafeKeyError(StorageError):
    """An S3 key that would escape the folder it is meant to be written under."""

    exit_code = ExitCode.FILE_ERRORS


class MissingObject(StorageError):
    """An object that is not (or no longer) in its bucket while S3 answers: the file's
    failure, not the storage's."""

    exit_code = ExitCode.FILE_ERRORS


class NoSuchObject(StorageError):
    """S3 answered that an object is not there (NoSuchKey, 404): raised by Storage for a key
    that was expected (listed, or named by an inventory). Exit 4 like any StorageError at the
    top of a command; phase 3 makes it the asset's missing_object problem."""


class DatabaseError(MprError):
    pass


class NotCatalogued(MprError):
    """A key the catalogue holds no file at (`mpr replace KEY`)."""

    exit_code = ExitCode.FILE_ERRORS


class RowsRefused(DatabaseError):
    """The catalogue refused the rows of a batch (a constraint, a value out of range, JSON
    that jsonb refuses): a problem with the data of one asset, not with the database."""

    exit_code = ExitCode.FILE_ERRORS

    def __init__(self, message: str, *, hint: str | None = None,
                 duplicate: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.duplicate = duplicate  # a unique constraint: the row is already there


class FfmpegError(MprError):
    exit_code = ExitCode.FILE_ERRORS

    def __init__(self, message: str, *, stderr_tail: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stderr_tail = stderr_tail


class InternalError(MprError):
    """An exception no rule foresaw, raised by one job's own work (a bug, or input nobody
    imagined): that job fails with this one line and the run goes on; the original exception
    is the __cause__."""

    exit_code = ExitCode.FILE_ERRORS

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"internal error ({describe(exc)})", hint="report this as a bug")
        self.__cause__ = exc


class ImportInterrupted(MprError):
    """An import stopped (Ctrl-C, SIGTERM): at a safe point, or by a second signal. The work
    in flight was rolled back and the run recorded as aborted; `report` says how far it got
    (the CLI still writes --report, nightly puts it in its own report)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, report: Report) -> None:
        super().__init__(report.message or "interrupted")
        self.report = report


def describe(exc: BaseException, limit: int = 200) -> str:
    """An unexpected exception as one short line: its type and the first line of its text."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else "no message"
    if len(first) > limit:
        first = first[: limit - 3] + "..."
    return f"{type(exc).__name__}: {first}"


class InventoryError(MprError):
    """An S3 Inventory manifest (`--inventory`) or one of its CSV files that cannot be used:
    missing, not JSON, a field missing or invalid, not CSV, a damaged or malformed data file."""

    exit_code = ExitCode.USAGE


class InventoryStale(InventoryError):
    """An inventory older than `--inventory-max-age`: its object list is too old to trust."""
