-- Known problems (issue 12): every problem a recorded run reported, one row per bucket, key,
-- ETag of the object when reported (NULL: a problem without an object, e.g. a master on tape)
-- and reason. A problem already in this table is *known*: it no longer changes a run's exit
-- code (unless --strict). An acknowledgement (`mpr problems ack`) holds for this row only: a
-- new ETag is a new row, a new problem.
CREATE TABLE known_problems (
    id              bigserial   PRIMARY KEY,
    bucket          text        NOT NULL,
    key             text        NOT NULL,
    etag            text,
    reason          text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('error', 'warning')),
    inventory_code  text,
    message         text        NOT NULL,
    first_run_id    bigint      NOT NULL REFERENCES import_runs (id),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_run_id     bigint      NOT NULL REFERENCES import_runs (id),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    ack_note        text,
    CONSTRAINT known_problems_identity UNIQUE NULLS NOT DISTINCT (bucket, key, etag, reason),
    CONSTRAINT known_problems_note_needs_ack CHECK (ack_note IS NULL OR acknowledged_at IS NOT NULL)
);
CREATE INDEX known_problems_last_run_idx ON known_problems (last_run_id);
CREATE INDEX known_problems_code_idx ON known_problems (inventory_code);
