"""Indexes for the foreign keys that point at assets and set NULL on delete."""

from app.db.migrate import sql_migration

ID = "2026-11-30T06:00:00:000000"
VERSION = "1.53.0"
DESCRIPTION = "indexes for asset references that clear on delete"

SQL = """
-- Deleting an asset clears the references to it (a live photo's video, a stack's primary, an
-- album's cover). Without an index each of those lookups reads the whole table: deleting an external
-- library of 100,000 assets took hours instead of seconds. Partial: only set references are indexed.
CREATE INDEX assets_live_photo_video_idx ON assets (live_photo_video_id) WHERE (live_photo_video_id IS NOT NULL);
CREATE INDEX stacks_primary_asset_idx ON stacks (primary_asset_id) WHERE (primary_asset_id IS NOT NULL);
CREATE INDEX albums_cover_asset_idx ON albums (cover_asset_id) WHERE (cover_asset_id IS NOT NULL);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
