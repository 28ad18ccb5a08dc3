"""`POST /api/assets/move`: assets from one library to another, one outcome per asset
(app.domain.asset_move)."""

from __future__ import annotations

import msgspec
from litestar import post

from app.api import ids
from app.api.errors import InputError
from app.api.params import library_uuid
from app.api.state import Shared
from app.domain import access, asset_move
from app.domain.access import Principal


class MoveBody(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]
    source_library_id: str
    destination_library_id: str


class MoveItem(msgspec.Struct):
    asset_id: str
    outcome: str
    failure: str | None = None


class MoveResponse(msgspec.Struct):
    data: list[MoveItem]


@post("/api/assets/move", status_code=200, action=access.WRITE)
async def move_assets(principal: Principal, shared: Shared, data: MoveBody) -> MoveResponse:
    if len(data.asset_ids) > asset_move.MAX_IDS:
        raise InputError(f"At most {asset_move.MAX_IDS} asset ids", "body", "asset_ids")
    given = list(dict.fromkeys(data.asset_ids))
    decoded = {value: ids.try_decode(ids.ASSET, value) for value in given}
    results = await asset_move.move_assets(
        principal, shared.store, shared.queue, library_uuid(data.source_library_id),
        library_uuid(data.destination_library_id), [u for u in decoded.values() if u is not None])
    by_id = {r.asset_id: r for r in results}
    # A malformed id names no asset: it is unavailable like an unknown one.
    return MoveResponse(data=[
        MoveItem(value, by_id[u].outcome, by_id[u].failure) if u is not None
        else MoveItem(value, asset_move.FAILED, asset_move.UNAVAILABLE)
        for value, u in decoded.items()
    ])
