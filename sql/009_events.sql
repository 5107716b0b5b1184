-- Preservation events (issue 14): one row per action on a file (ingestion, message digest
-- calculation, fixity check, format identification, validation, creation, replacement,
-- deletion, recovery), with the PREMIS 3 eventType term of the Library of Congress vocabulary,
-- a UUID, the time, the outcome, a detail line and the agent (mpr's version and the host).
-- Append-only: a correction is a new event, so the database refuses UPDATE, DELETE and
-- TRUNCATE. Rows outlive their asset and file: identifiers are plain columns, no foreign keys.
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
