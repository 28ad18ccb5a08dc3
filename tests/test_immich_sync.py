"""The Immich sync stream as the 3.x mobile app drives it: cookie login, pre-sync ack deletes,
a full first stream, acks of the last line of each same-type run, then only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.helpers import session_token, wait_processed
from tests.immich_contract import SPEC_PATH, _components
from tests.media import mp4_bytes, png_bytes
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
PORTRAIT = Path(__file__).resolve().parents[2] / "shared" / "test-assets" / "metadata" / "faces" / "portrait.jpg"

# What the 3.1 app requests from a >= 3.0.0 server.
APP_TYPES = ["AuthUsersV1", "UsersV1", "AssetsV2", "AssetExifsV1", "AssetEditsV1", "AssetMetadataV1", "PartnersV1",
             "PartnerAssetsV2", "PartnerAssetExifsV1", "AlbumsV2", "AlbumUsersV1", "AlbumAssetsV2",
             "AlbumAssetExifsV1", "AlbumToAssetsV1", "MemoriesV1", "MemoryToAssetsV1", "StacksV1", "PartnerStacksV1",
             "UserMetadataV1", "PeopleV1", "AssetFacesV2", "AssetOcrV1"]
NO_DATA = {"SyncAckV1", "SyncResetV1", "SyncCompleteV1"}


def _validate_line(line: dict) -> None:
    from jsonschema import Draft7Validator

    assert set(line) == {"type", "data", "ack"} and line["ack"].startswith(line["type"] + "|"), line
    if line["type"] in NO_DATA:
        assert line["data"] == {}
        return
    schema = {"$ref": f"#/components/schemas/Sync{line['type']}", "components": _components()}
    Draft7Validator(schema).validate(line["data"])


class App:
    """What the mobile app does, over one session cookie."""

    def __init__(self, server, token: str):
        self.http = httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60)

    def stream(self, types=APP_TYPES, **extra) -> list[dict]:
        response = self.http.post("/api/sync/stream", json={"types": types, **extra})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/jsonlines+json")
        lines = [json.loads(raw) for raw in response.text.splitlines() if raw]
        for line in lines:
            _validate_line(line)
        return lines

    def ack(self, lines: list[dict]) -> None:
        """One ack per run of same-type lines: the last one (kSyncEventBatchSize chunks aside)."""
        acks = [line["ack"] for i, line in enumerate(lines) if i + 1 == len(lines) or lines[i + 1]["type"] != line["type"]]
        assert self.http.post("/api/sync/ack", json={"acks": acks}).status_code == 204

    def sync(self) -> list[dict]:
        lines = self.stream()
        self.ack(lines)
        return lines

    def upload(self, account, name: str, data: bytes, **fields) -> str:
        r = self.http.post("/api/assets", files={"assetData": (name, data, "application/octet-stream")},
                           data={**FIELDS, "deviceAssetId": name, **fields})
        assert r.status_code == 201, r.text
        import uuid

        import shortuuid

        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(r.json()["id"])))
        return r.json()["id"]


def _of(lines, entity_type) -> list[dict]:
    return [line["data"] for line in lines if line["type"] == entity_type]


def _types(lines) -> list[str]:
    return [line["type"] for line in lines]


def test_mobile_session_end_to_end(server, account, make_account):
    app = App(server, session_token(account))
    # The app's pre-sync housekeeping.
    for types in (["AlbumV1"], ["AssetV1", "AssetV2"]):
        assert app.http.request("DELETE", "/api/sync/ack", json={"types": types}).status_code == 204
    photo = app.upload(account, "first.png", png_bytes(4001, 64, 48))
    album = app.http.post("/api/albums", json={"albumName": "Trip", "assetIds": [photo]}).json()["id"]

    first = app.stream()
    assert first[-1]["type"] == "SyncCompleteV1" and _types(first).count("SyncCompleteV1") == 1
    kinds = _types(first)
    for expected in ("AuthUserV1", "UserV1", "AssetV2", "AssetExifV1", "AlbumV2", "AlbumUserV1", "AlbumToAssetV1",
                     "UserMetadataV1"):
        assert expected in kinds, expected
    # Parents before children, so the app's local foreign keys hold.
    order = ["AuthUserV1", "UserV1", "AssetV2", "AlbumV2", "AlbumUserV1", "AlbumToAssetV1", "AssetExifV1"]
    assert [kinds.index(k) for k in order] == sorted(kinds.index(k) for k in order)
    assert [a["id"] for a in _of(first, "AssetV2")] == [photo]
    assert _of(first, "AlbumToAssetV1") == [{"albumId": album, "assetId": photo}]
    assert _of(first, "AlbumUserV1") == [{"albumId": album, "userId": str(account.user_id), "role": "owner"}]
    prefs = _of(first, "UserMetadataV1")[0]
    assert prefs["key"] == "preferences" and prefs["value"]["people"]["minimumFaces"] == 3
    app.ack(first)
    assert _types(app.sync()) == ["SyncCompleteV1"]

    # A live photo pair: only the new rows come next.
    video = app.upload(account, "live.mp4", mp4_bytes(4004), visibility="hidden")
    still = app.upload(account, "live.png", png_bytes(4002, 32, 32), livePhotoVideoId=video)
    nxt = app.sync()
    assert sorted(a["id"] for a in _of(nxt, "AssetV2")) == sorted([video, still])
    by_id = {a["id"]: a for a in _of(nxt, "AssetV2")}
    assert by_id[still]["livePhotoVideoId"] == video and by_id[video]["visibility"] == "hidden"
    assert "AlbumV2" not in _types(nxt)

    # Trash is an AssetV2 with deletedAt; restore clears it; a permanent delete is AssetDeleteV1.
    assert app.http.request("DELETE", "/api/assets", json={"ids": [still]}).status_code == 204
    trashed = app.sync()
    assert [a["deletedAt"] is not None for a in _of(trashed, "AssetV2") if a["id"] == still] == [True]
    assert app.http.post("/api/trash/restore/assets", json={"ids": [still]}).status_code == 200
    assert [a["deletedAt"] for a in _of(app.sync(), "AssetV2")] == [None]
    assert app.http.request("DELETE", "/api/assets", json={"ids": [still], "force": True}).status_code == 204
    gone = app.sync()
    assert _of(gone, "AssetDeleteV1") == [{"assetId": still}] and "AssetV2" not in _types(gone)

    # Album changes, each once.
    assert app.http.patch(f"/api/albums/{album}", json={"albumName": "Trip 2"}).status_code == 200
    renamed = app.sync()
    assert [a["name"] for a in _of(renamed, "AlbumV2")] == ["Trip 2"]
    assert app.http.request("DELETE", f"/api/albums/{album}/assets", json={"ids": [photo]}).status_code == 200
    unlinked = app.sync()
    assert _of(unlinked, "AlbumToAssetDeleteV1") == [{"albumId": album, "assetId": photo}]
    assert app.http.delete(f"/api/albums/{album}").status_code == 204
    dropped = app.sync()
    assert _of(dropped, "AlbumDeleteV1") == [{"albumId": album}]
    assert _of(dropped, "AlbumUserDeleteV1") == [{"albumId": album, "userId": str(account.user_id)}]
    # Children's deletes come before their parents'.
    assert _types(dropped).index("AlbumUserDeleteV1") < _types(dropped).index("AlbumDeleteV1")

    # Another user's data never appears.
    other = make_account()
    App(server, session_token(other, "other-pw")).upload(other, "theirs.png", png_bytes(4003))
    # Users are shared knowledge on a server (UsersV1 lists them all); their photos are not.
    assert set(_types(app.sync())) == {"UserV1", "SyncCompleteV1"}

    # A second session of the same user keeps its own checkpoints: it starts from the beginning.
    second = App(server, session_token(account, "session-pw"))
    assert sorted(a["id"] for a in _of(second.stream(), "AssetV2")) == sorted([photo, video])
    assert _types(app.stream()) == ["SyncCompleteV1"]

    # A pending reset (set through the sessions API) answers SyncResetV1 alone; acking it starts over.
    sessions = app.http.get("/api/sessions").json()
    current = next(s for s in sessions if s["current"])
    assert app.http.put(f"/api/sessions/{current['id']}", json={"isPendingSyncReset": True}).status_code == 200
    reset = app.stream()
    assert reset == [{"type": "SyncResetV1", "data": {}, "ack": "SyncResetV1|reset"}]
    assert app.http.post("/api/sync/ack", json={"acks": ["SyncResetV1|reset"]}).status_code == 204
    assert app.http.get("/api/sync/ack").json() == []
    assert sorted(a["id"] for a in _of(app.stream(), "AssetV2")) == sorted([photo, video])
    # `reset: true` in the request does the same at once.
    app.sync()
    assert len(_of(app.stream(reset=True), "AssetV2")) == 2


def test_faces_and_people_stream(server, account):
    if not PORTRAIT.exists():
        pytest.skip("../shared/test-assets is absent")
    app = App(server, session_token(account))
    app.sync()
    asset = app.upload(account, "portrait.jpg", PORTRAIT.read_bytes())
    lines = app.sync()
    faces = _of(lines, "AssetFaceV2")
    assert len(faces) == 2 and all(f["assetId"] == asset and f["personId"] is None for f in faces)
    person = app.http.post("/api/people", json={"name": "Marie"}).json()["id"]
    assert app.http.put(f"/api/faces/{faces[0]['id']}", json={"id": person}).status_code == 200
    changed = app.sync()
    assert [p["id"] for p in _of(changed, "PersonV1")] == [person]
    assert [(f["id"], f["personId"]) for f in _of(changed, "AssetFaceV2")] == [(faces[0]["id"], person)]
    assert _types(changed).index("PersonV1") < _types(changed).index("AssetFaceV2")
    assert app.http.delete(f"/api/faces/{faces[1]['id']}").status_code == 204
    assert app.http.delete(f"/api/people/{person}").status_code == 204
    deleted = app.sync()
    assert _of(deleted, "AssetFaceDeleteV1") == [{"assetFaceId": faces[1]["id"]}]
    assert _of(deleted, "PersonDeleteV1") == [{"personId": person}]
    assert _types(deleted).index("AssetFaceDeleteV1") < _types(deleted).index("PersonDeleteV1")


def test_sync_refuses_api_keys_and_deprecated_types(server, account):
    key = httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=30)
    for method, path in (("POST", "/api/sync/stream"), ("GET", "/api/sync/ack"), ("POST", "/api/sync/ack"),
                         ("DELETE", "/api/sync/ack")):
        response = key.request(method, path, json={"types": ["AssetsV2"], "acks": []})
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["message"] == "Sync endpoints cannot be used with API keys"
    app = App(server, session_token(account))
    old = app.http.post("/api/sync/stream", json={"types": ["AssetsV1"]})
    assert old.status_code == 400 and old.json()["message"] == "SyncRequestType.AssetsV1 is deprecated, use AssetsV2 instead"
    assert app.http.post("/api/sync/ack", json={"acks": ["NotAType|1"]}).status_code == 400
    # Types this server has no entities for still end in SyncCompleteV1.
    assert _types(app.stream(["PartnersV1", "MemoriesV1", "AssetOcrV1", "AssetEditsV1"])) == ["SyncCompleteV1"]

