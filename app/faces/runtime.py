"""What a worker process keeps in memory for faces: the loaded models and per-library indexes.

Both are caches of what is on disk or in Postgres, so a worker can start, stop or
be added at any time; a fresh one rebuilds what it needs on first use.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from pathlib import Path

import numpy as np

from app.db import engine as db
from app.faces.index import FaceIndex

log = logging.getLogger(__name__)

_models_lock = asyncio.Lock()
_models: dict[Path, object] = {}
_MISSING = object()


async def face_models(model_dir: Path, min_score: float):
    """The process's models, loaded once; None (with the reason logged once) when absent.
    `min_score` is the detector's threshold from now on (the config may have changed it)."""
    from app.faces.models import load_face_models, missing_models_reason

    async with _models_lock:
        found = _models.get(model_dir)
        if found is None:
            loaded = await asyncio.to_thread(load_face_models, model_dir, min_score=min_score, threads=1)
            if loaded is None:
                log.warning("face recognition is off: %s", missing_models_reason(model_dir))
            found = _models[model_dir] = loaded if loaded is not None else _MISSING
    if found is _MISSING:
        return None
    found.min_score = float(min_score)
    return found


# Rebuild a library's index once this share of its entries points at deleted faces.
_DEAD_SHARE = 0.2
_LOAD_BATCH = 20_000
_MAX_LIBRARIES = 8


class LibraryIndexes:
    """An LRU of FAISS indexes, one per (library, embedding model), synced from Postgres."""

    def __init__(self, max_libraries: int = _MAX_LIBRARIES):
        self._indexes: OrderedDict[tuple[uuid.UUID, str], FaceIndex] = OrderedDict()
        self._max = max_libraries

    async def sync(self, library_id: uuid.UUID, model: str, dim: int) -> FaceIndex:
        key = (library_id, model)
        index = self._indexes.get(key)
        live = await db.fetchval(
            "SELECT count(*) FROM faces WHERE library_id = $1 AND embedding_model = $2 AND embedding IS NOT NULL",
            library_id, model,
        )
        if (index is None or index.dim != dim or index.needs_rebuild
                or index.ntotal - live > _DEAD_SHARE * max(index.ntotal, 1)):
            index = FaceIndex(dim)
        self._indexes[key] = index
        self._indexes.move_to_end(key)
        while len(self._indexes) > self._max:
            self._indexes.popitem(last=False)
        while True:
            rows = await db.fetch(
                "SELECT seq, embedding FROM faces WHERE library_id = $1 AND embedding_model = $2"
                " AND embedding IS NOT NULL AND seq > $3 ORDER BY seq LIMIT $4",
                library_id, model, index.watermark, _LOAD_BATCH,
            )
            if not rows:
                break
            seqs = np.fromiter((r["seq"] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r["embedding"] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            index.add(seqs, vectors)
        if index.ntotal < live:
            # A row committed late, below the watermark: start over rather than miss it.
            self._indexes.pop(key, None)
            return await self.sync(library_id, model, dim)
        return index

    def forget(self, library_id: uuid.UUID) -> None:
        for key in [k for k in self._indexes if k[0] == library_id]:
            del self._indexes[key]


indexes = LibraryIndexes()


def models_available(model_dir: Path) -> bool:
    """Whether a worker would find face models (a file check; nothing is loaded)."""
    from app.faces import models

    buffalo = Path(model_dir) / models.BUFFALO_L
    if all((buffalo / f).is_file() for f in models.BUFFALO_L_FILES):
        return True
    return models._find_test_pack(Path(model_dir)) is not None
