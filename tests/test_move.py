"""`POST /api/assets/move` as gumnut-sdk calls it: the asset keeps its id and bytes, lands in the
destination library, leaves the source library's albums, and each asset has its outcome."""

from __future__ import annotations

import httpx
import pytest

import gumnut

from tests.helpers import upload, wait_processed
from tests.media import png_bytes


def test_move_between_own_libraries(account):
    client = account.client
    asset = upload(account, "move.png", png_bytes(7301)).parse()
    wait_processed(account, asset.id)
    source = _library_of(client, asset.id)
    destination = client.libraries.create(name="Archive").id
    album = client.albums.create(name="Trip", library_id=source)
    client.albums.assets_associations.add(album.id, asset_ids=[asset.id])

    moved = client.assets.move(asset_ids=[asset.id, "asset_nonsense", asset.id], source_library_id=source,
                               destination_library_id=destination)
    assert [(d.asset_id, d.outcome, d.failure) for d in moved.data] == [
        (asset.id, "moved", None), ("asset_nonsense", "failed", "unavailable")]
    assert [a.id for a in client.assets.list(library_id=destination)] == [asset.id]
    assert [a.id for a in client.assets.list(library_id=source)] == []
    assert client.albums.retrieve(album.id).asset_count == 0
    after = client.assets.retrieve(asset.id)
    assert httpx.get(after.asset_urls["original"].url).content == png_bytes(7301)
    assert httpx.get(after.asset_urls["thumbnail"].url).status_code == 200

    again = client.assets.move(asset_ids=[asset.id], source_library_id=source, destination_library_id=destination)
    assert again.data[0].outcome == "already_in_destination"
    with pytest.raises(gumnut.UnprocessableEntityError):
        client.assets.move(asset_ids=[asset.id], source_library_id=source, destination_library_id=source)


def _library_of(client, asset_id: str) -> str:
    for library in client.libraries.list():
        if any(a.id == asset_id for a in client.assets.list(library_id=library.id)):
            return library.id
    raise AssertionError("the asset is in no library")
