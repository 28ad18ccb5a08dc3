"""Faces and people."""

from app.db.migrate import sql_migration

ID = "2026-11-27T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "faces and people"

SQL = """
CREATE TABLE people (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text,
    birth_date date,
    is_hidden boolean NOT NULL DEFAULT false,
    is_favorite boolean NOT NULL DEFAULT false,
    color text,
    thumbnail_face_id uuid,
    -- L2-normalised mean of the member embeddings, float32; null until a member has one
    centroid bytea,
    embedding_model text,
    face_count integer NOT NULL DEFAULT 0,
    pairwise_mean real,
    pairwise_p90 real,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_library_name_idx ON people (library_id, lower(btrim(name))) WHERE name IS NOT NULL;
CREATE INDEX people_library_created_idx ON people (library_id, created_at DESC, id DESC);

CREATE TABLE faces (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the key in a worker's FAISS index; only grows, so a worker adds just the rows above its watermark
    seq bigserial NOT NULL UNIQUE,
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    person_id uuid REFERENCES people (id) ON DELETE SET NULL,
    source text NOT NULL CHECK (source IN ('automatic', 'manual')),
    -- display space (after EXIF orientation) of an image image_width x image_height
    box_x integer NOT NULL,
    box_y integer NOT NULL,
    box_w integer NOT NULL,
    box_h integer NOT NULL,
    image_width integer NOT NULL,
    image_height integer NOT NULL,
    confidence real,
    timestamp_ms integer,
    embedding bytea,
    embedding_model text,
    -- who set person_id: nobody, the clustering job, or a user (clustering never moves a user's choice)
    assigned_by text NOT NULL DEFAULT 'none' CHECK (assigned_by IN ('none', 'cluster', 'user')),
    -- people a user took this face out of: clustering never puts it back into them
    rejected_person_ids uuid[] NOT NULL DEFAULT '{}',
    -- pending: clustering has not looked at it yet
    cluster_state text NOT NULL DEFAULT 'pending' CHECK (cluster_state IN ('pending', 'considered')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faces_asset_idx ON faces (asset_id);
CREATE INDEX faces_person_idx ON faces (person_id) WHERE person_id IS NOT NULL;
CREATE INDEX faces_library_created_idx ON faces (library_id, created_at DESC, id DESC);
CREATE INDEX faces_library_seq_idx ON faces (library_id, seq);
CREATE INDEX faces_pending_idx ON faces (library_id, seq) WHERE cluster_state = 'pending';

ALTER TABLE people ADD CONSTRAINT people_thumbnail_face_fk
    FOREIGN KEY (thumbnail_face_id) REFERENCES faces (id) ON DELETE SET NULL;

-- A self-hosted server offers detection everywhere; the user may still switch it off.
ALTER TABLE users ADD COLUMN face_detection_preference boolean DEFAULT true;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
