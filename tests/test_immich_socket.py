"""socket.io live events on the Immich listener, with a real socket.io client over websocket."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest
import socketio
import websocket

from tests.conftest import run
from tests.helpers import session_token
from tests.immich_contract import SPEC_PATH, validate_component
from tests.media import png_bytes
from tests.ports import free_port
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
WAIT = 60.0  # upper bound only: every wait returns as soon as its event is there


class Listener:
    """A socket.io client that records every event it receives."""

    def __init__(self, url: str, headers: dict | None = None):
        self.events: list[tuple[str, tuple]] = []
        self.changed = threading.Condition()
        self.disconnected = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._record)
        self.client.on("disconnect", self._gone)
        self.client.connect(url, headers=headers or {}, transports=["websocket"],
                            socketio_path="/api/socket.io", wait_timeout=10)

    def _record(self, event, *args):
        with self.changed:
            self.events.append((event, args))
            self.changed.notify_all()

    def _gone(self, *args):
        self.disconnected.set()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, event: str, match=lambda data: True, timeout: float = WAIT):
        """The first `event` whose payload satisfies `match` (None stands for no payload)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for name, args in self.events:
                    data = args[0] if args else None
                    if name == event and match(data):
                        return data
                left = deadline - time.monotonic()
                assert left > 0, f"no {event} within {timeout}s; got {[n for n, _ in self.events]}"
                self.changed.wait(left)

    def names(self) -> list[str]:
        with self.changed:
            return [n for n, _ in self.events]

    def close(self):
        self.client.disconnect()


@pytest.fixture
def listeners():
    opened: list[Listener] = []

    def open_(url: str, headers=None) -> Listener:
        opened.append(Listener(url, headers))
        return opened[-1]

    yield open_
    for listener in opened:
        listener.close()


def _cookie(token: str) -> dict:
    return {"Cookie": f"immich_access_token={token}"}


@needs_spec
def test_events_reach_the_owner_through_cookie_and_bearer_sockets_only(server, account, make_account, listeners):
    token = session_token(account)
    by_cookie = listeners(server.immich_url, _cookie(token))  # as the 3.x mobile app connects
    by_bearer = listeners(server.immich_url, {"Authorization": f"Bearer {token}"})
    stranger_account = make_account()
    stranger = listeners(server.immich_url, _cookie(session_token(stranger_account)))

    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("live.png", png_bytes(7101, 64, 48), "image/png")},
                      data=FIELDS)
        assert r.status_code == 201, r.text
        uploaded_at, asset_id = time.monotonic(), r.json()["id"]

        ready = by_cookie.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == asset_id)
        print(f"upload response -> AssetUploadReadyV2: {(time.monotonic() - uploaded_at) * 1000:.0f} ms")
        validate_component("SyncAssetV2", ready["asset"])
        validate_component("SyncAssetExifV1", ready["exif"])
        assert ready["exif"]["assetId"] == asset_id and ready["asset"]["thumbhash"]
        assert ready["asset"]["ownerId"] == str(account.user_id) and ready["asset"]["visibility"] == "timeline"
        success = by_cookie.wait_for("on_upload_success", lambda d: d["id"] == asset_id)
        validate_component("AssetResponseDto", success)
        assert success["originalFileName"] == "live.png" and success["thumbhash"]
        assert by_bearer.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == asset_id)

        assert http.put(f"/api/assets/{asset_id}", json={"isFavorite": True}).status_code == 200
        updated = by_cookie.wait_for("on_asset_update", lambda d: d["id"] == asset_id and d["isFavorite"])
        validate_component("AssetResponseDto", updated)

        assert http.request("DELETE", "/api/assets", json={"ids": [asset_id]}).status_code == 204
        assert by_cookie.wait_for("on_asset_trash", lambda d: asset_id in d) == [asset_id]
        assert http.post("/api/trash/restore/assets", json={"ids": [asset_id]}).status_code == 200
        assert by_cookie.wait_for("on_asset_restore", lambda d: asset_id in d) == [asset_id]

        album = http.post("/api/albums", json={"albumName": "Live", "assetIds": [asset_id]})
        assert album.status_code == 201, album.text
        album_id = album.json()["id"]
        assert by_cookie.wait_for("on_album_update", lambda d: d == album_id) == album_id

        assert http.request("DELETE", "/api/assets", json={"ids": [asset_id], "force": True}).status_code == 204
        assert by_cookie.wait_for("on_asset_delete", lambda d: d == asset_id) == asset_id
        assert by_bearer.wait_for("on_asset_delete", lambda d: d == asset_id) == asset_id

    # The stranger's own change arrives after all of the above, so anything of the owner's
    # would have arrived by now too.
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": stranger_account.api_key}) as http:
        own = http.post("/api/albums", json={"albumName": "Mine"}).json()["id"]
    assert stranger.wait_for("on_album_update") == own
    assert stranger.names() == ["on_server_version", "on_album_update"]  # the first, told on connect
    assert asset_id not in repr(stranger.events) and album_id not in repr(stranger.events)


def _socket_io_frames(url: str, headers: dict) -> list[str]:
    """The frames the server sends to a bare socket.io handshake on the root namespace, read off the
    websocket until it goes quiet. A raw client, because socketio.Client drops a DISCONNECT packet
    that arrives before its connect() call has marked it connected, which a refusal can."""
    ws_url = url.replace("http://", "ws://", 1) + "/api/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(ws_url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=10)
    try:
        frames = [ws.recv()]  # engine.io's open packet
        ws.send("40")  # socket.io CONNECT to "/"
        ws.settimeout(2)
        while not frames[-1].startswith("41"):
            try:
                frames.append(ws.recv())
            except websocket.WebSocketTimeoutException:
                break
        return frames
    finally:
        ws.close()


def test_connect_without_valid_credentials_is_refused(server):
    # As Immich's gateway: the connection is accepted, told "unauthorized", then disconnected.
    for headers in ({}, _cookie("not-a-session"), {"Authorization": "Bearer nope"}, {"x-api-key": "apikey_nope"}):
        frames = _socket_io_frames(server.immich_url, headers)
        assert frames[0].startswith("0{"), frames
        assert frames[1].startswith("40{"), frames
        assert frames[2] == '42["error","unauthorized"]', (headers, frames)
        assert len(frames) == 4 and frames[3].startswith("41"), (headers, frames)  # DISCONNECT


def test_api_key_and_query_session_key_connect(server, account, listeners):
    token = session_token(account)
    for headers, query in (({"x-api-key": account.api_key}, ""), ({}, f"?sessionKey={token}")):
        listener = listeners(server.immich_url + query, headers)
        with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
            album = http.post("/api/albums", json={"albumName": f"Key {uuid.uuid4().hex[:6]}"}).json()["id"]
        assert listener.wait_for("on_album_update", lambda d: d == album) == album
        assert "error" not in listener.names()


def test_changes_are_announced_once_after_commit_and_never_after_rollback(server, account, monkeypatch):
    from app import realtime
    from app.db import engine as db
    from app.domain import access, albums

    published: list[dict] = []
    monkeypatch.setattr(realtime, "publish", published.append)
    principal = access.Principal(account.user_id, False, None, access.ALL_ACTIONS, None)

    async def go():
        async with db.transaction():  # nested transactions: one notice, from the outermost
            await albums.create_album(principal, None, f"one {uuid.uuid4().hex}", None)
            await albums.create_album(principal, None, f"two {uuid.uuid4().hex}", None)
        assert len(published) == 1
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await albums.create_album(principal, None, f"gone {uuid.uuid4().hex}", None)
                raise RuntimeError("roll back")

    run(go())
    assert len(published) == 1
    kinds = [e["event_type"] for e in published[0]["events"]]
    assert published[0]["kind"] == "events" and kinds.count("album_created") == 2
    assert {e["owner_id"] for e in published[0]["events"]} == {str(account.user_id)}


def test_publishing_never_blocks_or_fails_a_request_when_redis_is_down(server, account):
    from app import realtime
    from app.api.state import Shared
    from app.db import engine as db
    from app.settings import load_settings
    from compat.app import create_immich_app

    async def go():
        await db.open_pool(max_size=2)
        realtime.configure(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        try:
            started = time.monotonic()
            for i in range(realtime.QUEUE_SIZE * 3):
                realtime.publish({"kind": "test", "n": i})
            assert time.monotonic() - started < 1.0
            assert realtime._bus.queue.qsize() <= realtime.QUEUE_SIZE
            app = create_immich_app(Shared.build(load_settings()))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://immich") as http:
                started = time.monotonic()
                r = await http.post("/api/albums", json={"albumName": "Redis is down"},
                                    headers={"x-api-key": account.api_key})
                assert r.status_code == 201, r.text
                assert time.monotonic() - started < 5.0
            await asyncio.sleep(0.2)  # the sender keeps failing quietly meanwhile
        finally:
            await realtime.close()
            await db.close_pool()
        assert not realtime.configured()

    run_started = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - run_started < 15.0


@needs_spec
def test_an_edit_is_announced_as_edit_ready_once_its_thumbnail_exists(server, account, listeners):
    """Immich sends AssetEditReadyV2 {asset, edit} to the owner after the edited thumbnails exist
    (and again, with no edits, after they are removed); not an upload ready."""
    sock = listeners(server.immich_url, _cookie(session_token(account)))
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("edit.png", png_bytes(7202, 64, 48), "image/png")},
                      data=FIELDS)
        asset_id = r.json()["id"]
        sock.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == asset_id)
        before = http.get(f"/api/assets/{asset_id}/thumbnail").content

        edits = [{"action": "rotate", "parameters": {"angle": 90}}]
        assert http.put(f"/api/assets/{asset_id}/edits", json={"edits": edits}).status_code == 200
        ready = sock.wait_for("AssetEditReadyV2", lambda d: d["asset"]["id"] == asset_id)
        # the thumbnail the event promises is there already: the rotated one
        assert http.get(f"/api/assets/{asset_id}/thumbnail").content != before
        validate_component("SyncAssetV2", ready["asset"])
        assert ready["asset"]["isEdited"] and (ready["asset"]["width"], ready["asset"]["height"]) == (48, 64)
        [edit] = ready["edit"]
        validate_component("SyncAssetEditV1", edit)
        assert (edit["assetId"], edit["action"], edit["parameters"], edit["sequence"]) == \
            (asset_id, "rotate", {"angle": 90}, 0)

        assert http.delete(f"/api/assets/{asset_id}/edits").status_code == 204
        undone = sock.wait_for("AssetEditReadyV2", lambda d: d["asset"]["id"] == asset_id and not d["asset"]["isEdited"])
        assert undone["edit"] == []
    # the re-renders are not announced as uploads
    assert sock.names().count("AssetUploadReadyV2") == 1 and sock.names().count("on_upload_success") == 1


@needs_spec
def test_tagging_is_an_asset_update_and_metadata_and_memories_send_nothing(server, account, listeners):
    """Immich: tagging/untagging ends in on_asset_update to the owner; asset metadata and
    memories send no live event (the sync stream carries them)."""
    sock = listeners(server.immich_url, _cookie(session_token(account)))
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("tag.png", png_bytes(7303, 32, 32), "image/png")},
                      data=FIELDS)
        asset_id = r.json()["id"]
        sock.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == asset_id)
        [tag] = http.put("/api/tags", json={"tags": ["Live/Tag"]}).json()

        updates = sock.names().count("on_asset_update")
        assert http.put(f"/api/tags/{tag['id']}/assets", json={"ids": [asset_id]}).status_code == 200
        tagged = sock.wait_for("on_asset_update", lambda d: d["id"] == asset_id and
                               sock.names().count("on_asset_update") > updates)
        validate_component("AssetResponseDto", tagged)
        updates = sock.names().count("on_asset_update")
        assert http.request("DELETE", f"/api/tags/{tag['id']}/assets", json={"ids": [asset_id]}).status_code == 200
        sock.wait_for("on_asset_update", lambda d: d["id"] == asset_id and
                      sock.names().count("on_asset_update") > updates)

        seen = len(sock.names())
        put = http.put(f"/api/assets/{asset_id}/metadata", json={"items": [{"key": "mobile-app", "value": {"a": 1}}]})
        assert put.status_code == 200, put.text
        memory = http.post("/api/memories", json={"type": "on_this_day", "data": {"year": 2020},
                                                 "memoryAt": "2020-01-01T00:00:00Z", "assetIds": [asset_id]})
        assert memory.status_code == 201, memory.text
        # a change that does send something, after the two: by then theirs would have arrived
        assert http.put(f"/api/assets/{asset_id}", json={"isFavorite": True}).status_code == 200
        sock.wait_for("on_asset_update", lambda d: d["id"] == asset_id and d["isFavorite"])
    assert sock.names()[seen:] == ["on_asset_update"]


def test_connect_is_told_the_server_version_and_no_release_that_was_never_checked(server, account, listeners):
    """Immich's gateway sends on_server_version on connect (the web app shows "Unknown" without it),
    and on_new_release only when a version check stored a release: this server never checks."""
    sock = listeners(server.immich_url, _cookie(session_token(account)))
    version = httpx.get(f"{server.immich_url}/api/server/version").json()
    told = sock.wait_for("on_server_version", timeout=10)
    assert told == version and (told["major"], told["minor"]) == (3, 1)
    # a change made afterwards arrives after anything sent on connect: by then no release was told
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        album = http.post("/api/albums", json={"albumName": "After connect"}).json()["id"]
    sock.wait_for("on_album_update", lambda d: d == album)
    assert sock.names().count("on_server_version") == 1 and "on_new_release" not in sock.names()


@needs_spec
def test_upload_success_comes_once_the_thumbnail_exists_and_only_for_timeline_assets(server, account, listeners):
    """The web app adds the tile on on_upload_success and loads its thumbnail at once; Immich sends it
    (then AssetUploadReadyV2) after the thumbnails exist, and not for a hidden asset."""
    sock = listeners(server.immich_url, _cookie(session_token(account)))
    thumbnail_when_told: dict[str, list[int]] = {}

    def checking(event):
        # Asked in the client's own handler, as the web app does when it adds the tile.
        def handler(data):
            sock._record(event, data)
            status = httpx.get(f"{server.immich_url}/api/assets/{data['id']}/thumbnail",
                               headers={"x-api-key": account.api_key}).status_code
            thumbnail_when_told.setdefault(data["id"], []).append(status)
        return handler

    for event in ("on_upload_success", "on_asset_update"):  # each adds the asset to the web timeline
        sock.client.on(event, checking(event))
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        hidden = http.post("/api/assets", data={**FIELDS, "visibility": "hidden"},
                           files={"assetData": ("hidden.png", png_bytes(7404, 40, 30), "image/png")})
        assert hidden.status_code == 201, hidden.text
        hidden_id = hidden.json()["id"]
        deadline = time.monotonic() + WAIT
        while http.get(f"/api/assets/{hidden_id}/thumbnail").status_code != 200:
            assert time.monotonic() < deadline, "the hidden asset was never processed"
            time.sleep(0.2)

        r = http.post("/api/assets", files={"assetData": ("shown.png", png_bytes(7405, 40, 30), "image/png")},
                      data=FIELDS)
        asset_id = r.json()["id"]
        sock.wait_for("on_upload_success", lambda d: d["id"] == asset_id)
        thumbnail = http.get(f"/api/assets/{asset_id}/thumbnail")  # right away, as the web app does
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"].startswith("image/")
        sock.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == asset_id)
        told = sum(1 for name, args in sock.events
                   if name in ("on_upload_success", "on_asset_update") and args[0]["id"] == asset_id)
        while len(thumbnail_when_told.get(asset_id, [])) < told:
            time.sleep(0.05)  # the handlers' own requests are still on their way
    with sock.changed:
        order = [name for name, args in sock.events if name in ("on_upload_success", "AssetUploadReadyV2")
                 and asset_id in (args[0].get("id"), (args[0].get("asset") or {}).get("id"))]
    assert order == ["on_upload_success", "AssetUploadReadyV2"]
    assert set(thumbnail_when_told[asset_id]) == {200}, thumbnail_when_told
    assert not [name for name, args in sock.events if name in ("on_upload_success", "AssetUploadReadyV2")
                and hidden_id in repr(args)]


def test_an_asset_not_yet_announced_is_no_asset_update(server, account):
    """Processing writes asset_updated events (metadata, then variants) before the upload is
    announced; told of them, the web app would add a tile with no thumbnail yet. Immich sends nothing
    for them, so the asset is first heard of once its thumbnail exists."""
    from app.db import engine as db
    from compat.realtime import LiveEvents
    from tests.domain import factories

    live = LiveEvents()
    sent: list[tuple[str, object]] = []

    async def capture(event, data=None, **target):
        sent.append((event, data))

    live._emit = capture

    async def go():
        from app.domain import tasks

        user = await db.fetchrow("SELECT * FROM users WHERE id = $1", account.user_id)

        async def uploaded():
            asset = await factories.new_asset(user)
            async with db.transaction() as conn:  # its pipeline's next step, as processing leaves it
                task_id = await tasks.create(conn, asset, "thumbnail_generation")
            update = [{"event_type": "asset_updated", "entity_type": "asset", "entity_id": str(asset["id"]),
                       "owner_id": str(account.user_id), "library_id": str(asset["library_id"])}]
            return asset, task_id, update

        asset, task_id, update = await uploaded()
        await live._announce(update, [str(account.user_id)])
        assert sent == []
        await factories.new_asset_file(asset)
        await live._announce(update, [str(account.user_id)])
        assert [(event, data["id"]) for event, data in sent] == [("on_asset_update", str(asset["id"]))]

        # A pipeline that ended without a thumbnail (an unreadable file) silences nothing after it.
        sent.clear()
        broken, task_id, update = await uploaded()
        await tasks.finish(task_id, ok=False, error="cannot read the file")
        await live._announce(update, [str(account.user_id)])
        assert [(event, data["id"]) for event, data in sent] == [("on_asset_update", str(broken["id"]))]

    run(go())
