"""Storage caps known before an upload's body is read, so a stream can be stopped once over them.

ingest.py still checks the caps on the finished file (the authoritative check, also covering
concurrent uploads that each fit alone); this only ends hopeless uploads early, with the same
error and wording that check would give.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.db import engine as db
from app.domain import access
from app.domain.errors import InsufficientStorage


@dataclass(frozen=True)
class Allowance:
    """How many bytes an upload's file may have under each cap; None where no cap applies."""

    user_left: int | None = None
    library_left: int | None = None

    def check(self, size: int) -> None:
        # The order and texts of ingest's final check, so either check answers alike.
        if self.user_left is not None and size > self.user_left:
            raise InsufficientStorage("User storage limit exceeded")
        if self.library_left is not None and size > self.library_left:
            raise InsufficientStorage("Library storage limit exceeded")


UNLIMITED = Allowance()


async def upload_allowance(principal: access.Principal, library_id: uuid.UUID | None) -> Allowance:
    """The bytes a file uploaded by `principal` into `library_id` may have.

    Without a library (the native form names it in a field that may come after the file), the bound
    is the most any of the caller's live libraries could take, so nothing the final check would
    accept is refused here.
    """
    # Caps are the library owner's: a member uploading into a shared library spends the owner's
    # storage (ingest checks the same). Unnamed, the candidates are the caller's own libraries.
    owner = principal.user_id
    if library_id is not None:
        if await access.library_role(principal, library_id) is None:
            return UNLIMITED  # ingest answers 404 for it; no caps of someone else's library are read
        candidates = [library_id]
        owner = await db.fetchval("SELECT owner_id FROM libraries WHERE id = $1", library_id)
    else:
        candidates = await access.live_library_ids(principal)
    # Most accounts have no cap at all: then the usage sums (a scan of the owner's assets) are
    # not needed, and an upload costs one indexed lookup here.
    capped = await db.fetchval(
        """
        SELECT (SELECT storage_limit_bytes IS NOT NULL FROM users WHERE id = $2)
            OR EXISTS (SELECT 1 FROM libraries WHERE id = ANY($1::uuid[]) AND owner_id = $2
                       AND storage_limit_bytes IS NOT NULL)
        """,
        candidates, owner,
    )
    if not capped:
        return UNLIMITED
    rows = await db.fetch(
        """
        SELECT l.id, l.storage_limit_bytes AS library_limit,
               (SELECT coalesce(sum(file_size_bytes), 0)::bigint FROM assets WHERE library_id = l.id) AS library_used
        FROM libraries l WHERE l.id = ANY($1::uuid[]) AND l.owner_id = $2
        """,
        candidates, owner,
    )
    user = await db.fetchrow(
        """
        SELECT u.storage_limit_bytes AS user_limit,
               (SELECT coalesce(sum(file_size_bytes), 0)::bigint FROM assets WHERE owner_id = u.id) AS user_used
        FROM users u WHERE u.id = $1
        """,
        owner,
    )
    library_left: int | None = None
    # The most generous candidate library; an uncapped one means no library cap at all. No rows:
    # no library yet (ingest creates the default one) or one this caller cannot use (ingest
    # answers 404 for it), so no library cap to apply here.
    for row in rows:
        if row["library_limit"] is None:
            library_left = None
            break
        left = max(0, row["library_limit"] - row["library_used"])
        library_left = left if library_left is None else max(library_left, left)
    user_left = None
    if user is not None and user["user_limit"] is not None:
        user_left = max(0, user["user_limit"] - user["user_used"])
    return Allowance(user_left, library_left)
