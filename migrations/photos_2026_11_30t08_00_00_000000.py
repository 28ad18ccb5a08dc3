"""Album names may be blank or repeat within a library (Immich's albums); the native API keeps its own rule."""

from app.db.migrate import sql_migration

ID = "2026-11-30T08:00:00:000000"
VERSION = "1.54.0"
DESCRIPTION = "album names may be blank or repeated (Immich)"

SQL = """
-- Immich creates a new album on every "create", with any name, blank included (its web app makes the
-- album unnamed, then the user types a name), so two albums of one library may share a name. The
-- native API's find-or-create and renames check for a taken name under the library's row lock
-- (app/domain/albums.py); this index now only serves those lookups.
ALTER TABLE albums DROP CONSTRAINT albums_name_check;
DROP INDEX albums_library_name_key;
CREATE INDEX albums_library_name_idx ON albums (library_id, lower(btrim(name)));
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
