from litestar import Request, get, post

from app.api.body_limits import reject_nul_form
from app.api.errors import InputError
from app.api.params import (
    ASSET_FILTER_PARAMS,
    INTEGER,
    STRING,
    Values,
    asset_filter,
    check_includes,
    documented,
    form_values,
    int_param,
    list_param,
    listed,
)
from app.api.routes.assets import render_assets
from app.api.schemas import SearchResponse, SearchResultItem
from app.api.state import Shared
from app.api import ids
from app.domain import access, assets, smart_search
from app.domain.access import Principal
from app.storage.multipart import receive_multipart

_CRITERIA = ("query", "asset_id", "album_id", "person_ids", "ratings", "media_type", "local_datetime_before",
             "local_datetime_after")
# native-api.md §5: a content search ranks a fixed top-200 set; deeper pages are empty, and ranking
# stays bounded instead of growing with page * limit.
CONTENT_SEARCH_CANDIDATES = 200


async def _search(request: Request, principal: Principal, shared: Shared, values: Values,
                  image_path=None) -> SearchResponse:
    check_includes(list_param(request, "include"))
    image = image_path is not None
    if not image and not any(v.strip() for name in _CRITERIA for v in values(name)):
        raise InputError("Give at least one of query, image, asset_id, album_id, person_ids, ratings, media_type or a"
                         " date bound (a location only narrows)", "query")
    text = " ".join(v.strip() for v in values("query") if v.strip())
    similar_to = " ".join(v.strip() for v in values("asset_id") if v.strip())
    f = await asset_filter(principal, values)
    page = int_param(values, "page", 1, 1, 1_000_000)
    limit = int_param(values, "limit", 20, 1, 200)
    if sum(map(bool, (text, image, similar_to))) > 1:
        # Fusing a text and an image ranking is not done here: one signal per search.
        raise InputError("Give one of query, image or asset_id: combining them is not supported", "query", "query")
    if not (text or image or similar_to):
        rows, has_more = await assets.search_page(f, page=page, limit=limit)
        return SearchResponse(
            data=[SearchResultItem(asset=a, distance=None) for a in await render_assets(request, shared, rows)],
            has_more=has_more,
        )
    config = await smart_search.enabled_config()
    model_dir = shared.settings.model_dir
    if text:
        vector = await smart_search.text_vector(model_dir, config.model, text)
    elif image:
        vector = await smart_search.image_file_vector(model_dir, config.model, image_path)
    else:
        vector = await smart_search.asset_vector(principal, ids.decode(ids.ASSET, similar_to), config.model)
    ranked = await smart_search.search_ranked(principal, [f], config.model, vector, (page - 1) * limit, limit + 1,
                                              at_most=CONTENT_SEARCH_CANDIDATES)
    shown = ranked[:limit]
    rendered = await render_assets(request, shared, [row for row, _ in shown])
    return SearchResponse(
        data=[SearchResultItem(asset=a, distance=distance) for a, (_, distance) in zip(rendered, shown)],
        has_more=len(ranked) > limit,
    )


@get("/api/search", action=access.READ, dependencies=ASSET_FILTER_PARAMS)
async def search_get(
    request: Request, principal: Principal, shared: Shared, filter_values: Values,
    # Read from filter_values by _search; declared here for the document (`query` is a name Litestar reserves).
    text: str | None = documented("query", STRING, "Text to search for: ranked by CLIP similarity (smart search)."),
    similar: str | None = documented("asset_id", STRING, "Rank by similarity to this asset's image (asset_ ID)."),
    limit: str | None = documented("limit", INTEGER, "Results per page, 1 to 200 (default 20)."),
    page: str | None = documented("page", INTEGER, "The page, from 1."),
    listed_include: list[str] | None = listed("include", "Extra fields: metadata, faces, people, file_data, variants."),
) -> SearchResponse:
    return await _search(request, principal, shared, filter_values)


@post("/api/search", status_code=200, request_max_body_size=64 << 20, action=access.READ)
async def search_post(
    request: Request, principal: Principal, shared: Shared,
    listed_include: list[str] | None = listed("include", "Extra fields: metadata, faces, people, file_data, variants."),
) -> SearchResponse:
    form = await receive_multipart(request.stream(), request.headers.get("content-type"), ("image",), shared.store,
                                   idle_timeout=shared.settings.upload_idle_timeout_seconds)
    try:
        reject_nul_form(form.lists, {name: received.filename for name, received in form.files.items()})
        image = form.files.get("image")
        return await _search(request, principal, shared, form_values(form.lists),
                             image_path=None if image is None else image.staged.path)
    finally:
        form.discard()
