"""Immich partners: share all your photos with another account, read-only.

Immich answers a missing partnership with 400 (not 404), so the domain's NotFound is turned
into a BadRequest with Immich's wording here.
"""

from __future__ import annotations

from litestar import delete, get, post, put
from litestar.response import Response

from app.domain import access, partners
from app.domain.errors import BadRequest, NotFound
from compat import dtos, mapping
from compat.auth import ImmichAuth

_DIRECTIONS = {"shared-by": partners.SHARED_BY, "shared-with": partners.SHARED_WITH}


@get("/api/partners", action=access.READ)
async def list_partners(auth: ImmichAuth, direction: dtos.PartnerDirection) -> list[dtos.PartnerResponseDto]:
    rows = await partners.list_partners(auth.principal, _DIRECTIONS[direction])
    return [mapping.partner(r) for r in rows]


async def _create(auth: ImmichAuth, shared_with: str) -> Response[dtos.PartnerResponseDto]:
    row = await partners.create(auth.principal, mapping.parse_uuid(shared_with))
    return Response(mapping.partner(row), status_code=201)


@post("/api/partners", status_code=201, action=access.WRITE)
async def create_partner(auth: ImmichAuth, data: dtos.PartnerCreateDto) -> Response[dtos.PartnerResponseDto]:
    return await _create(auth, data.sharedWithId)


@post("/api/partners/{partner_id:str}", status_code=201, action=access.WRITE)
async def create_partner_by_path(auth: ImmichAuth, partner_id: str) -> Response[dtos.PartnerResponseDto]:
    """The deprecated spelling older clients still send."""
    return await _create(auth, partner_id)


@put("/api/partners/{partner_id:str}", action=access.WRITE)
async def update_partner(auth: ImmichAuth, partner_id: str, data: dtos.PartnerUpdateDto) -> dtos.PartnerResponseDto:
    """The receiver's choice: `partner_id` is the account sharing with the caller."""
    try:
        row = await partners.set_in_timeline(auth.principal, mapping.parse_uuid(partner_id), data.inTimeline)
    except NotFound:
        raise BadRequest("Not found or no partner.update access") from None
    return mapping.partner(row)


@delete("/api/partners/{partner_id:str}", status_code=204, action=access.DELETE)
async def remove_partner(auth: ImmichAuth, partner_id: str) -> None:
    """The sharer stops sharing with `partner_id`."""
    try:
        await partners.remove(auth.principal, mapping.parse_uuid(partner_id))
    except NotFound:
        raise BadRequest("Partner not found") from None


ROUTES = [list_partners, create_partner, create_partner_by_path, update_partner, remove_partner]
