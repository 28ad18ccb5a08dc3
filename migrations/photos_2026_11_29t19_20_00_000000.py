"""User licenses, and accounts waiting to be removed at once (Immich's forced user delete)."""

from app.db.migrate import sql_migration

ID = "2026-11-29T19:20:00:000000"
VERSION = "1.49.0"
DESCRIPTION = "user licenses and forced user removals"

SQL = """
-- A user's Immich license (a key and the activation key signed over it), as Immich keeps one per user.
CREATE TABLE user_licenses (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    license_key text NOT NULL,
    activation_key text NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
);
-- A deleted account whose data must go now rather than after the delete delay. Written with the
-- deletion, so a removal interrupted by a crash is finished by the next sweep.
CREATE TABLE user_removals (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT now()
);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
