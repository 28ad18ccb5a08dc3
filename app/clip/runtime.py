"""A process's CLIP model, loaded once per (model dir, name), and a small cache of query embeddings.

Loading (two ORT sessions and a tokenizer) costs far more than one encoding, so the model
is kept for the life of the process; a missing one is remembered too (its reason logged
once) until `forget` is called, e.g. after `models download` or a config change.
Encoding runs in a thread so the event loop keeps serving requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np

from app.clip.models import ClipModel, ClipModelMissing, load_clip_model

log = logging.getLogger(__name__)

_lock = asyncio.Lock()
_models: dict[tuple[Path, str], ClipModel | None] = {}

# Immich keeps the last 100 query embeddings (keyed by model and text) for paging and repeats.
_TEXT_CACHE_SIZE = 100
_text_cache: OrderedDict[tuple[Path, str, str], np.ndarray] = OrderedDict()


async def clip_model(model_dir: Path, name: str) -> ClipModel | None:
    """The loaded model, or None (the reason logged once per process) when it cannot be used."""
    key = (Path(model_dir), name)
    if key in _models:  # fast path without the lock once loaded
        return _models[key]
    async with _lock:
        if key not in _models:
            try:
                _models[key] = await asyncio.to_thread(load_clip_model, key[0], name, threads=1)
            except ClipModelMissing as exc:
                log.warning("smart search is off: %s", exc.reason)
                _models[key] = None
    return _models[key]


def forget(model_dir: Path | None = None) -> None:
    """Drop loaded (and known-missing) models, so the next call looks at the files again."""
    for key in [k for k in _models if model_dir is None or k[0] == Path(model_dir)]:
        del _models[key]
    for key in [k for k in _text_cache if model_dir is None or k[0] == Path(model_dir)]:
        del _text_cache[key]


async def encode_text(model_dir: Path, name: str, text: str) -> np.ndarray | None:
    """The query's embedding (read-only array), or None without a model."""
    key = (Path(model_dir), name, text)
    hit = _text_cache.get(key)
    if hit is not None:
        _text_cache.move_to_end(key)
        return hit
    model = await clip_model(model_dir, name)
    if model is None:
        return None
    vector = await asyncio.to_thread(model.encode_text, text)
    vector.setflags(write=False)  # shared by every caller that hits the cache
    _text_cache[key] = vector
    while len(_text_cache) > _TEXT_CACHE_SIZE:
        _text_cache.popitem(last=False)
    return vector


async def encode_image(model_dir: Path, name: str, rgb: np.ndarray) -> np.ndarray | None:
    """The image's embedding, or None without a model."""
    model = await clip_model(model_dir, name)
    if model is None:
        return None
    return await asyncio.to_thread(model.encode_image, rgb)
