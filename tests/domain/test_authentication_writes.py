"""Authenticating a request reads the credential and writes its last use only now and then: a key's
last_used_at and a session's updated_at at most once a minute, and an unlocked session's unlock is
still stretched on every request near its end."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import authentication
from app.domain.errors import Unauthorized
from tests.domain import factories as f


async def _key_used(key_id):
    return await db.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id)


async def test_an_api_keys_last_use_is_written_at_most_once_a_minute():
    user = await f.new_user()
    key, secret = await f.new_api_key(user)
    assert await _key_used(key["id"]) is None
    principal = await authentication.authenticate_api_key(secret)
    assert principal.user_id == user["id"] and principal.api_key_id == key["id"]
    first = await _key_used(key["id"])
    assert first is not None
    await authentication.authenticate_api_key(secret)
    assert await _key_used(key["id"]) == first  # within the minute: no write
    await db.execute("UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = $1", key["id"])
    await authentication.authenticate_api_key(secret)
    assert (await db.fetchval("SELECT now() - last_used_at < interval '5 seconds' FROM api_keys WHERE id = $1",
                              key["id"]))


async def test_an_inactive_key_or_a_removed_user_is_refused_and_not_written():
    user = await f.new_user()
    key, secret = await f.new_api_key(user, is_active=False)
    with pytest.raises(Unauthorized):
        await authentication.authenticate_api_key(secret)
    assert await _key_used(key["id"]) is None
    other = await f.new_user()
    key, secret = await f.new_api_key(other)
    await db.execute("UPDATE users SET deleted_at = now() WHERE id = $1", other["id"])
    with pytest.raises(Unauthorized):
        await authentication.authenticate_api_key(secret)
    assert await _key_used(key["id"]) is None


async def test_a_sessions_activity_is_written_at_most_once_a_minute_and_an_unlock_is_stretched():
    user = await f.new_user()
    session, token = await f.new_session(user)
    await db.execute("UPDATE sessions SET updated_at = now() - interval '10 minutes' WHERE id = $1", session["id"])
    principal, session_id = await authentication.authenticate_session(token)
    assert session_id == session["id"] and not principal.elevated
    seen = await db.fetchval("SELECT updated_at FROM sessions WHERE id = $1", session["id"])
    assert await db.fetchval("SELECT now() - $1::timestamptz < interval '5 seconds'", seen)
    await authentication.authenticate_session(token)
    assert await db.fetchval("SELECT updated_at FROM sessions WHERE id = $1", session["id"]) == seen

    # Unlocked, in its last minute: the request stretches it although the activity is fresh.
    await db.execute("UPDATE sessions SET pin_expires_at = now() + interval '1 minute' WHERE id = $1", session["id"])
    principal, _ = await authentication.authenticate_session(token)
    assert principal.elevated
    left = await db.fetchval("SELECT pin_expires_at - now() FROM sessions WHERE id = $1", session["id"])
    assert left.total_seconds() > 4 * 60
    # Just stretched: the next requests write nothing (neither the unlock nor the activity).
    written = await db.fetchrow("SELECT pin_expires_at, updated_at FROM sessions WHERE id = $1", session["id"])
    principal, _ = await authentication.authenticate_session(token)
    assert principal.elevated
    assert await db.fetchrow("SELECT pin_expires_at, updated_at FROM sessions WHERE id = $1", session["id"]) == written
    # Unlocked for long yet: nothing to write either.
    await db.execute("UPDATE sessions SET pin_expires_at = now() + interval '10 minutes' WHERE id = $1", session["id"])
    before = await db.fetchrow("SELECT pin_expires_at, updated_at FROM sessions WHERE id = $1", session["id"])
    principal, _ = await authentication.authenticate_session(token)
    assert principal.elevated
    assert await db.fetchrow("SELECT pin_expires_at, updated_at FROM sessions WHERE id = $1", session["id"]) == before
    # Expired unlock: not elevated, and not revived.
    await db.execute("UPDATE sessions SET pin_expires_at = now() - interval '1 second' WHERE id = $1", session["id"])
    principal, _ = await authentication.authenticate_session(token)
    assert not principal.elevated
    assert await db.fetchval("SELECT pin_expires_at < now() FROM sessions WHERE id = $1", session["id"])
