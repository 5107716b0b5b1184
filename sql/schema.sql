-- The catalogue's schema as the migrations (sql/NNN_*.sql, applied in order by `mpr db migrate`)
-- leave it: one place to read what every table, column and constraint is. It is a description,
-- not a migration: `mpr db migrate` never runs it (it records no version, so a database made
-- from it would get every migration on top). tests/integration/test_sql.py applies the
-- migrations to one database and this file to another and compares their catalogues (tables,
-- columns, constraints, indexes, triggers): a new migration comes with its change here.
--
-- Constraint names are written out: they are the names PostgreSQL gave the migrations' unnamed
-- constraints (`<table>_<column>_check`, `<table>_check`, ...), which error messages quote.

-- Which migrations are applied; made by `mpr db migrate` itself (queries.sql
-- create_migrations_table), before the first migration.
CREATE TABLE schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per `mpr import` / `mpr nightly` invocation. Only a running run has no end time.
CREATE TABLE import_runs (
    id          bigserial   PRIMARY KEY,
    command     text        NOT NULL
                            CONSTRAINT import_runs_command_check
                            CHECK (command IN ('import', 'nightly')),
    mode        text        NOT NULL
                            CONSTRAINT import_runs_mode_check
                            CHECK (mode IN ('normal', 'dry_run', 'safe_run')),
    status      text        NOT NULL DEFAULT 'running'
                            CONSTRAINT import_runs_status_check
                            CHECK (status IN ('running', 'completed', 'aborted', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    prefix      text        NOT NULL DEFAULT '',
    counts      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    report      jsonb,
    host        text,
    pid         integer,
    -- the key naming this invocation in logs, reports, metrics and e-mails (sql/003)
    run_key     text        CONSTRAINT import_runs_run_key_key UNIQUE,
    CONSTRAINT import_runs_check CHECK (status = 'running' OR finished_at IS NOT NULL)
);

-- One row per inventory code. What a code looks like is the rules file's to say (sql/005):
-- the catalogue refuses only what no rules file may accept (rules.py CODE_CHARS).
CREATE TABLE assets (
    id             bigserial   PRIMARY KEY,
    inventory_code text        NOT NULL CONSTRAINT assets_inventory_code_key UNIQUE
                               CONSTRAINT assets_inventory_code_chars
                               CHECK (inventory_code ~ '^[!-.0-~]{1,64}$'),
    media_type     text        NOT NULL
                               CONSTRAINT assets_media_type_check
                               CHECK (media_type IN ('video', 'audio')),
    import_run_id  bigint      REFERENCES import_runs (id),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per file of an asset, at its bucket and key.
CREATE TABLE asset_files (
    id            bigserial   PRIMARY KEY,
    asset_id      bigint      NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    bucket        text        NOT NULL,
    key           text        NOT NULL
                              CONSTRAINT asset_files_key_check
                              CHECK (key <> '' AND left(key, 1) <> '/'),
    role          text        NOT NULL
                              CONSTRAINT asset_files_role_check
                              CHECK (role IN ('master', 'streaming', 'metadata', 'checksum',
                                              'qc_report')),
    -- false: a master recorded from its sidecars while it is on tape
    in_bucket     boolean     NOT NULL DEFAULT true,
    size          bigint      CONSTRAINT asset_files_size_check CHECK (size >= 0),
    etag          text,
    md5           text        CONSTRAINT asset_files_md5_check CHECK (md5 ~ '^[0-9a-f]{32}$'),
    mime_type     text,
    tech_metadata jsonb,
    import_run_id bigint      REFERENCES import_runs (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- the preset mpr made a streaming copy with; NULL for a delivered copy (sql/002)
    preset        text,
    -- a master registered by `mpr transcode KEY`, its sidecars not yet checked by an import
    -- (sql/006)
    provisional   boolean     NOT NULL DEFAULT false,
    -- when a complete listing of the bucket first missed this object (reported then as
    -- missing_object); NULL while it is in the bucket (sql/008)
    missing_since timestamptz,
    -- the ETag of an object at this key whose bytes were read and differ from the catalogued
    -- MD5 (changed_since_import): not read again while the ETag stays (sql/008)
    differing_etag text,
    -- fixity (sql/010, `mpr fixity`): when a check last concluded on this file, how (quick:
    -- size and ETag from a listing; full: the bytes streamed through MD5), when it was last
    -- fully verified and what the last conclusive check found; a check that could not read
    -- the object (not_verified) changes none of them
    last_verified_at      timestamptz,
    last_verified_how     text CONSTRAINT asset_files_last_verified_how_check
                               CHECK (last_verified_how IN ('quick', 'full')),
    last_full_verified_at timestamptz,
    fixity_outcome        text CONSTRAINT asset_files_fixity_outcome_check
                               CHECK (fixity_outcome IN ('fixity_ok', 'fixity_mismatch',
                                                         'missing_object')),
    CONSTRAINT asset_files_bucket_key_key UNIQUE (bucket, key),
    CONSTRAINT asset_files_check CHECK (NOT in_bucket OR size IS NOT NULL),
    CONSTRAINT asset_files_preset_only_streaming CHECK (preset IS NULL OR role = 'streaming'),
    CONSTRAINT asset_files_provisional_only_master CHECK (NOT provisional OR role = 'master'),
    CONSTRAINT asset_files_missing_only_in_bucket CHECK (missing_since IS NULL OR in_bucket),
    CONSTRAINT asset_files_verified_how
        CHECK ((last_verified_at IS NULL) = (last_verified_how IS NULL)
               AND (last_verified_at IS NULL) = (fixity_outcome IS NULL))
);
CREATE INDEX asset_files_asset_idx ON asset_files (asset_id);
-- the catalogue walked in S3's listing order, byte order (sql/014)
CREATE INDEX asset_files_bucket_key_bytes ON asset_files (bucket, key COLLATE "C");
-- at most one master and at most one streaming copy per asset (sql/004)
CREATE UNIQUE INDEX asset_files_one_master ON asset_files (asset_id) WHERE role = 'master';
CREATE UNIQUE INDEX asset_files_one_streaming ON asset_files (asset_id) WHERE role = 'streaming';
-- fixity: least recently verified first, a file never checked counting from its import (sql/010)
CREATE INDEX asset_files_fixity_quick_due
    ON asset_files ((coalesce(last_verified_at, created_at)), id) WHERE in_bucket;
CREATE INDEX asset_files_fixity_full_due
    ON asset_files ((coalesce(last_full_verified_at, created_at)), id) WHERE in_bucket;

-- The old values of a catalogued file whose row was updated in place (sql/008): a re-upload of
-- the same bytes with a new ETag, an object back in the bucket, or `mpr replace KEY` accepting
-- new bytes; when, and by which command and run.
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
                              CONSTRAINT asset_file_history_command_check
                              CHECK (command IN ('import', 'nightly', 'replace')),
    run_key       text,
    import_run_id bigint      REFERENCES import_runs (id)
);
CREATE INDEX asset_file_history_file_idx ON asset_file_history (file_id);
CREATE INDEX asset_file_history_asset_idx ON asset_file_history (asset_id);

-- One row per transcode job. A job names its asset by inventory code: a master never imported
-- can be transcoded, its asset registered on success (asset_id set by then).
CREATE TABLE transcode_jobs (
    id             bigserial   PRIMARY KEY,
    asset_id       bigint      REFERENCES assets (id) ON DELETE CASCADE,
    source_bucket  text        NOT NULL,
    source_key     text        NOT NULL,
    preset         text        NOT NULL,
    output_bucket  text        NOT NULL,
    output_key     text        NOT NULL,
    status         text        NOT NULL DEFAULT 'PENDING'
                               CONSTRAINT transcode_jobs_status_check
                               CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED',
                                                 'CANCELLED')),
    attempts       integer     NOT NULL DEFAULT 0
                               CONSTRAINT transcode_jobs_attempts_check CHECK (attempts >= 0),
    max_attempts   integer     NOT NULL DEFAULT 3
                               CONSTRAINT transcode_jobs_max_attempts_check
                               CHECK (max_attempts >= 1),
    error          text,
    stderr_tail    text,
    progress       real        NOT NULL DEFAULT 0
                               CONSTRAINT transcode_jobs_progress_check
                               CHECK (progress BETWEEN 0 AND 100),
    worker         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    heartbeat_at   timestamptz,
    finished_at    timestamptz,
    inventory_code text        NOT NULL
                               CONSTRAINT transcode_jobs_inventory_code_chars
                               CHECK (inventory_code ~ '^[!-.0-~]{1,64}$'),
    media_type     text        NOT NULL
                               CONSTRAINT transcode_jobs_media_type_check
                               CHECK (media_type IN ('video', 'audio')),
    CONSTRAINT transcode_jobs_check CHECK (status <> 'PROCESSING' OR started_at IS NOT NULL),
    CONSTRAINT transcode_jobs_check1
        CHECK (status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') OR finished_at IS NOT NULL),
    CONSTRAINT transcode_jobs_completed_has_asset
        CHECK (status <> 'COMPLETED' OR asset_id IS NOT NULL),
    -- sent to Celery workers (sql/011): the last task sent for it and when
    task_id        text,
    dispatched_at  timestamptz,
    CONSTRAINT transcode_jobs_dispatched_has_task
        CHECK ((task_id IS NULL) = (dispatched_at IS NULL))
);
-- at most one live job per source and preset
CREATE UNIQUE INDEX transcode_jobs_one_live
    ON transcode_jobs (source_bucket, source_key, preset)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX transcode_jobs_claim ON transcode_jobs (status, created_at);
CREATE INDEX transcode_jobs_asset_idx ON transcode_jobs (asset_id);
CREATE INDEX transcode_jobs_code_idx ON transcode_jobs (inventory_code);

-- Every problem a recorded run reported, one row per bucket, key, ETag when reported (NULL: no
-- object, e.g. a master on tape) and reason (sql/007). A row already here is a *known*
-- problem: it no longer changes the exit code (unless --strict). An acknowledgement (`mpr
-- problems ack`) holds for this row only: a new ETag is a new row, a new problem.
CREATE TABLE known_problems (
    id              bigserial   PRIMARY KEY,
    bucket          text        NOT NULL,
    key             text        NOT NULL,
    etag            text,
    reason          text        NOT NULL,
    severity        text        NOT NULL
                                CONSTRAINT known_problems_severity_check
                                CHECK (severity IN ('error', 'warning')),
    inventory_code  text,
    message         text        NOT NULL,
    first_run_id    bigint      NOT NULL REFERENCES import_runs (id),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_run_id     bigint      NOT NULL REFERENCES import_runs (id),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    ack_note        text,
    CONSTRAINT known_problems_identity UNIQUE NULLS NOT DISTINCT (bucket, key, etag, reason),
    CONSTRAINT known_problems_note_needs_ack
        CHECK (ack_note IS NULL OR acknowledged_at IS NOT NULL)
);
CREATE INDEX known_problems_last_run_idx ON known_problems (last_run_id);
CREATE INDEX known_problems_code_idx ON known_problems (inventory_code);

-- Preservation events (sql/009, issue 14): one row per action on a file, its eventType a
-- PREMIS 3 term of the Library of Congress vocabulary (src/mpr_cli/events.py says which action
-- writes which). Append-only: UPDATE, DELETE and TRUNCATE are refused by triggers. No foreign
-- keys: an event outlives its asset and file.
CREATE TABLE events (
    id             bigserial   PRIMARY KEY,
    event_uuid     uuid        NOT NULL DEFAULT gen_random_uuid()
                               CONSTRAINT events_event_uuid_key UNIQUE,
    event_type     text        NOT NULL
                               CONSTRAINT events_event_type_check
                               CHECK (event_type IN ('ingestion', 'message digest calculation',
                                                     'fixity check', 'format identification',
                                                     'validation', 'creation', 'replacement',
                                                     'deletion', 'recovery')),
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    outcome        text        NOT NULL
                               CONSTRAINT events_outcome_check
                               CHECK (outcome IN ('success', 'failure', 'warning')),
    detail         text        NOT NULL,
    agent          text        NOT NULL,
    asset_id       bigint,
    inventory_code text,
    bucket         text        NOT NULL,
    key            text        NOT NULL,
    etag           text,
    run_key        text
);
CREATE INDEX events_asset_idx ON events (asset_id, occurred_at);
CREATE INDEX events_type_idx ON events (event_type, occurred_at);
CREATE INDEX events_file_idx ON events (bucket, key);
CREATE INDEX events_occurred_idx ON events (occurred_at);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % on events refused', TG_OP
        USING HINT = 'record a new event instead of changing or removing one';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Technical summaries (sql/012, issue 15, src/mpr_cli/summary.py): what a person asks of a
-- master or a streaming copy, as typed columns derived from its asset_files.tech_metadata (the mediainfo or
-- ffprobe JSON the import or the transcode stored). One row per file; a file without stored
-- metadata, or with a document neither tool wrote, has none. Filled by the import and the
-- transcode in the transaction that writes the file; rows catalogued before this migration are
-- filled by `mpr db backfill-summaries` (the extraction is Python's: one parser for both tools'
-- JSON, robust to any value a sidecar holds). A file whose tech_metadata changes loses its row
-- (trigger below), so a summary never describes an older document: the writer fills it again.
CREATE TABLE media_summaries (
    file_id              bigint           PRIMARY KEY REFERENCES asset_files (id) ON DELETE CASCADE,
    container            text,
    duration_s           double precision,
    video_codec          text,
    width                integer,
    height               integer,
    display_aspect_ratio text,
    frame_rate           double precision,
    scan_type            text
                         CONSTRAINT media_summaries_scan_type_check
                         CHECK (scan_type IN ('progressive', 'interlaced', 'unknown')),
    audio_codec          text,
    channels             integer,
    sample_rate          integer,
    bit_rate             bigint,
    source               text             NOT NULL
                         CONSTRAINT media_summaries_source_check
                         CHECK (source IN ('ffprobe', 'mediainfo')),
    updated_at           timestamptz      NOT NULL DEFAULT now()
);

CREATE FUNCTION media_summaries_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM media_summaries WHERE file_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER asset_files_tech_changed AFTER UPDATE OF tech_metadata ON asset_files
    FOR EACH ROW WHEN (OLD.tech_metadata IS DISTINCT FROM NEW.tech_metadata)
    EXECUTE FUNCTION media_summaries_forget();

-- Pictures of an asset (sql/013, issue 15, src/mpr_cli/pictures/): a poster and a contact sheet
-- (JPEG) for a video, a waveform (PNG) for audio, in the output bucket under
-- thumbnails/<folder>/<code>.jpg, .sheet.jpg, .waveform.png; one row per asset and kind (a new
-- picture replaces the row). source_key: the file it was made from (master or streaming copy).
CREATE TABLE asset_pictures (
    id         bigserial   PRIMARY KEY,
    asset_id   bigint      NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    kind       text        NOT NULL
                           CONSTRAINT asset_pictures_kind_check
                           CHECK (kind IN ('poster', 'contact_sheet', 'waveform')),
    bucket     text        NOT NULL,
    key        text        NOT NULL,
    mime_type  text        NOT NULL,
    width      integer     CONSTRAINT asset_pictures_width_check CHECK (width > 0),
    height     integer     CONSTRAINT asset_pictures_height_check CHECK (height > 0),
    size       bigint      CONSTRAINT asset_pictures_size_check CHECK (size >= 0),
    source_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT asset_pictures_asset_id_kind_key UNIQUE (asset_id, kind)
);
