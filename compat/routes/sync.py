"""The Immich sync stream (`POST /api/sync/stream`) and its acknowledgements.

The 3.x mobile app builds its timeline, albums and people only from this stream.
Lines come from the domain's change reader (app.domain.sync); this module decides the
Immich order, payloads and ack strings, and compat.sync_shared adds what is shared with
the caller (partnerships, partners' photos, albums shared with it):

- deletes first, children before parents (faces, people, album links, album users,
  albums, memory links, memories, assets, partners' assets and stacks, partnerships), then
  upserts, parents before children (users, partnerships, stacks, assets, partners' stacks and
  assets, album assets, albums, album users, album links, exif, memories, memory links, people,
  faces, user metadata),
  so the app's local foreign keys always hold;
- an ack is `<EntityType>|<feed cursor>` for rows read from the change log, and
  `<EntityType>|v<digest>` for the few rows compared whole (the user, all users,
  preferences); a stream that sent shared rows ends with one `SyncAckV1` line whose ack
  records what the client now holds (compat.sync_shared);
- a fresh client (no checkpoint for a kind's upserts) gets no deletes for that kind:
  it never had those rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, AsyncIterator, get_args

import msgspec
from litestar import Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Stream

from app.api import route_access
from app.domain import access, events, sync, users
from app.domain.errors import BadRequest, Forbidden
from compat import dtos, mapping, sync_encode, sync_mapping, sync_shared
from compat.auth import ImmichAuth

log = logging.getLogger(__name__)

ENTITY_TYPES = frozenset(get_args(dtos.SyncEntityType))
DEPRECATED = {"AssetsV1": "AssetsV2", "AlbumAssetsV1": "AlbumAssetsV2", "PartnerAssetsV1": "PartnerAssetsV2",
              "AssetFacesV1": "AssetFacesV2"}
RESET_AFTER_S = 30 * 86400  # Immich resets a client that has not completed a sync for 30 days
FLUSH_BYTES = 256 * 1024
ENCODE_ROWS = 250  # own upserts encoded at a time

# (request type, delete entity type, upsert entity type, change-log kind), deletes children first.
DELETES = [
    ("AssetFacesV2", "AssetFaceDeleteV1", "AssetFaceV2", "face"),
    ("PeopleV1", "PersonDeleteV1", "PersonV1", "person"),
    ("AlbumToAssetsV1", "AlbumToAssetDeleteV1", "AlbumToAssetV1", "album_asset"),
    ("AlbumUsersV1", "AlbumUserDeleteV1", "AlbumUserV1", "album"),
    ("AlbumsV2", "AlbumDeleteV1", "AlbumV2", "album"),
    ("AlbumsV1", "AlbumDeleteV1", "AlbumV1", "album"),
    ("AssetEditsV1", "AssetEditDeleteV1", "AssetEditV1", "asset_edit"),
    ("AssetsV2", "AssetDeleteV1", "AssetV2", "asset"),
    ("StacksV1", "StackDeleteV1", "StackV1", "stack"),
    # memories: their links before them, both before the assets they name
    ("MemoryToAssetsV1", "MemoryToAssetDeleteV1", "MemoryToAssetV1", "memory_asset"),
    ("MemoriesV1", "MemoryDeleteV1", "MemoryV1", "memory"),
    # asset metadata (app.domain.asset_metadata)
    ("AssetMetadataV1", "AssetMetadataDeleteV1", "AssetMetadataV1", "asset_metadata"),
]
# (request type, upsert entity type, change-log kind or None for rows compared whole), parents first.
UPSERTS = [
    ("AuthUsersV1", "AuthUserV1", None),
    ("UsersV1", "UserV1", None),
    ("StacksV1", "StackV1", "stack"),
    ("AssetsV2", "AssetV2", "asset"),
    ("AssetEditsV1", "AssetEditV1", "asset_edit"),
    ("AlbumsV2", "AlbumV2", "album"),
    ("AlbumsV1", "AlbumV1", "album"),
    ("AlbumUsersV1", "AlbumUserV1", "album"),
    ("AlbumToAssetsV1", "AlbumToAssetV1", "album_asset"),
    ("AssetExifsV1", "AssetExifV1", "exif"),
    ("PeopleV1", "PersonV1", "person"),
    ("AssetFacesV2", "AssetFaceV2", "face"),
    ("UserMetadataV1", "UserMetadataV1", None),
    # memories: after every kind of asset their links may name (Immich's order: after the exifs)
    ("MemoriesV1", "MemoryV1", "memory"),
    ("MemoryToAssetsV1", "MemoryToAssetV1", "memory_asset"),
    # asset metadata (app.domain.asset_metadata)
    ("AssetMetadataV1", "AssetMetadataV1", "asset_metadata"),
]

_encoder = msgspec.json.Encoder()


def _line(entity_type: str, data: Any, ack: str) -> bytes:
    # Type and ack are plain ASCII (enum names, hex cursors, digests): only `data` needs encoding.
    return b"".join((b'{"type":"', entity_type.encode(), b'","data":', _encoder.encode(data), b',"ack":"',
                     ack.encode(), b'"}\n'))


def _cursor_of(ack: str | None) -> tuple[int, int] | None:
    """The feed cursor inside one of our acks, or None for anything else (treated as no checkpoint)."""
    if not ack:
        return None
    parts = ack.split("|")
    if len(parts) < 2:
        return None
    try:
        return events.decode_cursor(parts[1])
    except Exception:
        return None


def _ack(entity_type: str, cursor: tuple[int, int]) -> str:
    return f"{entity_type}|{events.encode_cursor(*cursor)}"


def _digest(*parts: Any) -> str:
    return "v" + hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


def _session(auth: ImmichAuth) -> uuid.UUID:
    if auth.session_id is None:
        raise Forbidden("Sync endpoints cannot be used with API keys")
    return auth.session_id


async def _sessions_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """A guard, so an API key is refused before its request body is read (and found wanting)."""
    _session(route_access.caller(connection))


def _delete_data(entity_type: str, change: sync.Change) -> Any:
    entity = str(change.entity_id)
    if entity_type == "AssetFaceDeleteV1":
        return {"assetFaceId": entity}
    if entity_type == "PersonDeleteV1":
        return {"personId": entity}
    if entity_type == "AlbumToAssetDeleteV1":
        payload = sync.payload_of(change)
        return {"albumId": payload["album_id"], "assetId": payload["asset_id"]}  # bare UUIDs
    if entity_type == "AlbumUserDeleteV1":
        return {"albumId": entity, "userId": str(change.owner_id)}
    if entity_type == "AlbumDeleteV1":
        return {"albumId": entity}
    if entity_type == "AssetDeleteV1":
        return {"assetId": entity}
    if entity_type in _MEMORY_DELETES:
        return _MEMORY_DELETES[entity_type](change)
    if entity_type == "AssetMetadataDeleteV1":
        payload = sync.payload_of(change)
        return {"assetId": payload["asset_id"], "key": payload["key"]}
    if entity_type == "AssetEditDeleteV1":
        return {"editId": entity}
    return {"stackId": entity}


# --- memories ---
_MEMORY_DELETES = {
    "MemoryDeleteV1": lambda change: {"memoryId": str(change.entity_id)},
    # the link's events carry both ids (bare UUIDs): its row is gone
    "MemoryToAssetDeleteV1": lambda change: {"memoryId": sync.payload_of(change)["memory_id"],
                                             "assetId": sync.payload_of(change)["asset_id"]},
}
_MEMORY_UPSERTS = {"MemoryV1": sync_mapping.memory_v1, "MemoryToAssetV1": sync_mapping.memory_asset_v1}
# --- end memories ---


def _upsert_data(entity_type: str, row) -> Any:
    if entity_type == "AssetV2":
        return sync_mapping.asset_v2(row)
    if entity_type == "AlbumV2":
        return sync_mapping.album_v2(row)
    if entity_type == "AlbumV1":
        return _album_v1(row)
    if entity_type == "AlbumUserV1":
        return dtos.SyncAlbumUserV1(albumId=str(row["id"]), userId=str(row["owner_id"]), role="owner")
    if entity_type == "AlbumToAssetV1":
        return dtos.SyncAlbumToAssetV1(albumId=str(row["album_id"]), assetId=str(row["asset_id"]))
    if entity_type == "AssetExifV1":
        return sync_mapping.asset_exif_v1_flat(row)
    if entity_type == "StackV1":
        return sync_mapping.stack_v1(row)
    if entity_type == "PersonV1":
        return sync_mapping.person_v1(row)
    if entity_type in _MEMORY_UPSERTS:
        return _MEMORY_UPSERTS[entity_type](row)
    if entity_type == "AssetMetadataV1":
        return sync_mapping.asset_metadata_v1(row)
    if entity_type == "AssetEditV1":
        return sync_mapping.asset_edit_v1(row)
    return sync_mapping.asset_face_v2(row)


def _album_v1(row) -> dtos.SyncAlbumV1:
    v2 = sync_mapping.album_v2(row)
    return dtos.SyncAlbumV1(**msgspec.structs.asdict(v2), ownerId=str(row["owner_id"]))


class _Stream:
    """The lines of one sync stream, produced lazily so a slow reader holds the server back."""

    def __init__(self, auth: ImmichAuth, session_id: uuid.UUID, types: set[str], library: uuid.UUID,
                 saved: dict[str, str]):
        self.auth, self.session_id, self.types, self.library, self.saved = auth, session_id, types, library, saved

    async def _whole_rows(self, entity_type: str) -> list[bytes]:
        """Rows compared whole: sent again only when their digest differs from the checkpoint."""
        principal = self.auth.principal
        if entity_type == "AuthUserV1":
            me = await users.user_by_id(principal.user_id)
            data = sync_mapping.auth_user_v1(me)
            rows = [data]
        elif entity_type == "UserV1":
            rows = [sync_mapping.user_v1(u) for u in await users.list_users(with_deleted=True)]
        else:
            me = await users.user_by_id(principal.user_id)
            rows = [dtos.SyncUserMetadataV1(userId=str(me["id"]), key="preferences", value=mapping.preferences(me))]
        ack = f"{entity_type}|{_digest(*(msgspec.json.encode(r) for r in rows))}"
        if self.saved.get(entity_type) == ack:
            return []
        return [_line(entity_type, r, ack) for r in rows]

    async def _own_deletes(self, snap: sync.Snapshot, request_type: str, delete_type: str, upsert_type: str,
                           kind: str) -> AsyncIterator[bytes]:
        # A client that never received this kind's rows needs none of its deletes.
        after = _cursor_of(self.saved.get(delete_type)) or _cursor_of(self.saved.get(upsert_type))
        if after is None:
            return
        async for change in snap.changes(kind, self.library, after, deletes=True):
            yield _line(delete_type, _delete_data(delete_type, change), _ack(delete_type, change.cursor))

    async def _own_album_user_deletes(self, snap: sync.Snapshot) -> AsyncIterator[bytes]:
        """AlbumUserDeleteV1 of the caller's albums: the owner of each deleted album, and each user
        removed from one. One run in feed order, so the run's last ack is its furthest."""
        after = _cursor_of(self.saved.get("AlbumUserDeleteV1")) or _cursor_of(self.saved.get("AlbumUserV1"))
        if after is None:
            return
        walks = (snap.changes("album", self.library, after, deletes=True),
                 snap.changes("album_user", self.library, after, deletes=True))
        async for kind, change in _in_feed_order(("album", "album_user"), walks):
            data = (sync_shared.album_user_delete(change) if kind == "album_user"
                    else _delete_data("AlbumUserDeleteV1", change))
            yield _line("AlbumUserDeleteV1", data, _ack("AlbumUserDeleteV1", change.cursor))

    async def _own_upserts(self, snap: sync.Snapshot, upsert_type: str, kind: str) -> AsyncIterator[bytes]:
        """A batch of lines at a time (compat.sync_encode)."""
        async for batch in snap.change_batches(kind, self.library, _cursor_of(self.saved.get(upsert_type))):
            if upsert_type == "AlbumUserV1":  # one change of the album, a line per user of it
                per_album = await sync_shared.albums_users_v1([change.row for change in batch])
                yield sync_encode.lines(upsert_type, [data for users in per_album for data in users],
                                        [change.cursor for change, users in zip(batch, per_album) for _ in users])
                continue
            for start in range(0, len(batch), ENCODE_ROWS):
                yield sync_encode.upserts(upsert_type, batch[start:start + ENCODE_ROWS], _upsert_data)
                # Let the loop read the next batches' rows meanwhile: the database writes them into
                # a socket of a few hundred KiB and waits while nobody reads it.
                await asyncio.sleep(0)

    def _deletes(self, snap: sync.Snapshot, shared: sync_shared.SharedLines) -> list[AsyncIterator[bytes]]:
        """Children first: the caller's own rows and what is shared with it, interleaved so the
        app's local foreign keys hold."""
        steps: list[AsyncIterator[bytes]] = []
        own = {request_type: (request_type, delete_type, upsert_type, kind)
               for request_type, delete_type, upsert_type, kind in DELETES}

        def mine(request_type: str) -> None:
            if request_type in self.types:
                steps.append(self._own_deletes(snap, *own[request_type]))

        mine("AssetFacesV2")
        mine("PeopleV1")
        mine("AlbumToAssetsV1")
        steps.append(shared.album_link_deletes())
        if "AlbumUsersV1" in self.types:
            steps.append(self._own_album_user_deletes(snap))
        steps.append(shared.album_user_deletes())
        mine("AlbumsV2")
        steps.append(shared.album_deletes("AlbumsV2"))
        mine("AlbumsV1")
        steps.append(shared.album_deletes("AlbumsV1"))
        steps.append(shared.album_asset_drops())
        steps.append(shared.album_removal_drops())
        mine("MemoryToAssetsV1")
        mine("MemoriesV1")
        mine("AssetMetadataV1")  # a child of the asset
        mine("AssetEditsV1")
        mine("AssetsV2")
        steps.append(shared.partner_deletes("PartnerAssetsV2", "asset", "PartnerAssetDeleteV1", "PartnerAssetV2",
                                            lambda i: {"assetId": i}))
        mine("StacksV1")
        steps.append(shared.partner_deletes("PartnerStacksV1", "stack", "PartnerStackDeleteV1", "PartnerStackV1",
                                            lambda i: {"stackId": i}))
        steps.append(shared.partnership_deletes())
        return steps

    def _upserts(self, snap: sync.Snapshot, shared: sync_shared.SharedLines) -> list[Any]:
        """Parents first; an entry is a step (lines) or an entity type compared whole."""
        steps: list[Any] = []
        own = {request_type: (upsert_type, kind) for request_type, upsert_type, kind in UPSERTS}

        def mine(request_type: str) -> None:
            if request_type in self.types:
                upsert_type, kind = own[request_type]
                steps.append(upsert_type if kind is None else self._own_upserts(snap, upsert_type, kind))

        exif = sync_mapping.asset_exif_v1_flat
        mine("AuthUsersV1")
        mine("UsersV1")
        steps.append(shared.partnerships())
        mine("StacksV1")
        mine("AssetsV2")
        mine("AssetEditsV1")
        steps.append(shared.partner_rows("PartnerStacksV1", "stack", "PartnerStackBackfillV1", "PartnerStackV1",
                                         sync_mapping.stack_v1))
        steps.append(shared.partner_rows("PartnerAssetsV2", "asset", "PartnerAssetBackfillV2", "PartnerAssetV2",
                                         sync_mapping.asset_v2))
        steps.append(shared.album_assets("AlbumAssetsV2", "asset", "AlbumAssetUpdateV2", "AlbumAssetCreateV2",
                                         "AlbumAssetBackfillV2", sync_shared.album_asset_v2))
        mine("AlbumsV2")
        steps.append(shared.albums_shared("AlbumsV2", "AlbumV2", sync_mapping.album_v2))
        mine("AlbumsV1")
        steps.append(shared.albums_shared("AlbumsV1", "AlbumV1", _album_v1))
        mine("AlbumUsersV1")
        steps.append(shared.album_users_shared())
        mine("AlbumToAssetsV1")
        steps.append(shared.album_links_shared())
        mine("AssetExifsV1")
        steps.append(shared.partner_rows("PartnerAssetExifsV1", "exif", "PartnerAssetExifBackfillV1",
                                         "PartnerAssetExifV1", exif))
        steps.append(shared.album_assets("AlbumAssetExifsV1", "exif", "AlbumAssetExifUpdateV1",
                                         "AlbumAssetExifCreateV1", "AlbumAssetExifBackfillV1", exif))
        mine("MemoriesV1")
        mine("MemoryToAssetsV1")
        mine("PeopleV1")
        mine("AssetFacesV2")
        mine("UserMetadataV1")
        mine("AssetMetadataV1")
        return steps

    async def _rows(self) -> AsyncIterator[bytes]:
        """Every line but the last, in order: deletes children-first, then upserts parents-first,
        then the marker that records what shared data the client now holds. An item is one line,
        or a run of them (a batch of the caller's own upserts)."""
        snap = await sync.snapshot(shows_locked=self.auth.principal.elevated)
        shared = sync_shared.SharedLines(self.auth.principal.user_id, self.library, self.types, self.saved, snap,
                                         _line)
        await shared.prepare()
        for step in self._deletes(snap, shared):
            async for line in step:
                yield line
        for step in self._upserts(snap, shared):
            if isinstance(step, str):
                for line in await self._whole_rows(step):
                    yield line
                continue
            async for line in step:
                yield line
        marker = shared.marker()
        if marker is not None:
            line, pending = marker
            await sync.save_checkpoints(self.session_id, {sync_shared.PENDING: pending})
            yield line

    async def lines(self) -> AsyncIterator[bytes]:
        """The body, in chunks of about 256 KiB (a little more when a run of lines passes it): few
        socket writes, bounded memory."""
        started = datetime.now(timezone.utc)
        buffer: list[bytes] = []
        size = 0
        try:
            async for line in self._rows():
                buffer.append(line)
                size += len(line)
                if size >= FLUSH_BYTES:
                    yield b"".join(buffer)
                    buffer, size = [], 0
        except Exception:
            # Ending without SyncCompleteV1 makes the client read again from its last ack.
            log.exception("sync stream for session %s failed", self.session_id)
            if buffer:
                yield b"".join(buffer)
            return
        buffer.append(_line("SyncCompleteV1", {}, f"SyncCompleteV1|{int(started.timestamp() * 1000)}"))
        yield b"".join(buffer)


async def _in_feed_order(names: tuple[str, ...], walks: tuple[AsyncIterator[sync.Change], ...]
                         ) -> AsyncIterator[tuple[str, sync.Change]]:
    """Several walks of the change log (each in feed order) as one, each change with its walk's name."""
    heads: list[sync.Change | None] = [await anext(w, None) for w in walks]
    try:
        while True:
            live = [(c.cursor, i) for i, c in enumerate(heads) if c is not None]
            if not live:
                return
            _, i = min(live)
            yield names[i], heads[i]
            heads[i] = await anext(walks[i], None)
    finally:
        for w in walks:
            await w.aclose()


def _check_types(types: list[str]) -> set[str]:
    for t in types:
        if t in DEPRECATED:
            raise BadRequest(f"SyncRequestType.{t} is deprecated, use {DEPRECATED[t]} instead")
    return set(types)


def _reset_line() -> bytes:
    return _line("SyncResetV1", {}, "SyncResetV1|reset")


@post("/api/sync/stream", status_code=200, action=access.READ, guards=[_sessions_only])
async def sync_stream(auth: ImmichAuth, data: dtos.SyncStreamDto) -> Response:
    session_id = _session(auth)
    types = _check_types(data.types)
    if data.reset is True:
        await sync.reset(session_id)
    media_type = "application/jsonlines+json"
    if await sync.pending_reset(session_id):
        return Stream(iter([_reset_line()]), media_type=media_type)
    saved = await sync.checkpoints(session_id)
    complete = saved.get("SyncCompleteV1", "")
    _, _, stamp = complete.partition("|")
    if stamp.isdigit() and int(stamp) / 1000 < time.time() - RESET_AFTER_S:
        return Stream(iter([_reset_line()]), media_type=media_type)
    library = await access.preferred_library(auth.principal)
    return Stream(_Stream(auth, session_id, types, library, saved).lines(), media_type=media_type)


@get("/api/sync/ack", action=access.READ, guards=[_sessions_only])
async def get_acks(auth: ImmichAuth) -> list[dtos.SyncAckDto]:
    saved = await sync.checkpoints(_session(auth))
    return [dtos.SyncAckDto(type=t, ack=a) for t, a in saved.items() if t in ENTITY_TYPES]


@post("/api/sync/ack", status_code=204, action=access.WRITE, guards=[_sessions_only])
async def set_acks(auth: ImmichAuth, data: dtos.SyncAckSetDto) -> None:
    session_id = _session(auth)
    acks = data.acks
    if len(acks) > 1000:
        raise BadRequest("acks must contain at most 1000 items")
    latest: dict[str, str] = {}
    pending: str | None = None
    for ack in acks:
        entity_type = ack.split("|", 1)[0]
        if entity_type == "SyncResetV1":
            await sync.reset(session_id)
            return
        if entity_type not in ENTITY_TYPES:
            raise BadRequest("Invalid ack type")
        latest[entity_type] = ack  # the last ack of each type wins
        if entity_type == sync_shared.MARKER:  # commits the scope its stream kept pending, moves cursors
            del latest[entity_type]
            if pending is None:
                pending = (await sync.checkpoints(session_id)).get(sync_shared.PENDING, "")
            latest.update(sync_shared.commit_marker(ack, pending))
    await sync.save_checkpoints(session_id, latest)


@delete("/api/sync/ack", status_code=204, action=access.DELETE, guards=[_sessions_only])
async def delete_acks(auth: ImmichAuth, data: dtos.SyncAckDeleteDto | None = None) -> None:
    session_id = _session(auth)
    types = None if data is None or data.types is msgspec.UNSET else list(data.types)
    await sync.delete_checkpoints(session_id, types)


ROUTES = [sync_stream, get_acks, set_acks, delete_acks]
