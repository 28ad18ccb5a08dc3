"""Storage template moves: a journal that makes moving an original crash-safe."""

from app.db.migrate import sql_migration

ID = "2026-11-29T19:40:00:000000"
VERSION = "1.48.0"
DESCRIPTION = "storage template move journal"

SQL = """
-- One row per original being moved, committed before the new file exists and deleted after the
-- old one is gone: whatever a crash interrupts, the row says which two files to reconcile
-- (see app/domain/storage_template.py). No foreign key: a purge during a move must leave the row
-- for the recovery, which then removes both files.
CREATE TABLE storage_moves (
    asset_id uuid PRIMARY KEY,
    old_key text NOT NULL,
    new_key text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Template paths are chosen by name, not by asset id: two assets must never share a file.
CREATE UNIQUE INDEX assets_storage_key_key ON assets (storage_key);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
