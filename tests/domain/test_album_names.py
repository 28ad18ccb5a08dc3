"""Album names under the two APIs' rules (app/domain/albums.py): the native API finds or creates by a
trimmed, case-insensitive, non-blank name unique in the library; Immich always creates, with any name."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import albums
from app.domain.albums import AlbumPatch
from app.domain.errors import Conflict, Invalid


async def test_immich_creates_a_new_album_each_time_even_blank_or_repeated(principal, library_id):
    blank = await albums.create_new_album(principal, library_id, "", None)
    again = await albums.create_new_album(principal, library_id, "", None)
    assert blank["id"] != again["id"] and blank["name"] == again["name"] == ""
    trip = await albums.create_new_album(principal, library_id, " Trip ", None)
    trip2 = await albums.create_new_album(principal, library_id, " Trip ", "second")
    assert trip["id"] != trip2["id"] and trip["name"] == " Trip "  # kept exactly as given
    created = await db.fetchval("SELECT count(*) FROM events WHERE event_type = 'album_created' AND entity_id"
                                " = ANY($1::uuid[])", [blank["id"], again["id"], trip["id"], trip2["id"]])
    assert created == 4


async def test_native_find_or_create_takes_the_oldest_of_albums_sharing_a_name(principal, library_id):
    first = await albums.create_new_album(principal, library_id, "Beach", None)
    await albums.create_new_album(principal, library_id, "beach", None)
    found, created = await albums.create_album(principal, library_id, "  BEACH ", None)
    assert not created and found["id"] == first["id"]
    with pytest.raises(Invalid):
        await albums.create_album(principal, library_id, "  ", None)


async def test_immich_renames_to_blank_or_a_taken_name_the_native_api_does_not(principal, library_id):
    taken, _ = await albums.create_album(principal, library_id, "Taken", None)
    other, _ = await albums.create_album(principal, library_id, "Other", None)
    with pytest.raises(Conflict):
        await albums.update_album(principal, other["id"], AlbumPatch(name=" taken"))
    with pytest.raises(Invalid):
        await albums.update_album(principal, other["id"], AlbumPatch(name=" "))
    # renaming an album to its own name (another case) is no clash
    assert (await albums.update_album(principal, taken["id"], AlbumPatch(name="TAKEN")))["name"] == "TAKEN"

    assert (await albums.update_album(principal, other["id"], AlbumPatch(name="Taken"), any_name=True))["name"] == "Taken"
    assert (await albums.update_album(principal, other["id"], AlbumPatch(name=""), any_name=True))["name"] == ""


async def test_a_native_patch_keeping_a_name_other_immich_albums_share_is_no_clash(principal, library_id):
    beach = await albums.create_new_album(principal, library_id, "Beach", None)
    await albums.create_new_album(principal, library_id, "Beach", None)
    kept = await albums.update_album(principal, beach["id"], AlbumPatch(name=" Beach ", description="sand"))
    assert (kept["name"], kept["description"]) == ("Beach", "sand")
