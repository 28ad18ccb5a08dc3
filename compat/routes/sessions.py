"""Immich's sessions tag: the caller's signed-in devices, child sessions (a TV cast) and their lock."""

from __future__ import annotations

import uuid

import msgspec
from litestar import delete, get, post, put
from litestar.exceptions import ValidationException
from msgspec import UNSET

from app.domain import access, sessions
from app.domain.errors import BadRequest
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as


def _id(session_id: str, permission: str) -> uuid.UUID:
    with refused_as(permission):
        return mapping.parse_uuid(session_id)


@get("/api/sessions", action=access.READ)
async def list_sessions(auth: ImmichAuth) -> list[dtos.SessionResponseDto]:
    return [mapping.session(r, auth.session_id) for r in await sessions.list_sessions(auth.principal.user_id)]


@post("/api/sessions", status_code=201, action=access.WRITE)
async def create_session(auth: ImmichAuth, data: dtos.SessionCreateDto) -> dtos.SessionCreateResponseDto:
    duration = None if data.duration is UNSET else data.duration
    if duration is not None and not 1 <= duration <= 2**53 - 1:
        message = "duration must not be less than 1" if duration < 1 else "duration must not be greater than 9007199254740991"
        raise ValidationException(detail=message, extra=[{"source": "body", "key": "duration", "message": message}])
    if auth.session_id is None:
        raise BadRequest("This endpoint can only be used with a session token")
    row, token = await sessions.create_child(
        auth.principal.user_id, auth.session_id, duration_seconds=duration,
        device_type=data.deviceType or "", device_os=data.deviceOS or "")
    shown = msgspec.structs.asdict(mapping.session(row, auth.session_id))
    return dtos.SessionCreateResponseDto(**shown, token=token)


@delete("/api/sessions", status_code=204, action=access.DELETE)
async def delete_other_sessions(auth: ImmichAuth) -> None:
    await sessions.delete_other_sessions(auth.principal.user_id, auth.session_id)


@delete("/api/sessions/{session_id:str}", status_code=204, action=access.DELETE)
async def delete_session(auth: ImmichAuth, session_id: str) -> None:
    with refused_as("authDevice.delete"):
        await sessions.delete_session(auth.principal.user_id, _id(session_id, "authDevice.delete"))


@put("/api/sessions/{session_id:str}", action=access.WRITE)
async def update_session(auth: ImmichAuth, session_id: str, data: dtos.SessionUpdateDto) -> dtos.SessionResponseDto:
    target = _id(session_id, "session.update")
    if data.isPendingSyncReset is UNSET:
        with refused_as("session.update"):
            await sessions.get_own(auth.principal.user_id, target)
        raise BadRequest("No fields to update")
    with refused_as("session.update"):
        row = await sessions.set_pending_sync_reset(auth.principal.user_id, target, data.isPendingSyncReset)
    return mapping.session(row, auth.session_id)


@post("/api/sessions/{session_id:str}/lock", status_code=204, action=access.WRITE)
async def lock_session(auth: ImmichAuth, session_id: str) -> None:
    with refused_as("session.lock"):
        await sessions.lock(auth.principal.user_id, _id(session_id, "session.lock"))


ROUTES = [list_sessions, create_session, delete_other_sessions, delete_session, update_session, lock_session]
