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


class FaceIndex:
    """Exact inner-product search (IndexFlatIP) keyed by face seq."""

    def __init__(self, dim: int):
        faiss = _faiss()
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.watermark = 0  # highest seq added
        self._seqs: set[int] = set()

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

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
