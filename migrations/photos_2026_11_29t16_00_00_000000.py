"""Library sharing: members with a role, invitations that admit them, and one view of who may reach a library."""

from app.db.migrate import sql_migration

ID = "2026-11-29T16:00:00:000000"
VERSION = "1.40.0"
DESCRIPTION = "library members, invitations and library_access"

SQL = """
-- An invitation admits up to max_joiners accounts with one role until it expires or its owner
-- disables it. The secret is the bearer part of the invitation link; it is kept (not only a
-- hash) because the owner may ask for the link again.
CREATE TABLE library_invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret bytea NOT NULL UNIQUE,
    role text NOT NULL CHECK (role IN ('viewer', 'collaborator')),
    max_joiners integer NOT NULL CHECK (max_joiners >= 1),
    joiner_count integer NOT NULL DEFAULT 0 CHECK (joiner_count >= 0),
    expires_at timestamptz NOT NULL,
    disabled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX library_invitations_library_idx ON library_invitations (library_id, created_at DESC, id DESC);

-- One record per (library, account) that ever joined: its state says whether the access is
-- current. The owner is not a member (libraries.owner_id says who owns).
CREATE TABLE library_members (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    library_id uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('viewer', 'collaborator')),
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'left', 'removed')),
    invitation_id uuid REFERENCES library_invitations (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    joined_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    last_removed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (library_id, user_id)
);
CREATE INDEX library_members_library_idx ON library_members (library_id, created_at DESC, id DESC);
CREATE INDEX library_members_active_user_idx ON library_members (user_id) WHERE (state = 'active');

-- Who may reach each library, and as what: its owner, and its active members. Trashed
-- libraries are included (the owner restores them); callers decide whether trash counts.
CREATE VIEW library_access AS
    SELECT l.id AS library_id, l.owner_id AS user_id, 'owner'::text AS role, l.trashed_at
    FROM libraries l
    UNION ALL
    SELECT m.library_id, m.user_id, m.role, l.trashed_at
    FROM library_members m JOIN libraries l ON l.id = m.library_id
    WHERE m.state = 'active';
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
