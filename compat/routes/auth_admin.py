"""Immich's Authentication (admin) tag: unlinking every account from OAuth."""

from __future__ import annotations

from litestar import post

from app.domain import access
from compat.auth import ImmichAuth


@post("/api/admin/auth/unlink-all", status_code=204, action=access.WRITE, admin=True)
async def unlink_all_oauth_accounts(auth: ImmichAuth) -> None:
    # Immich clears every account's OAuth id. This server has no OAuth sign-in, so no account is
    # ever linked (every account reports an empty oauthId): what the call asks for already holds,
    # and answering 204 states a fact rather than pretending to have done work.
    return None


ROUTES = [unlink_all_oauth_accounts]
