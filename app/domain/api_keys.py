"""API key management, from a signed-in session only.

API keys cannot manage credentials (as on the reference service): a leaked key must not be
able to mint a second one that outlives its revocation.
"""

from __future__ import annotations

import uuid

import asyncpg

from app.db.tables import ApiKey
from app.domain import access, users
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.principal import ALL_ACTIONS, DELETE, READ, WRITE, Principal

MAX_LIBRARIES = 200


def _session_only(principal: Principal) -> None:
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot manage API keys: use a signed-in session")


async def list_keys(principal: Principal) -> list[dict]:
    _session_only(principal)
    principal.require(READ)
    return await (ApiKey.select().where(ApiKey.user_id == principal.user_id)
                  .order_by(ApiKey.created_at, ApiKey.id, ascending=False))


def _covers(principal: Principal, actions: frozenset[str], library_ids: list[uuid.UUID] | None) -> bool:
    if not actions <= principal.actions:
        return False
    if principal.library_scope is None:
        return True
    return library_ids is not None and set(library_ids) <= principal.library_scope


async def create_key(
    principal: Principal, name: str, actions: list[str], mode: str, library_ids: list[uuid.UUID] | None
) -> tuple[asyncpg.Record, str]:
    _session_only(principal)
    principal.require(WRITE)
    wanted = frozenset(actions)
    if not wanted or not wanted <= ALL_ACTIONS:
        raise Invalid("actions must be a non-empty subset of read, write, delete, delete_permanently", "actions")
    if wanted != {READ} and READ not in wanted:
        raise Invalid("read is required whenever a broader action is chosen", "actions")
    if not name or not name.strip():
        raise Invalid("name must not be blank", "name")
    selected: list[uuid.UUID] | None = None
    if mode == "selected_libraries":
        if not library_ids:
            raise Invalid("library_ids is required with selected_libraries", "library_ids")
        if len(library_ids) > MAX_LIBRARIES:
            raise Invalid(f"At most {MAX_LIBRARIES} library ids", "library_ids")
        # Only the caller's own libraries: a membership can end at any time, so a key naming a shared
        # library would outlive its access; an all-libraries key reaches shared ones by membership.
        owned = set(await access.live_library_ids(principal))
        selected = list(dict.fromkeys(library_ids))
        if not set(selected) <= owned:
            raise NotFound("Library not found")
    elif mode == "all_libraries":
        if library_ids:
            raise Invalid("library_ids is only allowed with selected_libraries", "library_ids")
    else:
        raise Invalid("library_scope_mode must be all_libraries or selected_libraries", "library_scope_mode")
    if not _covers(principal, wanted, selected):
        raise Forbidden("A key cannot create a key with more rights than it has itself")
    return await users.create_api_key(principal.user_id, name.strip(), actions=wanted, library_ids=selected)


async def _own_key(principal: Principal, key_id: uuid.UUID) -> dict:
    row = await ApiKey.select().where((ApiKey.id == key_id) & (ApiKey.user_id == principal.user_id)).first()
    if row is None:
        raise NotFound("API key not found")
    scope = None if row["library_scope_mode"] == "all_libraries" else list(row["library_ids"])
    if not _covers(principal, frozenset(row["actions"]), scope):
        raise Forbidden("This key has more rights than the credential changing it")
    return row


async def rename_key(principal: Principal, key_id: uuid.UUID, name: str) -> dict:
    _session_only(principal)
    principal.require(WRITE)
    if not name or not name.strip():
        raise Invalid("name must not be blank", "name")
    row = await _own_key(principal, key_id)
    [renamed] = await ApiKey.update({ApiKey.name: name.strip()}).where(ApiKey.id == row["id"]).returning(*ApiKey.all_columns())
    return renamed


async def revoke_key(principal: Principal, key_id: uuid.UUID) -> None:
    _session_only(principal)
    principal.require(DELETE)
    row = await _own_key(principal, key_id)
    await ApiKey.update({ApiKey.is_active: False}).where(ApiKey.id == row["id"])


async def current_key(principal: Principal) -> dict:
    """The record of the API key this request came with."""
    if principal.api_key_id is None:
        raise Forbidden("Not authenticated with an API key")
    return await ApiKey.select().where(ApiKey.id == principal.api_key_id).first()
