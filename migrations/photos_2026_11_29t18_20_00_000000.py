"""PIN codes and elevated sessions: Immich's locked folder, and child sessions (a TV cast)."""

from app.db.migrate import sql_migration

ID = "2026-11-29T18:20:00:000000"
VERSION = "1.48.0"
DESCRIPTION = "pin codes and session elevation"

SQL = """
-- A user's PIN (argon2, like passwords). A row of its own, so setting or resetting the PIN never
-- touches the account row other features update.
CREATE TABLE pin_codes (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    pin_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- While in the future, the session is unlocked (elevated): it reaches the locked folder.
ALTER TABLE sessions ADD COLUMN pin_expires_at timestamptz;
-- A session made by another (POST /api/sessions): it ends with the session that made it.
ALTER TABLE sessions ADD COLUMN parent_id uuid REFERENCES sessions (id) ON DELETE CASCADE;
CREATE INDEX sessions_parent_idx ON sessions (parent_id);
-- Whether a library holds locked assets: timeline counts come from per-day counters that count
-- them too, so those are used only when there are none (or the caller is unlocked).
CREATE INDEX assets_locked_idx ON assets (library_id) WHERE visibility = 'locked';
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
