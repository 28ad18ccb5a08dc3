"""Notifications: Immich's per-user messages (admin-created, or raised by the server itself)."""

from app.db.migrate import sql_migration

ID = "2026-11-29T19:30:00:000000"
VERSION = "1.49.0"
DESCRIPTION = "notifications"

SQL = """
-- A message for one user. Level and type take Immich's values; data is free JSON for the client.
-- read_at NULL: unread. deleted_at: removed by its user (kept a while, as Immich keeps them).
CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    level text NOT NULL DEFAULT 'info',
    type text NOT NULL DEFAULT 'Custom',
    title text NOT NULL,
    description text,
    data jsonb,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT notifications_level_check CHECK (level IN ('success', 'error', 'warning', 'info')),
    CONSTRAINT notifications_type_check
        CHECK (type IN ('JobFailed', 'BackupFailed', 'SystemMessage', 'AlbumInvite', 'AlbumUpdate', 'Custom'))
);
-- A user's live notifications, newest first (the list), and the cascade from a deleted user.
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX notifications_user_all_idx ON notifications (user_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
