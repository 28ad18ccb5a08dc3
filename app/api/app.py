"""The native API's Litestar app."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from app.api.auth import check_route_access, provide_principal
from app.api.body_limits import CheckedRequest, reject_nul_in_url
from app.api.errors import EXCEPTION_HANDLERS
from app.api.openapi import openapi_config, openapi_document
from app.api.routes.albums import AlbumAssetController, AlbumController
from app.api.routes.api_keys import ApiKeyController
from app.api.routes.asset_versions import AssetVersionController, version_media
from app.api.routes.assets import AssetController
from app.api.routes.asset_moves import move_assets
from app.api.routes.events import get_events
from app.api.routes.search import search_get, search_post
from app.api.routes.stacks import StackController
from app.api.routes.libraries import LibraryController
from app.api.routes.library_invitations import InvitationController
from app.api.routes.faces import FaceController, PersonController
from app.api.routes.media import asset_media, face_media
from app.api.routes.server import ping
from app.api.routes.tasks import TaskController
from app.api.routes.users import UserController
from app.api.state import Shared

def create_native_app(shared: Shared, *, lifespan: list | None = None) -> Litestar:
    def provide_shared() -> Shared:
        return shared

    return Litestar(
        route_handlers=[
            ping,
            asset_media,
            face_media,
            UserController,
            LibraryController,
            InvitationController,
            move_assets,
            AssetController,
            AssetVersionController,
            version_media,
            TaskController,
            AlbumController,
            AlbumAssetController,
            StackController,
            FaceController,
            PersonController,
            ApiKeyController,
            get_events,
            search_get,
            search_post,
            openapi_document,
        ],
        dependencies={
            "principal": Provide(provide_principal),
            "shared": Provide(provide_shared, sync_to_thread=False, use_cache=True),
        },
        # Every route's declared action (and admin flag) is checked here, before the body is read.
        guards=[check_route_access],
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=CheckedRequest,  # JSON depth and NUL limits, before any route sees a body
        middleware=[reject_nul_in_url],
        lifespan=lifespan or [],
        openapi_config=openapi_config(),  # the document and its page: app/api/openapi.py
        debug=False,
    )
