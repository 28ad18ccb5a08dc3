"""Server-wide state by key (app/domain/system_metadata.py): admin onboarding and Immich's states."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import system_metadata
from app.domain.errors import Forbidden
from tests.domain import factories as f


async def test_a_server_never_onboarded_says_so_and_an_admin_onboards_it():
    # The key is server-wide: start from "never written", as a fresh server is.
    await db.execute("DELETE FROM system_metadata WHERE key = $1", system_metadata.ADMIN_ONBOARDING)
    assert await system_metadata.admin_onboarded() is False
    admin = f.principal_for(await f.new_user(is_admin=True))
    await system_metadata.set_admin_onboarding(admin, True)
    assert await system_metadata.admin_onboarded() is True
    assert await system_metadata.read(system_metadata.ADMIN_ONBOARDING) == {"isOnboarded": True}
    await system_metadata.set_admin_onboarding(admin, False)  # Immich lets an admin reopen it
    assert await system_metadata.admin_onboarded() is False


async def test_each_onboarding_change_is_in_the_change_log():
    admin = await f.new_user(is_admin=True)
    await system_metadata.set_admin_onboarding(f.principal_for(admin), True)
    logged = await db.fetchrow(
        "SELECT * FROM events WHERE entity_type = $1 AND owner_id = $2 ORDER BY id DESC LIMIT 1",
        system_metadata.ENTITY, admin["id"])
    assert logged["event_type"] == "system_metadata_set" and logged["library_id"] is None


async def test_only_an_admin_changes_onboarding():
    await db.execute("DELETE FROM system_metadata WHERE key = $1", system_metadata.ADMIN_ONBOARDING)
    member = f.principal_for(await f.new_user())
    with pytest.raises(Forbidden):
        await system_metadata.set_admin_onboarding(member, True)
    assert await system_metadata.admin_onboarded() is False


async def test_unwritten_states_read_as_immichs_defaults():
    assert await system_metadata.reverse_geocoding_state() == {"lastUpdate": None, "lastImportFileName": None}
    assert await system_metadata.version_check_state() == {"checkedAt": None, "releaseVersion": None}


async def test_a_stored_state_is_merged_over_the_defaults():
    key = system_metadata.REVERSE_GEOCODING_STATE
    try:
        await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)", key,
                         '{"lastUpdate": "2024-01-01T00:00:00.000Z"}')
        assert await system_metadata.reverse_geocoding_state() == {
            "lastUpdate": "2024-01-01T00:00:00.000Z", "lastImportFileName": None}
    finally:
        await db.execute("DELETE FROM system_metadata WHERE key = $1", key)


async def test_no_release_notice_until_a_version_check_stored_one():
    key = system_metadata.VERSION_CHECK_STATE
    await db.execute("DELETE FROM system_metadata WHERE key = $1", key)
    assert await system_metadata.release_notice((3, 1, 0)) is None
    try:
        for release, newer in (("v3.2.0", True), ("v3.1.0", False), ("3.0.9", False), ("v10.0.0", True)):
            await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key)"
                             " DO UPDATE SET value = excluded.value", key,
                             f'{{"checkedAt": "2026-11-01T00:00:00.000Z", "releaseVersion": "{release}"}}')
            notice = await system_metadata.release_notice((3, 1, 0))
            assert notice.is_available is newer and notice.checked_at == "2026-11-01T00:00:00.000Z", release
        assert notice.release_version == (10, 0, 0)
    finally:
        await db.execute("DELETE FROM system_metadata WHERE key = $1", key)
