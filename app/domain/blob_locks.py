"""The per-asset lock on an asset's files: held by whoever creates, moves or removes them.

An advisory lock, so it ends with its transaction or session, or when the process holding it dies.
"""

from __future__ import annotations

import uuid

import asyncpg

# Advisory locks of the two-int4 form: a key space apart from the one-bigint locks used
# elsewhere (migrations, clustering). The second int is 32 bits of the asset id; two ids
# sharing them only make an upload wait for, or the reconciler skip, the other one.
_BLOB_LOCK_CLASS = 0x626C6F62  # "blob"


def _blob_lock_key(asset_id: uuid.UUID) -> int:
    return int.from_bytes(asset_id.bytes[:4], "big", signed=True)


def blob_lock(asset_id: uuid.UUID) -> tuple[int, int]:
    """The lock's two keys, for the session-level form (pg_advisory_lock($1, $2))."""
    return _BLOB_LOCK_CLASS, _blob_lock_key(asset_id)


async def lock_blobs(conn: asyncpg.Connection, asset_id: uuid.UUID, *, wait: bool) -> bool:
    """The lock on an asset's files, until the transaction ends."""
    if wait:
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _BLOB_LOCK_CLASS, _blob_lock_key(asset_id))
        return True
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", _BLOB_LOCK_CLASS,
                               _blob_lock_key(asset_id))
