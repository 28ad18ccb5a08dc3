"""Immich partners: one user shares all their photos with another, read-only."""

from app.db.migrate import sql_migration

ID = "2026-11-29T16:30:00:000000"
VERSION = "1.41.0"
DESCRIPTION = "partners"

SQL = """
-- shared_by lets shared_with see their photos. in_timeline is the receiver's choice: whether the
-- sharer's photos appear in the receiver's own timeline. A partnership is one-way; sharing back
-- is a second row.
CREATE TABLE partners (
    shared_by_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared_with_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    in_timeline boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shared_by_id, shared_with_id),
    CHECK (shared_by_id <> shared_with_id)
);
-- The receiver's side: who shares with me (access checks and the partner timeline).
CREATE INDEX partners_shared_with_idx ON partners (shared_with_id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
