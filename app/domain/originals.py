"""Where an asset's original file is: in the store under its storage key (uploads), or in place in
an external library's folders (assets.original_path). Every reader of an original asks here.

An external asset's storage key is `external/<asset id>`, a key that never names a stored file: code
that deletes or moves stored originals by key finds nothing there, so the folders' files are never
touched by it, even where a caller forgets to ask."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.storage.blobstore import BlobStore

EXTERNAL_KEY_PREFIX = "external/"


def external_key(asset_id: uuid.UUID) -> str:
    return f"{EXTERNAL_KEY_PREFIX}{asset_id}"


def is_external(row: Mapping[str, Any]) -> bool:
    """An asset (row with original_path) of an external library: its original is read-only."""
    return row.get("original_path") is not None


def original_file(store: BlobStore, row: Mapping[str, Any]) -> Path:
    """The original's path on disk: the file in place for an external asset, else the stored one."""
    path = row.get("original_path")
    return Path(path) if path is not None else store.path(row["storage_key"])
