"""Immich account routes: sessions, password change, server stats (users: users.py, users_admin.py)."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, delete, get, post, put

from app.api.state import Shared
from app.domain import access, sessions, users
from compat import dtos, mapping
from compat.auth import ImmichAuth


def _session(row, current: uuid.UUID | None) -> dtos.SessionResponseDto:
    return dtos.SessionResponseDto(
        id=str(row["id"]), createdAt=row["created_at"].isoformat(), updatedAt=row["updated_at"].isoformat(),
        current=row["id"] == current, deviceOS=row["device_os"], deviceType=row["device_type"],
        appVersion=row["app_version"], isPendingSyncReset=row["is_pending_sync_reset"],
    )


@post("/api/auth/change-password", status_code=200, action=access.WRITE)
async def change_password(request: Request, auth: ImmichAuth, shared: Shared,
                          data: dtos.ChangePasswordDto) -> dtos.UserAdminResponseDto:
    await sessions.change_password(auth.principal.user_id, data.password, data.newPassword,
                                   keep_session=auth.session_id, sign_out_others=data.invalidateSessions is True,
                                   throttle=shared.login_throttle,
                                   address=request.client.host if request.client else "unknown")
    return mapping.user_admin(await users.user_by_id(auth.principal.user_id))


@get("/api/sessions", action=access.READ)
async def list_sessions(auth: ImmichAuth) -> list[dtos.SessionResponseDto]:
    return [_session(r, auth.session_id) for r in await sessions.list_sessions(auth.principal.user_id)]


@delete("/api/sessions", status_code=204, action=access.DELETE)
async def delete_other_sessions(auth: ImmichAuth) -> None:
    await sessions.delete_other_sessions(auth.principal.user_id, auth.session_id)


@delete("/api/sessions/{session_id:str}", status_code=204, action=access.DELETE)
async def delete_session(auth: ImmichAuth, session_id: str) -> None:
    await sessions.delete_session(auth.principal.user_id, mapping.parse_uuid(session_id))


class _SessionUpdate(msgspec.Struct):
    isPendingSyncReset: bool


@put("/api/sessions/{session_id:str}", action=access.WRITE)
async def update_session(auth: ImmichAuth, session_id: str, data: _SessionUpdate) -> dtos.SessionResponseDto:
    row = await sessions.set_pending_sync_reset(auth.principal.user_id, mapping.parse_uuid(session_id), data.isPendingSyncReset)
    return _session(row, auth.session_id)
