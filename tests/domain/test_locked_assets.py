"""No share reaches an asset its owner locked (visibility "locked", the PIN-protected folder).

Partners, album users and shared links read through a grant, not a library role: the grant and
the album's listing through it both leave locked assets out, while the owner still reads them.
"""

from __future__ import annotations

from app.db import engine as db
from app.domain import access, album_sharing, assets, partners, shared_links
from app.domain.asset_filters import LOCKED, AssetFilter
from app.domain.errors import NotFound
from tests.domain import factories as f


async def _readable(principal, asset) -> bool:
    try:
        await access.load_asset(principal, asset["id"], access.READ)
    except NotFound:
        return False
    return True


async def test_locked_assets_are_out_of_every_share():
    owner, partner, album_user = await f.new_user(), await f.new_user(), await f.new_user()
    album = await f.new_album(owner)
    open_photo, locked_photo = await f.new_asset(owner), await f.new_asset(owner)
    for photo in (open_photo, locked_photo):
        await f.new_album_asset(album, photo)
    await db.execute("UPDATE assets SET visibility = $2 WHERE id = $1", locked_photo["id"], LOCKED)
    me = f.principal_for(owner)
    await partners.create(me, partner["id"])
    await album_sharing.add_users(me, album["id"], [(album_user["id"], access.ALBUM_VIEWER)])
    link_row = await shared_links.create_link(me, shared_links.ALBUM, shared_links.LinkSettings(),
                                              album_id=album["id"])
    link = await shared_links.authenticate(key=shared_links.encode_key(link_row["key"]))

    assert await _readable(me, locked_photo)
    for reader in (f.principal_for(partner), f.principal_for(album_user), link):
        assert await _readable(reader, open_photo)
        assert not await _readable(reader, locked_photo)

    shown = AssetFilter(library_id=album["library_id"], album_id=album["id"], through_share=True)
    assert {r["id"] for r in (await assets.list_assets(shown))[0]} == {open_photo["id"]}
    owners_view = AssetFilter(library_id=album["library_id"], album_id=album["id"])
    assert {r["id"] for r in (await assets.list_assets(owners_view))[0]} == {open_photo["id"], locked_photo["id"]}
