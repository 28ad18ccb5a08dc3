"""Immich memories over HTTP: a photo taken on this day three years ago becomes a memory once the
daily job runs, the routes answer with the spec's bodies, and the sync stream carries the memory
and its photo (and their deletes)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest

from tests.conftest import run
from tests.helpers import session_token
from tests import test_immich_sync
from tests.immich_contract import SPEC_PATH, checked_client, validate_component
from tests.media import png_bytes
from tests.test_immich_sync import App, _of

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


# The spec names these lines' schemas SyncMemoryAsset*, not Sync<type>.
_SCHEMAS = {"MemoryToAssetV1": "SyncMemoryAssetV1", "MemoryToAssetDeleteV1": "SyncMemoryAssetDeleteV1"}


@pytest.fixture
def memory_lines_checked(monkeypatch):
    checked = test_immich_sync._validate_line

    def validate_line(line: dict) -> None:
        if line["type"] in _SCHEMAS:
            assert line["ack"].startswith(line["type"] + "|")
            validate_component(_SCHEMAS[line["type"]], line["data"])
        else:
            checked(line)

    monkeypatch.setattr(test_immich_sync, "_validate_line", validate_line)


def _three_years_ago(today: date) -> date:
    try:
        return today.replace(year=today.year - 3)
    except ValueError:  # 29 February: the job's window (three days either side) holds the 28th
        return today.replace(year=today.year - 3, day=28)


def test_a_photo_from_three_years_ago_is_remembered_and_synced(server, account, memory_lines_checked):
    from app.domain import memories

    today = datetime.now(timezone.utc).date()
    taken = _three_years_ago(today)
    shown_on = taken.replace(year=today.year).isoformat()
    token = session_token(account)
    app = App(server, token)
    when = f"{taken.isoformat()}T12:00:00.000Z"
    photo = app.upload(account, "then.png", png_bytes(2301), fileCreatedAt=when, fileModifiedAt=when)
    app.sync()  # the client holds everything but memories

    run(memories.generate_for_user(account.user_id, today))

    with checked_client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60) as http:
        listed = http.get("/api/memories", params={"for": shown_on})
        assert listed.status_code == 200, listed.text
        [memory] = [m for m in listed.json() if m["data"] == {"year": taken.year}]
        assert [a["id"] for a in memory["assets"]] == [photo]
        assert memory["type"] == "on_this_day" and memory["isSaved"] is False
        assert memory["showAt"].startswith(shown_on) and "seenAt" not in memory
        assert http.get("/api/memories/statistics", params={"for": shown_on}).json()["total"] >= 1
        assert http.get("/api/memories", params={"for": "2024-02-30"}).json()["message"] == "Validation failed"
        assert http.get("/api/memories", params={"order": "sideways"}).status_code == 400

        memory_id = memory["id"]
        saved = http.put(f"/api/memories/{memory_id}", json={"isSaved": True, "seenAt": "2026-01-02T03:04:05.000Z"})
        assert saved.status_code == 200 and saved.json()["isSaved"] is True
        assert saved.json()["seenAt"].startswith("2026-01-02T03:04:05")
        again = http.put(f"/api/memories/{memory_id}/assets", json={"ids": [photo, str(uuid.uuid4())]})
        assert [(r["success"], r.get("error")) for r in again.json()] == [(False, "duplicate"),
                                                                          (False, "no_permission")]
        missing = http.get(f"/api/memories/{uuid.uuid4()}")
        assert (missing.status_code, missing.json()["message"]) == (400, "Not found or no memory.read access")

        lines = app.sync()
        [synced] = _of(lines, "MemoryV1")
        assert (synced["id"], synced["isSaved"], synced["data"]) == (memory_id, True, {"year": taken.year})
        assert _of(lines, "MemoryToAssetV1") == [{"memoryId": memory_id, "assetId": photo}]
        kinds = [line["type"] for line in lines]
        assert kinds.index("MemoryV1") < kinds.index("MemoryToAssetV1")

        taken_out = http.request("DELETE", f"/api/memories/{memory_id}/assets", json={"ids": [photo, photo]})
        assert [(r["success"], r.get("error")) for r in taken_out.json()] == [(True, None), (False, "not_found")]
        assert http.get(f"/api/memories/{memory_id}").json()["assets"] == []
        lines = app.sync()
        assert _of(lines, "MemoryToAssetDeleteV1") == [{"memoryId": memory_id, "assetId": photo}]

        assert http.delete(f"/api/memories/{memory_id}").status_code == 204
        lines = app.sync()
        assert _of(lines, "MemoryDeleteV1") == [{"memoryId": memory_id}]
        assert http.get(f"/api/memories/{memory_id}").status_code == 400
