-- Transcoding: which preset made a streaming copy; jobs name their asset by inventory code so
-- a master that was never imported can be transcoded (its asset is registered on success).

ALTER TABLE asset_files ADD COLUMN preset text;
ALTER TABLE asset_files ADD CONSTRAINT asset_files_preset_only_streaming
    CHECK (preset IS NULL OR role = 'streaming');

ALTER TABLE transcode_jobs ALTER COLUMN asset_id DROP NOT NULL;
ALTER TABLE transcode_jobs ADD COLUMN inventory_code text NOT NULL
    CHECK (inventory_code ~ '^[VA][OC]-[A-Z0-9]{3}-[0-9]{5}$');
ALTER TABLE transcode_jobs ADD COLUMN media_type text NOT NULL
    CHECK (media_type IN ('video', 'audio'));
ALTER TABLE transcode_jobs ADD CONSTRAINT transcode_jobs_completed_has_asset
    CHECK (status <> 'COMPLETED' OR asset_id IS NOT NULL);
CREATE INDEX transcode_jobs_asset_idx ON transcode_jobs (asset_id);
CREATE INDEX transcode_jobs_code_idx ON transcode_jobs (inventory_code);
