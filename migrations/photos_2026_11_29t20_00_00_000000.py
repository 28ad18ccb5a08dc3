"""Tags: each user's tree of tag values, its closure (for "this tag or any below it") and asset links."""

from app.db.migrate import sql_migration

ID = "2026-11-29T20:00:00:000000"
VERSION = "1.49.0"
DESCRIPTION = "tags"

SQL = """
-- A user's tag. value is the full path ("Travel/2024"); parent_id is the tag one level up, whose
-- value is this one's without its last part. Deleting a tag deletes the tags below it.
CREATE TABLE tags (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value text NOT NULL,
    color text,
    parent_id uuid REFERENCES tags (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_user_value_key ON tags (user_id, value);
CREATE INDEX tags_parent_idx ON tags (parent_id);
-- Every (ancestor, descendant) pair of the tree, each tag its own ancestor too: a filter by a tag
-- matches assets tagged with it or with any tag below it in one join.
CREATE TABLE tag_closure (
    ancestor_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    descendant_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX tag_closure_descendant_idx ON tag_closure (descendant_id);
CREATE TABLE tag_assets (
    tag_id uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tag_id, asset_id)
);
CREATE INDEX tag_assets_asset_idx ON tag_assets (asset_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
