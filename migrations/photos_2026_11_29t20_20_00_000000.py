"""Asset versions: renderings above the uploaded original (native versions and Immich edits)."""

from app.db.migrate import sql_migration

ID = "2026-11-29T20:20:00:000000"
VERSION = "1.48.0"
DESCRIPTION = "asset versions"

SQL = """
-- Position 0 of every chain is the uploaded original, described by the assets row itself (its id
-- is assets.original_version_id); this table holds the renderings above it, in chain order.
CREATE TABLE asset_versions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    asset_id uuid NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position > 0),
    kind text NOT NULL,
    params jsonb NOT NULL,
    storage_key text NOT NULL UNIQUE,
    mime_type text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    size_bytes bigint NOT NULL,
    checksum_sha256 bytea NOT NULL,
    checksum_sha1 bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (asset_id, position)
);
-- The rendering every reader shows; NULL is the original. No foreign key (the two tables would
-- reference each other): app/domain/asset_versions.py sets it in the transaction that changes the chain.
ALTER TABLE assets ADD COLUMN current_version_id uuid;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
