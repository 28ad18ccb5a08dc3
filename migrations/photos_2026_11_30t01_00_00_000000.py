"""External libraries (Immich's /api/libraries): folders indexed in place, their assets in the
owner's library, the originals never copied, moved or modified."""

from app.db.migrate import sql_migration

ID = "2026-11-30T01:00:00:000000"
VERSION = "1.51.0"
DESCRIPTION = "external libraries"

SQL = """
-- An external library is a set of import paths scanned into its owner's library (the one the
-- owner's Immich clients see): its assets take part in the timeline, search, albums, sharing and
-- sync like uploads, and carry external_library_id (Immich's asset libraryId). Deleting it goes
-- in the background (deleted_at first), removing its asset rows and derived files, never a file of
-- the folders.
CREATE TABLE external_libraries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) > 0),
    import_paths text[] NOT NULL DEFAULT '{}',
    exclusion_patterns text[] NOT NULL DEFAULT '{}',
    refreshed_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX external_libraries_owner_idx ON external_libraries (owner_id);
CREATE INDEX external_libraries_library_idx ON external_libraries (library_id);

-- An external asset: original_path is the file in place (absolute); storage_key is
-- 'external/<asset id>', a key that never names a stored file, so every path that deletes or
-- moves stored originals finds nothing to touch. file_mtime_ns and file_size_bytes are what the
-- last scan saw (a re-scan re-processes a file when either changed). Until its background job has
-- read the content, its checksums are Immich's path checksums (checksum_source 'path').
-- is_offline: the file is gone (or excluded); such an asset also sits in the trash, as in Immich.
-- sidecar_path: its XMP sidecar in place (photo.jpg.xmp or photo.xmp), read, never written.
ALTER TABLE assets
    ADD COLUMN external_library_id uuid REFERENCES external_libraries (id) ON DELETE CASCADE,
    ADD COLUMN original_path text,
    ADD COLUMN file_mtime_ns bigint,
    ADD COLUMN is_offline boolean NOT NULL DEFAULT false,
    ADD COLUMN checksum_source text NOT NULL DEFAULT 'content',
    ADD COLUMN sidecar_path text,
    ADD CONSTRAINT assets_checksum_source_check CHECK (checksum_source = ANY (ARRAY['content'::text, 'path'::text])),
    ADD CONSTRAINT assets_external_path_check CHECK ((external_library_id IS NULL) = (original_path IS NULL));

-- Uploads stay unique by content within a library; files of a folder tree are assets by path (two
-- copies of a photo in two folders are two assets, as in Immich), and may equal an upload.
DROP INDEX assets_library_sha256_key;
CREATE UNIQUE INDEX assets_library_sha256_key ON assets (library_id, checksum_sha256) WHERE (external_library_id IS NULL);
CREATE UNIQUE INDEX assets_external_path_key ON assets (external_library_id, original_path) WHERE (external_library_id IS NOT NULL);
-- A rename is an offline asset's content found at a new path: only offline rows are looked up.
CREATE INDEX assets_external_offline_sha256_idx ON assets (external_library_id, checksum_sha256) WHERE is_offline;
-- Indexes only uploads are looked up by: a scan of a large tree writes many rows at once, and every
-- index is work per row. An external asset's storage key (external/<asset id>) is unique by
-- construction and names no stored file; device ids are what phones upload with.
DROP INDEX assets_storage_key_key;
CREATE UNIQUE INDEX assets_storage_key_key ON assets (storage_key) WHERE (external_library_id IS NULL);
DROP INDEX assets_library_device_idx;
CREATE INDEX assets_library_device_idx ON assets (library_id, device_id, device_asset_id) WHERE (external_library_id IS NULL);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
