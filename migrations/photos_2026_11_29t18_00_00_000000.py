"""System metadata: server-wide state kept by key, as Immich keeps admin onboarding and the like."""

from app.db.migrate import sql_migration

ID = "2026-11-29T18:00:00:000000"
VERSION = "1.44.0"
DESCRIPTION = "system metadata"

SQL = """
-- One row per key (app.domain.system_metadata names the keys). The value is a JSON object whose
-- fields are the ones Immich reports for that key; a missing row means "never set", which readers
-- answer with Immich's defaults (admin onboarding: not onboarded).
CREATE TABLE system_metadata (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
