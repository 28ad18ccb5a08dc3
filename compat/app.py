"""The Immich-compatible Litestar app (its own listener, IMMICH_PORT)."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from app.api.state import Shared
from app.api.body_limits import reject_nul_in_url
from compat.auth import check_route_access, provide_auth
from compat.errors import EXCEPTION_HANDLERS
from compat.validation import ImmichRequest, check_query
from compat.routes.albums import (
    ALBUM_USER_HANDLERS,
    add_album_assets,
    add_assets_to_albums,
    album_map_markers,
    album_statistics,
    create_album,
    delete_album,
    get_album,
    list_albums,
    remove_album_assets,
    update_album,
)
from compat.realtime import LiveEvents
from compat.routes import activities as activity_routes
from compat.routes import download as download_routes
from compat.routes import asset_edits as asset_edit_routes
from compat.routes import notifications as notification_routes
from compat.routes import notifications_admin as notification_admin_routes
from compat.routes import partners as partner_routes
from compat.routes import people as people_routes
from compat.routes import shared_links as shared_link_routes
from compat.routes import system_config as system_config_routes
from compat.routes import system_metadata as system_metadata_routes
from compat.routes import tags as tag_routes
from compat.routes import jobs as job_routes
from compat.routes import libraries as library_routes
from compat.routes import memories as memory_routes
from compat.routes import map as map_routes
from compat.routes import search as search_routes
from compat.routes import views as view_routes
from compat.routes import queues as queue_routes
from compat.routes import sync as sync_routes
from compat.routes import users as user_routes
from compat.routes import users_admin as user_admin_routes
from compat.routes import auth as auth_routes
from compat.routes import auth_admin as auth_admin_routes
from compat.routes import sessions as session_routes
from compat.routes import stacks_keys
from compat.routes import asset_extras as asset_extra_routes
from compat.routes import duplicates as duplicate_routes
from compat.routes.api_keys import my_api_key
from compat.routes.assets import (
    asset_statistics,
    bulk_upload_check,
    delete_assets,
    empty_trash,
    get_asset,
    restore_assets,
    restore_trash,
    update_asset,
    update_assets,
    upload_asset,
)
from compat.routes.media import original, thumbnail, video_playback
from compat.routes.auth import admin_sign_up, change_password, login, logout, my_preferences, my_user, validate_token
from compat.routes.server import ServerController, well_known
from compat.routes.timeline import map_markers, time_bucket, time_buckets
from compat import web_app


def create_immich_app(shared: Shared) -> Litestar:
    def provide_shared() -> Shared:
        return shared

    live = LiveEvents()
    return Litestar(
        route_handlers=[
            well_known,
            live.route,
            *activity_routes.ROUTES,
            *download_routes.ROUTES,
            *asset_edit_routes.ROUTES,
            *partner_routes.ROUTES,
            *people_routes.ROUTES,
            *sync_routes.ROUTES,
            *user_routes.ROUTES,
            *user_admin_routes.ROUTES,
            *auth_admin_routes.ROUTES,
            *shared_link_routes.ROUTES,
            *system_metadata_routes.ROUTES,
            *tag_routes.ROUTES,
            *notification_routes.ROUTES,
            *notification_admin_routes.ROUTES,
            *job_routes.ROUTES,
            *library_routes.ROUTES,
            *memory_routes.ROUTES,
            *queue_routes.ROUTES,
            *system_config_routes.ROUTES,
            *asset_extra_routes.ROUTES,
            *duplicate_routes.ROUTES,
            ServerController,
            login,
            logout,
            validate_token,
            admin_sign_up,
            my_user,
            my_preferences,
            my_api_key,
            upload_asset,
            bulk_upload_check,
            asset_statistics,
            get_asset,
            update_asset,
            update_assets,
            delete_assets,
            empty_trash,
            restore_trash,
            restore_assets,
            thumbnail,
            original,
            video_playback,
            list_albums,
            create_album,
            add_album_assets,
            add_assets_to_albums,
            album_statistics,
            album_map_markers,
            get_album,
            update_album,
            delete_album,
            remove_album_assets,
            *ALBUM_USER_HANDLERS,
            change_password,
            *session_routes.ROUTES,
            *auth_routes.PIN_ROUTES,
            time_buckets,
            time_bucket,
            map_markers,
            *search_routes.ROUTES,
            *map_routes.ROUTES,
            *view_routes.ROUTES,
            stacks_keys.create_stack,
            stacks_keys.get_stack,
            stacks_keys.update_stack,
            stacks_keys.delete_stack,
            stacks_keys.delete_stacks,
            stacks_keys.list_keys,
            stacks_keys.create_key,
            stacks_keys.get_key,
            stacks_keys.rename_key,
            stacks_keys.delete_key,
            *web_app.ROUTES,  # the web app takes what no API route does (never /api/...)
        ],
        dependencies={
            "shared": Provide(provide_shared, sync_to_thread=False, use_cache=True),
            "auth": Provide(provide_auth),
        },
        # Every route's declared action (and admin flag) is checked here, before the body is read.
        guards=[check_route_access],
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=ImmichRequest,  # JSON depth, NUL and DTO rules, before any route sees a body
        before_request=check_query,  # query parameters held to Immich's rules before Litestar parses them
        middleware=[reject_nul_in_url],
        lifespan=[live.lifespan],
        openapi_config=None,
        debug=False,
    )
