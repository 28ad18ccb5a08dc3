"""The shared part of the Immich sync stream: partnerships, partners' photos and albums shared
with the caller (compat/routes/sync.py places these lines among the caller's own).

What is shared with a client changes over time, so each stream knows what the client already
holds: its *scope*, the partner libraries and shared albums it was last sent completely, kept in
the `SyncAckV1` checkpoint. A stream compares it with what is shared now:

- newly shared (not in the scope) while the client already has a checkpoint for a type: that
  type's rows are sent from the current state (Immich's backfill lines), since their change-log
  events are older than the checkpoint; a client with no checkpoint gets them from the walk;
- no longer shared: the deletes that drop what the client may not see any more;
- still shared: the change log walked from the type's checkpoint, several libraries in one query.

What a library member sees: the Immich client sees one library (the caller's preferred one), so a
library the caller is only a member of does not appear; an album of it does when the album is
shared with the caller (album users). Albums are shared per album, partners per library.

When a stream sent any of this, it ends with one `SyncAckV1` line whose ack commits the new scope
and moves every shared type's checkpoint to the stream's horizon (`SyncAckV1|<token>~Type|cursor~...`,
unpacked by POST /sync/ack). One line, just before SyncCompleteV1, because the app acks only the
last line of a run of same-type lines. Until the app acks it, the next stream repeats the backfill
and drop lines, which are idempotent; after it, nothing repeats.

The scope itself never travels through the client: the stream keeps it pending on the server under
a random token, and only an ack naming that token commits it. A scope the client could write would
let it claim it once held any library or album, and the drop lines would then list their contents.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, AsyncIterator, Callable

from app.domain import access, album_sharing, events, sync
from compat import dtos, sync_mapping

MARKER = "SyncAckV1"
PENDING = "SyncScopePending"  # a checkpoint row no client reads or writes: "<token>|<scope ack>"
_SCOPE = "scope"

# Each request type that carries shared rows, with every entity type it acks (all of them move to
# the horizon when the stream's marker is acked).
SHARED_ACK_TYPES: dict[str, tuple[str, ...]] = {
    "PartnersV1": ("PartnerV1", "PartnerDeleteV1"),
    "PartnerAssetsV2": ("PartnerAssetV2", "PartnerAssetDeleteV1", "PartnerAssetBackfillV2"),
    "PartnerAssetExifsV1": ("PartnerAssetExifV1", "PartnerAssetExifBackfillV1"),
    "PartnerStacksV1": ("PartnerStackV1", "PartnerStackDeleteV1", "PartnerStackBackfillV1"),
    "AlbumsV2": ("AlbumV2", "AlbumDeleteV1"),
    "AlbumsV1": ("AlbumV1", "AlbumDeleteV1"),
    "AlbumUsersV1": ("AlbumUserV1", "AlbumUserDeleteV1", "AlbumUserBackfillV1"),
    "AlbumToAssetsV1": ("AlbumToAssetV1", "AlbumToAssetDeleteV1", "AlbumToAssetBackfillV1"),
    "AlbumAssetsV2": ("AlbumAssetUpdateV2", "AlbumAssetCreateV2", "AlbumAssetBackfillV2"),
    "AlbumAssetExifsV1": ("AlbumAssetExifUpdateV1", "AlbumAssetExifCreateV1", "AlbumAssetExifBackfillV1"),
}
# The caller's own AssetDeleteV1 run also carries the drops of photos taken out of albums
# (album_removal_drops): the marker moves it past the removals read when the stream walked both.
OWN_ASSET_DELETES = "AssetDeleteV1"
MOVABLE_TYPES = frozenset([OWN_ASSET_DELETES, *(t for types in SHARED_ACK_TYPES.values() for t in types)])
_PARTNER_TYPES = ("PartnerAssetsV2", "PartnerAssetExifsV1", "PartnerStacksV1")
_ALBUM_TYPES = ("AlbumsV2", "AlbumsV1", "AlbumUsersV1", "AlbumToAssetsV1", "AlbumAssetsV2", "AlbumAssetExifsV1")


class Scope:
    """What a client was last sent completely: per request type, partner libraries and albums."""

    def __init__(self, types: set[str], libraries: set[uuid.UUID], albums: set[uuid.UUID]):
        self.types, self.libraries, self.albums = types, libraries, albums

    @classmethod
    def parse(cls, marker: str | None) -> "Scope":
        empty = cls(set(), set(), set())
        if not marker:
            return empty
        head = marker.split("|", 1)[-1].split("~", 1)[0]
        parts = head.split(":")
        if len(parts) != 4 or parts[0] != _SCOPE:
            return empty
        try:
            return cls({t for t in parts[1].split(",") if t},
                       {uuid.UUID(hex=v) for v in parts[2].split(",") if v},
                       {uuid.UUID(hex=v) for v in parts[3].split(",") if v})
        except ValueError:
            return empty

    def entry(self) -> str:
        return ":".join((_SCOPE, ",".join(sorted(self.types)), ",".join(sorted(v.hex for v in self.libraries)),
                         ",".join(sorted(v.hex for v in self.albums))))

    def libraries_for(self, request_type: str) -> set[uuid.UUID]:
        return self.libraries if request_type in self.types else set()

    def albums_for(self, request_type: str) -> set[uuid.UUID]:
        return self.albums if request_type in self.types else set()


def _cursor_of(ack: str | None) -> tuple[int, int] | None:
    if not ack:
        return None
    parts = ack.split("|")
    try:
        return events.decode_cursor(parts[1]) if len(parts) >= 2 else None
    except Exception:
        return None


Line = Callable[[str, Any, str], bytes]


class SharedLines:
    """The shared lines of one stream; `line` encodes one line (type, data, ack)."""

    def __init__(self, user_id: uuid.UUID, own_library: uuid.UUID, types: set[str], saved: dict[str, str],
                 snap: sync.Snapshot, line: Line):
        self.user_id, self.own, self.types, self.saved, self.snap, self.line = \
            user_id, own_library, types, saved, snap, line
        self.old = Scope.parse(saved.get(MARKER))
        self.sent = False  # whether any shared line went out (then the marker must follow)
        self.scanned = [0]  # change-log events the shared walks read: the marker moves past them too
        self.libraries: list[uuid.UUID] = []
        self.albums: list[uuid.UUID] = []
        self.album_libraries: list[uuid.UUID] = []
        self._foreign_albums: list[uuid.UUID] | None = None

    async def prepare(self) -> None:
        if self.types.intersection(_PARTNER_TYPES):
            self.libraries = await access.partner_libraries_of(self.user_id)
        if self.types.intersection(_ALBUM_TYPES):
            self.albums = await access.shared_album_ids(self.user_id)
            self.album_libraries = await sync.album_library_ids(self.albums)

    # --- helpers --------------------------------------------------------------------------

    def _emit(self, entity_type: str, data: Any, ack: str) -> bytes:
        self.sent = True
        return self.line(entity_type, data, ack)

    def _ack(self, entity_type: str, cursor: tuple[int, int]) -> str:
        return f"{entity_type}|{events.encode_cursor(*cursor)}"

    def _kept(self, entity_type: str, *fallbacks: str) -> str:
        """An ack that leaves the type's checkpoint where it is (for lines read from the current state)."""
        for t in (entity_type, *fallbacks):
            cursor = _cursor_of(self.saved.get(t))
            if cursor is not None:
                return self._ack(entity_type, cursor)
        return self._ack(entity_type, (0, 0))

    def _after(self, entity_type: str) -> tuple[int, int] | None:
        return _cursor_of(self.saved.get(entity_type))

    def _new_libraries(self, request_type: str, upsert_type: str) -> list[uuid.UUID]:
        """Partner libraries to backfill: shared now, not yet sent, and older than the checkpoint."""
        if self._after(upsert_type) is None:
            return []
        known = self.old.libraries_for(request_type)
        return [lib for lib in self.libraries if lib not in known]

    def _new_albums(self, request_type: str, upsert_type: str) -> list[uuid.UUID]:
        if self._after(upsert_type) is None:
            return []
        known = self.old.albums_for(request_type)
        return [a for a in self.albums if a not in known]

    def _lost_libraries(self, request_type: str) -> list[uuid.UUID]:
        return sorted(self.old.libraries_for(request_type) - set(self.libraries))

    def _lost_albums(self, request_type: str) -> list[uuid.UUID]:
        return sorted(self.old.albums_for(request_type) - set(self.albums))

    def _walk(self, kind: str, libraries: list[uuid.UUID], after, **kwargs) -> AsyncIterator[sync.Change]:
        return sync.shared_changes(self.snap, kind, libraries, after, scanned=self.scanned, **kwargs)

    async def _kept_albums(self) -> list[uuid.UUID]:
        """Albums whose assets the client keeps: those shared with it and its own albums holding
        other libraries' assets."""
        if self._foreign_albums is None:
            self._foreign_albums = await sync.albums_with_foreign_assets(self.own)
        shared = self.albums if self.types.intersection(_ALBUM_TYPES) else await access.shared_album_ids(self.user_id)
        return sorted({*shared, *self._foreign_albums})

    # --- deletes (children first; routes/sync.py calls these in its delete order) ---------

    async def album_link_deletes(self) -> AsyncIterator[bytes]:
        """AlbumToAssetDeleteV1: links gone from shared albums, and every link of a lost album."""
        request = "AlbumToAssetsV1"
        if request not in self.types:
            return
        for album in self._lost_albums(request):
            async for link in sync.current("album_asset", [album]):
                yield self._emit("AlbumToAssetDeleteV1", {"albumId": str(link["album_id"]),
                                                          "assetId": str(link["asset_id"])},
                                 self._kept("AlbumToAssetDeleteV1", "AlbumToAssetV1"))
        after = self._after("AlbumToAssetDeleteV1") or self._after("AlbumToAssetV1")
        if after is None:
            return
        async for change in self._walk("album_asset", self.album_libraries, after,
                                       where=sync.LINKS_OF_ALBUMS, album_ids=self.albums, deletes=True):
            payload = sync.payload_of(change)
            yield self._emit("AlbumToAssetDeleteV1", {"albumId": payload["album_id"], "assetId": payload["asset_id"]},
                             self._ack("AlbumToAssetDeleteV1", change.cursor))

    async def album_user_deletes(self) -> AsyncIterator[bytes]:
        """AlbumUserDeleteV1: the caller itself in each lost album, then the users removed from the
        albums it still has since the checkpoint."""
        request = "AlbumUsersV1"
        if request not in self.types:
            return
        for album in self._lost_albums(request):
            yield self._emit("AlbumUserDeleteV1", {"albumId": str(album), "userId": str(self.user_id)},
                             self._kept("AlbumUserDeleteV1", "AlbumUserV1"))
        after = self._after("AlbumUserDeleteV1") or self._after("AlbumUserV1")
        if after is None:
            return
        async for change in self._walk("album_user", self.album_libraries, after,
                                       where=sync.LINKS_OF_ALBUMS, album_ids=self.albums, deletes=True):
            yield self._emit("AlbumUserDeleteV1", album_user_delete(change),
                             self._ack("AlbumUserDeleteV1", change.cursor))

    async def album_deletes(self, request: str) -> AsyncIterator[bytes]:
        if request not in self.types:
            return
        for album in self._lost_albums(request):
            yield self._emit("AlbumDeleteV1", {"albumId": str(album)},
                             self._kept("AlbumDeleteV1", "AlbumV2" if request == "AlbumsV2" else "AlbumV1"))

    async def album_asset_drops(self) -> AsyncIterator[bytes]:
        """AssetDeleteV1 for the assets of lost albums the client sees no other way (before the
        caller's own AssetDeleteV1 lines, whose acks then end the run)."""
        request = "AlbumAssetsV2"
        if request not in self.types:
            return
        lost = self._lost_albums(request)
        if not lost:
            return
        keep = [self.own, *(await access.partner_libraries_of(self.user_id))]
        async for asset_id in sync.dropped_album_assets(lost, keep_libraries=keep,
                                                        keep_albums=await self._kept_albums()):
            yield self._emit("AssetDeleteV1", {"assetId": str(asset_id)}, self._kept("AssetDeleteV1", "AssetV2"))

    async def album_removal_drops(self) -> AsyncIterator[bytes]:
        """AssetDeleteV1 for the assets taken out of albums the client sees (shared with it, lost in
        this stream, or its own) since its AssetsV2 checkpoint (else its AlbumToAssetsV1 one) that
        it sees no other way now; its own photos stay."""
        if not {"AlbumAssetsV2", "AssetsV2"} <= self.types:
            return
        after = (self._after("AssetDeleteV1") or self._after("AssetV2") or self._after("AlbumToAssetDeleteV1")
                 or self._after("AlbumToAssetV1"))
        if after is None:
            return
        lost = self._lost_albums("AlbumAssetsV2")
        albums = sorted({*self.albums, *lost})
        libraries = sorted({self.own, *(await sync.album_library_ids(albums, deleted_too=bool(lost)))})
        keep = [self.own, *(await access.partner_libraries_of(self.user_id))]
        async for cursor, asset_id in sync.removed_album_assets(
                self.snap, libraries, albums, after, own_library=self.own, keep_libraries=keep,
                keep_albums=await self._kept_albums(), scanned=self.scanned):
            yield self._emit("AssetDeleteV1", {"assetId": str(asset_id)}, self._ack("AssetDeleteV1", cursor))

    async def partner_deletes(self, request: str, kind: str, delete_type: str, upsert_type: str,
                              id_of: Callable[[Any], dict]) -> AsyncIterator[bytes]:
        """Deletes of a lost partner's rows (all of them, and those gone since the checkpoint),
        then the rows gone from partners' libraries since the checkpoint."""
        if request not in self.types:
            return
        lost = self._lost_libraries(request)
        if kind == "asset":  # an asset still in one of the client's albums stays
            rows = sync.dropped_library_assets(lost, keep_albums=await self._kept_albums() if lost else [])
        else:
            rows = (row["id"] async for row in sync.current(kind, lost))
        async for entity_id in rows:
            yield self._emit(delete_type, id_of(str(entity_id)), self._kept(delete_type, upsert_type))
        after = self._after(delete_type) or self._after(upsert_type)
        if after is None:
            return
        for libraries in (lost, self.libraries):
            async for change in self._walk(kind, libraries, after, deletes=True):
                yield self._emit(delete_type, id_of(str(change.entity_id)), self._ack(delete_type, change.cursor))

    async def partnership_deletes(self) -> AsyncIterator[bytes]:
        if "PartnersV1" not in self.types:
            return
        after = self._after("PartnerDeleteV1") or self._after("PartnerV1")
        if after is None:
            return
        async for change in sync.partner_changes(self.snap, self.user_id, after, deletes=True):
            payload = sync.payload_of(change)
            yield self._emit("PartnerDeleteV1", {"sharedById": payload["shared_by_id"],
                                                 "sharedWithId": payload["shared_with_id"]},
                             self._ack("PartnerDeleteV1", change.cursor))

    # --- upserts (parents first) ----------------------------------------------------------

    async def partnerships(self) -> AsyncIterator[bytes]:
        if "PartnersV1" not in self.types:
            return
        async for change in sync.partner_changes(self.snap, self.user_id, self._after("PartnerV1")):
            row = change.row
            yield self._emit("PartnerV1", dtos.SyncPartnerV1(sharedById=str(row["shared_by_id"]),
                                                             sharedWithId=str(row["shared_with_id"]),
                                                             inTimeline=row["in_timeline"]),
                             self._ack("PartnerV1", change.cursor))

    async def partner_rows(self, request: str, kind: str, backfill_type: str, upsert_type: str,
                           data: Callable[[Any], Any]) -> AsyncIterator[bytes]:
        """A new partner's rows from the current state, then partners' changes since the checkpoint."""
        if request not in self.types:
            return
        new = self._new_libraries(request, upsert_type)
        if new:
            ack = self._kept(backfill_type, upsert_type)
            async for row in sync.current(kind, new):
                yield self._emit(backfill_type, data(row), ack)
        async for change in self._walk(kind, self.libraries, self._after(upsert_type)):
            yield self._emit(upsert_type, data(change.row), self._ack(upsert_type, change.cursor))

    async def albums_shared(self, request: str, upsert_type: str, data: Callable[[Any], Any]) -> AsyncIterator[bytes]:
        """Albums shared with the caller: newly shared ones whole, the others as they change."""
        if request not in self.types:
            return
        new = self._new_albums(request, upsert_type)
        ack = self._kept(upsert_type)
        async for row in sync.current("album", new):
            yield self._emit(upsert_type, data(row), ack)
        async for change in self._walk("album", self.album_libraries, self._after(upsert_type),
                                       where=sync.OF_ALBUMS, album_ids=self.albums):
            yield self._emit(upsert_type, data(change.row), self._ack(upsert_type, change.cursor))

    async def album_users_shared(self) -> AsyncIterator[bytes]:
        request = "AlbumUsersV1"
        if request not in self.types:
            return
        new = self._new_albums(request, "AlbumUserV1")
        ack = self._kept("AlbumUserBackfillV1", "AlbumUserV1")
        async for row in sync.current("album", new):
            for data in await album_users_v1(row):
                yield self._emit("AlbumUserBackfillV1", data, ack)
        async for change in self._walk("album", self.album_libraries, self._after("AlbumUserV1"),
                                       where=sync.OF_ALBUMS, album_ids=self.albums):
            for data in await album_users_v1(change.row):
                yield self._emit("AlbumUserV1", data, self._ack("AlbumUserV1", change.cursor))

    async def album_links_shared(self) -> AsyncIterator[bytes]:
        request = "AlbumToAssetsV1"
        if request not in self.types:
            return
        new = self._new_albums(request, "AlbumToAssetV1")
        ack = self._kept("AlbumToAssetBackfillV1", "AlbumToAssetV1")
        async for link in sync.current("album_asset", new):
            yield self._emit("AlbumToAssetBackfillV1", _link(link), ack)
        async for change in self._walk("album_asset", self.album_libraries,
                                       self._after("AlbumToAssetV1"), where=sync.LINKS_OF_ALBUMS,
                                       album_ids=self.albums):
            yield self._emit("AlbumToAssetV1", _link(change.row), self._ack("AlbumToAssetV1", change.cursor))

    async def album_assets(self, request: str, kind: str, update_type: str, create_type: str, backfill_type: str,
                           data: Callable[[Any], Any]) -> AsyncIterator[bytes]:
        """Assets in albums the caller sees that are not its own (shared albums, and its own albums'
        assets added by album editors): updates of those already linked, then new links' assets,
        then newly shared albums' assets whole."""
        if request not in self.types:
            return
        if self._foreign_albums is None:
            self._foreign_albums = await sync.albums_with_foreign_assets(self.own)
        albums = sorted({*self.albums, *self._foreign_albums})
        if not albums:
            return
        link_kind = "link_asset" if kind == "asset" else "link_exif"
        libraries = await sync.libraries_of_linked_assets(albums, self.own)
        async for change in self._walk(kind, libraries, self._after(update_type),
                                       where=sync.LINKED_IN_ALBUMS, album_ids=albums):
            yield self._emit(update_type, data(change.row), self._ack(update_type, change.cursor))
        link_libraries = sorted({self.own, *self.album_libraries})
        async for change in self._walk(link_kind, link_libraries, self._after(create_type),
                                       where=sync.LINKS_OF_ALBUMS, album_ids=albums,
                                       own_library=self.own):
            yield self._emit(create_type, data(change.row), self._ack(create_type, change.cursor))
        new = self._new_albums(request, create_type)
        ack = self._kept(backfill_type, create_type)
        async for row in sync.current(f"album_asset_{kind}", new, exclude_library=self.own):
            yield self._emit(backfill_type, data(row), ack)

    # --- the end --------------------------------------------------------------------------

    def marker(self) -> tuple[bytes, str] | None:
        """The SyncAckV1 line, and the pending scope it commits once acked (see commit_marker), when
        anything shared was sent, the scope moved, or the walks read events past the checkpoints
        (else they would read them again each time)."""
        requested = {t for t in self.types if t in SHARED_ACK_TYPES}
        scope = Scope({t for t in requested if t in _PARTNER_TYPES or t in _ALBUM_TYPES},
                      set(self.libraries), set(self.albums))
        moved = (scope.libraries or scope.albums or self.old.libraries or self.old.albums) and \
            scope.entry() != self.old.entry()
        if not self.sent and not moved and not self.scanned[0]:
            return None
        token = secrets.token_hex(12)
        horizon = events.encode_cursor(self.snap.horizon, 0)
        moved_types = {t for r in requested for t in SHARED_ACK_TYPES[r]}
        if {"AlbumAssetsV2", "AssetsV2"} <= self.types:  # every own asset delete up to the horizon went too
            moved_types.add(OWN_ASSET_DELETES)
        acks = sorted(f"{t}|{horizon}" for t in moved_types)
        line = self.line(MARKER, {}, f"{MARKER}|" + "~".join([token, *acks]))
        return line, f"{token}|{MARKER}|{scope.entry()}"


def commit_marker(ack: str, pending: str | None) -> dict[str, str]:
    """The checkpoints a marker's ack sets: the scope kept pending under the token it names, and the
    shared types' cursors it moves. Nothing when the token is not the pending one (forged, or from an
    older stream): the client then just gets the idempotent backfill and drop lines again."""
    token, _, rest = ack.split("|", 1)[-1].partition("~")
    if not pending or not secrets.compare_digest(pending.split("|", 1)[0], token):
        return {}
    out = {MARKER: pending.split("|", 1)[1]}
    for moved in rest.split("~") if rest else []:
        moved_type = moved.split("|", 1)[0]
        if moved_type not in MOVABLE_TYPES or _cursor_of(moved) is None:
            return {}
        out[moved_type] = moved
    return out


def album_user_delete(change: sync.Change) -> dict[str, str]:
    """The AlbumUserDeleteV1 data of an album user's removal (its event names both)."""
    payload = sync.payload_of(change)
    return {"albumId": payload["album_id"], "userId": payload["user_id"]}


def _link(row) -> dtos.SyncAlbumToAssetV1:
    return dtos.SyncAlbumToAssetV1(albumId=str(row["album_id"]), assetId=str(row["asset_id"]))


async def album_users_v1(album) -> list[dtos.SyncAlbumUserV1]:
    """The album's owner, then each user it is shared with (album_sharing)."""
    return (await albums_users_v1([album]))[0]


async def albums_users_v1(albums: list) -> list[list[dtos.SyncAlbumUserV1]]:
    """album_users_v1 of each album, their shares read in one query."""
    shared = await album_sharing.users_of([album["id"] for album in albums]) if albums else {}
    return [[dtos.SyncAlbumUserV1(albumId=str(album["id"]), userId=str(album["owner_id"]), role="owner")] + [
        dtos.SyncAlbumUserV1(albumId=str(album["id"]), userId=str(u.user["id"]), role=u.role)
        for u in shared.get(album["id"], [])] for album in albums]


def album_asset_v2(row) -> dtos.SyncAssetV2:
    """An asset seen through an album: never the caller's own, so never its favourite (as Immich)."""
    asset = sync_mapping.asset_v2(row)
    asset.isFavorite = False
    return asset
