"""Immich's Users tag: the directory of accounts, the caller's own account, onboarding and profile image."""

from __future__ import annotations

import re
import uuid
from datetime import date
from collections.abc import Iterator
from contextlib import contextmanager

from litestar import Request, delete, get, post, put
from litestar.params import QueryParameter
from litestar.response import Response
from msgspec import UNSET

from app.api.file_serving import send_file
from app.api.state import Shared
from app.domain import access, calendar_heatmap, licenses, profile_images, users
from app.domain.errors import BadRequest, DomainError, NotFound
from app.storage.multipart import receive_multipart
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth
from compat.errors import EXCEPTION_HANDLERS

PROFILE_IMAGE_MAX_BYTES = 50 * 1024 * 1024


def check_email(value: str | None, field: str = "email") -> None:
    """The spec's e-mail pattern as Immich tests it (msgspec's check lets a final newline through)."""
    if isinstance(value, str) and not validation.matches(validation.EMAIL_PATTERN, value):
        raise validation.failed(validation.pattern_issue(validation.EMAIL_PATTERN, [field]))


def check_preferences(dto: dtos.UserPreferencesUpdateDto) -> None:
    """The spec checks the numbers; this server also holds the date the buy button hides until to a
    date-time (Immich 3.1 takes any string there; tests/test_immich_accounts.py expects the refusal)."""
    hide_until = getattr(dto.purchase, "hideBuyButtonUntil", None)
    if isinstance(hide_until, str):
        from app.domain.datetimes import parse_iso

        try:
            parse_iso(hide_until, "hideBuyButtonUntil")
        except DomainError:
            raise validation.failed(validation.invalid_datetime(hide_until, ["purchase", "hideBuyButtonUntil"])
                                    ) from None


async def save_preferences(user_id: uuid.UUID, data: dtos.UserPreferencesUpdateDto) -> dict:
    check_preferences(data)
    current = mapping.preferences(await users.user_by_id(user_id))
    updated = mapping.preferences_update(current, data)
    avatar = data.avatar.color if isinstance(data.avatar, dtos.AvatarUpdate) else UNSET
    await users.save_preferences(user_id, updated, avatar_color=avatar)
    return updated


def heatmap_query(start: str | None, end: str | None, kind: str | None) -> tuple[date | None, date | None, str]:
    """A calendar heatmap's query as Immich's zod schema reads it: days as YYYY-MM-DD, a known type."""
    issues = []
    days = []
    for field, value in (("from", start), ("to", end)):
        day = None
        if value is not None and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                day = date.fromisoformat(value)
            except ValueError:  # a day the calendar lacks, such as 2024-02-30
                pass
        if value is not None and day is None:
            issues.append(validation.invalid_date(value, [field]))
        days.append(day)
    kind = calendar_heatmap.UPLOAD if kind is None else kind
    if kind not in (calendar_heatmap.UPLOAD, calendar_heatmap.TAKEN):
        issues.append(validation.invalid_option([calendar_heatmap.UPLOAD, calendar_heatmap.TAKEN], ["type"]))
    if issues:
        raise validation.failed(*issues)
    return days[0], days[1], kind


@contextmanager
def unknown_user_is_bad_request() -> Iterator[None]:
    """Immich answers an unknown user id with 400 `User not found`."""
    try:
        yield
    except NotFound:
        raise BadRequest("User not found") from None


@get("/api/users", action=access.READ)
async def search_users(auth: ImmichAuth) -> list[dtos.UserResponseDto]:
    return [mapping.user(r) for r in await users.users_visible_to(auth.principal)]


@put("/api/users/me", action=access.WRITE)
async def update_my_user(auth: ImmichAuth, data: dtos.UserUpdateMeDto) -> dtos.UserAdminResponseDto:
    check_email(data.email)
    return mapping.user_admin(await users.update_account(auth.principal, mapping.account_patch(data)))


@get("/api/users/me/onboarding", action=access.READ)
async def my_onboarding(auth: ImmichAuth) -> dtos.OnboardingResponseDto:
    return dtos.OnboardingResponseDto(isOnboarded=await users.is_onboarded(auth.principal))


@put("/api/users/me/onboarding", action=access.WRITE)
async def set_my_onboarding(auth: ImmichAuth, data: dtos.OnboardingDto) -> dtos.OnboardingResponseDto:
    return dtos.OnboardingResponseDto(isOnboarded=await users.set_onboarded(auth.principal, data.isOnboarded))


@delete("/api/users/me/onboarding", status_code=204, action=access.DELETE)
async def reset_my_onboarding(auth: ImmichAuth) -> None:
    await users.reset_onboarding(auth.principal)


@put("/api/users/me/preferences", action=access.WRITE)
async def update_preferences(auth: ImmichAuth, data: dtos.UserPreferencesUpdateDto) -> dict:
    return await save_preferences(auth.principal.user_id, data)


@get("/api/users/me/license", action=access.READ)
async def my_license(auth: ImmichAuth) -> dtos.UserLicense:
    return mapping.license_response(await licenses.user_license(auth.principal))


@put("/api/users/me/license", action=access.WRITE)
async def set_my_license(auth: ImmichAuth, data: dtos.LicenseKeyDto) -> dtos.UserLicense:
    return mapping.license_response(
        await licenses.set_user_license(auth.principal, data.licenseKey, data.activationKey))


@delete("/api/users/me/license", status_code=204, action=access.DELETE)
async def delete_my_license(auth: ImmichAuth) -> None:
    await licenses.delete_user_license(auth.principal)


@get("/api/users/me/calendar-heatmap", action=access.READ)
async def my_calendar_heatmap(auth: ImmichAuth, start: str | None = QueryParameter(name="from", default=None),
                              to: str | None = None, type: str | None = None) -> dtos.CalendarHeatmapResponseDto:
    first, last, kind = heatmap_query(start, to, type)
    return mapping.calendar_heatmap(await calendar_heatmap.my_heatmap(auth.principal, kind, first, last))


@post("/api/users/profile-image", request_max_body_size=None, action=access.WRITE)
async def create_profile_image(request: Request, auth: ImmichAuth,
                               shared: Shared) -> Response[dtos.CreateProfileImageResponseDto]:
    try:
        form = await receive_multipart(
            request.stream(), request.headers.get("content-type"), ("file",), shared.store,
            content_length=request.headers.get("content-length"), max_bytes=PROFILE_IMAGE_MAX_BYTES,
            idle_timeout=shared.settings.upload_idle_timeout_seconds,
        )
    except DomainError as exc:
        refused = EXCEPTION_HANDLERS[DomainError](request, exc)
        refused.headers["connection"] = "close"  # the rest of the body may be unread
        return refused
    received = form.files.pop("file", None)
    form.discard()
    if received is None:
        # Immich reads the file without checking it is there (a 500); a missing field is zod's 400 here
        raise validation.failed(validation.invalid_type("file", validation.MISSING, ["file"]))
    row = await profile_images.set_profile_image(auth.principal, shared.store, received.staged, received.filename)
    body = dtos.CreateProfileImageResponseDto(userId=str(row["id"]), profileChangedAt=row["profile_changed_at"],
                                              profileImagePath=mapping.profile_image_path(row))
    return Response(body, status_code=201)


@delete("/api/users/profile-image", status_code=204, action=access.DELETE)
async def delete_profile_image(auth: ImmichAuth, shared: Shared) -> None:
    await profile_images.delete_profile_image(auth.principal, shared.store)


@get("/api/users/{user_id:str}", action=access.READ)
async def get_user(auth: ImmichAuth, user_id: str) -> dtos.UserResponseDto:
    with unknown_user_is_bad_request():
        return mapping.user(await users.user_by_id(mapping.parse_uuid(user_id)))


@get("/api/users/{user_id:str}/profile-image", action=access.READ)
async def get_profile_image(request: Request, auth: ImmichAuth, shared: Shared, user_id: str) -> Response:
    target = mapping.parse_uuid(user_id)
    with unknown_user_is_bad_request():
        row = await users.user_by_id(target)
    path, mime = await profile_images.profile_image(auth.principal, shared.store, target)
    # The key changes with every new image, so it names this one picture.
    return send_file(request, path, media_type=mime, etag=path.stem, cache_control="private, no-cache",
                     inline_name=f"{row['id']}{path.suffix}")


ROUTES = [
    search_users,
    update_my_user,
    my_onboarding,
    set_my_onboarding,
    reset_my_onboarding,
    update_preferences,
    my_license,
    set_my_license,
    delete_my_license,
    my_calendar_heatmap,
    create_profile_image,
    delete_profile_image,
    get_user,
    get_profile_image,
]
