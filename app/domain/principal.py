"""Who a request acts for, and which actions its credential allows.

The bottom of the access layers: authentication (app.domain.authentication) produces a
Principal, and scoped loading (app.domain.access) and every domain operation take one. It
imports no domain module, so any of them may import it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.domain.errors import Forbidden, Unauthorized

READ = "read"
WRITE = "write"
DELETE = "delete"
DELETE_PERMANENTLY = "delete_permanently"
ALL_ACTIONS = frozenset({READ, WRITE, DELETE, DELETE_PERMANENTLY})


@dataclass(frozen=True)
class SharedLinkGrant:
    """The Immich shared link a request came with (its key, slug or password cookie): what it opens.
    Read afresh on every request, so a deleted or expired link stops working on the next one."""

    id: uuid.UUID
    owner_id: uuid.UUID
    album_id: uuid.UUID | None  # an ALBUM link's album; None for an INDIVIDUAL link
    asset_ids: frozenset[uuid.UUID]  # an INDIVIDUAL link's assets
    allow_upload: bool
    allow_download: bool
    show_metadata: bool


@dataclass(frozen=True)
class LibraryChoices:
    """The user's own libraries as its credential was checked: the one chosen for Immich clients,
    the default, and the live ones in creation order (access.preferred_library picks from them).
    Read in the same statement as the credential, so the many requests that need the preferred
    library make no query of their own for it; a request sees them as they were when it began."""

    immich: uuid.UUID | None
    default: uuid.UUID | None
    live: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    is_admin: bool
    api_key_id: uuid.UUID | None
    actions: frozenset[str]
    # None: every library the user can reach; otherwise only these.
    library_scope: frozenset[uuid.UUID] | None
    # Set only for a shared-link caller, whose library_scope is empty: it reaches nothing through
    # library roles, album shares or partners, only what app.domain.access grants the link.
    shared_link: SharedLinkGrant | None = None
    # A session unlocked with the user's PIN (Immich's elevated permission): only it reaches the
    # user's locked folder. An API key or a shared link never is.
    elevated: bool = False
    # Read with the credential when there is one (see LibraryChoices); None: read when needed.
    libraries: LibraryChoices | None = None

    def require(self, action: str) -> None:
        if action not in self.actions:
            raise Forbidden(f"This credential does not allow the '{action}' action")

    def in_scope(self, library_id: uuid.UUID) -> bool:
        return self.library_scope is None or library_id in self.library_scope

    def require_elevated(self) -> None:
        if not self.elevated:
            raise Unauthorized("Elevated permission is required")  # Immich answers 401

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Only an administrator may do this")
