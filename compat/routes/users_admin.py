"""Immich's Users (admin) tag: an administrator creates, changes, deletes and restores accounts."""

from __future__ import annotations

from litestar import Request, delete, get, post, put
from litestar.params import QueryParameter
from msgspec import UNSET, UnsetType

from app.api.state import Shared
from app.domain import access, calendar_heatmap, emails, sessions, users
from app.domain.errors import BadRequest, Conflict
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth
from compat.routes.users import check_email, heatmap_query, save_preferences, unknown_user_is_bad_request


class NewUser(dtos.UserAdminCreateDto, kw_only=True):
    # `notify: null` is taken as no e-mail rather than refused (issue #14).
    notify: bool | None | UnsetType = UNSET


class UserDeletion(dtos.UserAdminDeleteDto, kw_only=True):
    force: bool | None | UnsetType = UNSET


PIN_CODE = r"^\d{6}$"  # the spec's pattern for a PIN


def check_pin_code(pin_code: object) -> None:
    """Immich's rule for `pinCode` on an admin create or update (null clears the PIN)."""
    if isinstance(pin_code, str) and not validation.matches(PIN_CODE, pin_code):  # JavaScript's \d is ASCII
        raise validation.failed(validation.pattern_issue(PIN_CODE, ["pinCode"]))


@get("/api/admin/users", action=access.READ, admin=True)
async def admin_list_users(auth: ImmichAuth, withDeleted: bool = False) -> list[dtos.UserAdminResponseDto]:
    return [mapping.user_admin(r) for r in await users.list_users(with_deleted=withDeleted)]


@post("/api/admin/users", status_code=201, action=access.WRITE, admin=True)
async def admin_create_user(auth: ImmichAuth, request: Request, data: NewUser) -> dtos.UserAdminResponseDto:
    check_email(data.email)
    check_pin_code(data.pinCode)
    try:
        row = await users.create_user(data.email, data.password, name=data.name, is_admin=data.isAdmin is True)
    except Conflict:
        raise BadRequest("User exists") from None
    created = await users.admin_update_user(auth.principal, row["id"], mapping.new_user_settings(data))
    if data.notify is True:  # Immich's welcome e-mail, sent in the background when e-mail is enabled
        emails.welcome_later(auth.principal, row["id"], data.password, mapping.web_address(request.base_url))
    return mapping.user_admin(created)


@get("/api/admin/users/{user_id:str}", action=access.READ, admin=True)
async def admin_get_user(auth: ImmichAuth, user_id: str) -> dtos.UserAdminResponseDto:
    with unknown_user_is_bad_request():
        return mapping.user_admin(await users.any_user_by_id(mapping.parse_uuid(user_id)))


@put("/api/admin/users/{user_id:str}", action=access.WRITE, admin=True)
async def admin_update_user(auth: ImmichAuth, user_id: str, data: dtos.UserAdminUpdateDto) -> dtos.UserAdminResponseDto:
    check_email(data.email if data.email else None)
    check_pin_code(data.pinCode)
    patch = mapping.user_admin_patch(data)
    with unknown_user_is_bad_request():
        return mapping.user_admin(await users.admin_update_user(auth.principal, mapping.parse_uuid(user_id), patch))


@delete("/api/admin/users/{user_id:str}", status_code=200, action=access.DELETE, admin=True)
async def admin_delete_user(auth: ImmichAuth, shared: Shared, user_id: str,
                            data: UserDeletion | None = None) -> dtos.UserAdminResponseDto:
    force = data is not None and data.force is True
    target = mapping.parse_uuid(user_id)
    with unknown_user_is_bad_request():
        row = await users.admin_delete_user(auth.principal, target, force=force)
    if force:
        await users.queue_removal(shared.queue, target)
    return mapping.user_admin(row)


@post("/api/admin/users/{user_id:str}/restore", status_code=200, action=access.WRITE, admin=True)
async def admin_restore_user(auth: ImmichAuth, user_id: str) -> dtos.UserAdminResponseDto:
    with unknown_user_is_bad_request():
        return mapping.user_admin(await users.admin_restore_user(auth.principal, mapping.parse_uuid(user_id)))


@get("/api/admin/users/{user_id:str}/preferences", action=access.READ, admin=True)
async def admin_user_preferences(auth: ImmichAuth, user_id: str) -> dict:
    with unknown_user_is_bad_request():
        return mapping.preferences(await users.any_user_by_id(mapping.parse_uuid(user_id)))


@put("/api/admin/users/{user_id:str}/preferences", action=access.WRITE, admin=True)
async def admin_update_user_preferences(auth: ImmichAuth, user_id: str,
                                        data: dtos.UserPreferencesUpdateDto) -> dict:
    target = mapping.parse_uuid(user_id)
    with unknown_user_is_bad_request():
        await users.user_by_id(target)
        return await save_preferences(target, data)


@get("/api/admin/users/{user_id:str}/sessions", action=access.READ, admin=True)
async def admin_user_sessions(auth: ImmichAuth, user_id: str) -> list[dtos.SessionResponseDto]:
    target = mapping.parse_uuid(user_id)
    with unknown_user_is_bad_request():
        await users.any_user_by_id(target)
    # Seen by an administrator, none of them is "current" (as in Immich).
    return [mapping.session(r, None) for r in await sessions.list_sessions(target)]


@get("/api/admin/users/{user_id:str}/calendar-heatmap", action=access.READ, admin=True)
async def admin_user_calendar_heatmap(auth: ImmichAuth, user_id: str,
                                      start: str | None = QueryParameter(name="from", default=None),
                                      to: str | None = None,
                                      type: str | None = None) -> dtos.CalendarHeatmapResponseDto:
    target = mapping.parse_uuid(user_id)
    first, last, kind = heatmap_query(start, to, type)
    with unknown_user_is_bad_request():
        await users.any_user_by_id(target)
    return mapping.calendar_heatmap(await calendar_heatmap.user_heatmap(auth.principal, target, kind, first, last))


@get("/api/admin/users/{user_id:str}/statistics", action=access.READ, admin=True)
async def admin_user_statistics(auth: ImmichAuth, user_id: str, isFavorite: bool | None = None,
                                isTrashed: bool | None = None,
                                visibility: dtos.AssetVisibility | None = None) -> dtos.AssetStatsResponseDto:
    with unknown_user_is_bad_request():
        row = await users.admin_user_statistics(auth.principal, mapping.parse_uuid(user_id), favorite=isFavorite,
                                                trashed=isTrashed, visibility=visibility)
    return dtos.AssetStatsResponseDto(images=row["images"], videos=row["videos"], total=row["total"])


ROUTES = [
    admin_list_users,
    admin_create_user,
    admin_get_user,
    admin_update_user,
    admin_delete_user,
    admin_restore_user,
    admin_user_preferences,
    admin_update_user_preferences,
    admin_user_sessions,
    admin_user_statistics,
    admin_user_calendar_heatmap,
]
