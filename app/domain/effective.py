"""What an asset shows: the user's edit where there is one, else what the file says. Defined once.

Two of these values are stored generated columns on `assets` (migration 2026-11-29T15:20), so SQL
filters, the change feed and both APIs read the same value:
- `effective_rating`: the user's rating, else the file's (`file_rating`, the only copy of it).
- `taken_at`: the capture instant, the wall clock `local_datetime` less its UTC offset; a wall
  clock with no known offset is read as UTC (Immich's fileCreatedAt and takenAfter/takenBefore).

Favorite is not stored: it is a rating of FAVORITE_RATING, and everything that reads or writes
favorite goes through the functions below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from app.domain.datetimes import join_wall_clock

# Ratings run from UNRATED to 5 stars; a favorite is the top of the scale.
UNRATED = 0  # also how a ratings filter names an asset with no rating at all
FAVORITE_RATING = 5
RATINGS = range(UNRATED, FAVORITE_RATING + 1)


def is_favorite(effective_rating: int | None) -> bool:
    return effective_rating == FAVORITE_RATING


def rating_for_favorite(flag: bool) -> int | None:
    """The user rating that sets favorite; un-favoriting clears the user's rating (the file's shows)."""
    return FAVORITE_RATING if flag else None


def ratings_for_favorite(flag: bool) -> list[int]:
    """The effective ratings (UNRATED for none) a favorite filter of `flag` selects."""
    return [FAVORITE_RATING] if flag else [r for r in RATINGS if r != FAVORITE_RATING]


class Effective(NamedTuple):
    """The values an asset shows where the user may have overridden the file. A NamedTuple, not a
    frozen dataclass: search pages and the sync stream build one per asset, hundreds a call."""

    description: str | None
    latitude: float | None
    longitude: float | None
    altitude: float | None
    original_datetime: datetime | None  # aware when the offset is known
    rating: int | None

    @property
    def favorite(self) -> bool:
        return is_favorite(self.rating)


def of(row: Any, exif: Any | None) -> Effective:
    """From an asset row (any mapping with the assets columns) and its asset_exif row, if any."""
    user_gps = row["user_latitude"] is not None
    user_description = row["user_description"]
    if exif is None:
        description = user_description
        if user_gps:
            latitude, longitude = row["user_latitude"], row["user_longitude"]
        else:
            latitude = longitude = None
        altitude = None
        file_original = None
    else:
        description = user_description if user_description is not None else exif["description"]
        if user_gps:
            latitude, longitude, altitude = row["user_latitude"], row["user_longitude"], None
        else:
            latitude, longitude, altitude = exif["latitude"], exif["longitude"], exif["altitude"]
        file_original = exif["original_datetime"]
    if row["user_original_datetime"] is not None:
        original = join_wall_clock(row["user_original_datetime"], row["user_original_offset_minutes"])
    elif file_original is not None:
        original = join_wall_clock(file_original, exif["original_offset_minutes"])
    else:
        original = None
    return Effective(description, latitude, longitude, altitude, original, row["effective_rating"])


# The same definitions in SQL, over an `assets` row aliased `asset` and its `asset_exif` row
# aliased `exif` (NULLs when it has none), for queries that shape their answer in the database.
def favorite_sql(asset: str) -> str:
    return f"({asset}.effective_rating IS NOT DISTINCT FROM {FAVORITE_RATING:d})"


def latitude_sql(asset: str, exif: str) -> str:
    return f"(CASE WHEN {asset}.user_latitude IS NOT NULL THEN {asset}.user_latitude ELSE {exif}.latitude END)"


def longitude_sql(asset: str, exif: str) -> str:
    return f"(CASE WHEN {asset}.user_latitude IS NOT NULL THEN {asset}.user_longitude ELSE {exif}.longitude END)"
