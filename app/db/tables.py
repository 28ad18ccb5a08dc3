"""Table definitions. The schema itself is created only by the files in migrations/."""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    Boolean,
    Bytea,
    DoublePrecision,
    ForeignKey,
    Integer,
    SmallInt,
    Text,
    Timestamp,
    Timestamptz,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="users"):
    id = UUID(primary_key=True)
    email = Text()
    name = Text(default="")
    password_hash = Text(null=True)
    is_admin = Boolean(default=False)
    storage_limit_bytes = BigInt(null=True)
    storage_label = Text(null=True)
    avatar_color = Text(null=True)
    preferences = JSONB(default={})
    default_library_id = UUID(null=True)
    profile_changed_at = Timestamptz(default=TimestamptzNow())
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class Library(Table, tablename="libraries"):
    id = UUID(primary_key=True)
    owner_id = ForeignKey(User)
    name = Text()
    description = Text(null=True)
    storage_limit_bytes = BigInt(null=True)
    trashed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ApiKey(Table, tablename="api_keys"):
    id = UUID(primary_key=True)
    user_id = ForeignKey(User)
    name = Text(null=True)
    secret_hash = Bytea()
    actions = Array(Text())
    library_scope_mode = Text(default="all_libraries")
    library_ids = Array(UUID())
    is_active = Boolean(default=True)
    last_used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Asset(Table, tablename="assets"):
    id = UUID(primary_key=True)
    library_id = ForeignKey(Library)
    owner_id = ForeignKey(User)
    media_type = Text()
    mime_type = Text()
    original_file_name = Text()
    storage_key = Text()
    file_size_bytes = BigInt()
    checksum_sha256 = Bytea()
    checksum_sha1 = Bytea()
    device_asset_id = Text()
    device_id = Text()
    file_created_at = Timestamptz()
    file_created_offset_minutes = Integer(null=True)
    file_modified_at = Timestamptz()
    local_datetime = Timestamp()
    local_offset_minutes = Integer(null=True)
    captured_at = Timestamptz(null=True, default=None)
    width = Integer(null=True)
    height = Integer(null=True)
    duration_ms = Integer(null=True)
    thumbhash = Bytea(null=True)
    description = Text(null=True)
    rating = SmallInt(null=True)
    user_description = Text(null=True)
    user_latitude = DoublePrecision(null=True)
    user_longitude = DoublePrecision(null=True)
    user_original_datetime = Timestamp(null=True, default=None)
    user_original_offset_minutes = Integer(null=True)
    visibility = Text(default="timeline")
    live_photo_video_id = UUID(null=True)
    stack_id = UUID(null=True)
    original_version_id = UUID()
    trashed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Event(Table, tablename="events"):
    """The change log: one row per domain change, written in the change's transaction."""

    id = BigInt(primary_key=True)
    txid = BigInt()
    library_id = UUID(null=True)
    owner_id = UUID(null=True)
    entity_type = Text()
    entity_id = UUID()
    event_type = Text()
    payload = JSONB(null=True)
    created_at = Timestamptz(default=TimestamptzNow())
