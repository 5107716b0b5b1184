-- Changed and vanished objects (issue 12). A catalogued object that a complete listing no
-- longer holds is recorded as missing since the run that first noticed (and reported) it;
-- listed again with its catalogued bytes it is present again (missing_since NULL).
-- A catalogued file's row updated in place (a re-upload of the same bytes with a new ETag, an
-- object back in the bucket, or `mpr replace KEY` accepting new bytes) first copies its old
-- values into asset_file_history, with when and by which command and run.
ALTER TABLE asset_files ADD COLUMN missing_since timestamptz;
-- the ETag of the object at the key whose bytes were read and found to differ from the
-- catalogued MD5 (changed_since_import): the next runs need not read them again
ALTER TABLE asset_files ADD COLUMN differing_etag text;
ALTER TABLE asset_files ADD CONSTRAINT asset_files_missing_only_in_bucket
    CHECK (missing_since IS NULL OR in_bucket);

CREATE TABLE asset_file_history (
    id            bigserial   PRIMARY KEY,
    file_id       bigint      REFERENCES asset_files (id) ON DELETE SET NULL,
    asset_id      bigint      NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    bucket        text        NOT NULL,
    key           text        NOT NULL,
    role          text        NOT NULL,
    in_bucket     boolean     NOT NULL,
    size          bigint,
    etag          text,
    md5           text,
    mime_type     text,
    tech_metadata jsonb,
    missing_since timestamptz,
    replaced_at   timestamptz NOT NULL DEFAULT now(),
    command       text        NOT NULL
                              CHECK (command IN ('import', 'nightly', 'replace')),
    run_key       text,
    import_run_id bigint      REFERENCES import_runs (id)
);
CREATE INDEX asset_file_history_file_idx ON asset_file_history (file_id);
CREATE INDEX asset_file_history_asset_idx ON asset_file_history (asset_id);
