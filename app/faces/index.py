"""Nearest-neighbour search over a library's face embeddings with FAISS.

Embeddings are L2-normalised, so inner product is cosine similarity and
cosine distance is `1 - similarity`. Each vector is keyed by the face row's
`seq` (a bigserial that only grows), so a worker brings its copy up to date by
adding the rows above its watermark; rows deleted since simply stop resolving
when the caller looks the keys up in Postgres, and the copy is rebuilt once
enough of it is dead.
"""

from __future__ import annotations

import numpy as np


def _faiss():
    import faiss

    return faiss


# Up to this many faces a library is searched exactly; above it, an inverted-file index
# (IVF) visits only the clusters nearest each query: on 100,000 faces about 12x less
# work than exact search, with the same person chosen (bench/faces.py measures both).
EXACT_LIMIT = 50_000
# Lists probed per query; with lists sized ~4*sqrt(n), 16 keeps the person's faces in view.
NPROBE = 16
# Rebuild (and retrain) once the index holds this many times what it was trained on.
RETRAIN_GROWTH = 4


class FaceIndex:
    """Inner-product search keyed by face seq: exact while small, IVF once large."""

    def __init__(self, dim: int, exact_limit: int = EXACT_LIMIT):
        faiss = _faiss()
        self.dim = dim
        self.exact_limit = exact_limit
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.watermark = 0  # highest seq added
        self.trained_on = 0  # 0 while exact
        self._seqs: set[int] = set()

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def exact(self) -> bool:
        return self.trained_on == 0

    @property
    def needs_rebuild(self) -> bool:
        """Grown well past what its lists were trained on: build afresh from Postgres."""
        return not self.exact and self.ntotal > RETRAIN_GROWTH * self.trained_on

    def __contains__(self, seq: int) -> bool:
        return int(seq) in self._seqs

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        seqs = np.ascontiguousarray(seqs, dtype=np.int64)
        fresh = np.fromiter((int(s) not in self._seqs for s in seqs), dtype=bool, count=len(seqs))
        seqs, vectors = seqs[fresh], vectors[fresh]
        if len(seqs) == 0:
            return
        self._seqs.update(int(s) for s in seqs)
        self._index.add_with_ids(vectors, seqs)
        self.watermark = max(self.watermark, int(seqs.max()))
        if self.exact and self.ntotal > self.exact_limit:
            self._to_ivf()

    def _to_ivf(self) -> None:
        faiss = _faiss()
        n = self.ntotal
        vectors = self._index.index.reconstruct_n(0, n)
        seqs = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = 1 << int(np.floor(np.log2(4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, lists, faiss.METRIC_INNER_PRODUCT)
        # k-means on a sample: enough points per list, a fraction of the cost of all of them.
        sample = vectors if n <= 40 * lists else vectors[np.random.default_rng(0).choice(n, 40 * lists, replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, seqs)
        ivf.nprobe = min(NPROBE, lists)
        self._quantizer = quantizer  # the IVF index refers to it; keep it alive
        self._index = ivf
        self.trained_on = n

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine distances, seqs), both (n, k), nearest first; missing slots have seq -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self.ntotal == 0 or len(vectors) == 0:
            return np.full((len(vectors), k), np.inf, np.float32), np.full((len(vectors), k), -1, np.int64)
        sims, seqs = self._index.search(vectors, min(k, self.ntotal))
        if sims.shape[1] < k:
            pad = k - sims.shape[1]
            sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
            seqs = np.pad(seqs, ((0, 0), (0, pad)), constant_values=-1)
        # IVF marks slots it could not fill with -1 and a huge negative similarity.
        sims = np.where(seqs < 0, -np.inf, sims)
        return (1.0 - sims).astype(np.float32), seqs


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest_person(
    distances: np.ndarray, seqs: np.ndarray, person_of: dict[int, object], max_distance: float,
    exclude: set | frozenset = frozenset(),
) -> tuple[object | None, float | None]:
    """The person of the nearest face (within max_distance) that has one, skipping `exclude`.

    The same rule whichever search produced the neighbours, so FAISS, brute force and
    SQL answers can be compared person for person.
    """
    for distance, seq in zip(distances, seqs):
        if seq < 0 or distance > max_distance:
            break
        person = person_of.get(int(seq))
        if person is not None and person not in exclude:
            return person, float(distance)
    return None, None


def cluster_metrics(vectors: np.ndarray, sample: int = 512, seed: int = 0) -> tuple[int, float, float]:
    """(face_count, pairwise mean, pairwise p90) of cosine distances between members.

    Large people are sampled: the pairwise matrix grows with the square of the count.
    """
    count = len(vectors)
    if count < 2:
        return count, 0.0, 0.0
    if count > sample:
        vectors = vectors[np.random.default_rng(seed).choice(count, sample, replace=False)]
    sims = vectors @ vectors.T
    upper = 1.0 - sims[np.triu_indices(len(vectors), k=1)]
    return count, float(upper.mean()), float(np.percentile(upper, 90))
