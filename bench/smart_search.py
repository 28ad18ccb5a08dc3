"""Smart search: query latency, pgvector beside FAISS, and duplicate detection, each against a floor
measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/smart_search.py [--assets 200000] [--dim 512]
        [--runs 40] [--rounds 3] [--no-pgvector] [--pgvector-hnsw] [--no-duplicates]

Starts a fresh embedded PostgreSQL in a temp dir, generates the assets with SQL (bench/queries.py's
rows) and stores a random L2-normalised embedding for each (COPY), with --planted near-duplicate
groups (copies within 0.002 cosine distance of an original) for duplicate detection.

Latency: app.domain.smart_search.rank, top 100, for random query vectors, with
  - a date range holding about a third of the library (a broad filter: the library's index is
    searched, the candidates filtered in SQL and re-scored exactly)
  - an album of --album assets (a narrow filter: its rows are scored exactly)
Floors, numpy over the same embeddings already in memory, no database:
  - "filtered rows": the filtered set's rows gathered into one matrix beforehand (not timed), then
    `matrix @ q`, argpartition, sort: the least any exact ranking of the filtered set costs
  - "whole library" (date range): the same over all rows, what an exact index that knows nothing of
    the filter must read.
The index build (first query) is timed apart. Recall@100 against the floor is printed. Random
vectors are the worst case for any index (no clusters: every point about as far as any other).

pgvector (embedded PostgreSQL ships the extension): the same embeddings in a vector(dim) column,
the same two filters as one SQL statement ordered by `<#>`: exact, then with an IVFFlat index
(and HNSW with --pgvector-hnsw: its build is minutes here), with recall against the floor.

Duplicates: app.domain.duplicates.detect (the job's domain function) over the owner's embeddings,
timed whole and in parts (reading the embeddings, finding the pairs); groups found against the
planted ones. Floors: reading the same embeddings from Postgres with one plain SELECT, and exact
all-pairs products extrapolated from one timed block of 2,048 rows.

OpenBLAS: faiss and numpy read OPENBLAS_CORETYPE when they load; a value not fitting the CPU makes
the products slower (see bench/faces.py). Run with it unset, as above.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import struct
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.queries import GENERATE, pct  # noqa: E402

def unit(rng, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


async def timed(label: str, fn, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        await fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    print(f"  {label}: p50 {pct(samples, 50):.2f} ms, p95 {pct(samples, 95):.2f} ms over {runs} runs")
    return samples


def top100(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row numbers of the 100 nearest, nearest first (the floors' ranking)."""
    distances = 1.0 - matrix @ q
    top = np.argpartition(distances, min(99, len(distances) - 1))[:100]
    return top[np.argsort(distances[top], kind="stable")]


def plant(rng, matrix: np.ndarray, eligible: np.ndarray, groups: int) -> list[list[int]]:
    """Overwrite rows with near copies of others: `groups` groups of 2 or 3 of the eligible rows
    (live photos: detection compares within a media type), each within about 0.002 cosine distance
    of its first row (Immich's default max distance is 0.01)."""
    rows = rng.choice(eligible, groups * 3, replace=False)
    planted = []
    for g in range(groups):
        members = rows[3 * g:3 * g + (3 if g % 4 == 0 else 2)].tolist()
        for m in members[1:]:
            noisy = matrix[members[0]] + 0.002 * rng.standard_normal(matrix.shape[1]).astype(np.float32)
            matrix[m] = noisy / np.linalg.norm(noisy)
        planted.append(members)
    return planted


async def main_async(args) -> None:
    from app import vector_index
    from app.db import engine as db
    from app.db.migrate import apply_migrations
    from app.domain import smart_search, system_config, users
    from app.domain.asset_filters import AssetFilter

    await apply_migrations(os.environ["DATABASE_URL"])
    await db.open_pool(max_size=4)
    rng = np.random.default_rng(args.seed)
    # Filed under the configured model name: what duplicate detection reads.
    model = (await system_config.current())["machineLearning"]["clip"]["modelName"]
    try:
        user = await users.create_user("bench@example.com", "pw")
        library = user["default_library_id"]
        t0 = time.perf_counter()
        async with db.connection() as conn:
            await conn.execute(GENERATE, library, user["id"], args.assets)
            rows = await conn.fetch("SELECT id, local_datetime, trashed_at, media_type FROM assets"
                                    " ORDER BY local_datetime")
            ids = [r["id"] for r in rows]
            matrix = np.empty((len(ids), args.dim), np.float32)
            for start in range(0, len(ids), 20_000):
                matrix[start:start + 20_000] = unit(rng, min(20_000, len(ids) - start), args.dim)
            photos = np.flatnonzero([r["trashed_at"] is None and r["media_type"] == "image" for r in rows])
            planted = plant(rng, matrix, photos, args.planted)
            for start in range(0, len(ids), 20_000):
                await conn.copy_records_to_table(
                    "smart_search", columns=["asset_id", "model", "library_id", "embedding"],
                    records=[(ids[i], model, library, matrix[i].astype("<f4").tobytes())
                             for i in range(start, min(start + 20_000, len(ids)))])
            album = await conn.fetchval(
                "INSERT INTO albums (library_id, owner_id, name) VALUES ($1, $2, 'bench') RETURNING id",
                library, user["id"])
            in_album = rng.choice(len(ids), args.album, replace=False)
            await conn.copy_records_to_table("album_assets", columns=["album_id", "asset_id", "library_id"],
                                             records=[(album, ids[i], library) for i in in_album])
            await conn.execute("ANALYZE")
        print(f"generated {len(ids)} assets with {args.dim}-d embeddings ({len(planted)} planted duplicate"
              f" groups) in {time.perf_counter() - t0:.1f} s")

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
        await vector_index.indexes.sync(library, model, args.dim)
        index = vector_index.indexes.cached(library, model)
        print(f"index build (first query's cost): {time.perf_counter() - t0:.2f} s,"
              f" {'exact' if index.exact else f'IVF trained on {index.trained_on}'}, {index.ntotal} entries")

        cases = (("date range", date_filter, date_mask), ("album", album_filter, album_mask))
        truth: dict[str, list[set]] = {}
        for label, filt, mask in cases:
            chosen = np.flatnonzero(mask)
            gathered = np.ascontiguousarray(matrix[chosen])
            truth[label] = [{ids[chosen[i]] for i in top100(gathered, q)} for q in queries]
            print(f"{label}: {len(chosen)} assets selected")
            results: dict[int, list] = {}

            async def ranked(i, filt=filt, results=results):
                results[i] = [a for a, _ in await smart_search.rank([filt], model, queries[i], 0, 100)]

            async def floor(i, gathered=gathered):
                top100(gathered, queries[i])

            async def whole(i):
                top100(matrix, queries[i])

            await smart_search.rank([filt], model, queries[0], 0, 100)  # warm
            for round_ in range(args.rounds):
                print(f" round {round_ + 1} ({load()}):")
                ours = await timed("smart_search.rank top 100", ranked, args.runs)
                base = await timed("floor, numpy over the filtered rows", floor, args.runs)
                line = f"  p95 ratio rank/floor: {pct(ours, 95) / pct(base, 95):.1f}x"
                if label == "date range":
                    full = await timed("floor, numpy over the whole library", whole, args.runs)
                    line += f"; rank/whole-library floor: {pct(ours, 95) / pct(full, 95):.1f}x"
                recall = np.mean([len(set(results[i]) & truth[label][i]) / 100 for i in range(args.runs)])
                print(f"{line}; recall@100 vs floor: {recall:.3f}")

        if args.pgvector:
            await bench_pgvector(args, db, model, library, ids, matrix, cases, queries, truth)
        else:
            print("pgvector: skipped (--no-pgvector)")
        if args.duplicates:
            await bench_duplicates(db, user["id"], model, ids, matrix, planted)
    finally:
        await db.close_pool()


async def bench_pgvector(args, db, model, library, ids, matrix, cases, queries, truth) -> None:
    """The same rankings as one SQL statement each over a pgvector column: exact, then indexed."""
    from app.domain.asset_filters import Sql, where

    print(f"pgvector ({load()}):")
    async with db.connection() as conn:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:  # another PostgreSQL (DATABASE_URL) may lack it
            print(f"  not measured: CREATE EXTENSION vector failed ({exc})")
            return
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        await conn.set_type_codec(
            "vector", schema="public", format="binary",
            encoder=lambda v: struct.pack(">HH", len(v), 0) + np.asarray(v, ">f4").tobytes(),
            decoder=lambda b: np.frombuffer(b[4:], ">f4"))
        t0 = time.perf_counter()
        await conn.execute(f"CREATE TABLE bench_vectors (asset_id uuid PRIMARY KEY, embedding vector({args.dim}))")
        for start in range(0, len(ids), 20_000):
            await conn.copy_records_to_table("bench_vectors", columns=["asset_id", "embedding"], records=[
                (ids[i], matrix[i]) for i in range(start, min(start + 20_000, len(ids)))])
        await conn.execute("ANALYZE bench_vectors")
        print(f"  pgvector {version}: {len(ids)} vectors loaded in {time.perf_counter() - t0:.1f} s")

        async def run_all(kind: str) -> None:
            for label, filt, _ in cases:
                sql = Sql()
                clause = where(filt, sql)
                q = sql.arg(queries[0])
                statement = (f"SELECT a.id FROM assets a JOIN bench_vectors v ON v.asset_id = a.id WHERE {clause}"
                             f" ORDER BY v.embedding <#> {q} LIMIT 100")
                results = {}

                async def ranked(i, statement=statement, sql=sql, results=results):
                    args_ = list(sql.args)
                    args_[-1] = queries[i]
                    results[i] = [r["id"] for r in await conn.fetch(statement, *args_)]

                await ranked(0)  # warm
                plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + statement, *sql.args))
                used = next((name for name in ("bench_vectors_ivf", "bench_vectors_hnsw") if name in plan), None)
                print(f"   plan: {'index scan of ' + used if used else 'no vector index (sorts every distance)'}")
                samples = await timed(f"{kind}, {label}", ranked, min(args.runs, 20))
                recall = np.mean([len(set(results[i]) & truth[label][i]) / 100 for i in results])
                print(f"    recall@100 vs floor: {recall:.3f} (p95 {pct(samples, 95):.1f} ms)")

        await run_all("exact (no vector index)")
        lists = max(1, len(ids) // 1000)
        t0 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(f"CREATE INDEX bench_vectors_ivf ON bench_vectors USING ivfflat (embedding vector_ip_ops)"
                           f" WITH (lists = {lists})")
        print(f"  IVFFlat ({lists} lists) built in {time.perf_counter() - t0:.1f} s")
        probes = max(1, int(np.sqrt(lists)))
        await conn.execute(f"SET ivfflat.probes = {probes}")
        await conn.execute("SET ivfflat.iterative_scan = relaxed_order")  # filtered: scan on until 100 pass
        # With a filter the planner prefers the exact sort; without sorts it takes the index.
        await conn.execute("SET enable_sort = off")
        await run_all(f"IVFFlat probes {probes}, iterative scan")
        await conn.execute("DROP INDEX bench_vectors_ivf")
        if args.pgvector_hnsw:
            t0 = time.perf_counter()
            await conn.execute("CREATE INDEX bench_vectors_hnsw ON bench_vectors USING hnsw (embedding vector_ip_ops)")
            print(f"  HNSW (m 16, ef_construction 64) built in {time.perf_counter() - t0:.1f} s")
            await conn.execute("SET hnsw.ef_search = 200")
            await conn.execute("SET hnsw.iterative_scan = relaxed_order")
            await run_all("HNSW ef_search 200, iterative scan")
        else:
            print("  HNSW: not measured (--pgvector-hnsw; its build over 200,000 512-d rows takes minutes here)")
        await conn.execute("DROP TABLE bench_vectors")


async def bench_duplicates(db, owner_id, model, ids, matrix, planted) -> None:
    from app.domain import duplicates

    print(f"duplicate detection over {len(ids)} embeddings ({load()}):")
    t0 = time.perf_counter()
    plain = await db.fetch("SELECT embedding FROM smart_search WHERE model = $1", model)
    read_floor = time.perf_counter() - t0
    del plain
    t0 = time.perf_counter()
    _, kinds, _, loaded = await duplicates._load_embeddings(owner_id, model)
    read_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    a, _ = await asyncio.to_thread(duplicates._near_pairs, kinds, loaded, 0.01)
    pairs_s = time.perf_counter() - t0
    del loaded
    block = np.ascontiguousarray(matrix[:2048])
    t0 = time.perf_counter()
    _ = block @ matrix.T >= np.float32(0.99)
    all_pairs = (time.perf_counter() - t0) * (len(ids) / 2048) / 2  # each pair once
    t0 = time.perf_counter()
    found = await duplicates.detect(owner_id)
    total = time.perf_counter() - t0
    by_asset = {r["id"]: r["duplicate_id"] for r in await db.fetch(
        "SELECT id, duplicate_id FROM assets WHERE owner_id = $1 AND duplicate_id IS NOT NULL", owner_id)}
    groups = len(set(by_asset.values()))
    whole = sum(1 for g in planted if len({by_asset.get(ids[m]) for m in g}) == 1 and ids[g[0]] in by_asset)
    print(f"  duplicates.detect: {total:.1f} s ({found.assets} assets looked at, {found.grouped} grouped,"
          f" {found.changed} changed); {groups} groups found, {whole} of {len(planted)} planted groups found whole")
    print(f"  parts: reading the embeddings {read_ours:.1f} s (floor, one plain SELECT: {read_floor:.1f} s);"
          f" finding pairs {pairs_s:.1f} s ({len(a)} pairs; floor, exact all pairs from one 2,048-row block:"
          f" about {all_pairs:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--album", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--planted", type=int, default=1000, help="near-duplicate groups planted")
    parser.add_argument("--no-pgvector", dest="pgvector", action="store_false")
    parser.add_argument("--pgvector-hnsw", action="store_true")
    parser.add_argument("--no-duplicates", dest="duplicates", action="store_false")
    args = parser.parse_args()
    blas = os.environ.get("OPENBLAS_CORETYPE")
    print(f"machine: {os.cpu_count()} cores; {load()}; OPENBLAS_CORETYPE {'=' + blas if blas else 'unset'};"
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
