"""Per-session sync checkpoints (the Immich sync stream), and an index to read one entity kind's changes."""

from app.db.migrate import sql_migration

ID = "2026-11-27T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sync checkpoints"

SQL = """
CREATE TABLE sync_checkpoints (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- the Immich SyncEntityType this acknowledgement is for
    type text NOT NULL,
    ack text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, type)
);
-- A sync reads one entity kind of one library at a time, in feed order, and asks of each
-- event whether its entity has a later one.
CREATE INDEX events_library_kind_idx ON events (library_id, entity_type, txid, id);
CREATE INDEX events_entity_idx ON events (entity_id, txid, id);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
