"""Immich account routes: users, password change, admin user management, server stats."""

from __future__ import annotations

import shutil
from litestar import Request, Response, delete, get, post, put

from app.api.state import Shared
from app.domain import access, sessions, users
from compat import dtos, mapping
from compat.auth import ImmichAuth


@get("/api/users", action=access.READ)
async def search_users(auth: ImmichAuth) -> list[dtos.UserResponseDto]:
    return [mapping.user(r) for r in await users.list_users()]


@get("/api/users/{user_id:str}", action=access.READ)
async def get_user(auth: ImmichAuth, user_id: str) -> dtos.UserResponseDto:
    return mapping.user(await users.user_by_id(mapping.parse_uuid(user_id)))



@put("/api/users/me/preferences", action=access.WRITE)
async def update_preferences(auth: ImmichAuth, data: dtos.UserPreferencesUpdateDto) -> dict:
    current = mapping.preferences(await users.user_by_id(auth.principal.user_id))
    updated = mapping.preferences_update(current, data)
    await users.save_preferences(auth.principal.user_id, updated)
    return updated


@post("/api/auth/change-password", status_code=200, action=access.WRITE)
async def change_password(request: Request, auth: ImmichAuth, shared: Shared,
                          data: dtos.ChangePasswordDto) -> dtos.UserAdminResponseDto:
    await sessions.change_password(auth.principal.user_id, data.password, data.newPassword,
                                   keep_session=auth.session_id, sign_out_others=data.invalidateSessions is True,
                                   throttle=shared.login_throttle,
                                   address=request.client.host if request.client else "unknown")
    return mapping.user_admin(await users.user_by_id(auth.principal.user_id))


# --- administration ----------------------------------------------------------------------------


@get("/api/admin/users", action=access.READ, admin=True)
async def admin_list_users(auth: ImmichAuth, withDeleted: bool = False) -> list[dtos.UserAdminResponseDto]:
    return [mapping.user_admin(r) for r in await users.list_users(with_deleted=withDeleted)]


@post("/api/admin/users", status_code=201, action=access.WRITE, admin=True)
async def admin_create_user(auth: ImmichAuth, data: dtos.UserAdminCreateDto) -> dtos.UserAdminResponseDto:
    row = await users.create_user(data.email, data.password, name=data.name, is_admin=data.isAdmin is True)
    return mapping.user_admin(await users.admin_update_user(auth.principal, row["id"], mapping.new_user_settings(data)))


@get("/api/admin/users/{user_id:str}", action=access.READ, admin=True)
async def admin_get_user(auth: ImmichAuth, user_id: str) -> dtos.UserAdminResponseDto:
    return mapping.user_admin(await users.user_by_id(mapping.parse_uuid(user_id)))


@put("/api/admin/users/{user_id:str}", action=access.WRITE, admin=True)
async def admin_update_user(auth: ImmichAuth, user_id: str, data: dtos.UserAdminUpdateDto) -> dtos.UserAdminResponseDto:
    patch = mapping.user_admin_patch(data)
    return mapping.user_admin(await users.admin_update_user(auth.principal, mapping.parse_uuid(user_id), patch))


@delete("/api/admin/users/{user_id:str}", status_code=200, action=access.DELETE, admin=True)
async def admin_delete_user(auth: ImmichAuth, user_id: str) -> dtos.UserAdminResponseDto:
    return mapping.user_admin(await users.admin_delete_user(auth.principal, mapping.parse_uuid(user_id)))


# --- server information that needs a sign-in ---------------------------------------------------


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return f"{size} B"


@get("/api/server/about", action=access.READ)
async def server_about(auth: ImmichAuth) -> dtos.ServerAboutResponseDto:
    import av
    import pyvips

    return dtos.ServerAboutResponseDto(
        version="v3.1.0", versionUrl="", licensed=False,
        libvips=f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}", ffmpeg=av.__version__,
    )


@get("/api/server/storage", action=access.READ)
async def server_storage(auth: ImmichAuth, shared: Shared) -> dtos.ServerStorageResponseDto:
    usage = shutil.disk_usage(shared.settings.data_dir)
    return dtos.ServerStorageResponseDto(
        diskSize=_human(usage.total), diskSizeRaw=usage.total, diskUse=_human(usage.used), diskUseRaw=usage.used,
        diskAvailable=_human(usage.free), diskAvailableRaw=usage.free,
        diskUsagePercentage=round(usage.used / usage.total * 100, 2) if usage.total else 0.0,
    )


@get("/api/server/statistics", action=access.READ, admin=True)
async def server_statistics(auth: ImmichAuth) -> Response[dtos.ServerStatsResponseDto]:
    rows = await users.usage_by_user()
    by_user = [dtos.UsageByUserDto(userId=str(r["id"]), userName=r["name"], photos=r["photos"], videos=r["videos"],
                                   usage=r["usage"], usagePhotos=r["usage_photos"], usageVideos=r["usage_videos"],
                                   quotaSizeInBytes=r["storage_limit_bytes"]) for r in rows]
    return Response(dtos.ServerStatsResponseDto(
        photos=sum(r["photos"] for r in rows), videos=sum(r["videos"] for r in rows),
        usage=sum(r["usage"] for r in rows), usagePhotos=sum(r["usage_photos"] for r in rows),
        usageVideos=sum(r["usage_videos"] for r in rows), usageByUser=by_user,
    ))
