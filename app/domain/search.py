"""Search beyond paging through a filter: random picks, the largest files, counts, place names,
the explore strip and the folder view.

Filters come from the caller's readable scope (its library, partners' libraries, an album it may
read), so these functions only check the credential's action; the shared filters hide trashed and
locked assets as they do everywhere.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import asyncpg

from app.db import engine as db
from app.domain import access, faces
from app.domain.asset_filters import AssetFilter, Sql, check_references, where
from app.domain.errors import Invalid
from app.media import places as gazetteer

MAX_RESULTS = 1000
# Immich's explore strip: at most 12 cities, each with at least 5 photos.
EXPLORE_CITIES = 12
EXPLORE_MIN_ASSETS = 5


async def _where_any(filters: list[AssetFilter], sql: Sql) -> str:
    """Assets any of the filters selects (one per library read: the caller's, its partners')."""
    if not filters:
        raise Invalid("at least one filter is needed", "filters")
    for f in filters:
        await check_references(f)
    return " OR ".join(f"({where(f, sql)})" for f in filters)


def _check_size(size: int) -> None:
    if not 1 <= size <= MAX_RESULTS:
        raise Invalid(f"size must be between 1 and {MAX_RESULTS}", "size")


# --- a page of a metadata search ----------------------------------------------------------------
#
# Immich answers a metadata search page by page (250 by default) and carries an asset's EXIF only
# when asked (withExif), its people only when asked (withPeople). A page reads the columns its items
# show, not whole rows: the asset's own columns and whether it has an EXIF row at all (hasMetadata),
# with its EXIF columns in the same query when asked, then its people in one more query when asked.
# Never a query per asset.

ITEM_COLUMNS = (
    "a.id, a.owner_id, a.checksum_sha1, a.media_type, a.original_file_name, a.mime_type, a.original_path,"
    " a.taken_at, a.file_modified_at, a.created_at, a.updated_at, a.local_datetime, a.duration_ms, a.width,"
    " a.height, a.thumbhash, a.effective_rating, a.visibility, a.trashed_at, a.is_offline, a.current_version_id,"
    " a.live_photo_video_id, a.external_library_id, a.duplicate_id"
)
# What the EXIF block shows: the user's edits (on the asset) over what the file says (effective.of).
# No name here is one of ITEM_COLUMNS, so one row carries both.
EDIT_COLUMNS = (
    ", a.file_size_bytes, a.user_description, a.user_latitude, a.user_longitude, a.user_original_datetime,"
    " a.user_original_offset_minutes"
)
EXIF_COLUMNS = (
    "x.make, x.model, x.lens_model, x.f_number, x.focal_length, x.iso, x.exposure_time, x.orientation,"
    " x.original_datetime, x.original_offset_minutes, x.modified_datetime, x.modified_offset_minutes, x.timezone,"
    " x.latitude, x.longitude, x.altitude, x.city, x.state, x.country, x.description, x.projection_type,"
    " x.raw_width, x.raw_height"
)


@dataclass(slots=True)
class PageItem:
    """One asset of a search page. `row`: its ITEM_COLUMNS and has_exif, and when its EXIF was
    asked for EDIT_COLUMNS and EXIF_COLUMNS too; `exif`: that same row when asked for and the asset
    has an EXIF row; `people`: the people on it when asked for."""

    row: asyncpg.Record
    exif: asyncpg.Record | None = None
    people: list[asyncpg.Record] = field(default_factory=list)

    @property
    def has_metadata(self) -> bool:
        return self.row["has_exif"]


async def metadata_page(principal: access.Principal, f: AssetFilter, *, page: int, size: int,
                        order: str = "desc", with_exif: bool = False,
                        with_people: bool = False) -> tuple[list[PageItem], bool]:
    """Page `page` (from 1) of `size` assets the filter holds, by capture time (newest first unless
    `order` is "asc"), and whether another page follows."""
    principal.require(access.READ)
    _check_size(size)
    if page < 1:
        raise Invalid("page must be at least 1", "page")
    if order not in ("asc", "desc"):
        raise Invalid("order must be asc or desc", "order")
    offset = (page - 1) * size
    if offset > 2**63 - 1 - size:
        raise Invalid("page is too large", "page")
    await check_references(f)
    sql = Sql()
    clause = where(f, sql)
    direction = order.upper()
    ordering = f"ORDER BY a.local_datetime {direction}, a.id {direction}"
    # The page first, then what is read per asset (its EXIF, or whether it has any) by its key, for
    # the page's rows only: not for every row the offset skips, and never by hashing the whole
    # asset_exif table (the plan Postgres picks for a join or EXISTS while the table is small; the
    # LIMIT 1 and the scalar subquery keep it to one index probe per asset).
    if with_exif:
        outer = f"a.*, x.asset_id IS NOT NULL AS has_exif, {EXIF_COLUMNS}"
        join = (f" LEFT JOIN LATERAL (SELECT x.asset_id, {EXIF_COLUMNS} FROM asset_exif x"
                f" WHERE x.asset_id = a.id LIMIT 1) x ON true")
    else:
        outer = "a.*, (SELECT true FROM asset_exif x WHERE x.asset_id = a.id) IS NOT NULL AS has_exif"
        join = ""
    # LIMIT and OFFSET are written into the statement (checked integers above), not bound: bound, they
    # let PostgreSQL settle on a generic plan after a few pages of 250 (it cannot see the limit), which
    # sorts the whole library: some 20 ms per page of any size on 20,000 assets.
    rows = await db.fetch(
        f"SELECT {outer} FROM (SELECT {ITEM_COLUMNS}{EDIT_COLUMNS if with_exif else ''} FROM assets a"
        f" WHERE {clause} {ordering} LIMIT {int(size) + 1} OFFSET {int(offset)}) a{join} {ordering}",
        *sql.args,
    )
    items = [PageItem(r, r if with_exif and r["has_exif"] else None) for r in rows[:size]]
    if with_people and items:
        shown: dict[uuid.UUID, list[asyncpg.Record]] = await faces.people_of_assets([i.row["id"] for i in items])
        for item in items:
            item.people = shown[item.row["id"]]
    return items, len(rows) > size


async def random_assets(principal: access.Principal, filters: list[AssetFilter], size: int) -> list[asyncpg.Record]:
    principal.require(access.READ)
    _check_size(size)
    sql = Sql()
    clause = await _where_any(filters, sql)
    return await db.fetch(f"SELECT a.* FROM assets a WHERE {clause} ORDER BY random() LIMIT {sql.arg(size)}",
                          *sql.args)


async def largest_assets(principal: access.Principal, filters: list[AssetFilter], size: int,
                         min_size_bytes: int = 0) -> list[asyncpg.Record]:
    """The biggest originals first, each larger than `min_size_bytes`."""
    principal.require(access.READ)
    _check_size(size)
    if min_size_bytes < 0:
        raise Invalid("the minimum file size cannot be negative", "min_size_bytes")
    sql = Sql()
    clause = await _where_any(filters, sql)
    return await db.fetch(
        f"SELECT a.* FROM assets a WHERE {clause} AND a.file_size_bytes > {sql.arg(min_size_bytes)}"
        f" ORDER BY a.file_size_bytes DESC, a.id DESC LIMIT {sql.arg(size)}",
        *sql.args,
    )


async def count(principal: access.Principal, filters: list[AssetFilter]) -> int:
    principal.require(access.READ)
    sql = Sql()
    clause = await _where_any(filters, sql)
    return await db.fetchval(f"SELECT count(*) FROM assets a WHERE {clause}", *sql.args)


async def album_markers(principal: access.Principal, album_filter: AssetFilter) -> list[asyncpg.Record]:
    """The geotagged assets of an album (a filter from albums.contents_filter) with their place names."""
    principal.require(access.READ)
    sql = Sql()
    clause = await _where_any([album_filter], sql)
    return await db.fetch(
        f"SELECT a.id, a.latitude, a.longitude, e.city, e.state, e.country FROM assets a"
        f" LEFT JOIN asset_exif e ON e.asset_id = a.id WHERE {clause} AND a.latitude IS NOT NULL"
        f" ORDER BY a.local_datetime DESC, a.id DESC",
        *sql.args,
    )


# --- places --------------------------------------------------------------------------------------


async def places(principal: access.Principal, name: str) -> list[gazetteer.Place]:
    """Towns of the offline gazetteer matching a typed name (not the caller's photos)."""
    principal.require(access.READ)
    return await asyncio.to_thread(gazetteer.search_places, name)


async def place_at(principal: access.Principal, latitude: float, longitude: float) -> gazetteer.Place | None:
    """The nearest town to a point, if one is near enough to name it."""
    principal.require(access.READ)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise Invalid("latitude must be in [-90, 90] and longitude in [-180, 180]", "latitude")
    return await asyncio.to_thread(gazetteer.place_for, latitude, longitude)


async def explore_cities(principal: access.Principal, f: AssetFilter) -> list[asyncpg.Record]:
    """One photo for each of the cities (most EXPLORE_CITIES, by name) where the filter holds at
    least EXPLORE_MIN_ASSETS photos: the newest of each."""
    principal.require(access.READ)
    sql = Sql()
    clause = await _where_any([f], sql)
    return await db.fetch(
        f"""
        WITH shown AS (
            SELECT a.*, e.city AS explore_city FROM assets a JOIN asset_exif e ON e.asset_id = a.id
            WHERE ({clause}) AND a.media_type = 'image' AND e.city IS NOT NULL
        ), cities AS (
            SELECT explore_city FROM shown GROUP BY explore_city HAVING count(*) >= {sql.arg(EXPLORE_MIN_ASSETS)}
            ORDER BY explore_city LIMIT {sql.arg(EXPLORE_CITIES)}
        )
        SELECT DISTINCT ON (s.explore_city) s.* FROM shown s JOIN cities USING (explore_city)
        ORDER BY s.explore_city, s.local_datetime DESC, s.id DESC
        """,
        *sql.args,
    )


# --- folders ---------------------------------------------------------------------------------------
#
# Immich's folder view lists the folders of its originals' paths on the server. Uploads report no
# folder of their own (a file name only), so the path an original has here is where the store keeps
# it: its storage key, under the storage template's folders when the template is on. An external
# library's asset is in the folder its file is in (original_path, absolute), as Immich shows it.

_PATH = "coalesce(a.original_path, a.storage_key)"


async def folders(principal: access.Principal, f: AssetFilter) -> list[str]:
    """The distinct folders (no trailing slash) holding the filter's originals, sorted."""
    principal.require(access.READ)
    sql = Sql()
    clause = await _where_any([f], sql)
    rows = await db.fetch(
        f"SELECT DISTINCT regexp_replace({_PATH}, '/[^/]*$', '') AS folder FROM assets a"
        f" WHERE {clause} AND {_PATH} LIKE '%/%' ORDER BY 1",
        *sql.args,
    )
    return [r["folder"] for r in rows]


async def folder_assets(principal: access.Principal, f: AssetFilter, folder: str) -> list[asyncpg.Record]:
    """The filter's originals directly in `folder` (not in its subfolders), by file name."""
    principal.require(access.READ)
    folder = folder.rstrip("/")
    if not folder:
        return []
    sql = Sql()
    clause = await _where_any([f], sql)
    escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return await db.fetch(
        f"SELECT a.* FROM assets a WHERE {clause} AND {_PATH} LIKE {sql.arg(escaped + '/%')}"
        f" AND position('/' IN substr({_PATH}, {sql.arg(len(folder) + 2)})) = 0"
        f" ORDER BY a.original_file_name, a.id",
        *sql.args,
    )

