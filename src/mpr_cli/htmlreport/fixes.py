"""What to do about each reason a report can carry: one sentence per reason, for the HTML page.

Each problem's own message already names its key and its fix; the page groups problems by
reason and shows this sentence once above the group, so that an operator reading a night's
page sees what each kind of problem asks of them without reading every line. The import's
reasons are `mpr_cli.problems.Reason` (a unit test checks each has a fix); the fixity pass
adds its outcomes (`fixity_mismatch`; `missing_object` is shared). A reason this table does
not know gets `UNKNOWN_FIX`, never an error.
"""

from __future__ import annotations

from mpr_cli.problems import Reason

UNKNOWN_FIX = "Read each problem's message: it names the file and what to do."

FIXES: dict[str, str] = {
    Reason.INVALID_KEY: "Rename the object: the key cannot name an archive file "
                        "(folder/CODE.ext, no empty or odd parts).",
    Reason.UNSUPPORTED_EXTENSION: "Deliver the file in a format the rules accept, or remove "
                                  "the stray object from the bucket.",
    Reason.UNKNOWN_FOLDER: "Move the file into one of the folders the rules name "
                           "(rules.toml), or add the folder there.",
    Reason.INVALID_INVENTORY_CODE: "Rename the file after its inventory code as the rules "
                                   "spell it (e.g. VO-UMT-14387).",
    Reason.PREFIX_TYPE_MISMATCH: "Move the file to a folder of its media type (video codes "
                                 "in video folders, audio in audio ones), or fix its code.",
    Reason.CHANGED_SINCE_IMPORT: "Someone re-uploaded other bytes over a catalogued file: "
                                 "accept them with `mpr replace KEY`, or restore the original.",
    Reason.MISSING_OBJECT: "A catalogued file is no longer in the bucket: restore it from "
                           "the delivery or a backup.",
    Reason.MISSING_METADATA_SIDECAR: "Deliver the CODE.json mediainfo sidecar beside the "
                                     "master.",
    Reason.INVALID_METADATA_SIDECAR: "Re-export the mediainfo/ffprobe JSON sidecar: it is not "
                                     "valid JSON of the expected shape.",
    Reason.METADATA_MISMATCH: "The sidecar describes another file: re-export it from the "
                              "delivered master.",
    Reason.MISSING_CHECKSUM: "Deliver the CODE.md5 checksum file beside the media files.",
    Reason.INVALID_CHECKSUM_SIDECAR: "Re-write the .md5 file: one '<md5>  <file name>' line "
                                     "per file.",
    Reason.CHECKSUM_MISMATCH: "The bytes differ from the delivered checksum: ask for the "
                              "file to be delivered again.",
    Reason.CONFLICTING_CHECKSUMS: "The checksum files disagree about one file: keep one "
                                  "correct .md5 and remove the other.",
    Reason.CONTAINER_MISMATCH: "The file's container does not match its extension: rename it "
                               "to its real format or re-encode it.",
    Reason.ORPHAN_SIDECAR: "A sidecar without its media file: deliver the media file, or "
                           "remove the sidecar.",
    Reason.INVALID_QC_REPORT: "Re-deliver the QC report as a readable PDF.",
    Reason.DUPLICATE_ROLE: "Two files claim the same role (e.g. two masters) for one code: "
                           "remove the extra one.",
    Reason.FETCH_FAILED: "The object could not be read from S3: check the bucket and run the "
                         "import again (nothing was recorded for it).",
    Reason.MISSING_QC_REPORT: "Deliver the CODE_qc.pdf report, or acknowledge the warning "
                              "with `mpr problems ack --reason missing_qc_report`.",
    Reason.INTERNAL_ERROR: "A bug in mpr: report it with this run's JSON report; the asset "
                           "was left out and the next run tries again.",
    Reason.PICTURE_FAILED: "The asset is catalogued without its picture (its message says "
                           "why): make it again with `mpr thumbnails --missing`.",
    "fixity_mismatch": "The stored bytes no longer match the catalogued checksum: restore "
                       "the file from a good copy, then `mpr fixity --full --prefix KEY`.",
}


def fix_for(reason: str) -> str:
    """The fix of `reason` (a reason code as the report spells it)."""
    return FIXES.get(reason, UNKNOWN_FIX)
