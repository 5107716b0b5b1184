-- Named queries of mpr. Each begins with a `-- name: <name>` header and, on the line right under
-- it, a one-line description (tests/integration/test_sql.py checks both); db.query(name) returns
-- it. Parameters are always named (%(name)s) and passed separately, never formatted in.

-- name: create_migrations_table
-- The table that records which migrations (sql/NNN_*.sql) are applied; made if missing.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migrations_table_exists
-- Whether schema_migrations exists (read only: a dry run never creates it).
SELECT to_regclass('schema_migrations') IS NOT NULL AS present

-- name: applied_migrations
-- Every applied migration, oldest first.
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: record_migration
-- One migration applied, in the transaction that applied it.
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- name: catalogue_in_listing_order
-- A bucket's catalogued files under a prefix in the order S3 lists keys (UTF-8 byte order:
-- COLLATE "C", served by the index of sql/014), walked beside the listing by an import
-- (phases/merge.py): every file, on tape, provisional or recorded missing too, with what the
-- import compares (size, ETag) and decides by.
SELECT f.key, f.size, f.etag, f.md5, f.provisional, f.in_bucket,
       f.missing_since IS NOT NULL AS missing, f.differing_etag, a.inventory_code
FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE f.bucket = %(bucket)s AND starts_with(f.key, %(prefix)s)
ORDER BY f.key COLLATE "C"

-- name: catalogued_siblings
-- The files of these assets catalogued as present in a bucket (not a provisional master, not
-- recorded missing): what a delivery's new files of the same assets are checked beside.
SELECT f.key, f.size, f.etag
FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE a.inventory_code = ANY(%(codes)s) AND f.bucket = %(bucket)s AND f.in_bucket
  AND NOT f.provisional AND f.missing_since IS NULL
ORDER BY f.key

-- name: existing_assets
-- The catalogued assets among these inventory codes, with what their files already cover.
SELECT a.id, a.inventory_code,
       -- a provisional master (sql/006) is checked again as if it were new
       EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id AND f.role = 'master'
               AND NOT f.provisional) AS has_master,
       EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id AND f.role = 'streaming')
           AS has_streaming,
       -- key -> MD5 of each catalogued file: what a checksum sidecar delivered later must match
       coalesce((SELECT jsonb_object_agg(f.key, f.md5) FROM asset_files f
                 WHERE f.asset_id = a.id AND f.md5 IS NOT NULL), '{}'::jsonb) AS md5s
FROM assets a
WHERE a.inventory_code = ANY(%(codes)s)

-- name: insert_assets
-- New assets (parallel arrays of codes and media types); an existing code is left untouched.
INSERT INTO assets (inventory_code, media_type, import_run_id)
SELECT code, media_type, %(run_id)s
FROM unnest(%(codes)s::text[], %(media_types)s::text[]) AS t(code, media_type)
ON CONFLICT (inventory_code) DO NOTHING
RETURNING id, inventory_code

-- name: create_staged_files
-- The session's table of the file rows of one batch (emptied at each commit).
CREATE TEMPORARY TABLE IF NOT EXISTS staged_files (
    inventory_code text, bucket text, key text, role text, in_bucket boolean, size bigint,
    etag text, md5 text, mime_type text, tech_metadata jsonb, provisional boolean
) ON COMMIT DELETE ROWS

-- name: copy_staged_files
-- Stream one batch of file rows into staged_files.
COPY staged_files (inventory_code, bucket, key, role, in_bucket, size, etag, md5, mime_type,
                   tech_metadata, provisional) FROM STDIN

-- name: insert_staged_files
-- The staged files into asset_files, each under its asset; the ids of the rows written.
-- A row already there is left untouched, except a provisional master (registered by
-- `mpr transcode KEY`) that an import has now checked in full: it is confirmed with the
-- import's verified values.
INSERT INTO asset_files AS f (asset_id, bucket, key, role, in_bucket, size, etag, md5,
                              mime_type, tech_metadata, provisional, import_run_id)
SELECT a.id, s.bucket, s.key, s.role, s.in_bucket, s.size, s.etag, s.md5, s.mime_type,
       s.tech_metadata, s.provisional, %(run_id)s
FROM staged_files s JOIN assets a ON a.inventory_code = s.inventory_code
ON CONFLICT (bucket, key) DO UPDATE
SET size = excluded.size, etag = excluded.etag, md5 = excluded.md5,
    mime_type = excluded.mime_type, tech_metadata = excluded.tech_metadata,
    import_run_id = excluded.import_run_id, provisional = false
WHERE f.provisional AND NOT excluded.provisional AND f.asset_id = excluded.asset_id
  AND f.role = excluded.role
RETURNING id

-- name: truncate_staged_files
-- Empty staged_files for the next batch of the same transaction.
TRUNCATE staged_files

-- name: start_run
-- A run begins: its row, status 'running'.
INSERT INTO import_runs (command, mode, prefix, host, pid, run_key)
VALUES (%(command)s, %(mode)s, %(prefix)s, %(host)s, %(pid)s, %(run_key)s)
RETURNING id, started_at

-- name: finish_run
-- A run ends: its status, counts and report.
UPDATE import_runs
SET status = %(status)s, finished_at = now(), counts = %(counts)s, report = %(report)s
WHERE id = %(id)s

-- name: abandon_stale_runs
-- Runs still 'running' other than this one (it holds the import lock): their process ended.
UPDATE import_runs
SET status = 'aborted', finished_at = now(),
    report = jsonb_build_object('message', 'process ended without recording its result')
WHERE status = 'running' AND id <> %(current)s

-- name: try_lock
-- Take a session advisory lock if free (locked: whether it was taken).
SELECT pg_try_advisory_lock(%(key)s) AS locked

-- name: lock
-- Take a session advisory lock, waiting for it.
SELECT pg_advisory_lock(%(key)s)

-- name: unlock
-- Release a session advisory lock.
SELECT pg_advisory_unlock(%(key)s)

-- name: running_run
-- The newest run still 'running' (the one holding the import lock), or no row.
SELECT id, started_at, host, pid FROM import_runs
WHERE status = 'running' ORDER BY id DESC LIMIT 1

-- name: assets_needing_streaming
-- The masters that need a transcode job (the jobs of `mpr transcode --pending`).
-- Catalogued assets whose master is in the input bucket (and not missing from it), with no
-- streaming copy, no live job and no FAILED job: a failed master waits for `mpr jobs retry`,
-- never retried by cron forever.
SELECT a.id AS asset_id, a.inventory_code, a.media_type, f.bucket, f.key
FROM assets a
JOIN asset_files f ON f.asset_id = a.id AND f.role = 'master' AND f.in_bucket
                  AND f.missing_since IS NULL
WHERE f.bucket = %(bucket)s
  AND f.key LIKE %(prefix)s
  AND NOT EXISTS (SELECT 1 FROM asset_files s WHERE s.asset_id = a.id AND s.role = 'streaming')
  AND NOT EXISTS (SELECT 1 FROM transcode_jobs j
                  WHERE j.inventory_code = a.inventory_code
                    AND j.status IN ('PENDING', 'PROCESSING', 'FAILED'))
ORDER BY a.inventory_code
LIMIT %(limit)s

-- name: create_job
-- A new PENDING job, unless a live one of the same source and preset exists (no row).
INSERT INTO transcode_jobs (asset_id, inventory_code, media_type, source_bucket, source_key,
                            preset, output_bucket, output_key, status, max_attempts)
VALUES (%(asset_id)s, %(inventory_code)s, %(media_type)s, %(source_bucket)s, %(source_key)s, %(preset)s,
        %(output_bucket)s, %(output_key)s, 'PENDING', %(max_attempts)s)
ON CONFLICT (source_bucket, source_key, preset) WHERE status IN ('PENDING', 'PROCESSING')
DO NOTHING
RETURNING id

-- name: fail_exhausted_jobs
-- Stale jobs of this process's buckets with no attempt left: FAILED.
-- PROCESSING jobs whose heartbeat is older than the lease (their process died) and that have
-- used every attempt: FAILED, never claimed as attempt max_attempts + 1.
UPDATE transcode_jobs
SET status = 'FAILED', finished_at = now(),
    error = format('its worker (%%s) died during attempt %%s of %%s', worker, attempts,
                   max_attempts)
WHERE status = 'PROCESSING' AND attempts >= max_attempts
  AND heartbeat_at < now() - make_interval(secs => %(lease)s)
  AND source_bucket = %(source_bucket)s AND output_bucket = %(output_bucket)s
RETURNING id

-- name: claim_job
-- One claimable job for this worker, PROCESSING with one more attempt, or no row.
-- One claimable job of this process's buckets: PENDING, or PROCESSING with a heartbeat older
-- than the lease (its process died) and an attempt left. SKIP LOCKED: concurrent claimers,
-- even on other machines, never share a job. only_ids / prefix narrow the selection. The
-- inner WHERE is count_claimable's too: change both together.
UPDATE transcode_jobs j
SET status = 'PROCESSING', attempts = j.attempts + 1, started_at = now(),
    heartbeat_at = now(), worker = %(worker)s, progress = 0, error = NULL, stderr_tail = NULL
WHERE j.id = (
    SELECT id FROM transcode_jobs
    WHERE (status = 'PENDING'
           OR (status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => %(lease)s)))
      AND attempts < max_attempts
      AND source_bucket = %(source_bucket)s AND output_bucket = %(output_bucket)s
      AND source_key LIKE %(prefix)s
      AND (%(only_ids)s::bigint[] IS NULL OR id = ANY(%(only_ids)s::bigint[]))
    ORDER BY created_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING j.*

-- name: heartbeat_job
-- A running job's lease renewed with its progress (no row: no longer this worker's).
UPDATE transcode_jobs SET heartbeat_at = now(), progress = %(progress)s
WHERE id = %(id)s AND status = 'PROCESSING' AND worker = %(worker)s
RETURNING id

-- name: complete_job
-- This worker's running job COMPLETED, with the asset its output is recorded for.
UPDATE transcode_jobs SET status = 'COMPLETED', progress = 100, finished_at = now(),
       asset_id = %(asset_id)s
WHERE id = %(id)s AND status = 'PROCESSING' AND worker = %(worker)s
RETURNING id

-- name: fail_job
-- This worker's running job FAILED, with the error and ffmpeg's stderr tail.
UPDATE transcode_jobs
SET status = 'FAILED', error = %(error)s, stderr_tail = %(stderr_tail)s, finished_at = now()
WHERE id = %(id)s AND status = 'PROCESSING' AND worker = %(worker)s

-- name: cancel_job
-- A PENDING or PROCESSING job CANCELLED (the reason, when given, becomes its error).
UPDATE transcode_jobs SET status = 'CANCELLED', finished_at = now(),
       error = coalesce(%(reason)s, error)
WHERE id = %(id)s AND status IN ('PENDING', 'PROCESSING')
RETURNING id

-- name: release_job
-- This worker's PROCESSING job PENDING again, its attempt given back: a job this worker
-- claimed ahead and never started (its run is stopping), or one that S3, the catalogue or the
-- temp folder failed (reason: why).
UPDATE transcode_jobs
SET status = 'PENDING', attempts = greatest(attempts - 1, 0), started_at = NULL,
    heartbeat_at = NULL, progress = 0, worker = NULL, error = %(reason)s
WHERE id = %(id)s AND status = 'PROCESSING' AND worker = %(worker)s
RETURNING id

-- name: retry_job
-- A FAILED job PENDING again while it has an attempt left (`mpr jobs retry`).
UPDATE transcode_jobs
SET status = 'PENDING', finished_at = NULL, started_at = NULL, heartbeat_at = NULL,
    progress = 0, worker = NULL
WHERE id = %(id)s AND status = 'FAILED' AND attempts < max_attempts
RETURNING id

-- name: abandoned_output_keys
-- The output keys a dead worker left unfinished (no running job writes them).
-- Of these keys of an output bucket, those that are a job's output and that no running job
-- (PROCESSING with a heartbeat within the lease) writes: what a dead worker left unfinished.
SELECT DISTINCT j.output_key FROM transcode_jobs j
WHERE j.output_bucket = %(bucket)s AND j.output_key = ANY(%(keys)s)
  AND NOT EXISTS (SELECT 1 FROM transcode_jobs l
                  WHERE l.output_bucket = j.output_bucket AND l.output_key = j.output_key
                    AND l.status = 'PROCESSING'
                    AND l.heartbeat_at >= now() - make_interval(secs => %(lease)s))

-- name: count_claimable
-- How many jobs claim_job would give this process now (the progress bar's total).
-- Its WHERE is claim_job's, word for word (tests/unit/test_jobs.py checks it).
SELECT count(*) AS n FROM transcode_jobs
    WHERE (status = 'PENDING'
           OR (status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => %(lease)s)))
      AND attempts < max_attempts
      AND source_bucket = %(source_bucket)s AND output_bucket = %(output_bucket)s
      AND source_key LIKE %(prefix)s
      AND (%(only_ids)s::bigint[] IS NULL OR id = ANY(%(only_ids)s::bigint[]))

-- name: newest_job_for
-- The newest job of a source and preset (any status), or no row.
SELECT * FROM transcode_jobs
WHERE source_bucket = %(source_bucket)s AND source_key = %(source_key)s AND preset = %(preset)s
ORDER BY id DESC LIMIT 1

-- name: reuse_failed_job
-- A FAILED job PENDING again to a new output key while it has an attempt left.
-- `mpr transcode KEY` after a failure: the FAILED job is PENDING again (to this output key)
-- while it has an attempt left, so the attempt cap holds across runs.
UPDATE transcode_jobs
SET status = 'PENDING', finished_at = NULL, started_at = NULL, heartbeat_at = NULL,
    progress = 0, worker = NULL, output_key = %(output_key)s
WHERE id = %(id)s AND status = 'FAILED' AND attempts < max_attempts
RETURNING id

-- name: get_job
-- One job by id, or no row.
SELECT * FROM transcode_jobs WHERE id = %(id)s

-- name: list_jobs
-- The newest jobs (of one status, or all), with whether their master is provisional.
-- master_provisional: the job's master was registered by `mpr transcode KEY`, not yet
-- checked by an import
SELECT j.*, EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = j.asset_id
                    AND f.role = 'master' AND f.provisional) AS master_provisional
FROM transcode_jobs j
WHERE (%(status)s::text IS NULL OR j.status = %(status)s)
ORDER BY j.id DESC
LIMIT %(limit)s

-- name: asset_by_code
-- The asset of an inventory code, or no row.
SELECT id, inventory_code, media_type FROM assets WHERE inventory_code = %(code)s

-- name: recorded_output
-- The asset's streaming copy as the catalogue records it, or no row.
-- Delivered: preset NULL; made by mpr: its preset.
SELECT f.id, f.bucket, f.key, f.size, f.etag, f.preset FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE a.inventory_code = %(code)s AND f.role = 'streaming'

-- name: catalogued_files
-- Whose file, in which role, the catalogue records at these keys of a bucket: the keys an
-- output is about to be written to.
SELECT f.key, f.role, f.preset, a.inventory_code FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE f.bucket = %(bucket)s AND f.key = ANY(%(keys)s)

-- name: replace_streaming_file
-- The asset's one streaming row updated in place to the new copy.
-- The asset's one streaming row now describes the new copy (a --force run, or a lost copy made
-- again): updated in place, never a second row (asset_files_one_streaming).
UPDATE asset_files
SET bucket = %(bucket)s, key = %(key)s, in_bucket = true, size = %(size)s, etag = %(etag)s,
    md5 = %(md5)s, mime_type = %(mime_type)s, tech_metadata = %(tech_metadata)s,
    preset = %(preset)s, last_verified_at = NULL, last_verified_how = NULL,
    fixity_outcome = NULL, last_full_verified_at = NULL
WHERE asset_id = %(asset_id)s AND role = 'streaming'
RETURNING id

-- name: upsert_output_file
-- An output file's row, inserted or updated when it is the same asset's in the same role.
-- An output row; a row already at its bucket and key is updated only when it is the same
-- asset's file in the same role (no row returned otherwise: the caller refuses).
INSERT INTO asset_files (asset_id, bucket, key, role, in_bucket, size, etag, md5, mime_type,
                         tech_metadata, preset)
VALUES (%(asset_id)s, %(bucket)s, %(key)s, %(role)s, true, %(size)s, %(etag)s, %(md5)s,
        %(mime_type)s, %(tech_metadata)s, %(preset)s)
ON CONFLICT (bucket, key) DO UPDATE
SET size = EXCLUDED.size, etag = EXCLUDED.etag, md5 = EXCLUDED.md5, in_bucket = true,
    mime_type = EXCLUDED.mime_type, tech_metadata = EXCLUDED.tech_metadata,
    preset = EXCLUDED.preset
WHERE asset_files.asset_id = EXCLUDED.asset_id AND asset_files.role = EXCLUDED.role
RETURNING id

-- name: update_run_report
-- Replace a run's report (nightly: the combined import and transcode report).
UPDATE import_runs SET report = %(report)s WHERE id = %(id)s

-- name: list_runs
-- The newest runs, newest first, with the exit code and message their report recorded.
SELECT id, run_key, command, mode, status, started_at, finished_at, prefix, counts,
       (report->>'exit_code')::int AS exit_code, report->>'message' AS message
FROM import_runs ORDER BY id DESC LIMIT %(limit)s

-- name: get_run
-- One run by its id or its run key, or no row (exit code and message as in list_runs).
SELECT id, run_key, command, mode, status, started_at, finished_at, prefix, counts, report,
       host, pid, (report->>'exit_code')::int AS exit_code, report->>'message' AS message
FROM import_runs WHERE id::text = %(id_or_key)s OR run_key = %(id_or_key)s

-- name: last_run
-- The newest run (`mpr runs show last`), or no row.
SELECT id, run_key, command, mode, status, started_at, finished_at, prefix, counts, report,
       host, pid, (report->>'exit_code')::int AS exit_code, report->>'message' AS message
FROM import_runs ORDER BY id DESC LIMIT 1

-- name: html_run_assets
-- The assets a run imported a file of (the HTML run report), by code: master, streaming copy, total.
SELECT a.id, a.inventory_code, a.media_type, m.id AS master_id, m.key AS master_key,
       s.id AS streaming_id, s.key AS streaming_key, count(*) OVER () AS total
FROM assets a
LEFT JOIN asset_files m ON m.asset_id = a.id AND m.role = 'master'
LEFT JOIN asset_files s ON s.asset_id = a.id AND s.role = 'streaming'
WHERE a.id IN (SELECT f.asset_id FROM asset_files f WHERE f.import_run_id = %(run_id)s)
ORDER BY a.inventory_code COLLATE "C"
LIMIT %(limit)s

-- name: html_run_transcodes
-- The transcode jobs that finished while a run ran (the HTML run report), with their master's id.
SELECT j.id, j.asset_id, j.inventory_code, j.preset, j.status, j.source_key, j.output_key,
       j.started_at, j.finished_at, j.error, m.id AS master_id
FROM transcode_jobs j
LEFT JOIN asset_files m ON m.asset_id = j.asset_id AND m.role = 'master'
WHERE j.finished_at >= %(started_at)s AND j.finished_at <= coalesce(%(finished_at)s, now())
ORDER BY j.finished_at, j.id
LIMIT %(limit)s

-- name: mark_restored
-- A master recorded from its sidecars (on tape) that is now in the bucket.
UPDATE asset_files SET in_bucket = true, size = %(size)s, etag = %(etag)s
WHERE bucket = %(bucket)s AND key = %(key)s AND NOT in_bucket

-- ---------------------------------------------------------------- changed and vanished (sql/008)

-- name: mark_missing
-- Catalogued objects a complete listing no longer holds: missing since now (once).
UPDATE asset_files SET missing_since = now()
WHERE bucket = %(bucket)s AND key = ANY(%(keys)s::text[]) AND missing_since IS NULL

-- name: keep_file_history
-- A catalogued file's current values copied into asset_file_history before it is updated.
INSERT INTO asset_file_history (file_id, asset_id, bucket, key, role, in_bucket, size, etag,
                                md5, mime_type, tech_metadata, missing_since, command, run_key,
                                import_run_id)
SELECT id, asset_id, bucket, key, role, in_bucket, size, etag, md5, mime_type, tech_metadata,
       missing_since, %(command)s, %(run_key)s, %(run_id)s
FROM asset_files WHERE bucket = %(bucket)s AND key = %(key)s
RETURNING id

-- name: refresh_file
-- A catalogued object listed with its catalogued bytes: its new size and ETag, present again.
-- Its fixity record starts again (a mismatch or missing object found before is not "known"
-- for the object now at the key, and it is first in line for `mpr fixity`).
UPDATE asset_files SET size = %(size)s, etag = %(etag)s, missing_since = NULL,
       differing_etag = NULL, last_verified_at = NULL, last_verified_how = NULL,
       fixity_outcome = NULL
WHERE bucket = %(bucket)s AND key = %(key)s

-- name: note_differing
-- Catalogued objects whose bytes were read and differ: their ETag, so they are not read again.
UPDATE asset_files f SET differing_etag = t.etag
FROM unnest(%(keys)s::text[], %(etags)s::text[]) AS t(key, etag)
WHERE f.bucket = %(bucket)s AND f.key = t.key

-- name: replace_file
-- A catalogued file's row describes the object now at its key (`mpr replace KEY`).
UPDATE asset_files
SET role = %(role)s, in_bucket = true, size = %(size)s, etag = %(etag)s, md5 = %(md5)s,
    mime_type = %(mime_type)s, tech_metadata = %(tech_metadata)s, missing_since = NULL,
    differing_etag = NULL, provisional = false, last_verified_at = NULL,
    last_verified_how = NULL, fixity_outcome = NULL,  -- new bytes: their fixity record starts
    last_full_verified_at = NULL
WHERE bucket = %(bucket)s AND key = %(key)s
RETURNING id

-- name: file_asset
-- The asset a catalogued key belongs to (any bucket), or no row.
SELECT a.id, a.inventory_code, a.media_type FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE f.bucket = %(bucket)s AND f.key = %(key)s

-- name: asset_file_rows
-- Every catalogued file of an asset, in any bucket.
SELECT bucket, key, role, in_bucket, size, etag, md5, provisional, missing_since
FROM asset_files WHERE asset_id = %(asset_id)s ORDER BY key

-- ---------------------------------------------------------------- known problems (sql/007)

-- name: problem_standing
-- Which of these problems (parallel arrays: key, ETag, reason) are known, and acknowledged.
SELECT t.key, t.reason, p.acknowledged_at IS NOT NULL AS acknowledged
FROM unnest(%(keys)s::text[], %(etags)s::text[], %(reasons)s::text[]) AS t(key, etag, reason)
JOIN known_problems p ON p.bucket = %(bucket)s AND p.key = t.key
                     AND p.etag IS NOT DISTINCT FROM t.etag AND p.reason = t.reason

-- name: record_problems
-- A completed run's problems: new ones inserted, known ones marked seen by this run.
INSERT INTO known_problems AS p (bucket, key, etag, reason, severity, inventory_code, message,
                                 first_run_id, last_run_id)
SELECT %(bucket)s, t.key, t.etag, t.reason, t.severity, t.code, t.message, %(run_id)s,
       %(run_id)s
FROM unnest(%(keys)s::text[], %(etags)s::text[], %(reasons)s::text[], %(severities)s::text[],
            %(codes)s::text[], %(messages)s::text[])
     AS t(key, etag, reason, severity, code, message)
ON CONFLICT ON CONSTRAINT known_problems_identity DO UPDATE
SET last_run_id = excluded.last_run_id, last_seen_at = now(), severity = excluded.severity,
    inventory_code = excluded.inventory_code, message = excluded.message

-- name: open_problems
-- The problems the latest completed run covering their key saw, narrowed by the filters.
-- known: reported before that run too. A run covers a key when the key starts with its prefix.
SELECT p.key, p.etag, p.reason, p.severity, p.inventory_code, p.message, p.first_run_id,
       p.first_seen_at, p.last_run_id, p.last_seen_at, p.acknowledged_at, p.ack_note,
       p.first_run_id <> p.last_run_id AS known
FROM known_problems p
WHERE p.bucket = %(bucket)s
  AND p.last_run_id = (SELECT max(r.id) FROM import_runs r
                       WHERE r.status = 'completed' AND starts_with(p.key, r.prefix))
  AND starts_with(p.key, %(prefix)s)
  AND (%(reason)s::text IS NULL OR p.reason = %(reason)s)
  AND (%(code)s::text IS NULL OR p.inventory_code = %(code)s)
ORDER BY p.key, p.reason

-- name: acknowledge_problems
-- Open problems (see open_problems) of a key and/or a reason acknowledged with a note.
UPDATE known_problems p SET acknowledged_at = now(), ack_note = %(note)s
WHERE p.bucket = %(bucket)s
  AND (%(key)s::text IS NULL OR p.key = %(key)s)
  AND (%(reason)s::text IS NULL OR p.reason = %(reason)s)
  AND p.last_run_id = (SELECT max(r.id) FROM import_runs r
                       WHERE r.status = 'completed' AND starts_with(p.key, r.prefix))
RETURNING p.key, p.reason

-- ---------------------------------------------------------------- mpr show (catalogue.py)

-- name: asset_by_code_or_key
-- The asset of an inventory code, or of the catalogued file at a key (any bucket), or no row.
SELECT a.id, a.inventory_code, a.media_type, a.created_at FROM assets a
WHERE a.inventory_code = %(name)s
   OR a.id = (SELECT f.asset_id FROM asset_files f WHERE f.key = %(name)s
              ORDER BY f.id LIMIT 1)
ORDER BY a.inventory_code = %(name)s DESC
LIMIT 1

-- name: asset_files_shown
-- Every file of an asset with the run that imported it: master first, then by role and key.
SELECT f.id, f.bucket, f.key, f.role, f.size, f.md5, f.mime_type, f.in_bucket, f.provisional,
       f.preset, f.created_at, f.import_run_id, r.run_key, f.tech_metadata
FROM asset_files f LEFT JOIN import_runs r ON r.id = f.import_run_id
WHERE f.asset_id = %(asset_id)s
ORDER BY array_position(ARRAY['master', 'streaming', 'metadata', 'checksum', 'qc_report'],
                        f.role), f.key

-- name: jobs_of_asset
-- Every transcode job of an inventory code, oldest first.
SELECT * FROM transcode_jobs WHERE inventory_code = %(code)s ORDER BY id

-- ---------------------------------------------------------------- preservation events (events.py)

-- name: insert_events
-- Append preservation events given as parallel arrays, in their order (caller's transaction);
-- asset, inventory code and ETag not given are the catalogue's for the file at bucket and key.
-- With imported_by, only the events of files that import run inserted (or confirmed).
INSERT INTO events (event_type, outcome, detail, agent, asset_id, inventory_code, bucket, key,
                    etag, run_key)
SELECT t.event_type, t.outcome, t.detail, %(agent)s, coalesce(t.asset_id, f.asset_id),
       coalesce(t.inventory_code, a.inventory_code), t.bucket, t.key, coalesce(t.etag, f.etag),
       t.run_key
FROM unnest(%(event_types)s::text[], %(outcomes)s::text[], %(details)s::text[],
            %(asset_ids)s::bigint[], %(codes)s::text[], %(buckets)s::text[], %(keys)s::text[],
            %(etags)s::text[], %(run_keys)s::text[]) WITH ORDINALITY
     AS t (event_type, outcome, detail, asset_id, inventory_code, bucket, key, etag, run_key, n)
LEFT JOIN asset_files f ON f.bucket = t.bucket AND f.key = t.key
LEFT JOIN assets a ON a.id = f.asset_id
WHERE %(imported_by)s::bigint IS NULL OR f.import_run_id = %(imported_by)s::bigint
ORDER BY t.n

-- name: events_of_asset
-- Every event of an asset, oldest first (in the order they were recorded).
SELECT event_uuid, event_type, occurred_at, outcome, detail, agent, asset_id, inventory_code,
       bucket, key, etag, run_key
FROM events WHERE asset_id = %(asset_id)s ORDER BY occurred_at, id

-- name: events_of_file
-- Every event of the file at a bucket and key, oldest first.
SELECT event_uuid, event_type, occurred_at, outcome, detail, agent, asset_id, inventory_code,
       bucket, key, etag, run_key
FROM events WHERE bucket = %(bucket)s AND key = %(key)s ORDER BY occurred_at, id

-- name: search_events
-- The newest `limit` events matching every filter given (a NULL filter matches all), oldest first.
SELECT * FROM (
    SELECT id, event_uuid, event_type, occurred_at, outcome, detail, agent, asset_id,
           inventory_code, bucket, key, etag, run_key
    FROM events
    WHERE (%(event_type)s::text IS NULL OR event_type = %(event_type)s::text)
      AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text)
      AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s::timestamptz)
      AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s::text))
    ORDER BY occurred_at DESC, id DESC
    LIMIT %(limit)s::bigint
) newest ORDER BY occurred_at, id

-- ---------------------------------------------------------------- Celery dispatch (issue 13)

-- name: claimable_jobs
-- The jobs claim_job would give now, oldest first, and whether each needs a task sent.
-- The claim predicate of claim_job and count_claimable, word for word (tests/unit/test_jobs.py
-- checks it). needs_task: never sent to the broker,
-- or sent longer ago than the broker's visibility timeout (its task may be lost).
SELECT id, (dispatched_at IS NULL
            OR dispatched_at < now() - make_interval(secs => %(visibility)s)) AS needs_task
FROM transcode_jobs
    WHERE (status = 'PENDING'
           OR (status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => %(lease)s)))
      AND attempts < max_attempts
      AND source_bucket = %(source_bucket)s AND output_bucket = %(output_bucket)s
      AND source_key LIKE %(prefix)s
      AND (%(only_ids)s::bigint[] IS NULL OR id = ANY(%(only_ids)s::bigint[]))
ORDER BY created_at, id

-- name: mark_dispatched
-- A job's task sent to the broker: its id and when it was sent (the last one sent wins).
UPDATE transcode_jobs SET task_id = %(task_id)s, dispatched_at = %(sent_at)s
WHERE id = %(id)s
RETURNING id

-- name: requeue_stale_jobs
-- Celery jobs whose worker died (no heartbeat within the lease), PENDING again to be resent.
-- The dead worker's attempt stays counted (fail_exhausted_jobs FAILs a job that used them
-- all); SKIP LOCKED: of several workers and dispatchers reaping at once, one takes each job.
UPDATE transcode_jobs j
SET status = 'PENDING', started_at = NULL, heartbeat_at = NULL, progress = 0, worker = NULL,
    error = format('pending again: its worker (%%s) stopped during attempt %%s of %%s',
                   j.worker, j.attempts, j.max_attempts)
WHERE j.id IN (
    SELECT id FROM transcode_jobs
    WHERE status = 'PROCESSING' AND task_id IS NOT NULL AND attempts < max_attempts
      AND heartbeat_at < now() - make_interval(secs => %(lease)s)
      AND source_bucket = %(source_bucket)s AND output_bucket = %(output_bucket)s
    FOR UPDATE SKIP LOCKED)
RETURNING j.id

-- name: jobs_by_ids
-- These jobs as they stand now (what a dispatcher waiting on its jobs shows).
SELECT * FROM transcode_jobs WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id

-- name: running_by_worker
-- The running jobs of every live worker (a heartbeat within the lease), by worker name.
SELECT worker, array_agg(id ORDER BY id) AS job_ids, max(heartbeat_at) AS last_heartbeat
FROM transcode_jobs
WHERE status = 'PROCESSING' AND heartbeat_at >= now() - make_interval(secs => %(lease)s)
GROUP BY worker
ORDER BY worker

-- ---------------------------------------------------------------- fixity (mpr fixity, sql/010)

-- name: fixity_clock
-- The catalogue's clock at the start of a fixity run: files verified by the run are newer.
SELECT statement_timestamp() AS now

-- name: fixity_buckets
-- The buckets holding catalogued objects under a prefix (what a quick pass lists).
SELECT DISTINCT bucket FROM asset_files
WHERE in_bucket AND starts_with(key, %(prefix)s)
ORDER BY bucket

-- name: fixity_total_bytes
-- The catalogued bytes in buckets under a prefix (the nightly full pass's cycle share).
SELECT coalesce(sum(size), 0)::bigint AS total FROM asset_files
WHERE in_bucket AND starts_with(key, %(prefix)s)

-- name: fixity_create_listing
-- The session's table of a quick pass's listings (bucket, key, size, ETag), kept until it ends.
CREATE TEMPORARY TABLE IF NOT EXISTS fixity_listing (
    bucket text,
    key    text,
    size   bigint,
    etag   text,
    PRIMARY KEY (bucket, key)
)

-- name: fixity_copy_listing
-- Stream one bucket's listing (bucket, key, size, ETag) into fixity_listing.
COPY fixity_listing (bucket, key, size, etag) FROM STDIN

-- name: fixity_quick_page
-- The next page of files for a quick pass, least recently verified (either way) first, a file
-- never checked counting from its import; each with its listing entry (NULL: not listed).
-- Keyset paging after (after_age, after_id); only files last verified before `before`.
SELECT f.id, f.asset_id, a.inventory_code, f.bucket, f.key, f.size, f.etag, f.md5,
       f.differing_etag, f.fixity_outcome AS previous,
       coalesce(f.last_verified_at, f.created_at) AS age,
       l.size AS listed_size, l.etag AS listed_etag
FROM asset_files f
JOIN assets a ON a.id = f.asset_id
LEFT JOIN fixity_listing l ON l.bucket = f.bucket AND l.key = f.key
WHERE f.in_bucket AND starts_with(f.key, %(prefix)s)
  AND coalesce(f.last_verified_at, f.created_at) < %(before)s
  AND (coalesce(f.last_verified_at, f.created_at), f.id) > (%(after_age)s, %(after_id)s)
ORDER BY coalesce(f.last_verified_at, f.created_at), f.id
LIMIT %(limit)s

-- name: fixity_full_page
-- The next page of files for a full pass, least recently fully verified first, a file never
-- fully verified by `mpr fixity` counting from its import. Keyset paging as fixity_quick_page.
SELECT f.id, f.asset_id, a.inventory_code, f.bucket, f.key, f.size, f.etag, f.md5,
       f.differing_etag, f.fixity_outcome AS previous,
       coalesce(f.last_full_verified_at, f.created_at) AS age
FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE f.in_bucket AND starts_with(f.key, %(prefix)s)
  AND coalesce(f.last_full_verified_at, f.created_at) < %(before)s
  AND (coalesce(f.last_full_verified_at, f.created_at), f.id) > (%(after_age)s, %(after_id)s)
ORDER BY coalesce(f.last_full_verified_at, f.created_at), f.id
LIMIT %(limit)s

-- name: fixity_record_checks
-- Record concluded fixity checks (parallel arrays: file id, quick|full, outcome): when and how
-- each file was verified, and what was found. The caller records their events alongside.
UPDATE asset_files f
SET last_verified_at = statement_timestamp(), last_verified_how = t.how,
    last_full_verified_at = CASE WHEN t.how = 'full' THEN statement_timestamp()
                                 ELSE f.last_full_verified_at END,
    fixity_outcome = t.outcome
FROM unnest(%(ids)s::bigint[], %(hows)s::text[], %(outcomes)s::text[]) AS t (id, how, outcome)
WHERE f.id = t.id

-- ---------------------------------------------------------------- METS/PREMIS export (export/mets.py)

-- name: mets_asset
-- The asset a METS document is exported for, by its inventory code, or no row.
SELECT id, inventory_code, media_type, created_at FROM assets WHERE inventory_code = %(code)s

-- name: mets_files_of_asset
-- Every catalogued file of an asset with what its PREMIS object records (size, ETag, MD5, MIME
-- type, the preset of a copy mpr made, since when it is missing): master first, then by role
-- and key.
SELECT f.bucket, f.key, f.role, f.in_bucket, f.size, f.etag, f.md5, f.mime_type, f.preset,
       f.created_at, f.missing_since
FROM asset_files f
WHERE f.asset_id = %(asset_id)s
ORDER BY array_position(ARRAY['master', 'streaming', 'metadata', 'checksum', 'qc_report'],
                        f.role), f.key

-- name: mets_assets_under_prefix
-- The inventory codes of every asset with a catalogued file (in any bucket) whose key starts
-- with the prefix, in code order ('' : every asset).
SELECT a.inventory_code FROM assets a
WHERE EXISTS (SELECT 1 FROM asset_files f
              WHERE f.asset_id = a.id AND starts_with(f.key, %(prefix)s))
ORDER BY a.inventory_code

-- name: fixity_left
-- How many files of a fixity run's selection are still unverified since `before` (full: by a
-- full check; else by either), after the run: those it did not reach or could not read.
SELECT count(*) AS left FROM asset_files
WHERE in_bucket AND starts_with(key, %(prefix)s)
  AND CASE WHEN %(full)s::boolean THEN coalesce(last_full_verified_at, created_at)
           ELSE coalesce(last_verified_at, created_at) END < %(before)s

-- name: fixity_quick_by_key
-- A quick pass's files in one bucket in the order S3 lists keys (byte order: COLLATE "C"),
-- each last verified (either way) before `before`, to walk beside the bucket's listing.
SELECT f.id, f.asset_id, a.inventory_code, f.bucket, f.key, f.size, f.etag, f.md5,
       f.differing_etag, f.fixity_outcome AS previous
FROM asset_files f
JOIN assets a ON a.id = f.asset_id
WHERE f.bucket = %(bucket)s AND f.in_bucket AND starts_with(f.key, %(prefix)s)
  AND coalesce(f.last_verified_at, f.created_at) < %(before)s
ORDER BY f.key COLLATE "C"

-- name: pictures_of_asset
-- The pictures of one asset (sql/013), poster first, then the contact sheet, then the waveform.
SELECT kind, bucket, key, mime_type, width, height, size, source_key, created_at
FROM asset_pictures
WHERE asset_id = %(asset_id)s
ORDER BY array_position(ARRAY['poster', 'contact_sheet', 'waveform'], kind)

-- name: record_picture
-- One picture of an asset, replacing the asset's earlier picture of the same kind.
INSERT INTO asset_pictures (asset_id, kind, bucket, key, mime_type, width, height, size,
                            source_key)
VALUES (%(asset_id)s, %(kind)s, %(bucket)s, %(key)s, %(mime_type)s, %(width)s, %(height)s,
        %(size)s, %(source_key)s)
ON CONFLICT (asset_id, kind) DO UPDATE
SET bucket = EXCLUDED.bucket, key = EXCLUDED.key, mime_type = EXCLUDED.mime_type,
    width = EXCLUDED.width, height = EXCLUDED.height, size = EXCLUDED.size,
    source_key = EXCLUDED.source_key, created_at = now()

-- name: summaries_of_asset
-- The technical summaries (sql/012) of one asset's files, by file id.
SELECT m.file_id, m.container, m.duration_s, m.video_codec, m.width, m.height,
       m.display_aspect_ratio, m.frame_rate, m.scan_type, m.audio_codec, m.channels,
       m.sample_rate, m.bit_rate, m.source
FROM media_summaries m JOIN asset_files f ON f.id = m.file_id
WHERE f.asset_id = %(asset_id)s

-- name: store_summaries
-- Technical summaries by file id, written or replacing the file's earlier one.
INSERT INTO media_summaries (file_id, container, duration_s, video_codec, width, height,
                             display_aspect_ratio, frame_rate, scan_type, audio_codec,
                             channels, sample_rate, bit_rate, source)
SELECT * FROM unnest(%(file_ids)s::bigint[], %(containers)s::text[],
                     %(duration_ss)s::double precision[], %(video_codecs)s::text[],
                     %(widths)s::integer[], %(heights)s::integer[],
                     %(display_aspect_ratios)s::text[], %(frame_rates)s::double precision[],
                     %(scan_types)s::text[], %(audio_codecs)s::text[],
                     %(channelss)s::integer[], %(sample_rates)s::integer[],
                     %(bit_rates)s::bigint[], %(sources)s::text[])
ON CONFLICT (file_id) DO UPDATE
SET container = EXCLUDED.container, duration_s = EXCLUDED.duration_s,
    video_codec = EXCLUDED.video_codec, width = EXCLUDED.width, height = EXCLUDED.height,
    display_aspect_ratio = EXCLUDED.display_aspect_ratio, frame_rate = EXCLUDED.frame_rate,
    scan_type = EXCLUDED.scan_type, audio_codec = EXCLUDED.audio_codec,
    channels = EXCLUDED.channels, sample_rate = EXCLUDED.sample_rate,
    bit_rate = EXCLUDED.bit_rate, source = EXCLUDED.source, updated_at = now()

-- name: summaries_missing_at
-- The stored metadata of the masters and streaming copies at these (bucket, key)s that have
-- no technical summary yet.
SELECT f.id, f.tech_metadata
FROM unnest(%(buckets)s::text[], %(keys)s::text[]) AS t(bucket, key)
JOIN asset_files f ON f.bucket = t.bucket AND f.key = t.key
WHERE f.role IN ('master', 'streaming') AND f.tech_metadata IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM media_summaries m WHERE m.file_id = f.id)

-- name: summaries_missing
-- The next `limit` masters and streaming copies (by id, after `after`) with stored metadata
-- and no technical summary: the back-fill's batches.
SELECT f.id, f.tech_metadata FROM asset_files f
WHERE f.id > %(after)s AND f.role IN ('master', 'streaming') AND f.tech_metadata IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM media_summaries m WHERE m.file_id = f.id)
ORDER BY f.id
LIMIT %(limit)s

-- name: picture_sources
-- Assets with a file under the prefix (or with a streaming copy imported by run `run_id`) and
-- the file their pictures are made from: the streaming copy in a bucket, else the master in a
-- bucket; `missing`: only those lacking a picture (a video its poster or contact sheet unless
-- it got a waveform for want of a video stream, audio its waveform). In code order.
SELECT a.id AS asset_id, a.inventory_code, a.media_type, s.bucket, s.key, s.role,
       s.tech_metadata, m.key AS master_key
FROM assets a
CROSS JOIN LATERAL (
    SELECT f.bucket, f.key, f.role, f.tech_metadata FROM asset_files f
    WHERE f.asset_id = a.id AND f.in_bucket AND f.role IN ('streaming', 'master')
    ORDER BY f.role = 'streaming' DESC, f.id LIMIT 1) s
LEFT JOIN LATERAL (
    SELECT f.key FROM asset_files f WHERE f.asset_id = a.id AND f.role = 'master'
    ORDER BY f.id LIMIT 1) m ON true
WHERE (%(run_id)s::bigint IS NULL
       OR EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id
                  AND f.role = 'streaming' AND f.import_run_id = %(run_id)s))
  AND EXISTS (SELECT 1 FROM asset_files f
              WHERE f.asset_id = a.id AND starts_with(f.key, %(prefix)s))
  AND (NOT %(missing)s::boolean OR NOT EXISTS (
        SELECT 1 FROM asset_pictures p WHERE p.asset_id = a.id AND p.kind = 'waveform')
       AND (a.media_type = 'audio'
            OR (SELECT count(*) FROM asset_pictures p WHERE p.asset_id = a.id
                AND p.kind IN ('poster', 'contact_sheet')) < 2))
ORDER BY a.inventory_code
