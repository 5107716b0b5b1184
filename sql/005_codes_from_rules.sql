-- Inventory codes: the rules file (rules.toml, or a replacement named by --rules / MPR_RULES) is
-- the one authority on what a code looks like and which media type its first letter gives.
-- The catalogue keeps only what any rules file must respect (rules.py CODE_CHARS): 1 to 64
-- printable ASCII characters without space or '/'. Before this, the built-in pattern was
-- repeated here, so a replacement rules file could accept codes that the catalogue refused.
DO $$
DECLARE
    found record;
BEGIN
    FOR found IN
        SELECT c.conrelid::regclass AS tbl, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'c'
          AND c.conrelid IN ('assets'::regclass, 'transcode_jobs'::regclass)
          AND pg_get_constraintdef(c.oid) LIKE '%inventory_code%'
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', found.tbl, found.conname);
    END LOOP;
END
$$;

ALTER TABLE assets ADD CONSTRAINT assets_inventory_code_chars
    CHECK (inventory_code ~ '^[!-.0-~]{1,64}$');
ALTER TABLE transcode_jobs ADD CONSTRAINT transcode_jobs_inventory_code_chars
    CHECK (inventory_code ~ '^[!-.0-~]{1,64}$');
