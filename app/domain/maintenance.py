"""Housekeeping that runs in jobs, not requests."""

from __future__ import annotations

from datetime import timedelta

from app.domain import assets
from app.storage.blobstore import BlobStore


async def purge_trash_older_than(store: BlobStore, age: timedelta) -> int:
    return await assets.purge_trashed_before(store, age)


async def prune_list_walks() -> int:
    """Expired asset-list walks and the key history only they read (see assets.list_assets)."""
    return await assets.prune_walks()
