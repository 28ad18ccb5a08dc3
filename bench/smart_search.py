"""Smart search latency: top-100 by CLIP distance with a date range and with an album, against a
brute-force numpy floor in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/smart_search.py [--assets 200000] [--dim 512] [--runs 40]

Starts a fresh embedded PostgreSQL in a temp dir, generates the assets with SQL (bench/queries.py's
rows) and stores a random L2-normalised embedding for each (COPY), then times
app.domain.smart_search.rank (FAISS over-fetch per library, the SQL filters, exact re-scoring; the
exact fallback when too few survive) for random query vectors:
  - a date range holding about a third of the library
  - an album of --album assets
The floor is numpy over the same embeddings already in memory: the filtered set's rows picked by a
precomputed mask, `matrix @ q`, argpartition, sort (no database, no filter evaluation). The index
build (first query) is timed apart. Recall@100 against the floor is printed: random vectors are the
worst case for an IVF index (no clusters), real CLIP embeddings cluster.

OpenBLAS: faiss and numpy read OPENBLAS_CORETYPE when they load; a value not fitting the CPU makes
the products slower (see bench/faces.py). Run with it unset, as above.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.queries import GENERATE, pct  # noqa: E402

MODEL = "bench-clip"


def unit(rng, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def timed(label: str, fn, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        await fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    print(f"  {label}: p50 {pct(samples, 50):.2f} ms, p95 {pct(samples, 95):.2f} ms over {runs} runs")
    return samples


async def main_async(args) -> None:
    from app import vector_index
    from app.db import engine as db
    from app.db.migrate import apply_migrations
    from app.domain import smart_search, users
    from app.domain.asset_filters import AssetFilter

    await apply_migrations(os.environ["DATABASE_URL"])
    await db.open_pool(max_size=4)
    rng = np.random.default_rng(args.seed)
    try:
        user = await users.create_user("bench@example.com", "pw")
        library = user["default_library_id"]
        t0 = time.perf_counter()
        async with db.connection() as conn:
            await conn.execute(GENERATE, library, user["id"], args.assets)
            rows = await conn.fetch("SELECT id, local_datetime, trashed_at FROM assets ORDER BY local_datetime")
            ids = [r["id"] for r in rows]
            matrix = np.empty((len(ids), args.dim), np.float32)
            for start in range(0, len(ids), 20_000):
                chunk = unit(rng, min(20_000, len(ids) - start), args.dim)
                matrix[start:start + len(chunk)] = chunk
                await conn.copy_records_to_table(
                    "smart_search", columns=["asset_id", "model", "library_id", "embedding"],
                    records=[(ids[start + i], MODEL, library, chunk[i].astype("<f4").tobytes())
                             for i in range(len(chunk))])
            album = await conn.fetchval(
                "INSERT INTO albums (library_id, owner_id, name) VALUES ($1, $2, 'bench') RETURNING id",
                library, user["id"])
            in_album = rng.choice(len(ids), args.album, replace=False)
            await conn.copy_records_to_table("album_assets", columns=["album_id", "asset_id", "library_id"],
                                             records=[(album, ids[i], library) for i in in_album])
            await conn.execute("ANALYZE")
        print(f"generated {len(ids)} assets with {args.dim}-d embeddings in {time.perf_counter() - t0:.1f} s")

        live = np.array([r["trashed_at"] is None for r in rows])
        times = [r["local_datetime"] for r in rows]
        after, before = times[len(times) // 3], times[2 * len(times) // 3]
        date_mask = live & np.array([after < t < before for t in times])
        album_mask = np.zeros(len(ids), bool)
        album_mask[in_album] = True
        album_mask &= live
        date_filter = AssetFilter(library_id=library, after=after, before=before)
        album_filter = AssetFilter(library_id=library, album_id=album)
        queries = unit(rng, args.runs, args.dim)

        t0 = time.perf_counter()
        await vector_index.indexes.sync(library, MODEL, args.dim)
        index = vector_index.indexes.cached(library, MODEL)
        print(f"index build (first query's cost): {time.perf_counter() - t0:.2f} s,"
              f" {'exact' if index.exact else f'IVF trained on {index.trained_on}'}, {index.ntotal} entries")

        def floor(mask: np.ndarray, q: np.ndarray) -> list:
            chosen = np.flatnonzero(mask)
            distances = 1.0 - matrix[chosen] @ q
            top = np.argpartition(distances, min(99, len(chosen) - 1))[:100]
            return [ids[chosen[i]] for i in top[np.argsort(distances[top], kind="stable")]]

        for label, filt, mask in (("date range", date_filter, date_mask), ("album", album_filter, album_mask)):
            print(f"{label}: {int(mask.sum())} assets selected")
            results: dict[int, list] = {}

            async def ranked(i, filt=filt, results=results):
                results[i] = [a for a, _ in await smart_search.rank([filt], MODEL, queries[i], 0, 100)]

            async def brute(i, mask=mask):
                floor(mask, queries[i])

            await smart_search.rank([filt], MODEL, queries[0], 0, 100)  # warm
            ours = await timed("smart_search.rank top 100", ranked, args.runs)
            base = await timed("numpy brute force (floor)", brute, args.runs)
            recall = np.mean([len(set(results[i]) & set(floor(mask, queries[i]))) / 100 for i in range(args.runs)])
            print(f"  p95 ratio rank/floor: {pct(ours, 95) / pct(base, 95):.1f}x; recall@100 vs floor: {recall:.3f}")
    finally:
        await db.close_pool()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--album", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    blas = os.environ.get("OPENBLAS_CORETYPE")
    print(f"machine: {os.cpu_count()} cores; OPENBLAS_CORETYPE {'=' + blas if blas else 'unset'};"
          f" {datetime.now().isoformat(timespec='seconds')}")
    work = Path(tempfile.mkdtemp(prefix="bench-smart-search-"))
    from app.runtime import acquire_services
    from app.settings import load_settings

    os.environ["DATA_DIR"] = str(work)
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    services = acquire_services(load_settings(), need_redis=False)
    try:
        services.export_env()
        asyncio.run(main_async(args))
    finally:
        services.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
