-- A master catalogued by `mpr transcode KEY` before any import is provisional: it was
-- registered from its own probe, with none of its sidecars (checksum, metadata, QC report)
-- checked. The next import checks its asset in full, as if it were new, and either confirms
-- it (provisional = false, the verified values recorded) or reports its problems.
ALTER TABLE asset_files ADD COLUMN provisional boolean NOT NULL DEFAULT false;
ALTER TABLE asset_files ADD CONSTRAINT asset_files_provisional_only_master
    CHECK (NOT provisional OR role = 'master');
