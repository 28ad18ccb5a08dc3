"""Native shapes of library sharing: memberships, invitations, their links, previews and joins."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from app.api import ids
from app.api.schemas import LibraryResponse, UserSummary
from app.domain import library_invitations

MemberRole = Literal["viewer", "collaborator"]


def user_summary(user_id, name: str | None) -> UserSummary:
    return UserSummary(id=ids.encode(ids.USER, user_id), display_name=name or None)


class MembershipResponse(msgspec.Struct):
    id: str
    library_id: str
    user: UserSummary
    role: MemberRole
    state: Literal["active", "left", "removed"]
    created_at: datetime
    joined_at: datetime
    ended_at: datetime | None
    last_removed_at: datetime | None
    updated_at: datetime


class MembershipPage(msgspec.Struct):
    data: list[MembershipResponse]
    has_more: bool


class InvitationResponse(msgspec.Struct):
    id: str
    library_id: str
    created_by: UserSummary
    role: MemberRole
    state: Literal["active", "exhausted", "expired", "disabled"]
    max_joiners: int
    joiner_count: int
    remaining_places: int
    expires_at: datetime
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InvitationPage(msgspec.Struct):
    data: list[InvitationResponse]
    has_more: bool


class InvitationLinkResponse(msgspec.Struct):
    invitation: InvitationResponse
    url: str


class PreviewLibrary(msgspec.Struct):
    id: str
    name: str
    owner: UserSummary


class InvitationPreviewResponse(msgspec.Struct):
    invitation_id: str
    library: PreviewLibrary
    offered_role: MemberRole
    expires_at: datetime
    eligibility: Literal["joinable", "already_member", "expired", "disabled", "exhausted", "new_invitation_required"]
    current_role: str | None  # owner, viewer or collaborator (a Literal | None would document a null enum member)


class InvitationJoinResponse(msgspec.Struct):
    outcome: Literal["joined", "already_member"]
    library: LibraryResponse
    membership: MembershipResponse | None


# Request bodies.

class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    library_id: str
    role: MemberRole
    max_joiners: int
    expires_at: datetime


class InvitationSecret(msgspec.Struct, forbid_unknown_fields=True):
    secret: str


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: MemberRole


def membership_response(row: asyncpg.Record) -> MembershipResponse:
    return MembershipResponse(
        id=ids.encode(ids.MEMBERSHIP, row["id"]),
        library_id=ids.encode(ids.LIBRARY, row["library_id"]),
        user=user_summary(row["user_id"], row["user_name"]),
        role=row["role"],
        state=row["state"],
        created_at=row["created_at"],
        joined_at=row["joined_at"],
        ended_at=row["ended_at"],
        last_removed_at=row["last_removed_at"],
        updated_at=row["updated_at"],
    )


def invitation_response(row: asyncpg.Record) -> InvitationResponse:
    return InvitationResponse(
        id=ids.encode(ids.INVITATION, row["id"]),
        library_id=ids.encode(ids.LIBRARY, row["library_id"]),
        created_by=user_summary(row["created_by"], row["created_by_name"]),
        role=row["role"],
        state=row["state"],
        max_joiners=row["max_joiners"],
        joiner_count=row["joiner_count"],
        remaining_places=max(0, row["max_joiners"] - row["joiner_count"]),
        expires_at=row["expires_at"],
        disabled_at=row["disabled_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def invitation_link_response(row: asyncpg.Record, base_url: str) -> InvitationLinkResponse:
    """The browser link: the web app's invitation page, with the secret in the fragment (never sent to a server)."""
    invitation = invitation_response(row)
    secret = library_invitations.secret_text(row["secret"])
    return InvitationLinkResponse(invitation=invitation, url=f"{base_url}/invitations/{invitation.id}#{secret}")


def preview_response(preview: library_invitations.Preview) -> InvitationPreviewResponse:
    library = preview.library
    return InvitationPreviewResponse(
        invitation_id=ids.encode(ids.INVITATION, preview.invitation["id"]),
        library=PreviewLibrary(id=ids.encode(ids.LIBRARY, library["id"]), name=library["name"],
                               owner=user_summary(library["owner_id"], library["owner_name"])),
        offered_role=preview.invitation["role"],
        expires_at=preview.invitation["expires_at"],
        eligibility=preview.eligibility,
        current_role=preview.current_role,
    )
