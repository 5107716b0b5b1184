-- One master and at most one streaming copy per asset, held by the catalogue itself: a
-- `mpr transcode --force` replaces the asset's streaming row, it never adds a second one.
-- A catalogue that already has a second copy is named here instead of failing on the index.
DO $$
DECLARE
    doubled text;
BEGIN
    SELECT string_agg(a.inventory_code, ', ' ORDER BY a.inventory_code) INTO doubled
    FROM (SELECT asset_id FROM asset_files WHERE role = 'streaming'
          GROUP BY asset_id HAVING count(*) > 1) d
    JOIN assets a ON a.id = d.asset_id;
    IF doubled IS NOT NULL THEN
        RAISE EXCEPTION 'assets with more than one streaming copy in asset_files: % (delete the '
                        'rows of the copies to forget, then run mpr db migrate again)', doubled;
    END IF;
END
$$;

CREATE UNIQUE INDEX IF NOT EXISTS asset_files_one_master
    ON asset_files (asset_id) WHERE role = 'master';
CREATE UNIQUE INDEX asset_files_one_streaming
    ON asset_files (asset_id) WHERE role = 'streaming';
