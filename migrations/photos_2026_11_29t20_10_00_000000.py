"""Memories: Immich's "on this day" collections of a user's photos, and the photos in each."""

from app.db.migrate import sql_migration

ID = "2026-11-29T20:10:00:000000"
VERSION = "1.49.0"
DESCRIPTION = "memories"

SQL = """
-- A memory is its owner's alone; it shows photos of one library (the one it was made from, or the
-- Immich library of the user who created it), so the library's change log carries its events.
-- data: the type's JSON (on_this_day: {"year": 2021}). show_at/hide_at: the window a client shows
-- it in (NULL: always). deleted_at is Immich's column; nothing here sets it (a delete removes the row).
CREATE TABLE memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    type text NOT NULL,
    data jsonb NOT NULL,
    is_saved boolean NOT NULL DEFAULT false,
    memory_at timestamptz NOT NULL,
    seen_at timestamptz,
    show_at timestamptz,
    hide_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memories_type_check CHECK (type IN ('on_this_day'))
);
-- A user's memories of its Immich library, newest first (the list); the library's cascade.
CREATE INDEX memories_owner_idx ON memories (owner_id, library_id, memory_at DESC);
CREATE INDEX memories_library_idx ON memories (library_id);
-- A photo in a memory. Its own id names the link in the change log (as album_assets' does).
CREATE TABLE memory_assets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    memory_id uuid NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (memory_id, asset_id)
);
CREATE INDEX memory_assets_asset_idx ON memory_assets (asset_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
