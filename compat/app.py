"""The Immich-compatible Litestar app (its own listener, IMMICH_PORT)."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide

from app.api.state import Shared
from compat.errors import EXCEPTION_HANDLERS
from compat.routes.server import ServerController, well_known


def create_immich_app(shared: Shared) -> Litestar:
    def provide_shared() -> Shared:
        return shared

    return Litestar(
        route_handlers=[well_known, ServerController],
        dependencies={"shared": Provide(provide_shared, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        debug=False,
    )
