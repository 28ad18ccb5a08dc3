"""Per-library indexes over the smart search (CLIP) embeddings: a numpy matrix searched exactly
while small, a FAISS IVF index above EXACT_LIMIT.

Each vector is keyed by its `smart_search.seq`, which only grows (a re-embedded asset gets a new
row and seq), so an index catches up by adding the rows above its watermark. Rows deleted or
replaced since simply stop resolving when the caller looks the seqs up in Postgres; once enough
of an index is dead it is rebuilt. Postgres is the source of truth: a fresh process (or one that
dropped its cache) builds what it needs on first use.

Embeddings are L2-normalised, so inner product is cosine similarity and cosine distance is
`1 - similarity`.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

import numpy as np

from app.db import engine as db

# Up to this many embeddings a library is searched exactly (IndexFlatIP). Above it an inverted-file
# index visits only the lists nearest the query; the caller over-fetches and re-checks, and falls
# back to an exact ranking of the filtered set when too few candidates survive its filters.
# Higher than the faces' limit: a search is one query per user action, and bench/smart_search.py
# shows exact search of 200,000 512-d vectors well inside a page's budget, with full recall (an IVF
# over unclustered vectors loses most of the true top 100).
EXACT_LIMIT = 250_000
# Lists probed per query. Smart search wants recall more than faces do (a page of 100 from a
# library of photos, not one nearest face), so it probes more lists.
NPROBE = 32
# Rebuild (and retrain) once the index holds this many times what it was trained on.
RETRAIN_GROWTH = 4
# Rebuild once this share of the entries points at rows that are gone.
DEAD_SHARE = 0.2
LOAD_BATCH = 20_000
MAX_LIBRARIES = 8
# Counting a library's live rows is a scan of its index entries: once in a while, not per query.
COUNT_EVERY_S = 10.0


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """Inner-product search keyed by seq: exact while small, IVF once large.

    While exact the vectors sit in one numpy matrix in seq order (seqs only grow, so the order is
    the order of adding): a search is one matrix-vector product (OpenBLAS reads the rows at memory
    speed; FAISS's flat search of one query took twice as long in bench/smart_search.py), and the
    rows of given seqs are found by binary search, so a narrow filter's rows are scored from memory
    instead of read again from Postgres."""

    def __init__(self, dim: int, exact_limit: int = EXACT_LIMIT):
        self.dim = dim
        self.exact_limit = exact_limit
        self._index = None  # the IVF index, once there is one
        self._matrix = np.empty((0, dim), np.float32)  # exact: rows [0, _count) are in use
        self._seqs = np.empty(0, np.int64)
        self._count = 0
        self.watermark = 0  # highest seq added
        self.trained_on = 0  # 0 while exact
        self.counted_at = float("-inf")  # when the live rows were last counted (dead share, late commits)

    @property
    def ntotal(self) -> int:
        return self._count if self._index is None else int(self._index.ntotal)

    @property
    def exact(self) -> bool:
        return self.trained_on == 0

    @property
    def needs_rebuild(self) -> bool:
        return not self.exact and self.ntotal > RETRAIN_GROWTH * self.trained_on

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Rows above the watermark, in seq order (what `LibraryIndexes.sync` reads)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        seqs = np.ascontiguousarray(seqs, dtype=np.int64)
        keep = seqs > self.watermark
        seqs, vectors = seqs[keep], vectors[keep]
        if len(seqs) == 0:
            return
        self.watermark = int(seqs.max())
        if not self.exact:
            # k-means assignment needs finite rows; a zero row is as far from every query as any
            self._index.add_with_ids(np.nan_to_num(vectors, nan=0.0), seqs)
            return
        end = self._count + len(seqs)
        if end > len(self._matrix):  # grow by half again, so filling row by row stays linear
            capacity = max(end, len(self._matrix) * 3 // 2, 1024)
            matrix = np.empty((capacity, self.dim), np.float32)
            matrix[:self._count] = self._matrix[:self._count]
            grown = np.empty(capacity, np.int64)
            grown[:self._count] = self._seqs[:self._count]
            self._matrix, self._seqs = matrix, grown
        self._matrix[self._count:end] = vectors
        self._seqs[self._count:end] = seqs
        self._count = end
        if self._count > self.exact_limit:
            self._to_ivf()

    def _to_ivf(self) -> None:
        faiss = _faiss()
        n = self._count
        vectors, seqs = np.nan_to_num(self._matrix[:n], nan=0.0), self._seqs[:n]
        lists = 1 << int(np.floor(np.log2(4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, lists, faiss.METRIC_INNER_PRODUCT)
        # k-means on a sample: enough points per list at a fraction of the cost of all of them.
        sample = vectors if n <= 40 * lists else vectors[np.random.default_rng(0).choice(n, 40 * lists, replace=False)]
        ivf.train(np.ascontiguousarray(sample))
        ivf.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(seqs))
        ivf.nprobe = min(NPROBE, lists)
        self._quantizer = quantizer  # the IVF index refers to it; keep it alive
        self._index = ivf
        self._matrix, self._seqs, self._count = np.empty((0, self.dim), np.float32), np.empty(0, np.int64), 0
        self.trained_on = n

    def search(self, vector: np.ndarray, k: int) -> np.ndarray:
        """The seqs of up to k nearest entries, nearest first (no -1 slots)."""
        if self.ntotal == 0 or k <= 0:
            return np.empty(0, np.int64)
        k = min(k, self.ntotal)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(self.dim)
        if self.exact:
            scores = self._matrix[:self._count] @ query
            top = np.argpartition(-scores, k - 1)[:k] if k < self._count else np.arange(self._count)
            return self._seqs[top[np.argsort(-scores[top], kind="stable")]]
        _, seqs = self._index.search(query.reshape(1, self.dim), k)
        seqs = seqs[0]
        return seqs[seqs >= 0]

    def vectors_of(self, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a mask of the seqs held here, their vectors in that order). An IVF index holds its
        vectors in lists, not by seq: it finds none, and the caller reads them from Postgres."""
        seqs = np.asarray(seqs, dtype=np.int64)
        if not self.exact or self._count == 0 or len(seqs) == 0:
            return np.zeros(len(seqs), bool), np.empty((0, self.dim), np.float32)
        held = self._seqs[:self._count]
        at = np.minimum(np.searchsorted(held, seqs), self._count - 1)
        found = held[at] == seqs
        return found, self._matrix[at[found]]


class LibraryIndexes:
    """An LRU of indexes, one per (library, model), brought up to date from `smart_search`."""

    def __init__(self, max_libraries: int = MAX_LIBRARIES, exact_limit: int = EXACT_LIMIT):
        self._indexes: OrderedDict[tuple[uuid.UUID, str], VectorIndex] = OrderedDict()
        self._max = max_libraries
        self.exact_limit = exact_limit

    async def sync(self, library_id: uuid.UUID, model: str, dim: int) -> VectorIndex:
        key = (library_id, model)
        index = self._indexes.get(key)
        now = time.monotonic()
        if index is not None and index.dim == dim and not index.needs_rebuild and now - index.counted_at < COUNT_EVERY_S:
            # Recently counted: only the rows above the watermark are new. A query never returns a
            # removed row (candidates are read back from Postgres), so dead entries only cost room.
            self._indexes.move_to_end(key)
            return await self._fill(index, library_id, model, dim)
        live = await db.fetchval("SELECT count(*) FROM smart_search WHERE library_id = $1 AND model = $2",
                                 library_id, model)
        if (index is None or index.dim != dim or index.needs_rebuild
                or index.ntotal - live > DEAD_SHARE * max(index.ntotal, 1)):
            index = VectorIndex(dim, self.exact_limit)
        self._indexes[key] = index
        self._indexes.move_to_end(key)
        while len(self._indexes) > self._max:
            self._indexes.popitem(last=False)
        await self._fill(index, library_id, model, dim)
        if index.ntotal < live:
            # A row committed late below the watermark, or moved in from another library: start over.
            index = VectorIndex(dim, self.exact_limit)
            self._indexes[key] = index
            await self._fill(index, library_id, model, dim)
        index.counted_at = now
        return index

    async def _fill(self, index: VectorIndex, library_id: uuid.UUID, model: str, dim: int) -> VectorIndex:
        while True:
            rows = await db.fetch(
                "SELECT seq, embedding FROM smart_search WHERE library_id = $1 AND model = $2 AND seq > $3"
                " ORDER BY seq LIMIT $4",
                library_id, model, index.watermark, LOAD_BATCH,
            )
            if not rows:
                return index
            blobs = [r["embedding"] for r in rows]
            if all(len(blob) == 4 * dim for blob in blobs):
                vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(rows), dim)
            else:  # an embedding of another size matches nothing: NaN rows are never among the nearest
                vectors = np.full((len(rows), dim), np.nan, np.float32)
                for i, blob in enumerate(blobs):
                    if len(blob) == 4 * dim:
                        vectors[i] = np.frombuffer(blob, dtype="<f4")
            index.add(np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows)), vectors)

    def forget(self, library_id: uuid.UUID | None = None) -> None:
        """Drop cached indexes (all of them when no library is named): the next query rebuilds."""
        for key in [k for k in self._indexes if library_id is None or k[0] == library_id]:
            del self._indexes[key]

    def cached(self, library_id: uuid.UUID, model: str) -> VectorIndex | None:
        return self._indexes.get((library_id, model))


indexes = LibraryIndexes()
