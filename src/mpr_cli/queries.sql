-- Named queries of mpr. Each begins with a `-- name: <name>` header; db.query(name) returns it.
-- Parameters are always passed separately (%s / %(name)s), never formatted in.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS present

-- name: applied_migrations
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%s, %s)

-- name: create_incoming
CREATE TEMPORARY TABLE IF NOT EXISTS incoming_keys (
    key  text PRIMARY KEY,
    size bigint,
    etag text
) ON COMMIT DELETE ROWS

-- name: copy_incoming
COPY incoming_keys (key, size, etag) FROM STDIN

-- name: known_incoming
SELECT i.key,
       (f.size IS DISTINCT FROM i.size OR f.etag IS DISTINCT FROM i.etag) AS changed
FROM incoming_keys i
JOIN asset_files f ON f.bucket = %s AND f.key = i.key

-- name: existing_assets
SELECT a.id, a.inventory_code,
       EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id AND f.role = 'master')
           AS has_master,
       EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id AND f.role = 'streaming')
           AS has_streaming
FROM assets a
WHERE a.inventory_code = ANY(%s)

-- name: insert_assets
INSERT INTO assets (inventory_code, media_type, import_run_id)
SELECT code, media_type, %s FROM unnest(%s::text[], %s::text[]) AS t(code, media_type)
ON CONFLICT (inventory_code) DO NOTHING
RETURNING id, inventory_code

-- name: asset_ids
SELECT id, inventory_code FROM assets WHERE inventory_code = ANY(%s)

-- name: create_staged_files
CREATE TEMPORARY TABLE IF NOT EXISTS staged_files (
    inventory_code text, bucket text, key text, role text, in_bucket boolean, size bigint,
    etag text, md5 text, mime_type text, tech_metadata jsonb
) ON COMMIT DELETE ROWS

-- name: copy_staged_files
COPY staged_files (inventory_code, bucket, key, role, in_bucket, size, etag, md5, mime_type,
                   tech_metadata) FROM STDIN

-- name: insert_staged_files
INSERT INTO asset_files (asset_id, bucket, key, role, in_bucket, size, etag, md5, mime_type,
                         tech_metadata, import_run_id)
SELECT a.id, s.bucket, s.key, s.role, s.in_bucket, s.size, s.etag, s.md5, s.mime_type,
       s.tech_metadata, %s
FROM staged_files s JOIN assets a ON a.inventory_code = s.inventory_code
ON CONFLICT (bucket, key) DO NOTHING
RETURNING id

-- name: start_run
INSERT INTO import_runs (command, mode, prefix, host, pid)
VALUES (%s, %s, %s, %s, %s)
RETURNING id, started_at

-- name: finish_run
UPDATE import_runs
SET status = %s, finished_at = now(), counts = %s, report = %s
WHERE id = %s

-- name: abandon_stale_runs
UPDATE import_runs
SET status = 'aborted', finished_at = now(),
    report = jsonb_build_object('message', 'process ended without recording its result')
WHERE status = 'running' AND id <> %s

-- name: try_lock
SELECT pg_try_advisory_lock(%s) AS locked

-- name: unlock
SELECT pg_advisory_unlock(%s)

-- name: running_run
SELECT id, started_at, host, pid FROM import_runs
WHERE status = 'running' ORDER BY id DESC LIMIT 1
