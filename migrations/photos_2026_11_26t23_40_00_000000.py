"""Foundation schema: users, libraries, API keys, assets and the change log.

Written as SQL so the schema says exactly what it means (expression indexes,
checks, the transaction-id stamp on events), which auto migrations can't express.
"""

from app.db.migrate import sql_migration

ID = "2026-11-26T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "foundation schema"

SQL = """
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    password_hash text,
    is_admin boolean NOT NULL DEFAULT false,
    storage_limit_bytes bigint CHECK (storage_limit_bytes >= 0),
    storage_label text,
    avatar_color text,
    preferences jsonb NOT NULL DEFAULT '{}',
    default_library_id uuid,
    profile_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE libraries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    storage_limit_bytes bigint CHECK (storage_limit_bytes >= 0),
    trashed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX libraries_owner_name_key ON libraries (owner_id, lower(btrim(name)));
ALTER TABLE users ADD CONSTRAINT users_default_library_fkey
    FOREIGN KEY (default_library_id) REFERENCES libraries (id) ON DELETE SET NULL;

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text,
    secret_hash bytea NOT NULL UNIQUE,
    actions text[] NOT NULL DEFAULT '{read,write,delete,delete_permanently}',
    library_scope_mode text NOT NULL DEFAULT 'all_libraries'
        CHECK (library_scope_mode IN ('all_libraries', 'selected_libraries')),
    library_ids uuid[] NOT NULL DEFAULT '{}',
    is_active boolean NOT NULL DEFAULT true,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE assets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_type text NOT NULL CHECK (media_type IN ('image', 'video')),
    mime_type text NOT NULL,
    original_file_name text NOT NULL CHECK (length(original_file_name) <= 1024),
    storage_key text NOT NULL,
    file_size_bytes bigint NOT NULL CHECK (file_size_bytes > 0),
    checksum_sha256 bytea NOT NULL CHECK (length(checksum_sha256) = 32),
    checksum_sha1 bytea NOT NULL CHECK (length(checksum_sha1) = 20),
    device_asset_id text NOT NULL,
    device_id text NOT NULL,
    file_created_at timestamptz NOT NULL,
    -- The offset the client sent with file_created_at (NULL: it sent a naive time).
    file_created_offset_minutes integer,
    file_modified_at timestamptz NOT NULL,
    local_datetime timestamp NOT NULL,
    local_offset_minutes integer CHECK (local_offset_minutes BETWEEN -1080 AND 1080),
    captured_at timestamptz,
    width integer,
    height integer,
    duration_ms integer,
    thumbhash bytea,
    description text,
    -- What the user set through the API. NULL means "no override": the value
    -- from the file (once metadata is extracted) shows through.
    rating smallint CHECK (rating BETWEEN 0 AND 5),
    user_description text,
    user_latitude double precision CHECK (user_latitude BETWEEN -90 AND 90),
    user_longitude double precision CHECK (user_longitude BETWEEN -180 AND 180),
    user_original_datetime timestamp,
    user_original_offset_minutes integer,
    CHECK ((user_latitude IS NULL) = (user_longitude IS NULL)),
    visibility text NOT NULL DEFAULT 'timeline',
    live_photo_video_id uuid REFERENCES assets (id) ON DELETE SET NULL,
    stack_id uuid,
    original_version_id uuid NOT NULL DEFAULT gen_random_uuid(),
    trashed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Dedupe is per library by SHA-256, trashed rows included.
CREATE UNIQUE INDEX assets_library_sha256_key ON assets (library_id, checksum_sha256);
CREATE INDEX assets_library_sha1_idx ON assets (library_id, checksum_sha1);
CREATE INDEX assets_library_timeline_idx ON assets (library_id, local_datetime DESC, id DESC);
CREATE INDEX assets_library_trash_idx ON assets (library_id, trashed_at DESC, id DESC)
    WHERE trashed_at IS NOT NULL;
CREATE INDEX assets_library_device_idx ON assets (library_id, device_id, device_asset_id);

-- The change log read by /api/events and the Immich sync stream. txid is the
-- writing transaction's id: readers only take rows whose txid is below the
-- oldest transaction still running, so a late commit is never skipped.
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    library_id uuid,
    owner_id uuid,
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    event_type text NOT NULL,
    payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_library_feed_idx ON events (library_id, txid, id);
CREATE INDEX events_owner_feed_idx ON events (owner_id, txid, id);
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
