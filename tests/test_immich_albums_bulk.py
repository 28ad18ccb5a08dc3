"""Immich's `PUT /api/albums/assets`: many assets into many albums, one verdict for the lot. Albums
the caller may not add to (a viewer's, a stranger's) take no part; every 2xx body is checked
against the 3.1.0 spec."""

from __future__ import annotations

import uuid

import pytest

from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_media import _upload

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, account):
    return checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=30)


def _album(http, name: str, assets=(), viewer=None) -> str:
    body = {"albumName": name, "assetIds": list(assets)}
    if viewer is not None:
        body["albumUsers"] = [{"userId": str(viewer.user_id), "role": "viewer"}]
    r = http.post("/api/albums", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _count(http, album: str) -> int:
    return http.get(f"/api/albums/{album}").json()["assetCount"]


@needs_spec
def test_bulk_add_to_own_albums_then_duplicates_and_refusals(server, account, make_account):
    bob, stranger = make_account(), make_account()
    first, second = (_upload(server, account, f"bulk{i}.png", png_bytes(8800 + i)) for i in range(2))
    bobs = _upload(server, bob, "bobs-bulk.png", png_bytes(8810))
    with _client(server, account) as alice, _client(server, bob) as b, _client(server, stranger) as s:
        holiday = _album(alice, "Bulk holiday", [first], viewer=bob)
        empty = _album(alice, "Bulk empty")

        def add(http, albums, assets):
            r = http.put("/api/albums/assets", json={"albumIds": albums, "assetIds": assets})
            assert r.status_code == 200, r.text
            return r.json()

        # One already in the first album does not spoil the rest: success, and both albums hold both.
        assert add(alice, [holiday, empty], [first, second]) == {"success": True}
        assert _count(alice, holiday) == _count(alice, empty) == 2
        assert add(alice, [holiday, empty], [second, first, second]) == {"success": False, "error": "duplicate"}

        # A viewer adds nothing to the album shared with it; its own album still takes its photo.
        assert add(b, [holiday], [bobs]) == {"success": False, "error": "no_permission"}
        mine = _album(b, "Bob's own")
        assert add(b, [holiday, mine], [bobs]) == {"success": True}
        assert _count(alice, holiday) == 2 and _count(b, mine) == 1

        # A stranger's album, an unknown album, no album, or only assets the caller cannot share.
        theirs = _album(s, "Stranger's")
        assert add(alice, [theirs], [first]) == {"success": False, "error": "no_permission"}
        assert add(alice, [str(uuid.uuid4())], [first]) == {"success": False, "error": "no_permission"}
        assert add(alice, [], [first]) == {"success": False, "error": "no_permission"}
        assert add(alice, [empty], [bobs, str(uuid.uuid4())]) == {"success": False, "error": "no_permission"}
        assert _count(s, theirs) == 0 and _count(alice, empty) == 2



@needs_spec
def test_create_album_always_creates_even_unnamed_and_renames_freely(server, account):
    """Immich's web app creates an album with albumName "" (its "Create album" button), then the user
    types a name; Immich makes a new album on every create, names repeat, a rename may blank it."""
    with _client(server, account) as http:
        first = http.post("/api/albums", json={"albumName": ""})
        second = http.post("/api/albums", json={"albumName": ""})
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        assert first.json()["albumName"] == second.json()["albumName"] == ""
        assert first.json()["id"] != second.json()["id"]
        name = f"Twice {uuid.uuid4().hex[:6]}"
        one, two = _album(http, name), _album(http, name)
        assert one != two
        listed = [a for a in http.get("/api/albums").json() if a["albumName"] == name]
        assert sorted(a["id"] for a in listed) == sorted([one, two])

        renamed = http.patch(f"/api/albums/{first.json()['id']}", json={"albumName": name})
        assert renamed.status_code == 200 and renamed.json()["albumName"] == name
        blanked = http.patch(f"/api/albums/{one}", json={"albumName": ""})
        assert blanked.status_code == 200 and blanked.json()["albumName"] == ""
        assert http.get(f"/api/albums/{one}").json()["albumName"] == ""
