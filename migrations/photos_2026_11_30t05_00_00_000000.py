"""Smart search (CLIP) embeddings, and Immich's duplicate groups."""

from app.db.migrate import sql_migration

ID = "2026-11-30T05:00:00:000000"
VERSION = "1.52.0"
DESCRIPTION = "smart search embeddings and duplicate groups"

SQL = """
-- One CLIP image embedding per asset and model (L2-normalised float32, little-endian bytes): the
-- source of truth the per-library FAISS indexes are built from. seq only grows (a re-embedded asset
-- gets a new row and seq), so an index adds just the rows above its watermark and counts the rest
-- as dead. library_id follows the asset (a move between libraries re-files it).
CREATE TABLE smart_search (
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    model text NOT NULL,
    seq bigserial NOT NULL UNIQUE,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    embedding bytea NOT NULL,
    -- when the duplicate detection last looked at this embedding (NULL: not yet)
    duplicates_checked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, model)
);
CREATE INDEX smart_search_library_idx ON smart_search (library_id, model, seq);

-- Immich's duplicate group of an asset (NULL: in none); assets of one owner share an id.
ALTER TABLE assets ADD COLUMN duplicate_id uuid;
CREATE INDEX assets_duplicate_idx ON assets (owner_id, duplicate_id) WHERE (duplicate_id IS NOT NULL);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
