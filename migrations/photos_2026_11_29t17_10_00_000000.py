"""Activities: Immich's comments and likes on a shared album, or on an asset in it."""

from app.db.migrate import sql_migration

ID = "2026-11-29T17:10:00:000000"
VERSION = "1.42.0"
DESCRIPTION = "activities"

SQL = """
-- Immich's isActivityEnabled: whether the album takes new comments and likes (existing ones stay
-- readable either way). On unless its owner turns it off, as in Immich.
ALTER TABLE albums ADD COLUMN is_activity_enabled boolean NOT NULL DEFAULT true;

-- A comment or a like by a user, on an album (asset_id NULL) or on one asset in it. A like has
-- no text and a comment always has some.
CREATE TABLE activities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    album_id uuid NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    asset_id uuid REFERENCES assets (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    comment text,
    is_liked boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT activities_like_or_comment_check
        CHECK ((is_liked AND comment IS NULL) OR (NOT is_liked AND comment IS NOT NULL))
);
-- An album's activities, oldest first (lists and statistics).
CREATE INDEX activities_album_idx ON activities (album_id, created_at, id);
-- The cascades from a deleted asset or user.
CREATE INDEX activities_asset_idx ON activities (asset_id);
CREATE INDEX activities_user_idx ON activities (user_id);
-- One like per user on an album (asset_id NULL, hence NULLS NOT DISTINCT) or on an asset in it.
CREATE UNIQUE INDEX activities_one_like_key ON activities (user_id, album_id, asset_id) NULLS NOT DISTINCT
    WHERE is_liked;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
