"""The sync stream's own upsert lines, a batch of changes at a time, as bytes.

A stream of a big library is 100,000s of lines; building each one through the DTOs of
compat.sync_mapping (keyword construction, helper calls, one encode per line) was most of the
server's time. Here the rows of one batch become positional structs with the DTOs' fields in
the DTOs' order and are encoded by one call, each line `{"type":..,"data":..,"ack":..}` and a
newline, the same bytes as compat.routes.sync._line(type, <mapping of the row>, ack).
tests/domain/test_sync_encode.py holds both to the same output for every type encoded here.

The rows are the ones app.domain.sync reads for the stream (Snapshot.changes): ids already as
text where its SQL casts them, timestamptz columns as UTC datetimes (asyncpg's decoding). Those go
into the structs as they are, and so do UUIDs and bytes: msgspec writes a UUID as its canonical
text, bytes as padded base64 and a UTC datetime with a Z, what str(), base64 and the DTOs write,
without a Python call per field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

import msgspec

from app.domain import effective, events, sync
from compat import dtos
from compat.mapping import _as_utc_wall, _exposure, positional_struct

_FAVORITE = effective.FAVORITE_RATING


# Not tracked by the garbage collector (they never hold a cycle): a batch makes thousands, and
# each tracked one brings the next collection nearer.
class _Line(msgspec.Struct, gc=False):
    type: str
    data: Any
    ack: str


_encoder = msgspec.json.Encoder()


_offsets: dict[int, timedelta] = {}


def _at_offset(wall: datetime, minutes: int | None) -> datetime:
    """app.domain.datetimes.join_wall_clock then in UTC (naive: the wall clock as UTC): the wall
    clock less its offset, which is what astimezone computes, without its tzinfo calls."""
    if minutes is None:
        return _as_utc_wall(wall)
    offset = _offsets.get(minutes)
    if offset is None:
        offset = _offsets[minutes] = timedelta(minutes=minutes)
    return _as_utc_wall(wall - offset)


# --- AssetV2 (compat.sync_mapping.asset_v2) ----------------------------------------------------

_AssetV2 = positional_struct(dtos.SyncAssetV2)


def _asset_v2(r) -> msgspec.Struct:
    checksum = r["checksum_sha1"]
    return _AssetV2(
        "" if checksum is None else checksum,  # checksum (bytes: base64)
        r["created_at"],  # createdAt
        r["trashed_at"],  # deletedAt
        r["duration_ms"],  # duration
        r["taken_at"],  # fileCreatedAt
        r["file_modified_at"],  # fileModifiedAt
        r["height"],  # height
        r["id"],  # id
        r["current_version_id"] is not None,  # isEdited
        r["effective_rating"] == _FAVORITE,  # isFavorite
        r["external_library_id"],  # libraryId
        r["live_photo_video_id"],  # livePhotoVideoId
        _as_utc_wall(r["local_datetime"]),  # localDateTime
        r["original_file_name"],  # originalFileName
        r["owner_id"],  # ownerId
        r["stack_id"],  # stackId
        r["thumbhash"] or None,  # thumbhash (bytes: base64)
        "VIDEO" if r["media_type"] == "video" else "IMAGE",  # type
        r["visibility"],  # visibility
        r["width"],  # width
    )


# --- AssetExifV1 (compat.sync_mapping.asset_exif_v1_flat: a dict, so its keys' order) ----------

_AssetExifV1 = msgspec.defstruct("FastSyncAssetExifV1", [(name, Any) for name in (
    "make", "model", "lensModel", "fNumber", "focalLength", "iso", "exposureTime", "orientation",
    "dateTimeOriginal", "modifyDate", "timeZone", "latitude", "longitude", "city", "state", "country",
    "description", "rating", "projectionType", "exifImageWidth", "exifImageHeight", "fileSizeInByte",
    "assetId", "profileDescription", "fps")], gc=False)


def _asset_exif_v1(r) -> msgspec.Struct:
    # The flat row's exif columns are all null when the asset has no exif row, so each reads as
    # the mapping's "no exif" value; the user's edits (asset_ columns) win, as in app.domain.effective.
    if r["asset_user_original_datetime"] is not None:
        original = _at_offset(r["asset_user_original_datetime"], r["asset_user_original_offset_minutes"])
    elif r["original_datetime"] is not None:
        original = _at_offset(r["original_datetime"], r["original_offset_minutes"])
    else:
        original = None
    modified = r["modified_datetime"]
    if modified is not None:
        modified = _at_offset(modified, r["modified_offset_minutes"])
    user_gps = r["asset_user_latitude"] is not None
    description = r["asset_user_description"]
    if description is None:
        description = r["description"]
    orientation = r["orientation"]
    exposure = r["exposure_time"]
    return _AssetExifV1(
        r["make"], r["model"], r["lens_model"], r["f_number"], r["focal_length"], r["iso"],
        None if exposure is None else _exposure(exposure),
        None if orientation is None else str(orientation),
        original, modified, r["timezone"],
        r["asset_user_latitude"] if user_gps else r["latitude"],
        r["asset_user_longitude"] if user_gps else r["longitude"],
        r["city"], r["state"], r["country"],
        description or "", r["asset_effective_rating"], r["projection_type"], r["raw_width"], r["raw_height"],
        r["asset_file_size_bytes"], r["id"], None, r["fps"],
    )


# --- AlbumToAssetV1 and AssetFaceV2 -----------------------------------------------------------

_AlbumToAssetV1 = positional_struct(dtos.SyncAlbumToAssetV1)


def _album_to_asset_v1(r) -> msgspec.Struct:
    return _AlbumToAssetV1(r["album_id"], r["asset_id"])


_AssetFaceV2 = positional_struct(dtos.SyncAssetFaceV2)


def _asset_face_v2(r) -> msgspec.Struct:
    x, y = r["box_x"], r["box_y"]
    return _AssetFaceV2(
        r["asset_id"], x, x + r["box_w"], y, y + r["box_h"], None, r["id"], r["image_height"],
        r["image_width"], True, r["person_id"],
        "machine-learning" if r["source"] == "automatic" else "manual",
    )


DATA: dict[str, Callable[[Any], msgspec.Struct]] = {
    "AssetV2": _asset_v2,
    "AssetExifV1": _asset_exif_v1,
    "AlbumToAssetV1": _album_to_asset_v1,
    "AssetFaceV2": _asset_face_v2,
}


def _acks(entity_type: str, cursors: list[tuple[int, int]]) -> list[str]:
    """`<type>|<cursor>` (app.domain.events.encode_cursor) of each cursor; the rows of one
    transaction share its txid, so its part is written once."""
    acks = []
    txid = None
    head = ""
    for tx, event_id in cursors:
        if tx != txid:
            txid = tx
            head = f"{entity_type}|{events.encode_cursor(tx, 0)[:-1]}"
        acks.append(f"{head}{event_id:x}")
    return acks


def lines(entity_type: str, data: list[Any], cursors: list[tuple[int, int]]) -> bytes:
    """Lines of one type: each data (a DTO, a dict or a struct above) with its change's ack."""
    return _encoder.encode_lines([_Line(entity_type, d, a) for d, a in zip(data, _acks(entity_type, cursors))])


def upserts(entity_type: str, batch: list[sync.Change], fallback: Callable[[str, Any], Any]) -> bytes:
    """The upsert lines of one batch of changes; types without an encoder here use `fallback`
    (the per-row mapping)."""
    if not batch:
        return b""
    build = DATA.get(entity_type)
    if build is None:
        data = [fallback(entity_type, c.row) for c in batch]
    else:
        data = [build(c.row) for c in batch]
    return lines(entity_type, data, [c.cursor for c in batch])
