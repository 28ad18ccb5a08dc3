"""Native library invitations: the owner's links, and a recipient's preview and join (signed-in sessions only)."""

from typing import Literal

from litestar import Controller, Request, get, post
from litestar.params import Parameter, QueryParameter
from litestar.response import Response

from app.api import ids
from app.api.library_schemas import (
    InvitationCreate,
    InvitationJoinResponse,
    InvitationLinkResponse,
    InvitationPage,
    InvitationPreviewResponse,
    InvitationResponse,
    InvitationSecret,
    invitation_link_response,
    invitation_response,
    membership_response,
    preview_response,
)
from app.api.params import base_url, library_uuid
from app.api.schemas import library_response
from app.api.state import Shared
from app.domain import access, libraries, library_invitations
from app.domain.access import Principal


def _invitation(value: str):
    return ids.decode(ids.INVITATION, value)


def _link_base(request: Request, shared: Shared) -> str:
    return base_url(request, shared.settings.public_url)


class InvitationController(Controller):
    path = "/api/libraries/invitations"

    @post("/", action=access.WRITE)
    async def create_invitation(self, request: Request, principal: Principal, shared: Shared,
                                data: InvitationCreate) -> Response[InvitationLinkResponse]:
        row, created = await library_invitations.create_invitation(
            principal, ids.decode(ids.LIBRARY, data.library_id), role=data.role, max_joiners=data.max_joiners,
            expires_at=data.expires_at,
        )
        return Response(invitation_link_response(row, _link_base(request, shared)),
                        status_code=201 if created else 200)

    @get("/", action=access.READ)
    async def list_invitations(
        self, principal: Principal, library_id: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
        invitation_state: Literal["active", "exhausted", "expired", "disabled", "all"] = QueryParameter(
            name="state", default="all"),
    ) -> InvitationPage:
        rows, has_more = await library_invitations.list_invitations(
            principal, library_uuid(library_id), state=invitation_state, limit=limit,
            starting_after=ids.decode_filter(ids.INVITATION, starting_after_id, "starting_after_id")
            if starting_after_id else None,
        )
        return InvitationPage(data=[invitation_response(r) for r in rows], has_more=has_more)

    @get("/{invitation_id:str}/link", action=access.READ)
    async def invitation_link(self, request: Request, principal: Principal, shared: Shared,
                              invitation_id: str) -> InvitationLinkResponse:
        row = await library_invitations.invitation_link(principal, _invitation(invitation_id))
        return invitation_link_response(row, _link_base(request, shared))

    @post("/{invitation_id:str}/disable", status_code=200, action=access.WRITE)
    async def disable_invitation(self, principal: Principal, invitation_id: str) -> InvitationResponse:
        return invitation_response(await library_invitations.disable_invitation(principal, _invitation(invitation_id)))

    @post("/{invitation_id:str}/preview", status_code=200, action=access.READ)
    async def preview_invitation(self, principal: Principal, invitation_id: str,
                                 data: InvitationSecret) -> InvitationPreviewResponse:
        preview = await library_invitations.preview_invitation(principal, _invitation(invitation_id), data.secret)
        return preview_response(preview)

    @post("/{invitation_id:str}/join", status_code=200, action=access.WRITE)
    async def join_invitation(self, principal: Principal, invitation_id: str,
                              data: InvitationSecret) -> InvitationJoinResponse:
        joined = await library_invitations.join(principal, _invitation(invitation_id), data.secret)
        library = await libraries.get_library(principal, joined.library_id)
        return InvitationJoinResponse(
            outcome=joined.outcome, library=library_response(library),
            membership=None if joined.membership is None else membership_response(joined.membership),
        )
