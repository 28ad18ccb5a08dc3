"""Immich's System config tag: the server's settings document, its defaults, and the storage
template's tokens. Administrators only, as in Immich."""

from __future__ import annotations

from typing import Any

from litestar import get, put

from app.domain import access, storage_template, system_config
from compat import dtos
from compat.auth import ImmichAuth


@get("/api/system-config", action=access.READ, admin=True)
async def get_config(auth: ImmichAuth) -> dict[str, Any]:
    return await system_config.current()


# The body is taken as parsed JSON, not as the DTO: the domain checks it field by field and answers
# every bad value in Immich's words.
@put("/api/system-config", status_code=200, action=access.WRITE, admin=True)
async def update_config(auth: ImmichAuth, data: Any) -> dict[str, Any]:
    return await system_config.update(auth.principal, data)


@get("/api/system-config/defaults", action=access.READ, admin=True)
async def get_defaults(auth: ImmichAuth) -> dict[str, Any]:
    return system_config.defaults()


@get("/api/system-config/storage-template-options", action=access.READ, admin=True)
async def get_storage_template_options(auth: ImmichAuth) -> dtos.SystemConfigTemplateStorageOptionDto:
    return dtos.SystemConfigTemplateStorageOptionDto(**storage_template.options())


ROUTES = [get_config, update_config, get_defaults, get_storage_template_options]
