"""Asset metadata: Immich's per-asset key/value objects (the app stores e.g. its iCloud id there)."""

from app.db.migrate import sql_migration

ID = "2026-11-29T20:30:00:000000"
VERSION = "1.50.0"
DESCRIPTION = "asset metadata"

SQL = """
-- One JSON object per (asset, key). It goes with the asset (cascade) and moves with it: no library
-- column, the asset's library is the one that counts.
CREATE TABLE asset_metadata (
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, key)
);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
