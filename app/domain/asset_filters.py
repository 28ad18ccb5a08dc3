"""The filters shared by asset lists, search, counts and geo clusters: one SQL builder.

A filter holds typed values only (UUIDs, datetimes, a BBox); each front end parses its own
query text into one.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from app.db import engine as db
from app.domain import effective
from app.domain.errors import Invalid, NotFound, Unauthorized

EARTH_RADIUS_M = 6_371_008.8
MAX_RADIUS_M = 50_000


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.west > self.east


LOCKED = "locked"  # the visibility of the owner's PIN-protected assets
# What Immich's lists show when no visibility is asked for: not the motion parts of live photos
# ("hidden"), not the locked folder.
SHOWN = ("timeline", "archive")


@dataclass
class AssetFilter:
    library_id: uuid.UUID
    state: str = "live"  # live | trashed | all
    ids: list[uuid.UUID] | None = None
    after: datetime | None = None
    before: datetime | None = None
    media_type: str | None = None
    ratings: list[int] | None = None
    album_id: uuid.UUID | None = None
    album_filter: str = "all"  # all | in_album | not_in_album
    person_ids: list[uuid.UUID] | None = None
    # Assets carrying every one of these tags, or a tag below it (app/domain/tags.py); the ids are
    # the caller's own tags, checked by tags.require_tags before the filter is built.
    tag_ids: list[uuid.UUID] | None = None
    untagged: bool = False  # only assets with no tag at all (Immich's tagIds: null)
    stack_id: uuid.UUID | None = None
    bbox: BBox | None = None
    center: tuple[float, float] | None = None  # (lon, lat)
    radius_m: float | None = None
    visibility: str | None = None  # timeline | archive | hidden | locked (the Immich surface filters by it)
    visibilities: tuple[str, ...] | None = None  # any of these (e.g. SHOWN: what a list shows unless asked)
    # What the file says, matched exactly (make, model, lens_model, city, state, country).
    exif_equals: dict[str, str] = field(default_factory=dict)
    file_name_contains: str | None = None
    description_contains: str | None = None
    taken_after: datetime | None = None  # instants (UTC when the file gave no offset)
    taken_before: datetime | None = None
    checksum_sha1: bytes | None = None
    # Immich's libraryId: the assets of this external library; with uploads_only, no external asset.
    external_library_id: uuid.UUID | None = None
    uploads_only: bool = False
    original_path_contains: str | None = None  # the file in place of an external asset
    is_offline: bool | None = None
    # When the row was made, last changed or trashed: instants, both bounds inclusive (Immich's
    # createdAfter/Before, updatedAfter/Before, trashedAfter/Before).
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    trashed_after: datetime | None = None
    trashed_before: datetime | None = None
    is_motion: bool | None = None  # a live photo's still (it has a motion part), or not one
    # Immich's isEncoded (a transcoded copy exists): nothing is transcoded here, so true matches no
    # asset and false every one.
    is_encoded: bool | None = None
    # In each of these albums too (Immich's albumIds past the first: an asset in all of them); the
    # caller checks that it may read each.
    also_in_albums: list[uuid.UUID] | None = None
    # Read through a share (a partner's library, an album shared with the caller, a shared link),
    # not a role in the library: its owner's locked assets never show, whatever else is asked.
    through_share: bool = False
    # The caller's session is unlocked with its PIN (Principal.elevated): only then do its own
    # locked assets show, and only then may it ask for them (visibility "locked").
    elevated: bool = False

    @property
    def shows_locked(self) -> bool:
        return self.elevated and not self.through_share

    def validate(self) -> None:
        if self.visibility == LOCKED and not self.elevated:
            raise Unauthorized("Elevated permission is required")  # Immich's answer, 401
        if self.bbox is not None:
            b = self.bbox
            if not (-180 <= b.west <= 180 and -180 <= b.east <= 180 and -90 <= b.south <= b.north <= 90):
                raise Invalid("bbox is out of range (longitudes in [-180, 180], south <= north)", "bbox")
        if self.center is not None:
            lon, lat = self.center
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise Invalid("center is out of range", "center")
        if self.after is not None and self.before is not None and (
            (self.after.tzinfo is None) != (self.before.tzinfo is None)
        ):
            raise Invalid("The after and before bounds must both be naive or both carry an offset", "before")
        if self.album_filter == "not_in_album" and self.album_id is not None:
            raise Invalid("album_filter=not_in_album cannot be combined with album_id", "album_filter")
        if (self.center is None) != (self.radius_m is None):
            raise Invalid("center and radius go together", "center")
        if self.radius_m is not None and not 0 < self.radius_m <= MAX_RADIUS_M:
            raise Invalid(f"radius must be in (0, {MAX_RADIUS_M}] meters", "radius_m")
        if self.center is not None and self.bbox is not None:
            raise Invalid("use either bbox or center and radius", "bbox")
        if self.ratings and any(r not in effective.RATINGS for r in self.ratings):
            raise Invalid("ratings must be integers from 0 to 5", "ratings")


@dataclass
class Sql:
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


_EXIF_COLUMNS = frozenset({"make", "model", "lens_model", "city", "state", "country"})


def _contains(sql: Sql, text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sql.arg(f"%{escaped}%")


def _instant(moment: datetime) -> datetime:
    """A naive bound is read as UTC (the server's clock, as Immich's is in its container)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _bound(sql: Sql, bound: datetime, op: str) -> str:
    """Exclusive capture-time bound: naive = wall clock; aware = UTC where the offset is known."""
    if bound.tzinfo is None:
        return f"a.local_datetime {op} {sql.arg(bound)}"
    utc_naive = bound.astimezone(timezone.utc).replace(tzinfo=None)
    return (
        f"(CASE WHEN a.local_offset_minutes IS NULL THEN a.local_datetime {op} {sql.arg(bound.replace(tzinfo=None))}"
        f" ELSE a.local_datetime - make_interval(mins => a.local_offset_minutes) {op} {sql.arg(utc_naive)} END)"
    )


async def check_references(f: AssetFilter) -> None:
    """Named albums and stacks must exist in the library: a wrong id is 404, not an empty page."""
    if f.album_id is not None:
        if not await db.fetchval("SELECT 1 FROM albums WHERE id = $1 AND library_id = $2", f.album_id, f.library_id):
            raise NotFound("Album not found")
    if f.stack_id is not None:
        if not await db.fetchval("SELECT 1 FROM stacks WHERE id = $1 AND library_id = $2", f.stack_id, f.library_id):
            raise NotFound("Stack not found")
    if f.person_ids:
        found = await db.fetchval(
            "SELECT count(*) FROM people WHERE id = ANY($1::uuid[]) AND library_id = $2", f.person_ids, f.library_id
        )
        if found != len(set(f.person_ids)):
            raise NotFound("Person not found")


def where(f: AssetFilter, sql: Sql, *, album_rows_given: bool = False) -> str:
    """The WHERE clause (over `assets a`) selecting what `f` names, its values bound through `sql`.

    Internal to the asset queries of app/domain/assets.py, which wrap it in their own SELECTs:
    callers elsewhere pass an AssetFilter to those functions, never SQL text. `album_rows_given`:
    the caller's statement reads `a` only through f.album_id's album_assets rows, so the clause
    leaves out the membership test (it would look each member up a second time).
    """
    f.validate()
    if f.album_id is None:
        clauses = [f"a.library_id = {sql.arg(f.library_id)}"]
    else:
        # An album of the library (check_references) holds assets of other libraries too: those its
        # album editors added. They are its contents wherever they live, while their library is live.
        clauses = [] if album_rows_given else [
            f"EXISTS (SELECT 1 FROM album_assets aa WHERE aa.asset_id = a.id AND aa.album_id = {sql.arg(f.album_id)})"]
        clauses.append("EXISTS (SELECT 1 FROM libraries own WHERE own.id = a.library_id AND own.trashed_at IS NULL)")
    if f.state == "live":
        clauses.append("a.trashed_at IS NULL")
    elif f.state == "trashed":
        clauses.append("a.trashed_at IS NOT NULL")
    if f.ids is not None:
        clauses.append(f"a.id = ANY({sql.arg(f.ids)}::uuid[])")
    if f.after is not None:
        clauses.append(_bound(sql, f.after, ">"))
    if f.before is not None:
        clauses.append(_bound(sql, f.before, "<"))
    if f.media_type is not None:
        clauses.append(f"a.media_type = {sql.arg(f.media_type)}")
    if f.visibility is not None:
        clauses.append(f"a.visibility = {sql.arg(f.visibility)}")
    if f.visibilities is not None:
        clauses.append(f"a.visibility = ANY({sql.arg(list(f.visibilities))}::text[])")
    if not f.shows_locked:  # the one place every asset list, search, count and cluster hides them
        clauses.append(f"a.visibility <> {sql.arg(LOCKED)}")
    if f.exif_equals:
        unknown = set(f.exif_equals) - _EXIF_COLUMNS
        if unknown:
            raise Invalid(f"cannot filter by {', '.join(sorted(unknown))}", "exif_equals")
        matches = " AND ".join(f"e.{column} = {sql.arg(value)}" for column, value in sorted(f.exif_equals.items()))
        clauses.append(f"EXISTS (SELECT 1 FROM asset_exif e WHERE e.asset_id = a.id AND {matches})")
    if f.file_name_contains:
        clauses.append(f"a.original_file_name ILIKE {_contains(sql, f.file_name_contains)}")
    if f.description_contains:
        clauses.append(
            "coalesce(a.user_description, (SELECT e.description FROM asset_exif e WHERE e.asset_id = a.id))"
            f" ILIKE {_contains(sql, f.description_contains)}"
        )
    if f.checksum_sha1 is not None:
        clauses.append(f"a.checksum_sha1 = {sql.arg(f.checksum_sha1)}")
    if f.external_library_id is not None:
        clauses.append(f"a.external_library_id = {sql.arg(f.external_library_id)}")
    if f.uploads_only:
        clauses.append("a.external_library_id IS NULL")
    if f.original_path_contains:
        clauses.append(f"a.original_path ILIKE {_contains(sql, f.original_path_contains)}")
    if f.is_offline is not None:
        clauses.append(f"a.is_offline = {sql.arg(f.is_offline)}")
    for column, op, bound in (("created_at", ">=", f.created_after), ("created_at", "<=", f.created_before),
                              ("updated_at", ">=", f.updated_after), ("updated_at", "<=", f.updated_before),
                              ("trashed_at", ">=", f.trashed_after), ("trashed_at", "<=", f.trashed_before)):
        if bound is not None:
            clauses.append(f"a.{column} {op} {sql.arg(_instant(bound))}")
    if f.is_motion is not None:
        clauses.append(f"a.live_photo_video_id IS {'NOT ' if f.is_motion else ''}NULL")
    if f.is_encoded:
        clauses.append("false")
    for album in dict.fromkeys(f.also_in_albums or ()):
        clauses.append(f"EXISTS (SELECT 1 FROM album_assets am WHERE am.asset_id = a.id AND am.album_id = {sql.arg(album)})")
    if f.taken_after is not None:
        clauses.append(f"a.taken_at > {sql.arg(f.taken_after)}")
    if f.taken_before is not None:
        clauses.append(f"a.taken_at < {sql.arg(f.taken_before)}")
    if f.ratings:
        clauses.append(
            f"coalesce(a.effective_rating, {effective.UNRATED:d})"
            f" = ANY({sql.arg(sorted(set(f.ratings)))}::int[])"
        )
    if f.album_filter == "in_album":
        clauses.append("EXISTS (SELECT 1 FROM album_assets aa WHERE aa.asset_id = a.id)")
    elif f.album_filter == "not_in_album":
        clauses.append("NOT EXISTS (SELECT 1 FROM album_assets aa WHERE aa.asset_id = a.id)")
    if f.stack_id is not None:
        clauses.append(f"a.stack_id = {sql.arg(f.stack_id)}")
    for person in dict.fromkeys(f.person_ids or ()):  # every named person appears (AND)
        clauses.append(f"EXISTS (SELECT 1 FROM faces fp WHERE fp.asset_id = a.id AND fp.person_id = {sql.arg(person)})")
    for tag in dict.fromkeys(f.tag_ids or ()):  # every named tag, or one below it (AND)
        clauses.append("EXISTS (SELECT 1 FROM tag_assets ta JOIN tag_closure tc ON tc.descendant_id = ta.tag_id"
                       f" WHERE ta.asset_id = a.id AND tc.ancestor_id = {sql.arg(tag)})")
    if f.untagged:
        clauses.append("NOT EXISTS (SELECT 1 FROM tag_assets ta WHERE ta.asset_id = a.id)")
    if f.bbox is not None:
        b = f.bbox
        clauses.append(f"a.latitude BETWEEN {sql.arg(b.south)} AND {sql.arg(b.north)}")
        if b.crosses_antimeridian:
            clauses.append(f"(a.longitude >= {sql.arg(b.west)} OR a.longitude <= {sql.arg(b.east)})")
        else:
            clauses.append(f"a.longitude BETWEEN {sql.arg(b.west)} AND {sql.arg(b.east)}")
    if f.center is not None:
        lon, lat = f.center
        # A lat/lon box first (index-friendly), then the exact great-circle distance.
        dlat = math.degrees(f.radius_m / EARTH_RADIUS_M)
        clauses.append(f"a.latitude BETWEEN {sql.arg(lat - dlat)} AND {sql.arg(lat + dlat)}")
        p_lat, p_lon, r = sql.arg(lat), sql.arg(lon), sql.arg(f.radius_m)
        clauses.append(
            f"2 * {EARTH_RADIUS_M} * asin(sqrt(power(sin(radians(a.latitude - {p_lat}) / 2), 2)"
            f" + cos(radians({p_lat})) * cos(radians(a.latitude)) * power(sin(radians(a.longitude - {p_lon}) / 2), 2)))"
            f" <= {r}"
        )
    return " AND ".join(clauses)
