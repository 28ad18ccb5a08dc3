"""Every route declares what it needs; one guard checks it, for sessions and API keys alike.

A route handler names the action it needs in its decorator (`action=READ`, `WRITE`, `DELETE` or
`DELETE_PERMANENTLY`, plus `admin=True` for administration), or says `public=True` for the few
routes anyone may call. Both listeners install the guard built here. It runs before the request
body is parsed: it authenticates the caller, checks the credential's actions and the admin flag,
and leaves the caller on the connection for the handler's dependency. A route without a
declaration is refused whatever the credential (fail closed), and a test that enumerates every
route of both apps names it.

A route of the Immich listener may also say `shared_link=True` (Immich's `sharedLink: true`): only
there does a shared link's key, slug or password cookie count as a credential (compat/auth.py reads
the declaration this guard leaves on the connection); `shared_link_login=True` marks the one route
that takes a password-protected link's password, so it needs no password cookie yet. A link caller
missing the route's action is refused as unauthenticated, as Immich refuses an upload through a
link that does not allow one.

Domain functions still check their own finer rules (an object's library, a key's library scope,
permanent deletion inside a delete route); this guard is the floor no route can go below.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from app.domain.access import ALL_ACTIONS, Principal
from app.domain.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

# The keys a route handler's `opt` carries (Litestar puts unknown decorator keywords there).
ACTION = "action"
ADMIN = "admin"
PUBLIC = "public"
SHARED_LINK = "shared_link"
SHARED_LINK_LOGIN = "shared_link_login"

_CALLER = "photos_caller"
_DECLARATION = "photos_route_declaration"


class Declaration:
    """What one route handler declared, read back for the guard and for the enumerating test."""

    def __init__(self, handler: BaseRouteHandler):
        opt = handler.opt or {}
        self.public = opt.get(PUBLIC) is True or _generated_options(handler)
        self.action: str | None = opt.get(ACTION)
        self.admin = opt.get(ADMIN) is True
        self.shared_link_login = opt.get(SHARED_LINK_LOGIN) is True
        self.shared_link = opt.get(SHARED_LINK) is True or self.shared_link_login

    @property
    def valid(self) -> bool:
        if self.public:
            return self.action is None and not self.admin and not self.shared_link
        return self.action in ALL_ACTIONS and not (self.admin and self.shared_link)


def _generated_options(handler: BaseRouteHandler) -> bool:
    # Litestar answers OPTIONS for every path with a handler of its own that only lists the allowed
    # methods; it reads nothing and changes nothing.
    return getattr(handler, "http_methods", None) == {"OPTIONS"} and handler.handler_name == "options_handler"


def make_guard(authenticate: Callable[[ASGIConnection], Awaitable[Any]],
               principal_of: Callable[[Any], Principal]):
    """A Litestar guard for one listener: `authenticate` turns a connection into that listener's caller."""

    async def check_route_access(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        declared = Declaration(handler)
        if not declared.valid:
            log.error("route %s declares no valid access rule; refusing it", handler)
            raise Forbidden("This route declares no access rule")
        if declared.public:
            return
        connection.state[_DECLARATION] = declared
        caller = await authenticate(connection)
        principal = principal_of(caller)
        if principal.shared_link is not None:
            if not declared.shared_link:  # the authenticator never does this; the floor holds anyway
                raise Unauthorized("Authentication required")
            if declared.action not in principal.actions:
                raise Unauthorized("Unauthorized")
        principal.require(declared.action)
        if declared.admin and not principal.is_admin:
            raise Forbidden("Only an administrator may do this")
        connection.state[_CALLER] = caller

    return check_route_access


def declaration(connection: ASGIConnection) -> Declaration | None:
    """What the route being authenticated declared (None outside the guard: a socket handshake)."""
    return connection.state.get(_DECLARATION)


def caller(connection: ASGIConnection) -> Any:
    """The caller the guard authenticated for this request."""
    found = connection.state.get(_CALLER)
    if found is None:  # a handler asked for a caller on a route that authenticates nobody
        raise Unauthorized("Authentication required")
    return found
