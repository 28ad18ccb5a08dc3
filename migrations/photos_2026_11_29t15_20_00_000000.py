"""The effective rating and capture instant as columns Postgres computes; the file's rating kept once."""

from app.db.migrate import sql_migration

ID = "2026-11-29T15:20:00:000000"
VERSION = "1.39.0"
DESCRIPTION = "effective rating and capture instant computed on the asset row"

SQL = """
-- The file's rating was stored twice (assets.file_rating and asset_exif.rating) and read from
-- both. assets.file_rating stays, being where filters need it; rows processed before it existed
-- take the exif copy first. The metadata reader maps out-of-range ratings to 0, so 0..5 holds.
UPDATE assets a SET file_rating = x.rating FROM asset_exif x
    WHERE x.asset_id = a.id AND x.rating IS NOT NULL AND a.file_rating IS NULL;
UPDATE assets SET file_rating = 0 WHERE file_rating NOT BETWEEN 0 AND 5;
ALTER TABLE asset_exif DROP COLUMN rating;

-- What every reader means by an asset's rating (the user's, else the file's) and by when it was
-- taken (the wall clock less its UTC offset; a wall clock without one is read as UTC). Stored
-- generated columns: Postgres keeps them right on every write, and SQL filters, the change feed
-- and both APIs read the same value. Favorite is a rating of 5 (app/domain/effective.py).
ALTER TABLE assets
    ADD CONSTRAINT assets_file_rating_check CHECK (file_rating BETWEEN 0 AND 5),
    ADD COLUMN effective_rating smallint GENERATED ALWAYS AS (coalesce(rating, file_rating)) STORED,
    ADD COLUMN taken_at timestamptz
        GENERATED ALWAYS AS ((local_datetime - make_interval(mins => coalesce(local_offset_minutes, 0)))
                             AT TIME ZONE 'UTC') STORED;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
