"""Immich's System metadata tag: the administrator's onboarding flag, the reverse-geocoding and
version-check states."""

from __future__ import annotations

from litestar import get, post

from app.domain import access, system_metadata
from compat import dtos
from compat.auth import ImmichAuth


@get("/api/system-metadata/admin-onboarding", action=access.READ, admin=True)
async def get_admin_onboarding(auth: ImmichAuth) -> dtos.AdminOnboardingUpdateDto:
    return dtos.AdminOnboardingUpdateDto(isOnboarded=await system_metadata.admin_onboarded())


@post("/api/system-metadata/admin-onboarding", status_code=204, action=access.WRITE, admin=True)
async def update_admin_onboarding(auth: ImmichAuth, data: dtos.AdminOnboardingUpdateDto) -> None:
    await system_metadata.set_admin_onboarding(auth.principal, data.isOnboarded)


@get("/api/system-metadata/reverse-geocoding-state", action=access.READ, admin=True)
async def get_reverse_geocoding_state(auth: ImmichAuth) -> dtos.ReverseGeocodingStateResponseDto:
    return dtos.ReverseGeocodingStateResponseDto(**await system_metadata.reverse_geocoding_state())


@get("/api/system-metadata/version-check-state", action=access.READ, admin=True)
async def get_version_check_state(auth: ImmichAuth) -> dtos.VersionCheckStateResponseDto:
    return dtos.VersionCheckStateResponseDto(**await system_metadata.version_check_state())


ROUTES = [get_admin_onboarding, update_admin_onboarding, get_reverse_geocoding_state, get_version_check_state]
