-- Named queries of mpr. Each begins with a `-- name: <name>` header; db.query(name) returns it.
-- Parameters are always passed separately (%s / %(name)s), never formatted in.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migrations
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%s, %s)
