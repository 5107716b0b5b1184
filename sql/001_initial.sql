-- mpr catalogue: assets, their files, import runs, transcode jobs.

CREATE TABLE import_runs (
    id            bigserial PRIMARY KEY,
    command       text        NOT NULL CHECK (command IN ('import', 'nightly')),
    mode          text        NOT NULL CHECK (mode IN ('normal', 'dry_run', 'safe_run')),
    status        text        NOT NULL DEFAULT 'running'
                              CHECK (status IN ('running', 'completed', 'aborted', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    prefix        text        NOT NULL DEFAULT '',
    counts        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    report        jsonb,
    host          text,
    pid           integer,
    CHECK (status = 'running' OR finished_at IS NOT NULL)
);

CREATE TABLE assets (
    id              bigserial PRIMARY KEY,
    inventory_code  text        NOT NULL UNIQUE
                                CHECK (inventory_code ~ '^[VA][OC]-[A-Z0-9]{3}-[0-9]{5}$'),
    media_type      text        NOT NULL CHECK (media_type IN ('video', 'audio')),
    import_run_id   bigint      REFERENCES import_runs (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((media_type = 'video') = (left(inventory_code, 1) = 'V'))
);

CREATE TABLE asset_files (
    id              bigserial PRIMARY KEY,
    asset_id        bigint      NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    bucket          text        NOT NULL,
    key             text        NOT NULL CHECK (key <> '' AND left(key, 1) <> '/'),
    role            text        NOT NULL
                                CHECK (role IN ('master', 'streaming', 'metadata', 'checksum',
                                                'qc_report')),
    in_bucket       boolean     NOT NULL DEFAULT true,
    size            bigint      CHECK (size >= 0),
    etag            text,
    md5             text        CHECK (md5 ~ '^[0-9a-f]{32}$'),
    mime_type       text,
    tech_metadata   jsonb,
    import_run_id   bigint      REFERENCES import_runs (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bucket, key),
    CHECK (NOT in_bucket OR size IS NOT NULL)
);
CREATE INDEX asset_files_asset_idx ON asset_files (asset_id);
-- at most one master per asset (at most one streaming copy per asset: sql/004)
CREATE UNIQUE INDEX asset_files_one_master ON asset_files (asset_id) WHERE role = 'master';

CREATE TABLE transcode_jobs (
    id              bigserial PRIMARY KEY,
    asset_id        bigint      NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    source_bucket   text        NOT NULL,
    source_key      text        NOT NULL,
    preset          text        NOT NULL,
    output_bucket   text        NOT NULL,
    output_key      text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING'
                                CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED',
                                                  'CANCELLED')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    error           text,
    stderr_tail     text,
    progress        real        NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    worker          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    heartbeat_at    timestamptz,
    finished_at     timestamptz,
    CHECK (status <> 'PROCESSING' OR started_at IS NOT NULL),
    CHECK (status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') OR finished_at IS NOT NULL)
);
-- at most one live job per source and preset
CREATE UNIQUE INDEX transcode_jobs_one_live
    ON transcode_jobs (source_bucket, source_key, preset)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX transcode_jobs_claim ON transcode_jobs (status, created_at);
