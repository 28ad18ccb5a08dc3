"""Smart search: CLIP embeddings of assets, and ranking assets by their distance to a query vector.

The embeddings live in `smart_search` (one L2-normalised float32 vector per asset and model); the
per-library indexes of app/vector_index.py are caches of them, keyed by the row's seq (a seq's
embedding never changes). A broad filter asks the library's index for more candidates than it
needs, keeps those the asset filters (app/domain/asset_filters.py) allow, and re-scores them
exactly, so the order is the same as ranking the whole filtered set by hand. A narrow filter (an
album, a list of ids), or a broad one too few candidates survive, has its filtered set ranked
exactly. Scores come from the index's copy of a row where it holds one, else from Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from app import vector_index
from app.clip import models as clip_models
from app.clip import runtime as clip_runtime
from app.db import engine as db
from app.domain import access, system_config, tasks
from app.domain.asset_filters import AssetFilter, Sql, check_references, where
from app.domain.errors import BadRequest, Invalid

log = logging.getLogger(__name__)

# Candidates asked of an index per result needed, then four times more per round while too few
# survive, up to MAX_FETCH; past that the filtered set is ranked exactly.
OVERFETCH = 4
MIN_FETCH = 200
MAX_FETCH = 20_000
# Assets looked up per round of an exact ranking of a broad filter.
EXACT_BATCH = 20_000
# An album or a list of ids is a small set: always ranked exactly.
# How far past the float32 pass's need-th nearest a row may lie and still be scored in float64 (the
# float32 error of a 512-d unit-vector product is about 1e-6, its bound about 3e-5).
PREFILTER_MARGIN = 1e-3


def to_bytes(vector) -> bytes:
    return normalise(vector).astype("<f4").tobytes()


def normalise(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise Invalid("an embedding must be a finite, non-zero vector", "embedding")
    return vector / norm


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


async def store(conn: asyncpg.Connection, asset_id: uuid.UUID, library_id: uuid.UUID, model: str, vector) -> None:
    """The asset's embedding under `model`, replacing an earlier one. A replaced row takes a new seq,
    so the indexes see it as a new entry (the old one stops resolving), and duplicate detection
    looks at it again.

    No change-log event: the embedding is no part of what any client is shown or synced (the
    pipeline's task row records the step)."""
    await conn.execute(
        """
        INSERT INTO smart_search (asset_id, model, library_id, embedding) VALUES ($1, $2, $3, $4)
        ON CONFLICT (asset_id, model) DO UPDATE SET embedding = EXCLUDED.embedding,
            library_id = EXCLUDED.library_id, seq = nextval('smart_search_seq_seq'),
            duplicates_checked_at = NULL, created_at = now()
        """,
        asset_id, model, library_id, to_bytes(vector),
    )


async def embedding_of(asset_id: uuid.UUID, model: str) -> np.ndarray | None:
    data = await db.fetchval("SELECT embedding FROM smart_search WHERE asset_id = $1 AND model = $2",
                             asset_id, model)
    return None if data is None else from_bytes(data)


def _distances(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine distances of unit rows to a unit query, in float64 so the order does not hang on
    rounding. einsum computes every row with the same loop: a BLAS product may round a row
    differently by its place in the matrix, and equal embeddings (duplicates) must tie exactly to
    be ordered by id."""
    return 1.0 - np.einsum("ij,j->i", matrix.astype(np.float64), query)


def _score(rows, query: np.ndarray) -> list[tuple[uuid.UUID, float]]:
    """Cosine distances of the rows' embeddings."""
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(r["embedding"] for r in rows), dtype="<f4").reshape(len(rows), -1)
    if matrix.shape[1] != len(query):
        return []
    return [(r["id"], float(d)) for r, d in zip(rows, _distances(matrix, query))]


async def _score_seqs(index: vector_index.VectorIndex, model: str, ids: list[uuid.UUID], seqs: np.ndarray,
                      query: np.ndarray, need: int) -> list[tuple[uuid.UUID, float]]:
    """Cosine distances of the embeddings with these seqs (ids[i] the asset of seqs[i]), at least
    for the `need` nearest (farther ones may be left out): from the index's copy where it holds the
    seq (a seq's embedding never changes: a new one takes a new seq), else from Postgres. The same
    arithmetic as `_score` (`_distances`), so the same order."""
    found, vectors = index.vectors_of(seqs)
    held = np.flatnonzero(found)
    if len(held) > need:
        # A float32 pass first, float64 only for the rows it cannot rule out: for unit vectors the
        # two differ by far less than PREFILTER_MARGIN / 2, so every row among the `need` nearest
        # is within the margin of the float32 pass's need-th nearest (ties included).
        rough = 1.0 - vectors @ query.astype(np.float32)
        finite = rough[np.isfinite(rough)]
        if len(finite) > need:
            keep = rough <= np.partition(finite, need - 1)[need - 1] + PREFILTER_MARGIN  # NaN: False
            vectors, held = vectors[keep], held[keep]
    distances = _distances(vectors, query)
    finite = np.isfinite(distances)  # a row of another size is held as NaN: it matches nothing
    scored = list(zip((ids[i] for i in held[finite]), distances[finite].tolist()))
    missing = np.flatnonzero(~found)
    if len(missing):
        rows = await db.fetch("SELECT asset_id AS id, embedding FROM smart_search WHERE seq = ANY($1::bigint[])"
                              " AND model = $2", seqs[missing].tolist(), model)
        wanted = {ids[i] for i in missing}
        scored += [item for item in _score([r for r in rows if len(r["embedding"]) == 4 * len(query)], query)
                   if item[0] in wanted and np.isfinite(item[1])]
    return scored


def _top(scored: list[tuple[uuid.UUID, float]], count: int) -> list[tuple[uuid.UUID, float]]:
    return sorted(scored, key=lambda item: (item[1], item[0]))[:count]


async def _exact(f: AssetFilter, model: str, query: np.ndarray, need: int) -> list[tuple[uuid.UUID, float]]:
    """Rank the whole filtered set, scored from the library's index where it holds the rows."""
    index = await vector_index.indexes.sync(f.library_id, model, len(query))
    if f.album_id is not None or f.ids is not None:
        rows = await _small_set(f, model)
        seqs = np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows))
        return _top(await _score_seqs(index, model, [r["id"] for r in rows], seqs, query, need), need)
    # A broad filter: its asset ids first (the planner starts from its most selective part, a date
    # index), then their seqs by primary key, EXACT_BATCH at a time. Joining the two in one
    # statement led the planner to read all of smart_search.
    sql = Sql()
    clause = where(f, sql)
    ids = [r["id"] for r in await db.fetch(f"SELECT a.id FROM assets a WHERE {clause}", *sql.args)]
    best: list[tuple[uuid.UUID, float]] = []
    for start in range(0, len(ids), EXACT_BATCH):
        rows = await db.fetch("SELECT asset_id, seq FROM smart_search WHERE asset_id = ANY($1::uuid[]) AND model = $2",
                              ids[start:start + EXACT_BATCH], model)
        seqs = np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows))
        best = _top(best + await _score_seqs(index, model, [r["asset_id"] for r in rows], seqs, query, need), need)
    return best


async def _small_set(f: AssetFilter, model: str) -> list[asyncpg.Record]:
    """(id, seq) of an album's or an id list's assets that pass the filter and have an embedding,
    in one statement whose work grows with the set, not the library: each member is looked up by
    key. The LATERAL subquery (OFFSET 0 keeps the planner from flattening it) holds the plan to
    those lookups; as plain joins the planner hashed all of assets or all of smart_search instead
    (read in EXPLAIN ANALYZE of bench/smart_search.py's album). The seq is a scalar subquery, a key
    lookup per member without the cache node a join would put around it (a member is seen once)."""
    sql = Sql()
    clause = where(f, sql, album_rows_given=f.album_id is not None)
    seq = f"(SELECT s.seq FROM smart_search s WHERE s.asset_id = a.id AND s.model = {sql.arg(model)}) AS seq"
    if f.album_id is not None:
        statement = (f"SELECT a.id, {seq} FROM album_assets aa"
                     f" CROSS JOIN LATERAL (SELECT a.id FROM assets a WHERE a.id = aa.asset_id AND {clause} OFFSET 0) a"
                     f" WHERE aa.album_id = {sql.arg(f.album_id)}")
    else:
        statement = f"SELECT a.id, {seq} FROM assets a WHERE {clause}"
    return [r for r in await db.fetch(statement, *sql.args) if r["seq"] is not None]


async def _candidates(f: AssetFilter, model: str, seqs: np.ndarray) -> list[asyncpg.Record]:
    """The candidates (id, seq) the filter lets through."""
    sql = Sql()
    clause = where(f, sql)
    return await db.fetch(
        f"SELECT a.id, s.seq FROM smart_search s JOIN assets a ON a.id = s.asset_id"
        f" WHERE s.seq = ANY({sql.arg(seqs.tolist())}::bigint[]) AND s.model = {sql.arg(model)} AND {clause}",
        *sql.args,
    )


async def _rank_one(f: AssetFilter, model: str, query: np.ndarray, need: int) -> list[tuple[uuid.UUID, float]]:
    if f.album_id is not None or f.ids is not None:
        return await _exact(f, model, query, need)
    index = await vector_index.indexes.sync(f.library_id, model, len(query))
    fetch = max(need * OVERFETCH, MIN_FETCH)
    while True:
        seqs = index.search(query, fetch)
        rows = await _candidates(f, model, seqs) if len(seqs) else []
        if len(rows) >= need or (index.exact and len(seqs) >= index.ntotal):
            # Every entry not fetched is farther than every one fetched, so the survivors' best
            # are the filtered set's best (exactly so for the exact index; IVF approximates). When
            # the whole library was looked at, this is all there is.
            seqs = np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows))
            scored = await _score_seqs(index, model, [r["id"] for r in rows], seqs, query, need)
            return _top(scored, need)
        if fetch >= min(MAX_FETCH, index.ntotal):
            return await _exact(f, model, query, need)
        fetch *= OVERFETCH


async def rank(filters: list[AssetFilter], model: str, vector, offset: int, limit: int, *,
               at_most: int | None = None) -> list[tuple[uuid.UUID, float]]:
    """(asset id, cosine distance) of the assets the filters select that have an embedding under
    `model`, nearest first (ties by id), from `offset`, at most `limit` of them, and none past the
    `at_most` nearest (a ranking of bounded cost however deep the page). Filters come from the
    caller's readable scope (one per library, as app/domain/search.py builds them)."""
    if offset < 0:
        raise Invalid("offset cannot be negative", "offset")
    if limit < 1:
        raise Invalid("limit must be at least 1", "limit")
    if not filters:
        raise Invalid("at least one filter is needed", "filters")
    query = normalise(vector).astype(np.float64)
    need = offset + limit if at_most is None else min(offset + limit, at_most)
    found: dict[uuid.UUID, float] = {}
    for f in filters:
        await check_references(f)
        if need <= offset:  # a page past the bound: nothing to rank, but the filter is still checked
            f.validate()
            continue
        for asset_id, distance in await _rank_one(f, model, query, need):
            found.setdefault(asset_id, distance)
    return _top(list(found.items()), need)[offset:]


# --- what the API layers call ----------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    enabled: bool  # machineLearning.enabled and machineLearning.clip.enabled
    model: str  # machineLearning.clip.modelName
    duplicates: bool  # duplicate detection on as well (it compares these embeddings)


async def config() -> Config:
    learning = (await system_config.current())["machineLearning"]
    enabled = bool(learning["enabled"] and learning["clip"]["enabled"])
    return Config(enabled=enabled, model=learning["clip"]["modelName"],
                  duplicates=enabled and bool(learning["duplicateDetection"]["enabled"]))


def model_available(model_dir: Path, name: str) -> bool:
    """Whether a process would find the CLIP model's files (nothing is loaded)."""
    return clip_models.clip_available(model_dir, name)


_NO_MODEL = "Smart search has no CLIP model {model!r} on this server (see MODEL_DIR)"


async def enabled_config() -> Config:
    found = await config()
    if not found.enabled:
        raise BadRequest("Smart search is not enabled")
    return found


def _found(vector: np.ndarray | None, model: str) -> np.ndarray:
    if vector is None:  # the runtime found no model under that name
        raise BadRequest(_NO_MODEL.format(model=model))
    return vector


async def text_vector(model_dir: Path, model: str, text: str) -> np.ndarray:
    return _found(await clip_runtime.encode_text(model_dir, model, text), model)


async def image_vector(model_dir: Path, model: str, rgb: np.ndarray) -> np.ndarray:
    return _found(await clip_runtime.encode_image(model_dir, model, rgb), model)


async def image_file_vector(model_dir: Path, model: str, path: Path) -> np.ndarray:
    """The embedding of an uploaded image (a search by example): refused when it cannot be decoded."""
    try:
        rgb = await asyncio.to_thread(_load_rgb, path)
    except Exception:  # pyvips' reason names the server's temporary file: not for the client
        raise Invalid("the image cannot be decoded (not a supported image file)", "image") from None
    return await image_vector(model_dir, model, rgb)


async def asset_vector(principal: access.Principal, asset_id: uuid.UUID, model: str) -> np.ndarray:
    """The embedding of an asset the caller may read (Immich's queryAssetId)."""
    await access.load_asset(principal, asset_id, access.READ)
    vector = await embedding_of(asset_id, model)
    if vector is None:
        raise BadRequest(f"Asset {asset_id} has no embedding")
    return vector


async def search_ranked(principal: access.Principal, filters: list[AssetFilter], model: str, vector,
                        offset: int, limit: int, *, at_most: int | None = None) -> list[tuple[asyncpg.Record, float]]:
    """(asset row, cosine distance) as `rank` chooses them, nearest first; the filters come from the
    caller's readable scope."""
    principal.require(access.READ)
    ranked = await rank(filters, model, vector, offset, limit, at_most=at_most)
    rows = {r["id"]: r for r in await db.fetch("SELECT * FROM assets WHERE id = ANY($1::uuid[])",
                                               [asset_id for asset_id, _ in ranked])}
    return [(rows[asset_id], distance) for asset_id, distance in ranked if asset_id in rows]


async def search(principal: access.Principal, filters: list[AssetFilter], model: str, vector,
                 offset: int, limit: int) -> list[asyncpg.Record]:
    """The asset rows `rank` chooses, nearest first."""
    return [row for row, _ in await search_ranked(principal, filters, model, vector, offset, limit)]


# --- the pipeline step: one embedding per asset, from its preview ---------------------------------

ENCODE_JOB = "encode_clip"
ENCODE_TASK = "smart_search"
DUPLICATES_JOB = "detect_duplicates"  # app/domain/duplicates.py compares the new embeddings


async def create_encoding(conn: asyncpg.Connection, asset: asyncpg.Record,
                          skip: tasks.Skip | None = None) -> uuid.UUID | None:
    """In the variants step's transaction, next to face detection: an embedding for assets a
    timeline shows (not a live photo's video half). Its job is enqueued after that commits; with a
    skip known (encoding_skip), its task is recorded as skipped instead and there is no job."""
    if asset["visibility"] == "hidden":
        return None
    return await tasks.create_unless_skipped(conn, asset, ENCODE_TASK, skip)


async def _model_or_skip(settings) -> tuple[Any, Any, tasks.Skip | None]:
    """The smart search config and the CLIP model an encoding would use now, or why it would not run."""
    found = await config()
    if not found.enabled:
        return found, None, tasks.Skip("smart search is off in the system config", "skipped_config_off")
    model = await clip_runtime.clip_model(settings.model_dir, found.model)
    if model is None:
        return found, None, tasks.Skip(_missing_reason(settings.model_dir, found.model), "skipped_no_model")
    return found, model, None


async def encoding_skip(settings) -> tasks.Skip | None:
    """Why an encoding would not run now; None when it would."""
    return (await _model_or_skip(settings))[2]


def _load_rgb(path) -> np.ndarray:
    import pyvips

    image = pyvips.Image.new_from_file(str(path), access="sequential")
    if image.hasalpha():
        image = image.flatten()
    if image.bands < 3:
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands))[:, :, :3]


def _missing_reason(model_dir: Path, name: str) -> str:
    return clip_models.missing_reason(model_dir, name) or f"the CLIP model {name!r} could not be loaded"


async def enqueue_duplicates(queue, owner_id: uuid.UUID) -> None:
    if queue is None:
        return
    try:  # one pending run per owner; the run looks at every embedding not checked yet
        await queue.enqueue_plain(DUPLICATES_JOB, str(owner_id), job_id=f"{DUPLICATES_JOB}:{owner_id}")
    except Exception:
        log.warning("could not enqueue duplicate detection for %s", owner_id, exc_info=True)


async def run_encoding(settings, blobs, task_id: uuid.UUID, queue, attempt: int = 1) -> str:
    """The worker's encode_clip: the CLIP embedding of the asset's preview (a video's poster)."""
    row = await db.fetchrow("SELECT a.* FROM tasks t JOIN assets a ON a.id = t.asset_id WHERE t.id = $1", task_id)
    if row is None:
        return "asset no longer exists"
    if await tasks.start(task_id, attempt) is None:
        return "not run: the task has ended, or a live worker runs it"
    found, model, skip = await _model_or_skip(settings)
    if skip is not None:
        await tasks.finish(task_id, ok=True, result=skip.result, outcome=skip.outcome)
        return "skipped"
    preview = await db.fetchval(
        "SELECT storage_key FROM asset_files WHERE asset_id = $1 AND kind = 'preview'", row["id"])
    if preview is None:
        await tasks.finish(task_id, ok=True, result="no preview to look at", outcome=None)
        return "skipped"
    rgb = await asyncio.to_thread(_load_rgb, blobs.path(preview))
    vector = await asyncio.to_thread(model.encode_image, rgb)
    async with db.transaction() as conn:
        asset = await conn.fetchrow("SELECT id, library_id, owner_id FROM assets WHERE id = $1 FOR UPDATE", row["id"])
        if asset is None:
            await tasks.finish(task_id, ok=True, result="asset no longer exists")
            return "asset no longer exists"
        # Filed under the configured name: what a search under the same config looks up.
        await store(conn, asset["id"], asset["library_id"], found.model, vector)
        await tasks.finish(task_id, ok=True, result=f"{len(vector)}-d embedding ({found.model})", outcome="ran")
    if found.duplicates:
        await enqueue_duplicates(queue, asset["owner_id"])
    return "ok"
