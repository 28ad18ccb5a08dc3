"""Albums, album links, stacks, user preferences, and searchable copies of effective values."""

from app.db.migrate import sql_migration

ID = "2026-11-27T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "albums, stacks, search columns, user preferences"

SQL = """
CREATE TABLE albums (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    cover_asset_id uuid REFERENCES assets (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX albums_library_name_key ON albums (library_id, lower(btrim(name)));
CREATE INDEX albums_library_created_idx ON albums (library_id, created_at DESC, id DESC);

CREATE TABLE album_assets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    album_id uuid NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (album_id, asset_id)
);
CREATE INDEX album_assets_asset_idx ON album_assets (asset_id);
CREATE INDEX album_assets_library_idx ON album_assets (library_id, created_at DESC, id DESC);

CREATE TABLE stacks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    origin text NOT NULL DEFAULT 'user' CHECK (origin IN ('auto_burst', 'user')),
    primary_asset_id uuid REFERENCES assets (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stacks_library_idx ON stacks (library_id, id);
ALTER TABLE assets ADD CONSTRAINT assets_stack_fkey FOREIGN KEY (stack_id) REFERENCES stacks (id) ON DELETE SET NULL;
CREATE INDEX assets_stack_idx ON assets (stack_id) WHERE stack_id IS NOT NULL;

-- Effective values kept on the asset so filters can use indexes: coordinates (the user's, else
-- the file's) and the file's own rating (the user's override stays in assets.rating).
ALTER TABLE assets ADD COLUMN latitude double precision, ADD COLUMN longitude double precision,
    ADD COLUMN file_rating smallint;
CREATE INDEX assets_library_geo_idx ON assets (library_id, latitude, longitude) WHERE latitude IS NOT NULL;

ALTER TABLE users
    ADD COLUMN immich_library_id uuid REFERENCES libraries (id) ON DELETE SET NULL,
    ADD COLUMN demo_mode_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN favorite_display_mode text NOT NULL DEFAULT 'favorite'
        CHECK (favorite_display_mode IN ('favorite', 'rating'));
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
