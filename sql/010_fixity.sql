-- Fixity over time (issue 14, `mpr fixity`). Each catalogued file records when a fixity check
-- last concluded on it (quick: size and ETag from a listing; full: its bytes streamed through
-- MD5), how, when it was last fully verified, and what the last conclusive check found. A
-- check that could not read the object (not_verified) changes none of them: the file stays
-- first in line and nothing is marked bad. Each check also writes its `fixity check` event
-- (sql/009) in the same transaction.
ALTER TABLE asset_files ADD COLUMN last_verified_at timestamptz;
ALTER TABLE asset_files ADD COLUMN last_verified_how text
    CONSTRAINT asset_files_last_verified_how_check CHECK (last_verified_how IN ('quick', 'full'));
ALTER TABLE asset_files ADD COLUMN last_full_verified_at timestamptz;
ALTER TABLE asset_files ADD COLUMN fixity_outcome text
    CONSTRAINT asset_files_fixity_outcome_check
    CHECK (fixity_outcome IN ('fixity_ok', 'fixity_mismatch', 'missing_object'));
ALTER TABLE asset_files ADD CONSTRAINT asset_files_verified_how
    CHECK ((last_verified_at IS NULL) = (last_verified_how IS NULL)
           AND (last_verified_at IS NULL) = (fixity_outcome IS NULL));
-- least recently verified first: a file never checked by `mpr fixity` counts from its import
-- (the import's own check), so the oldest verification of either kind comes first
CREATE INDEX asset_files_fixity_quick_due
    ON asset_files ((coalesce(last_verified_at, created_at)), id) WHERE in_bucket;
CREATE INDEX asset_files_fixity_full_due
    ON asset_files ((coalesce(last_full_verified_at, created_at)), id) WHERE in_bucket;
