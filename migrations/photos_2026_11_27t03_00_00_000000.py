"""Login sessions (Immich clients sign in with a password and then carry a session token)."""

from app.db.migrate import sql_migration

ID = "2026-11-27T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sessions"

SQL = """
CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    device_type text NOT NULL DEFAULT '',
    device_os text NOT NULL DEFAULT '',
    app_version text,
    is_pending_sync_reset boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
ALTER TABLE users ADD COLUMN should_change_password boolean NOT NULL DEFAULT false;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
