"""Faces and people end to end: real models in the worker, gumnut-sdk as the client.

One library holds portrait.jpg (two people) stored in all eight EXIF orientations:
the same two faces, upright, eight times over. Detection must report the same
display-space boxes for each, and clustering must find exactly two people.
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import gumnut
import pytest

from tests.conftest import Account, run
from tests.helpers import upload, wait_processed

PORTRAIT = Path(__file__).resolve().parents[2] / "shared" / "test-assets" / "metadata" / "faces" / "portrait.jpg"
pytestmark = pytest.mark.skipif(not PORTRAIT.exists(), reason="../shared/test-assets is absent")


def _oriented_copies() -> dict[int, bytes]:
    """portrait.jpg stored so that each EXIF orientation 1-8 displays the same upright picture."""
    import pyvips

    upright = pyvips.Image.new_from_file(str(PORTRAIT)).autorot()
    flips = {
        "none": lambda i: i, "h": lambda i: i.fliphor(), "v": lambda i: i.flipver(), "r90": lambda i: i.rot90(),
        "r180": lambda i: i.rot180(), "r270": lambda i: i.rot270(), "t": lambda i: i.rot90().fliphor(),
        "tv": lambda i: i.rot90().flipver(),
    }
    target = upright.numpy() if hasattr(upright, "numpy") else None
    out = {}
    for orientation in range(1, 9):
        for transform in flips.values():
            stored = transform(upright).copy()
            stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
            data = stored.jpegsave_buffer(Q=95)
            shown = pyvips.Image.new_from_buffer(data, "").autorot()
            if (shown.width, shown.height) != (upright.width, upright.height):
                continue
            if target is not None and abs(shown.numpy().astype(int) - target.astype(int)).mean() > 4:
                continue
            out[orientation] = data
            break
        assert orientation in out, f"could not build orientation {orientation}"
    return out


def _iou(a: dict, b: dict) -> float:
    ix = max(0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = ix * iy
    return inter / (a["w"] * a["h"] + b["w"] * b["h"] - inter)


def _wait(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _face_state(face_id: str) -> str:
    from app.db import engine as db
    from app.api import ids

    return run(db.fetchval("SELECT cluster_state FROM faces WHERE id = $1", ids.decode(ids.FACE, face_id)))


@pytest.fixture(scope="module")
def library(server, face_model_dir):
    """An account with the eight oriented copies, processed and clustered."""
    from tests.conftest import Gumnut

    from app.domain import users

    email = f"faces-{uuid.uuid4().hex[:8]}@example.com"

    async def create():
        user = await users.create_user(email, "secret-pw")
        _, secret = await users.create_api_key(user["id"], "tests")
        return user["id"], secret

    user_id, secret = run(create())
    account = Account(email, user_id, secret,
                      Gumnut(api_key=secret, base_url=server.base_url, max_retries=0), server.base_url)
    assets = {}
    for orientation, data in _oriented_copies().items():
        response = upload(account, f"portrait-o{orientation}.jpg", data, content_type="image/jpeg")
        assert response.status_code == 201
        assets[orientation] = response.parse().id
    for asset_id in assets.values():
        tasks = wait_processed(account, asset_id)
        detection = [t for t in tasks if t.task_type == "face_detection"]
        assert detection and detection[0].status == "success" and detection[0].outcome == "ran", [(t.task_type, t.status, t.result, t.error_message) for t in tasks]
    client = account.client

    def two_people():
        found = list(client.people.list(name_filter="all"))
        return found if len(found) == 2 and all(p.asset_count == 8 for p in found) else None

    try:
        _wait(two_people, what="two people with eight photos each")
    except AssertionError:
        state = [(p.id, p.asset_count) for p in client.people.list(name_filter="all")]
        faces = [(f.asset_id, f.person_id, f.bounding_box) for f in client.faces.list(limit=100)]
        raise AssertionError(f"people {state}; faces {faces}") from None
    return account, assets


def test_boxes_are_in_display_space_for_every_orientation(library):
    account, assets = library
    by_orientation = {}
    for orientation, asset_id in assets.items():
        asset = account.client.assets.retrieve(asset_id, include=["faces"])
        assert (asset.width, asset.height) == (840, 700)
        assert asset.faces is not None and len(asset.faces) == 2
        by_orientation[orientation] = [f.bounding_box for f in asset.faces]
    reference = by_orientation[1]
    for orientation, boxes in by_orientation.items():
        for box in reference:
            best = max(_iou(box, other) for other in boxes)
            assert best > 0.8, (orientation, box, boxes)


def test_clustering_finds_the_two_people_with_metrics_and_candidates(library):
    account, assets = library
    client = account.client
    people = list(client.people.list(name_filter="all", include=["cluster_metrics"]))
    assert len(people) == 2
    for person in people:
        assert person.cluster_metrics is not None
        assert person.cluster_metrics.face_count == 8
        assert 0 <= person.cluster_metrics.pairwise_mean <= person.cluster_metrics.pairwise_p90 < 0.5
        assert person.thumbnail_face_id is not None and person.asset_urls["thumbnail"].url
    # Default listing: named, non-hidden people only.
    assert list(client.people.list()) == []
    face = next(iter(client.faces.list(person_id=people[0].id, include=["cluster_assignment"])))
    assignment = face.cluster_assignment
    assert assignment.distance_to_person is not None and assignment.distance_to_person < 0.5
    assert [c.person_id for c in assignment.candidates] == [people[1].id]
    assert assignment.candidates[0].distance > assignment.distance_to_person
    # The person filter on assets.
    photos = list(client.assets.list(person_ids=[people[0].id], limit=100))
    assert sorted(a.id for a in photos) == sorted(assets.values())
    with_people = client.assets.retrieve(assets[1], include=["people"])
    assert sorted(p.id for p in with_people.people) == sorted(p.id for p in people)
    # The thumbnail is a real JPEG face crop.
    from PIL import Image

    import httpx

    response = httpx.get(people[0].asset_urls["thumbnail"].url, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (250, 250)


def test_reprocessing_faces_keeps_their_ids_and_people(library, server):
    account, assets = library
    client = account.client
    before = sorted((f.id, f.person_id, tuple(f.bounding_box.values())) for f in client.faces.list(limit=100))
    library_id = client.libraries.list()[0].id
    done = server.cli("reprocess", "--library", library_id, "--what", "faces")
    assert done.returncode == 0, done.stderr
    assert "reprocessed 8 assets, 0 failed" in done.stderr
    after = sorted((f.id, f.person_id, tuple(f.bounding_box.values())) for f in client.faces.list(limit=100))
    assert after == before


def test_manual_choices_survive_reclustering(library, make_account):
    account, assets = library
    client = account.client
    alice, bob = sorted(client.people.list(name_filter="all"), key=lambda p: p.id)
    alice = client.people.update(alice.id, name="  Alice ")
    assert alice.name == "Alice"
    assert [p.id for p in client.people.list()] == [alice.id]
    with pytest.raises(gumnut.ConflictError):
        client.people.update(bob.id, name="alice")
    # Find-or-create matches the name case-insensitively (200), an unnamed create is always new (201).
    found = client.people.with_raw_response.create(name="ALICE")
    assert found.status_code == 200 and found.parse().id == alice.id
    fresh = client.people.with_raw_response.create(is_favorite=True)
    assert fresh.status_code == 201
    client.people.delete(fresh.parse().id)

    # Detach a face: the next clustering pass looks at it again but never puts it back into Alice.
    face = next(iter(client.faces.list(person_id=alice.id)))
    detached = client.faces.update(face.id, person_id=None)
    assert detached.person_id is None
    _wait(lambda: _face_state(face.id) == "considered", what="the detached face to be clustered again")
    assert client.faces.retrieve(face.id).person_id is None
    assert client.people.retrieve(alice.id).asset_count == 7
    # The user's own assignment sticks.
    assert client.faces.update(face.id, person_id=alice.id).person_id == alice.id

    # Bulk rename: a swap collides with the names left by earlier items, and nothing changes.
    with pytest.raises(gumnut.ConflictError):
        client.people.bulk_update_people(updates=[
            {"id": bob.id, "change": {"name": "Alice"}}, {"id": alice.id, "change": {"name": "Bob"}},
        ])
    assert client.people.retrieve(bob.id).name is None
    client.people.bulk_update_people(updates=[{"id": bob.id, "change": {"name": "Bob", "is_favorite": True}}])
    assert client.people.retrieve(bob.id).is_favorite is True

    # Another user sees none of it.
    other = make_account().client
    with pytest.raises(gumnut.NotFoundError):
        other.people.retrieve(alice.id)
    with pytest.raises(gumnut.NotFoundError):
        other.faces.retrieve(face.id)
    with pytest.raises(gumnut.NotFoundError):
        other.faces.update(face.id, person_id=None)
    assert list(other.people.list(name_filter="all")) == []

    # Merge Bob into Alice: every face moves, Bob is gone; a face event names both people.
    merged = client.people.merge(alice.id, source_person_ids=[bob.id])
    assert merged.id == alice.id
    assert len(list(client.faces.list(person_id=alice.id, limit=100))) == 16
    with pytest.raises(gumnut.NotFoundError):
        client.people.retrieve(bob.id)
    events, cursor = [], None
    while True:
        page = client.events.get(entity_types=["face", "person"], limit=200,
                                 **({"after_cursor": cursor} if cursor else {}))
        events += page.data
        if not page.has_more:
            break
        cursor = page.next_cursor
    kinds = {e.event_type for e in events}
    assert {"person_created", "person_updated", "person_deleted", "face_created", "face_updated"} <= kinds
    moved = [e for e in events if e.event_type == "face_updated" and (e.payload or {}).get("previous_person_id") == bob.id]
    assert len(moved) == 8 and all(e.payload["person_id"] == alice.id for e in moved)

    # Deleting Alice unassigns her faces; clustering regroups them (nobody is named any more).
    # The delete queues that clustering, which may already have put some in a new person here.
    client.people.delete(alice.id)
    assert all(f.person_id != alice.id for f in client.faces.list(limit=100))
    regrouped = _wait(lambda: [p for p in client.people.list(name_filter="all") if p.asset_count == 8] or None,
                      what="faces to be clustered into people again")
    assert len(regrouped) >= 1


def test_manual_face_boxes(library):
    account, assets = library
    client = account.client
    face = client.faces.create(asset_id=assets[1], bounding_box={"x": 10, "y": 20, "w": 100, "h": 120})
    assert (face.source, face.confidence, face.person_id) == ("manual", None, None)
    assert face.bounding_box == {"x": 10, "y": 20, "w": 100, "h": 120}
    with pytest.raises(gumnut.UnprocessableEntityError):
        client.faces.create(asset_id=assets[1], bounding_box={"x": 800, "y": 0, "w": 100, "h": 100})
    client.faces.delete(face.id)
    with pytest.raises(gumnut.NotFoundError):
        client.faces.retrieve(face.id)


def test_merging_faceless_unnamed_people_answers_204(account):
    """Primary and source unnamed with no faces: the merge deletes both and answers 204 with no body."""
    client = account.client
    primary, source = client.people.create(), client.people.create()
    raw = client.people.with_raw_response.merge(primary.id, source_person_ids=[source.id])
    assert raw.status_code == 204 and raw.http_response.content == b""
    for gone in (primary.id, source.id):
        with pytest.raises(gumnut.NotFoundError):
            client.people.retrieve(gone)


def test_people_list_include_hidden_takes_the_boolean_forms(account):
    """include_hidden is declared a boolean: true/false/1/0 in any case, as the SDK's True/False; anything else is a
    422 naming the query parameter."""
    client = account.client
    shown, hidden = client.people.create(name="Shown"), client.people.create(name="Hidden", is_hidden=True)
    assert {p.id for p in client.people.list()} == {shown.id}
    assert {p.id for p in client.people.list(include_hidden=True)} == {shown.id, hidden.id}
    assert {p.id for p in client.people.list(include_hidden=False)} == {shown.id}
    with account.http() as http:
        for value, expected in (("true", {shown.id, hidden.id}), ("TRUE", {shown.id, hidden.id}),
                                ("1", {shown.id, hidden.id}), ("false", {shown.id}), ("False", {shown.id}),
                                ("0", {shown.id})):
            listed = http.get("/api/people", params={"include_hidden": value})
            assert listed.status_code == 200 and {p["id"] for p in listed.json()["data"]} == expected, value
        for value in ("maybe", ""):
            refused = http.get("/api/people", params={"include_hidden": value})
            assert refused.status_code == 422, value
            assert refused.json()["detail"][0]["loc"] == ["query", "include_hidden"]
