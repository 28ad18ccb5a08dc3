"""Server-wide state kept by key: whether the administrator finished onboarding, and the states Immich
reports for its reverse-geocoding import and its new-version check.

Each key holds a JSON object with Immich's field names for it; a key never written reads as Immich's
defaults, so a fresh server is not onboarded and reports no import and no version check.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from app.db import engine as db
from app.domain import events
from app.domain.principal import Principal

ENTITY = "system_metadata"

ADMIN_ONBOARDING = "admin-onboarding"
REVERSE_GEOCODING_STATE = "reverse-geocoding-state"
VERSION_CHECK_STATE = "version-check-state"

_DEFAULTS: dict[str, dict[str, Any]] = {
    ADMIN_ONBOARDING: {"isOnboarded": False},
    # Places come from the gazetteer bundled with the server (app.media.places): nothing is ever
    # imported, so this keeps Immich's "never imported" answer unless something records an import.
    REVERSE_GEOCODING_STATE: {"lastUpdate": None, "lastImportFileName": None},
    # This server never asks GitHub for new releases, so no check has ever run.
    VERSION_CHECK_STATE: {"checkedAt": None, "releaseVersion": None},
}


def _entity_id(key: str) -> uuid.UUID:
    # The change log names entities by UUID; a key's is fixed, so its history reads as one entity.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"photos:system-metadata:{key}")


async def read(key: str) -> dict[str, Any]:
    """The key's stored fields over Immich's defaults for it."""
    stored = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", key)
    value = dict(_DEFAULTS[key])
    if stored is not None:
        value.update(json.loads(stored) if isinstance(stored, str) else stored)
    return value


async def write(principal: Principal, key: str, value: dict[str, Any], *,
                payload: dict[str, Any] | None = None) -> None:
    """Store the key's value with its change-log event; `payload` replaces the default one (the key
    and value) when the value should not be copied into the log."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
            key, json.dumps(value),
        )
        await events.record(conn, entity_type=ENTITY, entity_id=_entity_id(key), event_type="system_metadata_set",
                            library_id=None, owner_id=principal.user_id,
                            payload=payload if payload is not None else {"key": key, "value": value})


async def admin_onboarded() -> bool:
    return bool((await read(ADMIN_ONBOARDING))["isOnboarded"])


async def set_admin_onboarding(principal: Principal, is_onboarded: bool) -> None:
    """Only an administrator finishes (or reopens) the server's first-run onboarding."""
    principal.require_admin()
    await write(principal, ADMIN_ONBOARDING, {"isOnboarded": is_onboarded})


async def reverse_geocoding_state() -> dict[str, Any]:
    return await read(REVERSE_GEOCODING_STATE)


async def version_check_state() -> dict[str, Any]:
    return await read(VERSION_CHECK_STATE)


@dataclass(frozen=True)
class ReleaseNotice:
    """What a client is told of the newest release the version check found."""

    is_available: bool  # newer than this server
    checked_at: str
    release_version: tuple[int, int, int]


_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


async def release_notice(server_version: tuple[int, int, int]) -> ReleaseNotice | None:
    """The last version check's result, as Immich announces it to each client that connects; None
    when no check has stored a release (this server never asks GitHub, so it never makes one up)."""
    stored = await read_stored(VERSION_CHECK_STATE)
    found = _VERSION.match((stored or {}).get("releaseVersion") or "")
    if found is None:
        return None
    release = (int(found[1]), int(found[2]), int(found[3]))
    return ReleaseNotice(is_available=release > server_version, checked_at=stored.get("checkedAt") or "",
                         release_version=release)


async def read_stored(key: str) -> dict[str, Any] | None:
    """What is stored under a key that has no default (absent: None)."""
    stored = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", key)
    if stored is None:
        return None
    return json.loads(stored) if isinstance(stored, str) else stored


async def forget(principal: Principal, key: str) -> None:
    async with db.transaction() as conn:
        removed = await conn.fetchval("DELETE FROM system_metadata WHERE key = $1 RETURNING key", key)
        if removed is not None:
            await events.record(conn, entity_type=ENTITY, entity_id=_entity_id(key),
                                event_type="system_metadata_deleted", library_id=None,
                                owner_id=principal.user_id, payload={"key": key})
