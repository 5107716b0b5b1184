"""Problems: what went wrong with one S3 key, in which phase, how bad, and how to fix it.

Every reason code, its phase and its severity live in one table, `REASON_INFO`. A problem's
message is one line that names the thing and says what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Phase(IntEnum):
    DISCOVER = 1
    CROSSREF = 2
    INGEST = 3


class Reason(StrEnum):
    """The reason codes a user sees in reports and in the database."""

    # phase 1: the key itself
    INVALID_KEY = "invalid_key"
    UNSUPPORTED_EXTENSION = "unsupported_extension"
    UNKNOWN_FOLDER = "unknown_folder"
    INVALID_INVENTORY_CODE = "invalid_inventory_code"
    PREFIX_TYPE_MISMATCH = "prefix_type_mismatch"
    # phase 2: against what the database already holds
    CHANGED_SINCE_IMPORT = "changed_since_import"
    MISSING_OBJECT = "missing_object"  # catalogued, no longer in the bucket (reported once)
    # phase 3: sidecars, checksums, containers
    MISSING_METADATA_SIDECAR = "missing_metadata_sidecar"
    INVALID_METADATA_SIDECAR = "invalid_metadata_sidecar"
    METADATA_MISMATCH = "metadata_mismatch"
    MISSING_CHECKSUM = "missing_checksum"
    INVALID_CHECKSUM_SIDECAR = "invalid_checksum_sidecar"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    CONFLICTING_CHECKSUMS = "conflicting_checksums"
    CONTAINER_MISMATCH = "container_mismatch"
    ORPHAN_SIDECAR = "orphan_sidecar"
    INVALID_QC_REPORT = "invalid_qc_report"
    DUPLICATE_ROLE = "duplicate_role"
    FETCH_FAILED = "fetch_failed"
    MISSING_QC_REPORT = "missing_qc_report"
    # any phase-3 failure no rule foresaw (a bug): the asset is left out, the run goes on
    INTERNAL_ERROR = "internal_error"
    # after a batch's commit: a poster, contact sheet or waveform could not be made (the asset
    # is catalogued; `mpr thumbnails --missing` tries again)
    PICTURE_FAILED = "picture_failed"


_E, _W = Severity.ERROR, Severity.WARNING

REASON_INFO: dict[Reason, tuple[Phase, Severity]] = {
    Reason.INVALID_KEY: (Phase.DISCOVER, _E),
    Reason.UNSUPPORTED_EXTENSION: (Phase.DISCOVER, _E),
    Reason.UNKNOWN_FOLDER: (Phase.DISCOVER, _E),
    Reason.INVALID_INVENTORY_CODE: (Phase.DISCOVER, _E),
    Reason.PREFIX_TYPE_MISMATCH: (Phase.DISCOVER, _E),
    Reason.CHANGED_SINCE_IMPORT: (Phase.CROSSREF, _W),
    Reason.MISSING_OBJECT: (Phase.CROSSREF, _E),
    Reason.MISSING_METADATA_SIDECAR: (Phase.INGEST, _E),
    Reason.INVALID_METADATA_SIDECAR: (Phase.INGEST, _E),
    Reason.METADATA_MISMATCH: (Phase.INGEST, _E),
    Reason.MISSING_CHECKSUM: (Phase.INGEST, _E),
    Reason.INVALID_CHECKSUM_SIDECAR: (Phase.INGEST, _E),
    Reason.CHECKSUM_MISMATCH: (Phase.INGEST, _E),
    Reason.CONFLICTING_CHECKSUMS: (Phase.INGEST, _E),
    Reason.CONTAINER_MISMATCH: (Phase.INGEST, _E),
    Reason.ORPHAN_SIDECAR: (Phase.INGEST, _E),
    Reason.INVALID_QC_REPORT: (Phase.INGEST, _E),
    Reason.DUPLICATE_ROLE: (Phase.INGEST, _E),
    Reason.FETCH_FAILED: (Phase.INGEST, _E),
    Reason.MISSING_QC_REPORT: (Phase.INGEST, _W),
    Reason.INTERNAL_ERROR: (Phase.INGEST, _E),
    Reason.PICTURE_FAILED: (Phase.INGEST, _W),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one key."""

    key: str
    inventory_code: str | None
    phase: Phase
    severity: Severity
    reason: Reason
    message: str

    @classmethod
    def make(
        cls, reason: Reason, key: str, message: str, inventory_code: str | None = None
    ) -> Problem:
        """A problem whose phase and severity come from `REASON_INFO`."""
        phase, severity = REASON_INFO[reason]
        return cls(key, inventory_code, phase, severity, reason, message)

    def to_dict(self) -> dict[str, str | int | None]:
        """Plain JSON-ready values: reason and severity as strings, phase as an int."""
        return {
            "key": self.key,
            "inventory_code": self.inventory_code,
            "phase": int(self.phase),
            "severity": str(self.severity),
            "reason": str(self.reason),
            "message": self.message,
        }
