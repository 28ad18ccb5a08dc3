"""Per-day asset counts, kept current by statement triggers, so timeline counts need no scan."""

from app.db.migrate import sql_migration

ID = "2026-11-27T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "asset day counts rollup"

SQL = """
-- No foreign key: rows of a library being deleted are adjusted while the cascade runs.
CREATE TABLE asset_day_counts (
    library_id uuid NOT NULL,
    day date NOT NULL,
    media_type text NOT NULL,
    trashed boolean NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (library_id, day, media_type, trashed)
);

-- Statement-level with transition tables: one aggregated upsert per statement, applied in key
-- order, so concurrent bulk changes cannot deadlock on the counter rows.
CREATE FUNCTION asset_day_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO asset_day_counts AS c (library_id, day, media_type, trashed, count)
        SELECT library_id, local_datetime::date, media_type, trashed_at IS NOT NULL, count(*)
        FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (library_id, day, media_type, trashed) DO UPDATE SET count = c.count + EXCLUDED.count;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO asset_day_counts AS c (library_id, day, media_type, trashed, count)
        SELECT library_id, local_datetime::date, media_type, trashed_at IS NOT NULL, -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (library_id, day, media_type, trashed) DO UPDATE SET count = c.count + EXCLUDED.count;
    ELSE
        INSERT INTO asset_day_counts AS c (library_id, day, media_type, trashed, count)
        SELECT library_id, day, media_type, trashed, sum(delta)
        FROM (
            SELECT library_id, local_datetime::date AS day, media_type, trashed_at IS NOT NULL AS trashed, 1 AS delta
            FROM new_rows
            UNION ALL
            SELECT library_id, local_datetime::date, media_type, trashed_at IS NOT NULL, -1 FROM old_rows
        ) d
        GROUP BY 1, 2, 3, 4 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (library_id, day, media_type, trashed) DO UPDATE SET count = c.count + EXCLUDED.count;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER assets_day_counts_insert AFTER INSERT ON assets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION asset_day_counts_apply();
CREATE TRIGGER assets_day_counts_delete AFTER DELETE ON assets
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION asset_day_counts_apply();
CREATE TRIGGER assets_day_counts_update AFTER UPDATE ON assets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION asset_day_counts_apply();

INSERT INTO asset_day_counts (library_id, day, media_type, trashed, count)
SELECT library_id, local_datetime::date, media_type, trashed_at IS NOT NULL, count(*) FROM assets GROUP BY 1, 2, 3, 4;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
