"""The schema declared in code: one Piccolo Table class per table the migrations create.

The migrations in migrations/ (hand-written SQL) remain the only thing that creates or changes
the schema; these classes mirror them column for column, and tests/test_schema.py compares both
with the migrated database, so a migration that changes the schema must change this file too.

What Piccolo cannot say is declared next to the tables, and checked by the same test:
- INDEXES: every index that is not a plain single-column btree (those are `index=True`, their
  migration names in SIMPLE_INDEX_NAMES): expression, partial, unique and multi-column indexes,
  with the definition Postgres reports for them.
- COMPOSITE_PRIMARY_KEYS: Piccolo has one primary-key column per table. For tables whose key
  spans several columns, the first of them is marked `primary_key=True` (otherwise Piccolo would
  invent an `id` column that does not exist) and the real key is listed here. Piccolo queries
  that fetch or update "by primary key" are therefore wrong for those tables; use the full key.

Foreign keys say `on_update=NO ACTION` because the SQL declares no ON UPDATE rule. Check
constraints are written as Postgres prints them back (pg_get_constraintdef), and named as Postgres
named them, so the comparison is exact. Column defaults are Piccolo's where it can spell them
(default=None on a NOT NULL column: the database has no default, a value is required);
DATABASE_DEFAULTS lists the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    BigSerial,
    Boolean,
    Bytea,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    Real,
    SmallInt,
    Text,
    Timestamp,
    Timestamptz,
)
from piccolo.columns.base import Column, OnDelete, OnUpdate
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check, Unique
from piccolo.table import Table


def fk(references, on_delete: OnDelete, null: bool = False, **kwargs) -> ForeignKey:
    """A foreign key as the migrations write it: NOT NULL unless said, no ON UPDATE rule."""
    return ForeignKey(references, null=null, on_delete=on_delete, on_update=OnUpdate.no_action, **kwargs)


CASCADE = OnDelete.cascade
SET_NULL = OnDelete.set_null


class User(Table, tablename="users"):
    id = UUID(primary_key=True)
    email = Text(default=None)
    name = Text(default="")
    password_hash = Text(null=True, default=None)
    is_admin = Boolean(default=False)
    storage_limit_bytes = BigInt(null=True, default=None)
    storage_label = Text(null=True, default=None)
    avatar_color = Text(null=True, default=None)
    preferences = JSONB(default={})
    # named users_default_library_fkey in the database
    default_library_id = fk("Library", SET_NULL, null=True)
    profile_changed_at = Timestamptz(default=TimestamptzNow())
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)
    immich_library_id = fk("Library", SET_NULL, null=True)
    demo_mode_enabled = Boolean(default=False)
    favorite_display_mode = Text(default="favorite")
    should_change_password = Boolean(default=False)
    face_detection_preference = Boolean(null=True, default=True)
    is_onboarded = Boolean(default=False)
    profile_image_key = Text(null=True, default=None)

    users_storage_limit_bytes_check = Check("(storage_limit_bytes >= 0)")
    users_favorite_display_mode_check = Check(
        "(favorite_display_mode = ANY (ARRAY['favorite'::text, 'rating'::text]))"
    )


class Library(Table, tablename="libraries"):
    id = UUID(primary_key=True)
    owner_id = fk(User, CASCADE)
    name = Text(default=None)
    description = Text(null=True, default=None)
    storage_limit_bytes = BigInt(null=True, default=None)
    trashed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    libraries_name_check = Check("(btrim(name) <> ''::text)")
    libraries_storage_limit_bytes_check = Check("(storage_limit_bytes >= 0)")


class ApiKey(Table, tablename="api_keys"):
    id = UUID(primary_key=True)
    user_id = fk(User, CASCADE, index=True)
    name = Text(null=True, default=None)
    secret_hash = Bytea(unique=True, default=None)
    actions = Array(Text(), default=["read", "write", "delete", "delete_permanently"])
    library_scope_mode = Text(default="all_libraries")
    library_ids = Array(UUID(), default=[])
    is_active = Boolean(default=True)
    last_used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())

    api_keys_library_scope_mode_check = Check(
        "(library_scope_mode = ANY (ARRAY['all_libraries'::text, 'selected_libraries'::text]))"
    )



class LibraryInvitation(Table, tablename="library_invitations"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    created_by = fk(User, CASCADE)
    # The bearer part of the invitation link, kept so the owner can be shown the link again.
    secret = Bytea(unique=True, default=None)
    role = Text(default=None)
    max_joiners = Integer(default=None)
    joiner_count = Integer(default=0)
    expires_at = Timestamptz(default=None)
    disabled_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    library_invitations_role_check = Check("(role = ANY (ARRAY['viewer'::text, 'collaborator'::text]))")
    library_invitations_max_joiners_check = Check("(max_joiners >= 1)")
    library_invitations_joiner_count_check = Check("(joiner_count >= 0)")


class LibraryMember(Table, tablename="library_members"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    user_id = fk(User, CASCADE)
    role = Text(default=None)
    state = Text(default="active")
    invitation_id = fk(LibraryInvitation, SET_NULL, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    joined_at = Timestamptz(default=TimestamptzNow())
    ended_at = Timestamptz(null=True, default=None)
    last_removed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())

    library_members_role_check = Check("(role = ANY (ARRAY['viewer'::text, 'collaborator'::text]))")
    library_members_state_check = Check("(state = ANY (ARRAY['active'::text, 'left'::text, 'removed'::text]))")
    library_members_library_id_user_id_key = Unique(["library_id", "user_id"])


# Views, which Piccolo does not declare: `library_access (library_id, user_id, role, trashed_at)`,
# the owner and the active members of every library (migration 2026-11-29T16:00). Access checks
# join it instead of reading libraries.owner_id, so a member reaches what an owner does, by role.

class Stack(Table, tablename="stacks"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    owner_id = fk(User, CASCADE)
    origin = Text(default="user")
    primary_asset_id = fk("Asset", SET_NULL, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    stacks_origin_check = Check("(origin = ANY (ARRAY['auto_burst'::text, 'user'::text]))")


class ExternalLibrary(Table, tablename="external_libraries"):
    """Immich's external library: import paths scanned in place into the owner's library (library_id),
    whose assets point back here (assets.external_library_id)."""

    id = UUID(primary_key=True)
    owner_id = fk(User, CASCADE, index=True)
    library_id = fk(Library, CASCADE, index=True)
    name = Text(default=None)
    import_paths = Array(Text(), default=list)
    exclusion_patterns = Array(Text(), default=list)
    refreshed_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    external_libraries_name_check = Check("(length(name) > 0)")


class Asset(Table, tablename="assets"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    owner_id = fk(User, CASCADE)
    media_type = Text(default=None)
    mime_type = Text(default=None)
    original_file_name = Text(default=None)
    storage_key = Text(default=None)
    file_size_bytes = BigInt(default=None)
    checksum_sha256 = Bytea(default=None)
    checksum_sha1 = Bytea(default=None)
    device_asset_id = Text(default=None)
    device_id = Text(default=None)
    file_created_at = Timestamptz(default=None)
    # NULL: the client sent a naive time
    file_created_offset_minutes = Integer(null=True, default=None)
    file_modified_at = Timestamptz(default=None)
    local_datetime = Timestamp(default=None)
    local_offset_minutes = Integer(null=True, default=None)
    captured_at = Timestamptz(null=True, default=None)
    width = Integer(null=True, default=None)
    height = Integer(null=True, default=None)
    duration_ms = Integer(null=True, default=None)
    thumbhash = Bytea(null=True, default=None)
    description = Text(null=True, default=None)
    # user_* and rating: what the user set through the API; NULL lets the file's value show.
    rating = SmallInt(null=True, default=None)
    user_description = Text(null=True, default=None)
    user_latitude = DoublePrecision(null=True, default=None)
    user_longitude = DoublePrecision(null=True, default=None)
    user_original_datetime = Timestamp(null=True, default=None)
    user_original_offset_minutes = Integer(null=True, default=None)
    visibility = Text(default="timeline")
    live_photo_video_id = fk("self", SET_NULL, null=True)
    # named assets_stack_fkey in the database
    stack_id = fk(Stack, SET_NULL, null=True)
    original_version_id = UUID()
    current_version_id = UUID(null=True, default=None)
    trashed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    processing_error = Text(null=True, default=None)
    # Effective values (the user's, else the file's) kept on the row so filters can use indexes.
    latitude = DoublePrecision(null=True, default=None)
    longitude = DoublePrecision(null=True, default=None)
    file_rating = SmallInt(null=True, default=None)
    # Computed by Postgres (see DATABASE_DEFAULTS): what every reader means by the asset's rating
    # and capture instant. Inserts and updates must leave them out.
    effective_rating = SmallInt(null=True, default=None)
    taken_at = Timestamptz(null=True, default=None)
    # External libraries (see ExternalLibrary): the file in place, what the last scan saw of it,
    # whether it is gone, whose checksums these are, and its sidecar in place.
    external_library_id = fk(ExternalLibrary, CASCADE, null=True)
    original_path = Text(null=True, default=None)
    file_mtime_ns = BigInt(null=True, default=None)
    is_offline = Boolean(default=False)
    checksum_source = Text(default="content")
    sidecar_path = Text(null=True, default=None)
    # Immich's duplicate group (assets of one owner sharing an id); NULL: in none.
    duplicate_id = UUID(null=True, default=None)

    assets_media_type_check = Check("(media_type = ANY (ARRAY['image'::text, 'video'::text]))")
    assets_original_file_name_check = Check("(length(original_file_name) <= 1024)")
    assets_file_size_bytes_check = Check("(file_size_bytes > 0)")
    assets_checksum_sha256_check = Check("(length(checksum_sha256) = 32)")
    assets_checksum_sha1_check = Check("(length(checksum_sha1) = 20)")
    assets_checksum_source_check = Check("(checksum_source = ANY (ARRAY['content'::text, 'path'::text]))")
    assets_external_path_check = Check("((external_library_id IS NULL) = (original_path IS NULL))")
    assets_local_offset_minutes_check = Check(
        "((local_offset_minutes >= '-1080'::integer) AND (local_offset_minutes <= 1080))"
    )
    assets_rating_check = Check("((rating >= 0) AND (rating <= 5))")
    assets_file_rating_check = Check("((file_rating >= 0) AND (file_rating <= 5))")
    assets_user_latitude_check = Check(
        "((user_latitude >= ('-90'::integer)::double precision) AND (user_latitude <= (90)::double precision))"
    )
    assets_user_longitude_check = Check(
        "((user_longitude >= ('-180'::integer)::double precision) AND (user_longitude <= (180)::double precision))"
    )
    # both coordinates or neither
    assets_check = Check("((user_latitude IS NULL) = (user_longitude IS NULL))")


class Event(Table, tablename="events"):
    """The change log: one row per domain change, written in the change's transaction.

    id is GENERATED ALWAYS AS IDENTITY and txid defaults to the writing transaction's id; Piccolo
    can express neither (see DATABASE_DEFAULTS), so inserts must leave both out.
    """

    id = BigInt(primary_key=True, default=None)
    txid = BigInt(default=None)
    library_id = UUID(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    entity_type = Text(default=None)
    entity_id = UUID(default=None)
    event_type = Text(default=None)
    payload = JSONB(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class AssetExif(Table, tablename="asset_exif"):
    """What the file says (EXIF/XMP/IPTC, container tags), plus place names derived from GPS."""

    asset_id = fk(Asset, CASCADE, primary_key=True)
    make = Text(null=True, default=None)
    model = Text(null=True, default=None)
    lens_model = Text(null=True, default=None)
    f_number = DoublePrecision(null=True, default=None)
    focal_length = DoublePrecision(null=True, default=None)
    iso = Integer(null=True, default=None)
    exposure_time = DoublePrecision(null=True, default=None)
    exposure_bias = DoublePrecision(null=True, default=None)
    orientation = SmallInt(null=True, default=None)
    original_datetime = Timestamp(null=True, default=None)
    original_offset_minutes = Integer(null=True, default=None)
    digitized_datetime = Timestamp(null=True, default=None)
    digitized_offset_minutes = Integer(null=True, default=None)
    modified_datetime = Timestamp(null=True, default=None)
    modified_offset_minutes = Integer(null=True, default=None)
    timezone = Text(null=True, default=None)
    latitude = DoublePrecision(null=True, default=None)
    longitude = DoublePrecision(null=True, default=None)
    altitude = DoublePrecision(null=True, default=None)
    city = Text(null=True, default=None)
    state = Text(null=True, default=None)
    country = Text(null=True, default=None)
    country_code = Text(null=True, default=None)
    description = Text(null=True, default=None)
    projection_type = Text(null=True, default=None)
    fps = DoublePrecision(null=True, default=None)
    live_photo_cid = Text(null=True, default=None)
    auto_stack_id = Text(null=True, default=None)
    raw_width = Integer(null=True, default=None)
    raw_height = Integer(null=True, default=None)
    video_codec = Text(null=True, default=None)
    date_source = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class AssetFile(Table, tablename="asset_files"):
    """Files derived from an original. Key: (asset_id, kind), see COMPOSITE_PRIMARY_KEYS."""

    asset_id = fk(Asset, CASCADE, primary_key=True)
    kind = Text(default=None)
    storage_key = Text(default=None)
    mime_type = Text(default=None)
    width = Integer(null=True, default=None)
    height = Integer(null=True, default=None)
    size_bytes = BigInt(default=None)
    checksum_sha1 = Bytea(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())

    asset_files_kind_check = Check(
        "(kind = ANY (ARRAY['thumbnail'::text, 'preview'::text, 'fullsize'::text, 'sidecar'::text]))"
    )


class Task(Table, tablename="tasks"):
    """One row per background run, visible through /api/tasks."""

    id = UUID(primary_key=True)
    owner_id = fk(User, CASCADE)
    library_id = fk(Library, CASCADE, null=True)
    asset_id = fk(Asset, CASCADE, null=True)
    task_type = Text(default=None)
    status = Text(default="pending")
    job_id = Text(default=None)
    retry_count = Integer(default=0)
    outcome = Text(null=True, default=None)
    result = Text(null=True, default=None)
    error_message = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    # the worker process that claimed it while started, and how many times it was started
    worker_id = Text(null=True, default=None)
    attempts = Integer(default=0)

    tasks_status_check = Check(
        "(status = ANY (ARRAY['pending'::text, 'started'::text, 'success'::text, 'failure'::text]))"
    )


class Album(Table, tablename="albums"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    owner_id = fk(User, CASCADE)
    name = Text(default=None)
    description = Text(null=True, default=None)
    cover_asset_id = fk(Asset, SET_NULL, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    is_activity_enabled = Boolean(default=True)


class AlbumAsset(Table, tablename="album_assets"):
    id = UUID(primary_key=True)
    album_id = fk(Album, CASCADE)
    asset_id = fk(Asset, CASCADE, index=True)
    library_id = fk(Library, CASCADE)
    created_at = Timestamptz(default=TimestamptzNow())

    album_assets_album_id_asset_id_key = Unique(["album_id", "asset_id"])


class AssetDayCount(Table, tablename="asset_day_counts"):
    """Per-day asset counts kept by statement triggers on assets (migrations 2026-11-27T02 and
    2026-11-30T14, which added the visibility).

    No foreign key: rows of a library being deleted are adjusted while the cascade runs.
    Key: (library_id, day, media_type, trashed, visibility), see COMPOSITE_PRIMARY_KEYS.
    """

    library_id = UUID(primary_key=True, default=None)
    day = Date(default=None)
    media_type = Text(default=None)
    trashed = Boolean(default=None)
    visibility = Text(default=None)
    count = BigInt(default=None)


class Session(Table, tablename="sessions"):
    """Login sessions (Immich clients sign in with a password, then carry a session token)."""

    id = UUID(primary_key=True)
    user_id = fk(User, CASCADE, index=True)
    token_hash = Bytea(unique=True, default=None)
    device_type = Text(default="")
    device_os = Text(default="")
    app_version = Text(null=True, default=None)
    is_pending_sync_reset = Boolean(default=False)
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    pin_expires_at = Timestamptz(null=True, default=None)  # unlocked (elevated) until then
    parent_id = fk("self", CASCADE, null=True, index=True)  # the session that made this one


class Person(Table, tablename="people"):
    id = UUID(primary_key=True)
    library_id = fk(Library, CASCADE)
    owner_id = fk(User, CASCADE)
    name = Text(null=True, default=None)
    birth_date = Date(null=True, default=None)
    is_hidden = Boolean(default=False)
    is_favorite = Boolean(default=False)
    color = Text(null=True, default=None)
    # named people_thumbnail_face_fk in the database
    thumbnail_face_id = fk("Face", SET_NULL, null=True)
    # L2-normalised mean of the member embeddings, float32; null until a member has one
    centroid = Bytea(null=True, default=None)
    embedding_model = Text(null=True, default=None)
    face_count = Integer(default=0)
    pairwise_mean = Real(null=True, default=None)
    pairwise_p90 = Real(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Face(Table, tablename="faces"):
    id = UUID(primary_key=True)
    # the key in a worker's FAISS index; only grows
    seq = BigSerial(unique=True)
    asset_id = fk(Asset, CASCADE, index=True)
    library_id = fk(Library, CASCADE)
    owner_id = fk(User, CASCADE)
    person_id = fk(Person, SET_NULL, null=True)
    source = Text(default=None)
    # display space (after EXIF orientation) of an image image_width x image_height
    box_x = Integer(default=None)
    box_y = Integer(default=None)
    box_w = Integer(default=None)
    box_h = Integer(default=None)
    image_width = Integer(default=None)
    image_height = Integer(default=None)
    confidence = Real(null=True, default=None)
    timestamp_ms = Integer(null=True, default=None)
    embedding = Bytea(null=True, default=None)
    embedding_model = Text(null=True, default=None)
    assigned_by = Text(default="none")
    rejected_person_ids = Array(UUID(), default=[])
    cluster_state = Text(default="pending")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    faces_source_check = Check("(source = ANY (ARRAY['automatic'::text, 'manual'::text]))")
    faces_assigned_by_check = Check("(assigned_by = ANY (ARRAY['none'::text, 'cluster'::text, 'user'::text]))")
    faces_cluster_state_check = Check("(cluster_state = ANY (ARRAY['pending'::text, 'considered'::text]))")


class SyncCheckpoint(Table, tablename="sync_checkpoints"):
    """Per-session acknowledgements of the Immich sync stream. Key: (session_id, type)."""

    session_id = fk(Session, CASCADE, primary_key=True)
    # the Immich SyncEntityType this acknowledgement is for
    type = Text(default=None)
    ack = Text(default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Worker(Table, tablename="workers"):
    """One row per running worker process; a stale seen_at means it is gone."""

    id = Text(primary_key=True, default=None)
    hostname = Text(default=None)
    pid = Integer(default=None)
    started_at = Timestamptz(default=TimestamptzNow())
    seen_at = Timestamptz(default=TimestamptzNow())


class Xid8(Column):
    """Postgres xid8: a full transaction id (pg_current_xact_id()), which Piccolo has no class for."""

    value_type = int

    @property
    def column_type(self) -> str:
        return "XID8"


class PgSnapshot(Column):
    """Postgres pg_snapshot (pg_current_snapshot()): which transactions a read could see."""

    value_type = str

    @property
    def column_type(self) -> str:
        return "PG_SNAPSHOT"


class AssetKeyHistory(Table, tablename="asset_key_history"):
    """Sort keys an asset had before a change (written by a trigger on assets), tagged with the
    changing transaction, so a list walk can sort by the keys its first page saw. UNLOGGED."""

    seq = BigInt(primary_key=True, default=None)
    asset_id = UUID(default=None)
    library_id = fk(Library, CASCADE)
    xid = Xid8(default=None)
    old_local_datetime = Timestamp(default=None)
    old_trashed_at = Timestamptz(null=True, default=None)
    changed_at = Timestamptz(default=TimestamptzNow(), index=True)


class AssetListWalk(Table, tablename="asset_list_walks"):
    """The snapshot of a native list walk's first page, keyed by the last asset of each page
    served (the wire cursor). Key: (library_id, view, anchor_id). UNLOGGED."""

    library_id = fk(Library, CASCADE, primary_key=True)
    view = Text(default=None)
    anchor_id = UUID(default=None)
    snapshot = PgSnapshot(default=None)
    started_at = Timestamptz(default=TimestamptzNow(), index=True)


class Partner(Table, tablename="partners"):
    """An Immich partnership: shared_by lets shared_with read their photos. Key: (shared_by_id,
    shared_with_id), see COMPOSITE_PRIMARY_KEYS."""

    shared_by_id = fk(User, CASCADE, primary_key=True)
    shared_with_id = fk(User, CASCADE, index=True)
    # The receiver's choice: whether the sharer's photos show in the receiver's timeline.
    in_timeline = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    partners_check = Check("(shared_by_id <> shared_with_id)")


class AlbumUser(Table, tablename="album_users"):
    """An account an album is shared with (Immich's album users). Key: (album_id, user_id)."""

    album_id = fk(Album, CASCADE, primary_key=True)
    user_id = fk(User, CASCADE, index=True)
    role = Text(default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    album_users_role_check = Check("(role = ANY (ARRAY['editor'::text, 'viewer'::text]))")



class SharedLink(Table, tablename="shared_links"):
    """An Immich shared link: its key (or slug) opens one album, or the assets in shared_link_assets."""

    id = UUID(primary_key=True)
    owner_id = fk(User, CASCADE)
    link_type = Text(default=None)
    album_id = fk(Album, CASCADE, null=True)
    key = Bytea(unique=True, default=None)
    slug = Text(null=True, unique=True, default=None)
    description = Text(null=True, default=None)
    password = Text(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    allow_upload = Boolean(default=None)
    allow_download = Boolean(default=None)
    show_metadata = Boolean(default=None)
    created_at = Timestamptz(default=TimestamptzNow())

    shared_links_link_type_check = Check("(link_type = ANY (ARRAY['ALBUM'::text, 'INDIVIDUAL'::text]))")
    shared_links_album_check = Check("((link_type = 'ALBUM'::text) = (album_id IS NOT NULL))")


class SharedLinkAsset(Table, tablename="shared_link_assets"):
    """An asset of an INDIVIDUAL shared link. Key: (shared_link_id, asset_id)."""

    shared_link_id = fk(SharedLink, CASCADE, primary_key=True)
    asset_id = fk(Asset, CASCADE, index=True)
    created_at = Timestamptz(default=TimestamptzNow())

COMPOSITE_PRIMARY_KEYS: dict[type[Table], tuple[str, ...]] = {
    AssetFile: ("asset_id", "kind"),
    AssetDayCount: ("library_id", "day", "media_type", "trashed", "visibility"),
    SyncCheckpoint: ("session_id", "type"),
    AssetListWalk: ("library_id", "view", "anchor_id"),
    Partner: ("shared_by_id", "shared_with_id"),
    AlbumUser: ("album_id", "user_id"),
    SharedLinkAsset: ("shared_link_id", "asset_id"),
}


# Defaults only the database computes: Piccolo has no spelling for them, so the columns carry
# default=None and inserts through Piccolo must leave them out. Written as Postgres prints them.
DATABASE_DEFAULTS: dict[tuple[str, str], str] = {
    ("events", "id"): "GENERATED ALWAYS AS IDENTITY",
    # the writing transaction's id, which the change feed orders by
    ("events", "txid"): "((pg_current_xact_id())::text)::bigint",
    ("faces", "seq"): "nextval('faces_seq_seq'::regclass)",
    ("asset_key_history", "seq"): "GENERATED ALWAYS AS IDENTITY",
    ("asset_key_history", "xid"): "pg_current_xact_id()",
    # Stored generated columns; app/domain/effective.py says what they mean.
    ("assets", "effective_rating"): "GENERATED ALWAYS AS (COALESCE(rating, file_rating)) STORED",
    ("assets", "taken_at"): "GENERATED ALWAYS AS (((local_datetime - make_interval(mins => COALESCE(local_offset_minutes, 0)))"
    " AT TIME ZONE 'UTC'::text)) STORED",
}

# The names the migrations gave the plain single-column indexes declared with `index=True`
# (Piccolo would call them <table>_<column>), keyed by (table name, column name).
SIMPLE_INDEX_NAMES: dict[tuple[str, str], str] = {
    ("asset_key_history", "changed_at"): "asset_key_history_changed_idx",
    ("asset_list_walks", "started_at"): "asset_list_walks_started_idx",
    ("api_keys", "user_id"): "api_keys_user_idx",
    ("album_assets", "asset_id"): "album_assets_asset_idx",
    ("sessions", "user_id"): "sessions_user_idx",
    ("faces", "asset_id"): "faces_asset_idx",
    ("partners", "shared_with_id"): "partners_shared_with_idx",
    ("album_users", "user_id"): "album_users_user_idx",
    ("shared_link_assets", "asset_id"): "shared_link_assets_asset_idx",
}


@dataclass(frozen=True)
class Index:
    """An index Piccolo's `index=True` cannot express.

    definition: what pg_indexes.indexdef says after "ON public.<table> USING ", prefixed with
    "UNIQUE " for a unique index (Postgres's own normalised spelling, so it compares exactly).
    """

    table: type[Table]
    name: str
    definition: str


INDEXES: list[Index] = [
    # one account per address, whatever its case
    Index(User, "users_email_key", "UNIQUE btree (lower(email))"),
    Index(Library, "libraries_owner_name_key", "UNIQUE btree (owner_id, lower(btrim(name)))"),
    # dedupe is per library by SHA-256, trashed rows included
    Index(Asset, "assets_library_sha256_key",
          "UNIQUE btree (library_id, checksum_sha256) WHERE (external_library_id IS NULL)"),
    Index(Asset, "assets_library_sha1_idx", "btree (library_id, checksum_sha1)"),
    Index(Asset, "assets_library_timeline_idx", "btree (library_id, local_datetime DESC, id DESC)"),
    Index(Asset, "assets_library_trash_idx",
          "btree (library_id, trashed_at DESC, id DESC) WHERE (trashed_at IS NOT NULL)"),
    Index(Asset, "assets_library_device_idx",
          "btree (library_id, device_id, device_asset_id) WHERE (external_library_id IS NULL)"),
    Index(Asset, "assets_stack_idx", "btree (stack_id) WHERE (stack_id IS NOT NULL)"),
    Index(Asset, "assets_library_geo_idx",
          "btree (library_id, latitude, longitude) WHERE (latitude IS NOT NULL)"),
    # a library's assets a page at a time in id order (the Immich sync stream's backfills)
    Index(Asset, "assets_library_id_idx", "btree (library_id, id)"),
    Index(Event, "events_library_feed_idx", "btree (library_id, txid, id)"),
    Index(Event, "events_owner_feed_idx", "btree (owner_id, txid, id)"),
    Index(Event, "events_library_kind_idx", "btree (library_id, entity_type, txid, id)"),
    Index(Event, "events_entity_idx", "btree (entity_id, txid, id)"),
    Index(Task, "tasks_owner_created_idx", "btree (owner_id, created_at DESC, id DESC)"),
    Index(Task, "tasks_asset_idx", "btree (asset_id, created_at DESC)"),
    Index(Task, "tasks_open_idx",
          "btree (task_type, asset_id) WHERE (status = ANY (ARRAY['pending'::text, 'started'::text]))"),
    Index(Task, "tasks_started_idx", "btree (worker_id) WHERE (status = 'started'::text)"),
    Index(Task, "tasks_pending_idx", "btree (created_at) WHERE (status = 'pending'::text)"),
    Index(Album, "albums_library_name_idx", "btree (library_id, lower(btrim(name)))"),
    Index(Album, "albums_library_created_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(AlbumAsset, "album_assets_library_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(Stack, "stacks_library_idx", "btree (library_id, id)"),
    Index(LibraryInvitation, "library_invitations_library_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(LibraryMember, "library_members_library_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(LibraryMember, "library_members_active_user_idx", "btree (user_id) WHERE (state = 'active'::text)"),
    Index(Person, "people_library_name_idx",
          "UNIQUE btree (library_id, lower(btrim(name))) WHERE (name IS NOT NULL)"),
    Index(Person, "people_library_created_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(Face, "faces_person_idx", "btree (person_id) WHERE (person_id IS NOT NULL)"),
    Index(Face, "faces_library_created_idx", "btree (library_id, created_at DESC, id DESC)"),
    Index(Face, "faces_library_seq_idx", "btree (library_id, seq)"),
    Index(Face, "faces_pending_idx", "btree (library_id, seq) WHERE (cluster_state = 'pending'::text)"),
    Index(AssetKeyHistory, "asset_key_history_library_xid_idx", "btree (library_id, xid)"),
    Index(SharedLink, "shared_links_owner_idx", "btree (owner_id, created_at DESC, id DESC)"),
    Index(SharedLink, "shared_links_album_idx", "btree (album_id) WHERE (album_id IS NOT NULL)"),
]


def all_tables() -> list[type[Table]]:
    """Every Table class declared in this module, in declaration order."""
    return [t for t in Table.__subclasses__() if t.__module__ == __name__]


class Activity(Table, tablename="activities"):
    """A comment or a like (Immich's activities) on an album, or on one asset in it (asset_id)."""

    id = UUID(primary_key=True)
    album_id = fk(Album, CASCADE)
    asset_id = fk(Asset, CASCADE, null=True, index=True)
    user_id = fk(User, CASCADE, index=True)
    comment = Text(null=True, default=None)
    is_liked = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())

    activities_like_or_comment_check = Check(
        "((is_liked AND (comment IS NULL)) OR ((NOT is_liked) AND (comment IS NOT NULL)))")


SIMPLE_INDEX_NAMES[("activities", "asset_id")] = "activities_asset_idx"
SIMPLE_INDEX_NAMES[("activities", "user_id")] = "activities_user_idx"
INDEXES += [
    Index(Activity, "activities_album_idx", "btree (album_id, created_at, id)"),
    Index(Activity, "activities_one_like_key",
          "UNIQUE btree (user_id, album_id, asset_id) NULLS NOT DISTINCT WHERE is_liked"),
]


class SystemMetadata(Table, tablename="system_metadata"):
    """Server-wide state by key (admin onboarding, ...); a missing key reads as Immich's default."""

    key = Text(primary_key=True, default=None)
    value = JSONB(default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class PinCode(Table, tablename="pin_codes"):
    """A user's PIN for Immich's locked folder, hashed like a password."""

    user_id = fk(User, CASCADE, primary_key=True)
    pin_hash = Text(default=None)
    created_at = Timestamptz(default=TimestamptzNow())


SIMPLE_INDEX_NAMES[("sessions", "parent_id")] = "sessions_parent_idx"
INDEXES.append(Index(Asset, "assets_locked_idx", "btree (library_id) WHERE (visibility = 'locked'::text)"))


class Notification(Table, tablename="notifications"):
    """A message for one user (Immich's notifications): unread while read_at is null."""

    id = UUID(primary_key=True)
    user_id = fk(User, CASCADE, index=True)
    level = Text(default="info")
    type = Text(default="Custom")
    title = Text(default=None)
    description = Text(null=True, default=None)
    data = JSONB(null=True, default=None)
    read_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)

    notifications_level_check = Check(
        "(level = ANY (ARRAY['success'::text, 'error'::text, 'warning'::text, 'info'::text]))")
    notifications_type_check = Check(
        "(type = ANY (ARRAY['JobFailed'::text, 'BackupFailed'::text, 'SystemMessage'::text, 'AlbumInvite'::text,"
        " 'AlbumUpdate'::text, 'Custom'::text]))")


SIMPLE_INDEX_NAMES[("notifications", "user_id")] = "notifications_user_all_idx"
INDEXES.append(Index(Notification, "notifications_user_idx",
                     "btree (user_id, created_at DESC) WHERE (deleted_at IS NULL)"))


class StorageMove(Table, tablename="storage_moves"):
    """An original being moved by the storage template (the crash-recovery journal)."""

    asset_id = UUID(primary_key=True, default=None)
    old_key = Text(default=None)
    new_key = Text(default=None, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


INDEXES.append(Index(Asset, "assets_storage_key_key", "UNIQUE btree (storage_key) WHERE (external_library_id IS NULL)"))


INDEXES.append(Index(Task, "tasks_failed_idx",
                     "btree (task_type, completed_at) WHERE (status = 'failure'::text)"))


class UserLicense(Table, tablename="user_licenses"):
    """A user's Immich license: the key and the activation key signed over it."""

    user_id = fk(User, CASCADE, primary_key=True)
    license_key = Text(default=None)
    activation_key = Text(default=None)
    activated_at = Timestamptz(default=TimestamptzNow())


class UserRemoval(Table, tablename="user_removals"):
    """A deleted account whose data is removed now, not after the delete delay."""

    user_id = fk(User, CASCADE, primary_key=True)
    requested_at = Timestamptz(default=TimestamptzNow())


class Memory(Table, tablename="memories"):
    """An Immich memory ("on this day"): its owner's, showing photos of one library."""

    id = UUID(primary_key=True)
    owner_id = fk(User, CASCADE)
    library_id = fk(Library, CASCADE, index=True)
    type = Text(default=None)
    data = JSONB(default=None)
    is_saved = Boolean(default=False)
    memory_at = Timestamptz(default=None)
    seen_at = Timestamptz(null=True, default=None)
    show_at = Timestamptz(null=True, default=None)
    hide_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())

    memories_type_check = Check("(type = 'on_this_day'::text)")


class MemoryAsset(Table, tablename="memory_assets"):
    """A photo in a memory; its id names the link in the change log."""

    id = UUID(primary_key=True)
    memory_id = fk(Memory, CASCADE)
    asset_id = fk(Asset, CASCADE, index=True)
    created_at = Timestamptz(default=TimestamptzNow())

    memory_assets_memory_id_asset_id_key = Unique(["memory_id", "asset_id"])


SIMPLE_INDEX_NAMES[("memories", "library_id")] = "memories_library_idx"
SIMPLE_INDEX_NAMES[("memory_assets", "asset_id")] = "memory_assets_asset_idx"
INDEXES.append(Index(Memory, "memories_owner_idx", "btree (owner_id, library_id, memory_at DESC)"))


class Tag(Table, tablename="tags"):
    """A user's tag: value is its full path ("Travel/2024"), parent_id the tag one level up."""

    id = UUID(primary_key=True)
    user_id = fk(User, CASCADE)
    value = Text(default=None)
    color = Text(null=True, default=None)
    parent_id = fk("self", CASCADE, null=True, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class TagClosure(Table, tablename="tag_closure"):
    """Every (ancestor, descendant) pair of the tag tree, a tag being its own. Key: both columns."""

    ancestor_id = fk(Tag, CASCADE, primary_key=True)
    descendant_id = fk(Tag, CASCADE, index=True)


class TagAsset(Table, tablename="tag_assets"):
    """An asset carrying a tag. Key: (tag_id, asset_id)."""

    tag_id = fk(Tag, CASCADE, primary_key=True)
    asset_id = fk(Asset, CASCADE, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


COMPOSITE_PRIMARY_KEYS[TagClosure] = ("ancestor_id", "descendant_id")
COMPOSITE_PRIMARY_KEYS[TagAsset] = ("tag_id", "asset_id")
SIMPLE_INDEX_NAMES[("tags", "parent_id")] = "tags_parent_idx"
SIMPLE_INDEX_NAMES[("tag_closure", "descendant_id")] = "tag_closure_descendant_idx"
SIMPLE_INDEX_NAMES[("tag_assets", "asset_id")] = "tag_assets_asset_idx"
INDEXES.append(Index(Tag, "tags_user_value_key", "UNIQUE btree (user_id, value)"))


class AssetMetadata(Table, tablename="asset_metadata"):
    """Immich's key/value metadata of an asset: one JSON object per key. Key: (asset_id, key)."""

    asset_id = fk(Asset, CASCADE, primary_key=True)
    key = Text(default=None)
    value = JSONB(default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


COMPOSITE_PRIMARY_KEYS[AssetMetadata] = ("asset_id", "key")


class AssetVersion(Table, tablename="asset_versions"):
    """A rendering above an asset's uploaded original (position 0 is the assets row itself)."""

    id = UUID(primary_key=True)
    asset_id = fk(Asset, CASCADE)
    position = Integer(default=None)
    kind = Text(default=None)
    params = JSONB(default=None)
    storage_key = Text(default=None, unique=True)
    mime_type = Text(default=None)
    width = Integer(default=None)
    height = Integer(default=None)
    size_bytes = BigInt(default=None)
    checksum_sha256 = Bytea(default=None)
    checksum_sha1 = Bytea(default=None)
    created_at = Timestamptz(default=TimestamptzNow())

    asset_versions_asset_id_position_key = Unique(["asset_id", "position"])
    asset_versions_position_check = Check("(\"position\" > 0)")


SIMPLE_INDEX_NAMES[("external_libraries", "owner_id")] = "external_libraries_owner_idx"
SIMPLE_INDEX_NAMES[("external_libraries", "library_id")] = "external_libraries_library_idx"
INDEXES += [
    Index(Asset, "assets_external_path_key",
          "UNIQUE btree (external_library_id, original_path) WHERE (external_library_id IS NOT NULL)"),
    Index(Asset, "assets_external_offline_sha256_idx", "btree (external_library_id, checksum_sha256) WHERE is_offline"),
]


class SmartSearch(Table, tablename="smart_search"):
    """A CLIP image embedding of an asset under one model (float32 bytes, L2-normalised); seq keys it
    in the per-library FAISS indexes and only grows."""

    asset_id = fk(Asset, CASCADE, primary_key=True)
    model = Text(default=None)
    seq = BigSerial(unique=True)
    library_id = fk(Library, CASCADE)
    embedding = Bytea(default=None)
    duplicates_checked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


COMPOSITE_PRIMARY_KEYS[SmartSearch] = ("asset_id", "model")
INDEXES += [
    Index(SmartSearch, "smart_search_library_idx", "btree (library_id, model, seq)"),
    Index(Asset, "assets_duplicate_idx", "btree (owner_id, duplicate_id) WHERE (duplicate_id IS NOT NULL)"),
]
DATABASE_DEFAULTS[("smart_search", "seq")] = "nextval('smart_search_seq_seq'::regclass)"
INDEXES += [
    Index(Asset, "assets_live_photo_video_idx", "btree (live_photo_video_id) WHERE (live_photo_video_id IS NOT NULL)"),
    Index(Stack, "stacks_primary_asset_idx", "btree (primary_asset_id) WHERE (primary_asset_id IS NOT NULL)"),
    Index(Album, "albums_cover_asset_idx", "btree (cover_asset_id) WHERE (cover_asset_id IS NOT NULL)"),
]
