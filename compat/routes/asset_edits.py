"""Immich 3.x non-destructive edits (`/api/assets/{id}/edits`): crop, rotate and mirror.

The edit list becomes a server-rendered version of the asset (app/domain/asset_versions.py); the
uploaded original is never changed, and DELETE goes back to the rendering below the edit.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import delete, get, put

from app.api.state import Shared
from app.domain import access, asset_versions
from compat import dtos, validation
from compat.auth import ImmichAuth

# Immich picks the parameters' type from the action; the spec can only say "any of the three".
_PARAMETERS: dict[str, type] = {"crop": dtos.CropParameters, "rotate": dtos.RotateParameters,
                                "mirror": dtos.MirrorParameters}
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def _parameters(item: dict, index: int) -> dict[str, Any]:
    declared = _PARAMETERS[item["action"]]
    value = item.get("parameters", validation.MISSING)
    path: validation.Path = ["edits", index, "parameters"]
    if not isinstance(value, dict):
        raise validation.failed(validation.invalid_type("object", value, path))
    try:
        parsed = msgspec.convert(value, declared)
    except msgspec.ValidationError as exc:
        where = _AT.search(str(exc))
        issue = validation.from_msgspec(declared, value, str(exc).split(" - at ")[0], where.group(1) if where else "")
        issue["path"] = path + issue["path"]
        raise validation.failed(issue) from None
    return msgspec.to_builtins(parsed)


def parse_edits(body: Any) -> list[dict[str, Any]]:
    """AssetEditsCreateDto, checked as Immich checks it, as plain {action, parameters} items."""
    if not isinstance(body, dict):
        raise validation.failed(validation.invalid_type("object", body, []))
    edits = body.get("edits", validation.MISSING)
    if not isinstance(edits, list):
        raise validation.failed(validation.invalid_type("array", edits, ["edits"]))
    if not edits:
        raise validation.failed(validation.out_of_range("array", 1, False, ["edits"]))
    out = []
    for index, item in enumerate(edits):
        if not isinstance(item, dict):
            raise validation.failed(validation.invalid_type("object", item, ["edits", index]))
        if item.get("action") not in _PARAMETERS:
            raise validation.failed(validation.invalid_option(list(_PARAMETERS), ["edits", index, "action"]))
        out.append({"action": item["action"], "parameters": _parameters(item, index)})
    return out


def _response(asset_id, items: list[dict[str, Any]]) -> dtos.AssetEditsResponseDto:
    return dtos.AssetEditsResponseDto(assetId=str(asset_id), edits=[
        dtos.AssetEditActionItemResponseDto(id=e["id"], action=e["action"],
                                            parameters=_PARAMETERS[e["action"]](**e["parameters"]))
        for e in items])


@get("/api/assets/{asset_id:str}/edits", action=access.READ)
async def get_asset_edits(auth: ImmichAuth, asset_id: str) -> dtos.AssetEditsResponseDto:
    asset_uuid = validation.parse_uuid(asset_id)
    return _response(asset_uuid, await asset_versions.edits(auth.principal, asset_uuid))


@put("/api/assets/{asset_id:str}/edits", status_code=200, action=access.WRITE)
async def edit_asset(auth: ImmichAuth, shared: Shared, asset_id: str,
                     data: Any = None) -> dtos.AssetEditsResponseDto:
    asset_uuid = validation.parse_uuid(asset_id)
    items = parse_edits(validation.MISSING if data is None else data)  # no body: zod's `undefined`
    applied = await asset_versions.set_edits(auth.principal, shared.store, shared.queue, asset_uuid, items)
    return _response(asset_uuid, applied)


@delete("/api/assets/{asset_id:str}/edits", status_code=204, action=access.WRITE)
async def remove_asset_edits(auth: ImmichAuth, shared: Shared, asset_id: str) -> None:
    await asset_versions.remove_edits(auth.principal, shared.store, shared.queue, validation.parse_uuid(asset_id))


ROUTES = [get_asset_edits, edit_asset, remove_asset_edits]
