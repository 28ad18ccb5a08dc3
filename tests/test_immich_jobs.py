"""Immich's Jobs and Queues routes over HTTP, on the session's server and its worker: real uploads,
a paused queue holding the work an administrator started, resume running it, and the refusals.
The domain rules (counts, empty, clear-failed, force) are in tests/domain/test_job_queues.py."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, checked_client

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
PHOTO = Path(__file__).resolve().parents[2] / "shared" / "test-assets" / "formats" / "jpeg" / "el_torcal_rocks.jpeg"
STEPS = ("metadataExtraction", "thumbnailGeneration", "faceDetection")


def _client(server, *, admin: bool) -> httpx.Client:
    from app.domain import users

    async def create():
        user = await users.create_user(f"jobs-{uuid.uuid4().hex[:10]}@example.com", "pw", is_admin=admin)
        return (await users.create_api_key(user["id"], "tests"))[1]

    return checked_client(base_url=f"{server.immich_url}/api", headers={"x-api-key": run(create())}, timeout=60)


def _upload(app: httpx.Client, data: bytes, seed: int) -> str:
    # The same picture with a different tail: a distinct asset (checksum) with the same pixels.
    r = app.post("/assets", files={"assetData": (f"rocks{seed}.jpeg", data + seed.to_bytes(4, "big"), "image/jpeg")},
                 data={"fileCreatedAt": "2024-03-01T10:00:00Z", "fileModifiedAt": "2024-03-01T10:00:00Z"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _counts(app: httpx.Client) -> dict:
    r = app.get("/jobs")
    assert r.status_code == 200, r.text
    return {name: queue["jobCounts"] for name, queue in r.json().items()}


def _wait_idle(app: httpx.Client, names=STEPS, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = _counts(app)
        if all(counts[n]["active"] + counts[n]["waiting"] + counts[n]["delayed"] == 0 for n in names):
            return
        time.sleep(0.3)
    raise AssertionError(f"queues still busy: {_counts(app)}")


def _metadata_tasks(asset_ids: list[str]) -> list:
    from app.db import engine as db

    return run(db.fetch("SELECT asset_id, status FROM tasks WHERE task_type = 'metadata_extract'"
                        " AND asset_id = ANY($1::uuid[])", [uuid.UUID(a) for a in asset_ids]))


@needs_spec
@pytest.mark.skipif(not PHOTO.exists(), reason="the shared test assets are not present")
def test_a_started_queue_waits_while_paused_and_runs_on_resume(server):
    from app.db import engine as db

    with _client(server, admin=True) as admin:
        data = PHOTO.read_bytes()
        assets = [_upload(admin, data, seed) for seed in (1, 2)]
        _wait_idle(admin)
        assert {r["status"] for r in _metadata_tasks(assets)} == {"success"}
        # Forget that metadata was read, so a start without force picks exactly these again.
        run(db.execute("DELETE FROM tasks WHERE task_type = 'metadata_extract' AND asset_id = ANY($1::uuid[])",
                       [uuid.UUID(a) for a in assets]))

        paused = admin.put("/jobs/metadataExtraction", json={"command": "pause"})
        assert paused.status_code == 200 and paused.json()["queueStatus"]["isPaused"] is True
        try:
            started = admin.put("/jobs/metadataExtraction", json={"command": "start", "force": False})
            assert started.status_code == 200, started.text
            queue = admin.get("/queues/metadataExtraction").json()
            assert queue["isPaused"] is True
            assert queue["statistics"]["paused"] >= 2 and queue["statistics"]["waiting"] == 0
            held = admin.get("/queues/metadataExtraction/jobs", params={"status": "paused"})
            assert held.status_code == 200
            # The session's server holds other tests' assets too: the listing (at most 1000) may stop
            # before these two, so the task rows below say that they are held.
            assert held.json() and {job["name"] for job in held.json()} == {"AssetExtractMetadata"}
            time.sleep(1.5)  # a worker that ignored the pause would have run them by now
            assert {r["status"] for r in _metadata_tasks(assets)} == {"pending"}
        finally:
            resumed = admin.put("/queues/metadataExtraction", json={"isPaused": False})
        assert resumed.status_code == 200 and resumed.json()["isPaused"] is False
        _wait_idle(admin)
        assert {r["status"] for r in _metadata_tasks(assets)} == {"success"}
        # An administrator's start ran the step alone: no second thumbnail pass followed it.
        thumbnails = run(db.fetchval("SELECT count(*) FROM tasks WHERE task_type = 'thumbnail_generation'"
                                     " AND asset_id = ANY($1::uuid[])", [uuid.UUID(a) for a in assets]))
        assert thumbnails == 2


@needs_spec
def test_queue_commands_refusals_and_manual_jobs(server):
    with _client(server, admin=True) as admin, _client(server, admin=False) as member:
        queues = admin.get("/queues")
        assert queues.status_code == 200 and len(queues.json()) == 19
        for method, path, body in (("GET", "/jobs", None), ("GET", "/queues", None),
                                   ("PUT", "/jobs/metadataExtraction", {"command": "pause"}),
                                   ("PUT", "/queues/faceDetection", {"isPaused": True}),
                                   ("DELETE", "/queues/faceDetection/jobs", {}),
                                   ("POST", "/jobs", {"name": "person-cleanup"})):
            refused = member.request(method, path, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
        assert admin.get("/queues/faceDetection").json()["isPaused"] is False

        bad = admin.put("/jobs/notAQueue", json={"command": "start"})
        assert bad.status_code == 400
        assert admin.put("/jobs/library", json={"command": "dance"}).status_code == 400
        assert admin.put("/jobs/library", json={"command": "start", "force": "yes"}).status_code == 400
        assert admin.put("/jobs/library", json={}).status_code == 400
        assert admin.put("/queues/library", json={"isPaused": "no"}).status_code == 400
        assert admin.get("/queues/library/jobs", params={"status": "sleeping"}).status_code == 400
        assert admin.get("/queues/nope").status_code == 400
        nope = admin.put("/queues/backgroundTask", json={"isPaused": True})
        assert (nope.status_code, nope.json()["message"]) == (400, "The BackgroundTask queue cannot be paused")
        assert admin.put("/jobs/backgroundTask", json={"command": "start"}).json()["message"] == \
            "Invalid job name: backgroundTask"
        refused = admin.put("/jobs/videoConversion", json={"command": "start"})
        assert refused.status_code == 400 and "no work on this server" in refused.json()["message"]

        assert admin.put("/jobs/sidecar", json={"command": "clear-failed"}).status_code == 200
        assert admin.request("DELETE", "/queues/sidecar/jobs", json={"failed": True}).status_code == 204
        assert admin.post("/jobs", json={"name": "person-cleanup"}).status_code == 204
        assert admin.post("/jobs", json={"name": "tag-cleanup"}).status_code == 204
        unsupported = admin.post("/jobs", json={"name": "backup-database"})
        assert unsupported.status_code == 400 and "backups" in unsupported.json()["message"]
        assert admin.post("/jobs", json={"name": "nonsense"}).status_code == 400
