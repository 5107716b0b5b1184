-- Pictures of an asset (issue 15): a poster JPEG and a contact sheet JPEG for a video, a
-- waveform PNG for audio, made by mpr (src/mpr_cli/pictures/) and stored in the output bucket
-- under thumbnails/<folder>/<code>.jpg, .sheet.jpg, .waveform.png. One row per asset and kind:
-- a new picture of the same kind replaces the row. source_key is the file it was made from.
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
