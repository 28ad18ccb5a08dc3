"""Deleting accounts (app/domain/users.py): the soft delete, the delay, forced removal, and what a
removal takes with it."""

from __future__ import annotations

import uuid
import pytest

from app.db import engine as db
from app.domain import users
from app.domain.errors import Forbidden, NotFound
from app.storage.blobstore import BlobStore
from tests.domain import factories as f


@pytest.fixture
def store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path)


async def _asset_with_files(store: BlobStore, user, **overrides):
    asset = await f.new_asset(user, **overrides)
    key = BlobStore.original_key(asset["library_id"], asset["id"], ".jpg")
    await db.execute("UPDATE assets SET storage_key = $2 WHERE id = $1", asset["id"], key)
    store.path(key).parent.mkdir(parents=True, exist_ok=True)
    store.path(key).write_bytes(b"original")
    store.put_derived(f"{BlobStore.derived_prefix(asset['library_id'], asset['id'])}/thumbnail.webp", b"thumb")
    return asset, key


async def _due(delay_days: int) -> set[uuid.UUID]:
    return set(await users.users_due_for_removal(delay_days))


async def test_a_deleted_account_waits_for_the_delay(store):
    admin = f.principal_for(await f.new_user(is_admin=True))
    victim = await f.new_user()
    asset, key = await _asset_with_files(store, victim)
    deleted = await users.admin_delete_user(admin, victim["id"])
    assert deleted["deleted_at"] is not None
    assert victim["id"] not in await _due(7)
    assert victim["id"] in await _due(0)  # deleted before now: due with no delay
    await db.execute("UPDATE users SET deleted_at = now() - interval '8 days' WHERE id = $1", victim["id"])
    assert victim["id"] in await _due(7)
    assert await users.remove_user(store, victim["id"])
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", victim["id"]) == 0
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", asset["id"]) == 0
    assert not store.exists(key)
    assert not store.path(BlobStore.derived_prefix(asset["library_id"], asset["id"])).exists()


async def test_force_asks_for_removal_now_and_takes_everything(store):
    admin_row = await f.new_user(is_admin=True)
    admin = f.principal_for(admin_row)
    victim = await f.new_user()
    second = await f.new_library(victim)
    first_asset, first_key = await _asset_with_files(store, victim)
    other_asset, other_key = await _asset_with_files(store, victim, library_id=second["id"], trashed_at=None)
    album = await f.new_album(victim)
    await f.new_album_asset(album, first_asset)
    await f.new_session(victim)
    await f.new_api_key(victim)
    bystander = await f.new_user()
    kept, kept_key = await _asset_with_files(store, bystander)

    await users.admin_delete_user(admin, victim["id"], force=True)
    assert victim["id"] in await _due(10_000)
    assert await users.remove_deleted_users(store, 10_000) >= 1
    for table, column in (("users", "id"), ("libraries", "owner_id"), ("assets", "owner_id"), ("albums", "owner_id"),
                          ("sessions", "user_id"), ("api_keys", "user_id"), ("user_removals", "user_id")):
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", victim["id"]) == 0, table
    assert not store.exists(first_key) and not store.exists(other_key)
    assert store.exists(kept_key) and await db.fetchval("SELECT 1 FROM assets WHERE id = $1", kept["id"])
    assert victim["id"] not in await _due(0)
    assert await users.remove_user(store, victim["id"])  # gone already: nothing to do


async def test_a_restored_account_is_not_removed(store):
    admin = f.principal_for(await f.new_user(is_admin=True))
    victim = await f.new_user()
    await users.admin_delete_user(admin, victim["id"], force=True)
    await users.admin_restore_user(admin, victim["id"])
    assert not await users.remove_user(store, victim["id"])
    assert await users.user_by_id(victim["id"])
    await users.admin_delete_user(admin, victim["id"])  # deleted again, without force: it waits
    assert victim["id"] not in await _due(7)


async def test_a_deleted_account_is_not_found_again_and_self_delete_is_refused():
    admin_row = await f.new_user(is_admin=True)
    admin = f.principal_for(admin_row)
    victim = await f.new_user()
    await users.admin_delete_user(admin, victim["id"])
    for force in (False, True):  # as in Immich: only a live account is deleted
        with pytest.raises(NotFound):
            await users.admin_delete_user(admin, victim["id"], force=force)
    assert victim["id"] not in await _due(10_000)
    with pytest.raises(Forbidden):
        await users.admin_delete_user(admin, admin_row["id"], force=True)


async def test_an_administrator_sets_and_clears_a_pin():
    admin = f.principal_for(await f.new_user(is_admin=True))
    user = await f.new_user()
    session, _ = await f.new_session(user)
    await db.execute("UPDATE sessions SET pin_expires_at = now() + interval '5 minutes' WHERE id = $1", session["id"])
    await users.admin_update_user(admin, user["id"], users.UserAdminPatch(pin_code="123456"))
    pin_hash = await db.fetchval("SELECT pin_hash FROM pin_codes WHERE user_id = $1", user["id"])
    assert users.verify_password(pin_hash, "123456")
    assert await db.fetchval("SELECT pin_expires_at FROM sessions WHERE id = $1", session["id"]) is None
    await users.admin_update_user(admin, user["id"], users.UserAdminPatch(pin_code=None))
    assert await db.fetchval("SELECT count(*) FROM pin_codes WHERE user_id = $1", user["id"]) == 0


async def test_preferences_carry_the_avatar_colour():
    user = await f.new_user()
    await users.save_preferences(user["id"], {}, avatar_color="blue")
    assert (await users.user_by_id(user["id"]))["avatar_color"] == "blue"
