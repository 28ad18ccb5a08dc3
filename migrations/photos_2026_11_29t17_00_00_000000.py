"""Shared links: Immich's public links to one album or to a list of assets, opened by key or slug."""

from app.db.migrate import sql_migration

ID = "2026-11-29T17:00:00:000000"
VERSION = "1.41.0"
DESCRIPTION = "shared links"

SQL = """
-- A link an owner hands out: whoever holds its key (or slug) reads one album, or the assets listed
-- in shared_link_assets, until it expires or is deleted. The key is kept as it was made (the owner
-- is shown it again, as Immich does); the password too, since Immich returns it to the owner.
CREATE TABLE shared_links (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    link_type text NOT NULL CHECK (link_type IN ('ALBUM', 'INDIVIDUAL')),
    album_id uuid REFERENCES albums (id) ON DELETE CASCADE,
    key bytea NOT NULL UNIQUE,
    slug text UNIQUE,
    description text,
    password text,
    expires_at timestamptz,
    allow_upload boolean NOT NULL,
    allow_download boolean NOT NULL,
    show_metadata boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shared_links_album_check CHECK ((link_type = 'ALBUM') = (album_id IS NOT NULL))
);
-- the owner's list, and the links of an album
CREATE INDEX shared_links_owner_idx ON shared_links (owner_id, created_at DESC, id DESC);
CREATE INDEX shared_links_album_idx ON shared_links (album_id) WHERE album_id IS NOT NULL;

-- The assets of an INDIVIDUAL link.
CREATE TABLE shared_link_assets (
    shared_link_id uuid NOT NULL REFERENCES shared_links (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shared_link_id, asset_id)
);
-- the grant check on every load through a link
CREATE INDEX shared_link_assets_asset_idx ON shared_link_assets (asset_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
