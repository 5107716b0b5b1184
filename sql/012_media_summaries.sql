-- Technical summaries (issue 15, src/mpr_cli/summary.py): what a person asks of a master or a
-- streaming copy, as typed columns derived from its asset_files.tech_metadata (the mediainfo or
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
