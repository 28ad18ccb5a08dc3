from typing import Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter, QueryParameter
from litestar.response import Response

from app.api.params import base_url, check_includes, list_param, optional_datetime
from app.api.schemas import AssetExistence, AssetPage, AssetResponse, asset_lite, asset_response
from app.api.state import Shared
from app.domain import access, assets, ids, ingest
from app.domain.access import Principal
from app.domain.datetimes import parse_iso
from app.domain.errors import Invalid
from app.storage.multipart import receive_multipart

EMPTY: dict = {}
# Filters that need albums, people, stacks or places, which later versions add.
# Until then they are refused rather than silently ignored.
_NOT_YET = ("album_id", "album_filter", "person_ids", "stack_id", "bbox", "center", "radius")


class IdsBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str]


class ExistBody(msgspec.Struct, forbid_unknown_fields=True):
    checksums: list[str] | None = None
    checksum_sha1s: list[str] | None = None
    device_asset_ids: list[str] | None = msgspec.field(default=None, name="deviceAssetIds")
    device_id: str | None = msgspec.field(default=None, name="deviceId")


async def _render_all(request: Request, shared: Shared, rows) -> list[AssetResponse]:
    base = base_url(request, shared.settings.public_url)
    return [asset_response(v, shared.signer, base) for v in await assets.views(rows)]


async def _render(request: Request, shared: Shared, row) -> AssetResponse:
    return (await _render_all(request, shared, [row]))[0]


def _required_field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise Invalid(f"Field required: {name}", loc=("body", name))
    return value


class AssetController(Controller):
    path = "/api/assets"

    @post("/", request_max_body_size=None)
    async def create_asset(self, request: Request, principal: Principal, shared: Shared) -> Response[AssetResponse]:
        principal.require(access.WRITE)
        form = await receive_multipart(
            request.stream(), request.headers.get("content-type"), ("asset_data", "sidecar_data"), shared.store
        )
        try:
            asset_file = form.files.get("asset_data")
            if asset_file is None:
                raise Invalid("Field required: asset_data (a file part)", loc=("body", "asset_data"))
            sidecar = form.files.get("sidecar_data")
            upload = ingest.Upload(
                staged=asset_file.staged,
                filename=asset_file.filename,
                device_asset_id=_required_field(form.fields, "device_asset_id"),
                device_id=_required_field(form.fields, "device_id"),
                file_created_at=parse_iso(_required_field(form.fields, "file_created_at"), "file_created_at"),
                file_modified_at=parse_iso(_required_field(form.fields, "file_modified_at"), "file_modified_at"),
                library_id=form.fields.get("library_id") or None,
                sidecar=sidecar.staged if sidecar else None,
            )
        except BaseException:
            form.discard()
            raise
        row, created = await ingest.ingest(principal, shared.store, upload, shared.queue)
        return Response(await _render(request, shared, row), status_code=201 if created else 200)

    @get("/")
    async def list_assets(
        self,
        request: Request,
        principal: Principal,
        shared: Shared,
        library_id: str | None = None,
        asset_state: Literal["live", "trashed", "all"] = QueryParameter(name="state", default="live"),
        order: Literal["asc", "desc"] = "desc",
        limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
        local_datetime_after: str | None = None,
        local_datetime_before: str | None = None,
        media_type: Literal["image", "video"] | None = None,
    ) -> AssetPage:
        for name in _NOT_YET:
            if name in request.query_params or f"{name}[]" in request.query_params:
                raise Invalid(f"The '{name}' filter is not supported by this server yet", loc=("query", name))
        check_includes(list_param(request, "include"))
        id_filter = list_param(request, "ids")
        if id_filter is not None and len(id_filter) > assets.MAX_IDS:
            raise Invalid(f"At most {assets.MAX_IDS} ids", loc=("query", "ids"))
        ratings = list_param(request, "ratings")
        rating_values = None
        if ratings is not None:
            try:
                rating_values = [int(r) for r in ratings]
            except ValueError:
                raise Invalid("ratings must be integers from 0 to 5", loc=("query", "ratings")) from None
            if any(not 0 <= r <= 5 for r in rating_values):
                raise Invalid("ratings must be integers from 0 to 5", loc=("query", "ratings"))
        library = await access.library_for(principal, library_id, access.READ)
        query = assets.AssetQuery(
            library_id=library,
            ids=None if id_filter is None else [ids.decode_filter(ids.ASSET, i, "ids") for i in id_filter],
            state=asset_state,
            order=order,
            after=optional_datetime(local_datetime_after, "local_datetime_after"),
            before=optional_datetime(local_datetime_before, "local_datetime_before"),
            media_type=media_type,
            ratings=rating_values,
            limit=limit,
            starting_after=None
            if starting_after_id is None
            else ids.decode_filter(ids.ASSET, starting_after_id, "starting_after_id"),
        )
        rows, has_more = await assets.list_assets(query)
        return AssetPage(data=await _render_all(request, shared, rows), has_more=has_more)

    @post("/exist", status_code=200)
    async def check_existence(
        self, principal: Principal, data: ExistBody, library_id: str | None = None
    ) -> AssetExistence:
        rows = await assets.existing_assets(
            principal,
            library_id,
            checksums=data.checksums,
            checksum_sha1s=data.checksum_sha1s,
            device_asset_ids=data.device_asset_ids,
            device_id=data.device_id,
        )
        return AssetExistence(assets=[asset_lite(r) for r in rows])

    @post("/trash", status_code=200)
    async def trash(self, principal: Principal, data: IdsBody, library_id: str | None = None) -> dict:
        await assets.set_trashed(principal, library_id, data.ids, trashed=True)
        return EMPTY

    @post("/restore", status_code=200)
    async def restore(self, principal: Principal, data: IdsBody, library_id: str | None = None) -> dict:
        await assets.set_trashed(principal, library_id, data.ids, trashed=False)
        return EMPTY

    @post("/empty-trash", status_code=200)
    async def empty_trash(self, principal: Principal, shared: Shared, library_id: str | None = None) -> dict:
        await assets.empty_trash(principal, shared.store, library_id)
        return EMPTY

    @delete("/", status_code=200)
    async def delete_list(
        self, principal: Principal, shared: Shared, data: IdsBody, library_id: str | None = None
    ) -> dict:
        await assets.delete_assets(principal, shared.store, library_id, data.ids)
        return EMPTY

    @get("/{asset_id:str}")
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, asset_id: str) -> AssetResponse:
        check_includes(list_param(request, "include"))
        row = await access.load_asset(principal, ids.decode(ids.ASSET, asset_id), access.READ)
        return await _render(request, shared, row)

    @patch("/{asset_id:str}")
    async def update(
        self, request: Request, principal: Principal, shared: Shared, asset_id: str, data: dict[str, Any]
    ) -> AssetResponse:
        row = await assets.update_asset(principal, ids.decode(ids.ASSET, asset_id), data, shared.queue)
        return await _render(request, shared, row)

    @delete("/{asset_id:str}", status_code=200)
    async def delete_one(self, principal: Principal, shared: Shared, asset_id: str) -> dict:
        await assets.delete_asset(principal, shared.store, ids.decode(ids.ASSET, asset_id))
        return EMPTY
