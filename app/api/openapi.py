"""The native API describes itself: its OpenAPI document, generated from the typed routes.

`GET /api/openapi.json` serves the document and `GET /api/docs` a page to read it by (Scalar).
Both are public: the document names routes and field types, nothing about any account.

Litestar serves its documentation pages from a router of its own, which also answers every
unknown path one level below it (an HTML "not found" page). Mounted at `/api` that router would
shadow the API's own 404s and 405s, so it lives at `/api/docs`, and the document's canonical
address, `/api/openapi.json`, is a plain route beside the API's others.
"""

from __future__ import annotations

import copy

from litestar import Litestar, Request, Router, get
from litestar.enums import OpenAPIMediaType
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

import app as package
from app.api.route_access import PUBLIC, Declaration

DOCUMENT_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
_DOCUMENT_ROUTE_NAME = "native_openapi_document"
_DOCUMENT_STATE_KEY = "native_openapi_document"

TITLE = "Photos native API"
DESCRIPTION = (
    "The server's own REST API, in the shape the gumnut-sdk client speaks: ids carry a kind prefix "
    "(`asset_…`, `album_…`), lists page by cursor (`starting_after_id`, `has_more`). "
    "Authenticate with `Authorization: Bearer <api key>`."
)


class _ScalarPage(ScalarRenderPlugin):
    """Scalar, reading the document from its canonical address rather than the router's copy."""

    @staticmethod
    def get_openapi_json_route(request: Request) -> str:
        return request.app.route_reverse(_DOCUMENT_ROUTE_NAME)


@get(DOCUMENT_PATH, name=_DOCUMENT_ROUTE_NAME, media_type=OpenAPIMediaType.OPENAPI_JSON, include_in_schema=False,
     sync_to_thread=False, **{PUBLIC: True})
def openapi_document(request: Request) -> bytes:
    return _ScalarPage.render_json(request, _document(request.app))


def _document(app: Litestar) -> dict:
    """Litestar's document, with the public routes marked as needing no credential; made once per app."""
    document = app.state.get(_DOCUMENT_STATE_KEY)
    if document is None:
        document = copy.deepcopy(app.openapi_schema.to_schema())
        for route in app.routes:
            for handler in getattr(route, "route_handlers", ()):
                item = document["paths"].get(route.path_format)
                if item is None or not Declaration(handler).public:
                    continue
                # The document's default is the bearer key; an empty list says this operation needs none.
                for method in handler.http_methods:
                    if method.lower() in item:
                        item[method.lower()]["security"] = []
        app.state[_DOCUMENT_STATE_KEY] = document
    return document


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title=TITLE,
        version=package.__version__,
        description=DESCRIPTION,
        components=Components(
            security_schemes={"api_key": SecurityScheme(type="http", scheme="bearer",
                                                        description="An API key, or a session token")},
        ),
        security=[{"api_key": []}],
        # The pages below /api/docs are public like the document itself; the access guard reads this opt.
        openapi_router=Router(DOCS_PATH, route_handlers=[], include_in_schema=False, opt={PUBLIC: True}),
        # Scalar is Litestar's default page. It loads its script from a CDN in the reader's browser;
        # the server itself fetches nothing.
        render_plugins=[_ScalarPage(path="/")],
    )
