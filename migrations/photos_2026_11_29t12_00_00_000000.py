"""Stable asset list walks: the old sort keys of changed assets, and the snapshot each walk was read at."""

from app.db.migrate import sql_migration

ID = "2026-11-29T12:00:00:000000"
VERSION = "1.39.0"
DESCRIPTION = "asset sort-key history and list walks"

SQL = """
-- Each change of an asset's sort keys (capture time, trash time) keeps the values it
-- replaced, tagged with the writing transaction. A list walk knows the snapshot its
-- first page was read at; a later page takes, for an asset changed by a transaction
-- that snapshot did not see, the oldest replaced value: the key the walk saw.
-- Both tables are UNLOGGED: no WAL or commit flush for a list page or a key change. A crash
-- empties both together, and a cursor whose walk is gone just starts a new walk.
CREATE UNLOGGED TABLE asset_key_history (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id uuid NOT NULL,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    old_local_datetime timestamp NOT NULL,
    old_trashed_at timestamptz,
    changed_at timestamptz NOT NULL DEFAULT now()
);
-- A walk reads only the rows at or above its snapshot's xmin.
CREATE INDEX asset_key_history_library_xid_idx ON asset_key_history (library_id, xid);
CREATE INDEX asset_key_history_changed_idx ON asset_key_history (changed_at);

CREATE FUNCTION asset_key_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO asset_key_history (asset_id, library_id, old_local_datetime, old_trashed_at)
    VALUES (OLD.id, OLD.library_id, OLD.local_datetime, OLD.trashed_at);
    RETURN NULL;
END
$$;
-- Row level, but only for rows whose keys really changed (a rating or title edit costs nothing).
CREATE TRIGGER assets_key_history AFTER UPDATE OF local_datetime, trashed_at ON assets
    FOR EACH ROW
    WHEN (OLD.local_datetime IS DISTINCT FROM NEW.local_datetime OR OLD.trashed_at IS DISTINCT FROM NEW.trashed_at)
    EXECUTE FUNCTION asset_key_history_record();

-- The last asset of each page served, per list (a digest of filter and order), with the
-- snapshot of the walk's first page: the wire cursor stays that asset's id.
CREATE UNLOGGED TABLE asset_list_walks (
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    view text NOT NULL,
    anchor_id uuid NOT NULL,
    snapshot pg_snapshot NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (library_id, view, anchor_id)
);
CREATE INDEX asset_list_walks_started_idx ON asset_list_walks (started_at);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
