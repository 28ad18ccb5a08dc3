"""Immich's socket.io v4 live events at /api/socket.io, fed by the app's live notices.

The app publishes committed change events and "variants ready" notices on Redis
(app.realtime); each API process listens and turns them into the events Immich clients
expect, sent to the owner's room, and to everyone the change is shared with: a library's asset
changes to the partners who receive it, an album's changes to its album users (who those are is
access's "audiences", read once per notice) and to a user just removed from it. Everything here
is best effort: a failure is logged, never raised into a request or the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, AsyncIterator

import msgspec
import socketio
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import asgi
from litestar.types import Receive, Scope, Send

from app import realtime
from app.domain import access, asset_versions, asset_views, faces, notifications, system_metadata, tags, tasks, users
from compat import dtos, mapping, sync_mapping
from compat.auth import resolve
from compat.routes.server import VERSION

log = logging.getLogger(__name__)

PATH = "/api/socket.io"
# Immich announces an upload (on_upload_success, AssetUploadReadyV2) only for assets its timeline shows.
_READY_VISIBILITY = ("timeline", "archive")
_ALBUM_EVENTS = ("album_created", "album_updated", "album_deleted")
_ALBUM_ASSET_EVENTS = ("album_asset_added", "album_asset_removed")
# An album user's removal (album_sharing) names the album and the removed user in its payload: the
# removed user hears of the album once more, so its client syncs and drops it.
_ALBUM_USER_REMOVED = "album_user_removed"
_PERSON_THUMBNAIL_EVENTS = ("person_created", "person_updated")
# What a partner hears of the sharer's library: its assets (and stacks), nothing else.
_ASSET_EVENTS = ("asset_updated", "asset_trashed", "asset_restored", "asset_deleted")


def _builtins(dto: Any) -> Any:
    return msgspec.to_builtins(dto)  # datetimes as ISO strings, unset fields left out


def _targets(owner_id: str, library_id: str | None) -> list[str]:
    """Rooms of everyone who may see a change: the owner's full sessions and keys, plus keys
    limited to that library."""
    return [owner_id] if library_id is None else [owner_id, f"{owner_id}:{library_id}"]


def _album_of(event: dict) -> uuid.UUID | None:
    """The album an album or album-link event is about."""
    if event["event_type"] in _ALBUM_EVENTS:
        return uuid.UUID(event["entity_id"])
    if event["event_type"] in _ALBUM_ASSET_EVENTS or event["event_type"] == _ALBUM_USER_REMOVED:
        album = (event.get("payload") or {}).get("album_id")
        return None if album is None else uuid.UUID(album)
    return None


class LiveEvents:
    """One socket.io server per Immich app, with its mount and its Redis listener."""

    def __init__(self) -> None:
        # Immich's gateway: websocket transport, any origin (its cookie is SameSite=Lax), and a
        # connection that is accepted first, then told "unauthorized" and closed.
        self.sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins="*",
                                        always_connect=True, logger=False, engineio_logger=False)
        self.sio.on("connect", self._connect)
        # Litestar routes the mount; engineio takes every request it is handed.
        app = socketio.ASGIApp(self.sio, socketio_path=None)

        # public to the route guard: the socket.io handshake (_connect) authenticates with the same
        # resolve() and requires READ, and answers in socket.io's own terms when it refuses.
        @asgi(PATH, is_mount=True, copy_scope=True, public=True)
        async def socket_io(scope: Scope, receive: Receive, send: Send) -> None:
            await app(scope, receive, send)

        self.route = socket_io
        self._listener: asyncio.Task | None = None

    # --- connections ---------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        try:
            who = await resolve(ASGIConnection(environ["asgi.scope"]))
            who.principal.require(access.READ)
        except Exception as exc:
            log.info("socket.io connection refused: %s", exc)
            await self._emit("error", "unauthorized", to=sid)
            return False
        principal = who.principal
        if principal.library_scope is None:
            rooms = [str(principal.user_id)]
        else:
            rooms = [f"{principal.user_id}:{lib}" for lib in principal.library_scope]
        if who.session_id is not None:
            rooms.append(str(who.session_id))
        for room in rooms:
            await self.sio.enter_room(sid, room)
        await self._greet(sid)
        return True

    async def _greet(self, sid: str) -> None:
        """What Immich tells each client that connects: the server's version (the web app shows it,
        "Unknown" without it), then the last version check's release, if one was ever stored. Immich
        sends both to all of the user's sockets; the others heard them when they connected."""
        await self._emit("on_server_version", _builtins(VERSION), to=sid)
        try:
            notice = await system_metadata.release_notice((VERSION.major, VERSION.minor, VERSION.patch))
        except Exception:
            log.exception("could not read the version check state")
            return
        if notice is not None:
            release = dtos.ServerVersionResponseDto(major=notice.release_version[0], minor=notice.release_version[1],
                                                    patch=notice.release_version[2], prerelease=None)
            await self._emit("on_new_release", {"isAvailable": notice.is_available, "checkedAt": notice.checked_at,
                                                "serverVersion": _builtins(VERSION),
                                                "releaseVersion": _builtins(release)}, to=sid)

    def _listening(self, rooms: list[str]) -> bool:
        return any(True for _ in self.sio.manager.get_participants("/", rooms))

    async def _emit(self, event: str, data: Any = None, **target: Any) -> None:
        try:
            await self.sio.emit(event, data, **target)
        except Exception:
            log.exception("socket.io emit of %s failed", event)

    # --- the notice listener -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        self._listener = asyncio.create_task(self._listen(), name="immich-live-events")
        try:
            yield
        finally:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=2)  # never hold up shutdown
            self._listener = None

    async def _listen(self) -> None:
        if not realtime.configured():  # an app built without the server (nothing to hear)
            return
        async for message in realtime.listen():
            try:
                await self.deliver(message)
            except Exception:
                log.exception("could not turn a live notice into socket.io events")

    async def deliver(self, message: dict) -> None:
        kind = message.get("kind")
        if kind == "events":
            await self._changes(message.get("events") or [])
        elif kind == "upload_ready":
            await self._upload_ready(message)
        elif kind == "edit_ready":
            await self._edit_ready(message)
        elif kind == "config_updated":
            await self.config_updated()

    async def config_updated(self) -> None:
        """Tell every client to reload the server config (a system config change)."""
        await self._emit("on_config_update")

    # --- translations --------------------------------------------------------------------

    async def _upload_ready(self, message: dict) -> None:
        rooms = _targets(message["owner_id"], message.get("library_id"))
        partners = await self._partner_rooms(message.get("library_id")) if self.sio.manager.rooms.get("/") else []
        if not self._listening(rooms + partners):
            return
        rows = await asset_views.rows_by_id([uuid.UUID(message["asset_id"])])
        if not rows:  # deleted meanwhile
            return
        row = rows[0]
        # Immich: on_upload_success then AssetUploadReadyV2, both only for an asset its timeline
        # shows (not a live photo's hidden video, not a locked asset).
        if row["visibility"] not in _READY_VISIBILITY:
            return
        view = await asset_views.view(row)
        if self._listening(rooms):
            await self._emit("on_upload_success", _builtins(await self._asset_dtos([row], [view]))[0], to=rooms)
        ready = {"asset": _builtins(sync_mapping.asset_v2(row)),
                 "exif": _builtins(sync_mapping.asset_exif_v1(row, view.exif))}
        await self._emit("AssetUploadReadyV2", ready, to=rooms + partners)

    async def _edit_ready(self, message: dict) -> None:
        """A new rendering's variants exist (an edit, its removal, or a native version change):
        Immich's AssetEditReadyV2, to the owner only as Immich sends it, with the edits now in
        force ([] once back to the original or on a rendering that is not an Immich edit)."""
        rooms = _targets(message["owner_id"], message.get("library_id"))
        if not self._listening(rooms):
            return
        asset_id = uuid.UUID(message["asset_id"])
        rows = await asset_views.rows_by_id([asset_id])
        if not rows:  # deleted meanwhile
            return
        edits = [sync_mapping.asset_edit_v1(e) for e in await asset_versions.edit_rows(asset_id)]
        await self._emit("AssetEditReadyV2", {"asset": _builtins(sync_mapping.asset_v2(rows[0])),
                                              "edit": _builtins(edits)}, to=rooms)

    async def _partner_rooms(self, library_id: str | None) -> list[str]:
        if library_id is None:
            return []
        audiences = await access.library_partner_audiences([uuid.UUID(library_id)])
        return [str(u) for u in audiences.get(uuid.UUID(library_id), [])]

    async def _asset_dtos(self, rows: list, views: list | None = None) -> list:
        views = views or await asset_views.views(rows)
        shown = await faces.people_of_assets([r["id"] for r in rows])
        owners: dict[uuid.UUID, Any] = {}
        out = []
        for row, view in zip(rows, views):
            if row["owner_id"] not in owners:
                owners[row["owner_id"]] = await users.user_by_id(row["owner_id"])
            out.append(mapping.asset(view, owners[row["owner_id"]], shown[row["id"]]))
        return out

    async def _changes(self, events: list[dict]) -> None:
        # One transaction's events, per audience: lists stay lists, repeats collapse.
        groups: dict[tuple[str, str | None], list[dict]] = {}
        for event in events:
            if event.get("owner_id"):
                groups.setdefault((event["owner_id"], event.get("library_id")), []).append(event)
        for (owner, library), group in groups.items():
            rooms = _targets(owner, library)
            if self._listening(rooms):
                await self._announce(group, rooms)
        await self._shared_changes(events)

    async def _shared_changes(self, events: list[dict]) -> None:
        """The same events for those they are shared with: partners (asset changes of the library
        they receive) and album users (changes of the album). Their full sessions only: a key
        limited to some libraries reaches nothing through a share."""
        if not self.sio.manager.rooms.get("/"):  # nobody connected: no audience to look up
            return
        libraries: set[uuid.UUID] = set()
        albums: set[uuid.UUID] = set()
        for event in events:
            if event.get("library_id") and (event["event_type"] in _ASSET_EVENTS or event["entity_type"] == "stack"):
                libraries.add(uuid.UUID(event["library_id"]))
            album = _album_of(event)
            if album is not None:
                albums.add(album)
        partners = await access.library_partner_audiences(sorted(libraries)) if libraries else {}
        album_users = await access.album_user_audiences(sorted(albums)) if albums else {}
        audiences: dict[uuid.UUID, list[dict]] = {}
        for event in events:
            if event.get("library_id") and (event["event_type"] in _ASSET_EVENTS or event["entity_type"] == "stack"):
                for user in partners.get(uuid.UUID(event["library_id"]), []):
                    audiences.setdefault(user, []).append(event)
            album = _album_of(event)
            for user in album_users.get(album, []) if album is not None else []:
                audiences.setdefault(user, []).append(event)
            if event["event_type"] == _ALBUM_USER_REMOVED:
                removed = (event.get("payload") or {}).get("user_id")
                if removed is not None:
                    audiences.setdefault(uuid.UUID(removed), []).append(event)
        for user, group in audiences.items():
            rooms = [str(user)]
            if self._listening(rooms):
                await self._announce(group, rooms)

    async def _announce(self, events: list[dict], rooms: list[str]) -> None:
        found: dict[str, dict[str, None]] = {name: {} for name in
                                             ("updated", "trashed", "restored", "deleted", "albums", "people")}
        stacks = False
        created_notifications: list[uuid.UUID] = []
        for event in events:
            kind, entity, entity_id = event["event_type"], event["entity_type"], event["entity_id"]
            if kind == "asset_updated" or entity == tags.ASSET_TAG:
                # Immich answers a tagging with on_asset_update to the owner (once the tags are
                # written to the sidecar); a tag link's event names the asset and the tagging user.
                found["updated"][entity_id] = None
            elif kind == "asset_trashed":
                found["trashed"][entity_id] = None
            elif kind == "asset_restored":
                found["restored"][entity_id] = None
            elif kind == "asset_deleted":
                found["deleted"][entity_id] = None
            elif kind in _ALBUM_EVENTS:
                found["albums"][entity_id] = None
            elif kind in _ALBUM_ASSET_EVENTS or kind == _ALBUM_USER_REMOVED:
                album = (event.get("payload") or {}).get("album_id")  # a bare UUID
                if album is not None:
                    found["albums"][album] = None
            elif entity == "stack":
                stacks = True
            elif kind in _PERSON_THUMBNAIL_EVENTS:
                found["people"][entity_id] = None
            elif kind == notifications.CREATED:
                created_notifications.append(uuid.UUID(entity_id))
        if found["updated"]:
            rows = await asset_views.rows_by_id([uuid.UUID(i) for i in found["updated"] if i not in found["deleted"]])
            views = await asset_views.views(rows) if rows else []
            # An upload's own processing (metadata, then variants) is no news before the upload is
            # announced: Immich sends nothing for it, and the web app adds the asset it is told of to
            # the timeline, where a tile without a thumbnail shows "Error loading image". Held back
            # only while its pipeline runs: one that ended without a thumbnail (a file that cannot be
            # read, however it failed) must not silence the asset's later changes.
            pending = [r["id"] for r, v in zip(rows, views) if "thumbnail" not in v.files]
            waiting = await tasks.still_processing(pending) if pending else set()
            shown = [(r, v) for r, v in zip(rows, views) if r["id"] not in waiting]
            if shown:
                for dto in await self._asset_dtos([r for r, _ in shown], [v for _, v in shown]):
                    await self._emit("on_asset_update", _builtins(dto), to=rooms)
        if found["trashed"]:
            await self._emit("on_asset_trash", list(found["trashed"]), to=rooms)
        if found["restored"]:
            await self._emit("on_asset_restore", list(found["restored"]), to=rooms)
        for asset_id in found["deleted"]:
            await self._emit("on_asset_delete", asset_id, to=rooms)
        for album_id in found["albums"]:
            await self._emit("on_album_update", album_id, to=rooms)
        if stacks:
            await self._emit("on_asset_stack_update", to=rooms)
        for person_id in found["people"]:
            await self._emit("on_person_thumbnail", person_id, to=rooms)
        for item in await notifications.for_delivery(created_notifications) if created_notifications else []:
            await self._emit("on_notification", _builtins(mapping.notification(item)), to=rooms)
