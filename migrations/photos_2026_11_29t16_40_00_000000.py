"""Album users: Immich's album sharing, an album-level grant to another account with a role."""

from app.db.migrate import sql_migration

ID = "2026-11-29T16:40:00:000000"
VERSION = "1.40.0"
DESCRIPTION = "album users"

SQL = """
-- An account an album is shared with, and as what: a viewer reads the album and its assets, an
-- editor also adds assets to it. The album's owner is not a row here (albums.owner_id says who
-- owns), so removing every user leaves the album as it was before it was shared.
CREATE TABLE album_users (
    album_id uuid NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, user_id)
);
-- "albums shared with me", and the grant check on every load through an album share
CREATE INDEX album_users_user_idx ON album_users (user_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
