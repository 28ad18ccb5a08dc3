"""Media pipeline: file metadata, derived files and background task records."""

from app.db.migrate import sql_migration

ID = "2026-11-27T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "asset metadata, derived files, tasks"

SQL = """
-- What the file says (EXIF/XMP/IPTC, container tags), plus place names derived from GPS.
-- User edits stay on assets.user_*; the effective value is computed when reading.
CREATE TABLE asset_exif (
    asset_id uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    make text,
    model text,
    lens_model text,
    f_number double precision,
    focal_length double precision,
    iso integer,
    exposure_time double precision,
    exposure_bias double precision,
    orientation smallint,
    original_datetime timestamp,
    original_offset_minutes integer,
    digitized_datetime timestamp,
    digitized_offset_minutes integer,
    modified_datetime timestamp,
    modified_offset_minutes integer,
    timezone text,
    latitude double precision,
    longitude double precision,
    altitude double precision,
    city text,
    state text,
    country text,
    country_code text,
    description text,
    rating smallint,
    projection_type text,
    fps double precision,
    live_photo_cid text,
    auto_stack_id text,
    raw_width integer,
    raw_height integer,
    video_codec text,
    date_source text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Files derived from an original (thumbnail, preview, fullsize, sidecar).
CREATE TABLE asset_files (
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('thumbnail', 'preview', 'fullsize', 'sidecar')),
    storage_key text NOT NULL,
    mime_type text NOT NULL,
    width integer,
    height integer,
    size_bytes bigint NOT NULL,
    checksum_sha1 bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, kind)
);

-- One row per background run, visible through /api/tasks.
CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_id uuid REFERENCES libraries (id) ON DELETE CASCADE,
    asset_id uuid REFERENCES assets (id) ON DELETE CASCADE,
    task_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'started', 'success', 'failure')),
    job_id text NOT NULL,
    retry_count integer NOT NULL DEFAULT 0,
    outcome text,
    result text,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz
);
CREATE INDEX tasks_owner_created_idx ON tasks (owner_id, created_at DESC, id DESC);
CREATE INDEX tasks_asset_idx ON tasks (asset_id, created_at DESC);
CREATE INDEX tasks_open_idx ON tasks (task_type, asset_id) WHERE status IN ('pending', 'started');

ALTER TABLE assets ADD COLUMN processing_error text;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
