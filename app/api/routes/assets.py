import base64
import binascii
from typing import Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from litestar.response import Response
from msgspec import UNSET, UnsetType

from app.api.body_limits import reject_nul_form
from app.api.errors import InputError, domain_error
from app.api.params import (
    ASSET_FILTER_PARAMS,
    Values,
    asset_filter,
    base_url,
    body_asset_ids,
    check_includes,
    filter_errors,
    library_uuid,
    list_param,
    listed,
    native_ids_in_errors,
    optional_datetime,
)
from app.api.schemas import (
    AssetExistence,
    AssetPage,
    AssetResponse,
    CountBucket,
    CountPage,
    GeoCluster,
    GeoClusters,
    asset_lite,
    asset_response,
)
from app.api.state import Shared
from app.api import ids
from app.domain import access, asset_views, assets, faces, ingest, quotas
from app.domain.access import Principal
from app.domain.assets import AssetPatch
from app.domain.datetimes import parse_iso
from app.domain.errors import DomainError, NotFound
from app.storage.multipart import receive_multipart

EMPTY: dict = {}


def _with(values, name: str, extra: list[str]):
    return lambda n: values(n) + (extra if n == name else [])


class AssetUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the native API lets a user change on an asset: absent fields stay as they are, null
    clears the user's value. (Visibility is the Immich API's alone.)"""

    rating: int | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    latitude: float | None | UnsetType = UNSET
    longitude: float | None | UnsetType = UNSET
    original_datetime: str | None | UnsetType = UNSET  # ISO 8601; an offset makes it an instant

    def patch(self) -> AssetPatch:
        when = self.original_datetime
        return AssetPatch(
            rating=self.rating, description=self.description, latitude=self.latitude, longitude=self.longitude,
            original_datetime=parse_iso(when, "original_datetime") if isinstance(when, str) else when,
        )


class BulkUpdateItem(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    change: AssetUpdate


class BulkUpdateBody(msgspec.Struct, forbid_unknown_fields=True):
    updates: list[BulkUpdateItem]


class IdsBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str]


class ExistBody(msgspec.Struct, forbid_unknown_fields=True):
    checksums: list[str] | None = None
    checksum_sha1s: list[str] | None = None
    device_asset_ids: list[str] | None = msgspec.field(default=None, name="deviceAssetIds")
    device_id: str | None = msgspec.field(default=None, name="deviceId")


def _checksums(values: list[str], size: int, field: str) -> list[bytes]:
    """Checksums as the native API sends them: base64 of `size` bytes each."""
    out = []
    for value in values:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != size:
            raise InputError(f"'{value}' is not a base64 checksum of {size} bytes", "body", field)
        out.append(raw)
    return out


async def _render_all(request: Request, shared: Shared, rows) -> list[AssetResponse]:
    return await render_assets(request, shared, rows)


async def _render(request: Request, shared: Shared, row) -> AssetResponse:
    return (await _render_all(request, shared, [row]))[0]


async def render_assets(request: Request, shared: Shared, rows) -> list[AssetResponse]:
    """Assets as the API shows them, with faces and people when the request includes them."""
    base = base_url(request, shared.settings.public_url)
    include = set(list_param(request, "include") or ())
    asset_ids = [r["id"] for r in rows]
    face_map = await faces.faces_of_assets(asset_ids) if "faces" in include else {}
    people_map = await faces.people_of_assets(asset_ids) if "people" in include else {}
    return [
        asset_response(v, shared.signer, base, face_map.get(v.row["id"]) if "faces" in include else None,
                       people_map.get(v.row["id"]) if "people" in include else None)
        for v in await asset_views.views(rows)
    ]


def _required_field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise InputError(f"Field required: {name}", "body", name)
    return value


class AssetController(Controller):
    path = "/api/assets"

    @post("/", request_max_body_size=None, action=access.WRITE)
    async def create_asset(self, request: Request, principal: Principal, shared: Shared) -> Response[AssetResponse]:

        async def allowance(fields: dict[str, str]) -> quotas.Allowance:
            # library_id usually comes before the file (httpx sends fields first); when it does not,
            # the bound covers every library the caller may write to.
            named = fields.get("library_id")
            return await quotas.upload_allowance(principal, ids.try_decode(ids.LIBRARY, named) if named else None)

        settings = shared.settings
        try:
            form = await receive_multipart(
                request.stream(), request.headers.get("content-type"), ("asset_data", "sidecar_data"), shared.store,
                content_length=request.headers.get("content-length"), max_bytes=settings.max_upload_bytes,
                idle_timeout=settings.upload_idle_timeout_seconds, allowance=allowance,
            )
        except DomainError as exc:
            # The body may be partly unread: answer as usual, then close rather than drain it.
            refused = domain_error(request, exc)
            refused.headers["connection"] = "close"
            return refused
        try:
            reject_nul_form(form.lists, {name: received.filename for name, received in form.files.items()})
            asset_file = form.files.get("asset_data")
            if asset_file is None:
                raise InputError("Field required: asset_data (a file part)", "body", "asset_data")
            sidecar = form.files.get("sidecar_data")
            upload = ingest.Upload(
                staged=asset_file.staged,
                filename=asset_file.filename,
                device_asset_id=_required_field(form.fields, "device_asset_id"),
                device_id=_required_field(form.fields, "device_id"),
                file_created_at=parse_iso(_required_field(form.fields, "file_created_at"), "file_created_at"),
                file_modified_at=parse_iso(_required_field(form.fields, "file_modified_at"), "file_modified_at"),
                library_id=library_uuid(form.fields.get("library_id")),
                sidecar=sidecar.staged if sidecar else None,
            )
        except BaseException:
            form.discard()
            raise
        row, created = await ingest.ingest(principal, shared.store, upload, shared.queue)
        return Response(await _render(request, shared, row), status_code=201 if created else 200)

    @get("/", action=access.READ, dependencies=ASSET_FILTER_PARAMS)
    async def list_assets(
        self,
        request: Request,
        principal: Principal,
        shared: Shared,
        filter_values: Values,
        order: Literal["asc", "desc"] = "desc",
        limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
        listed_include: list[str] | None = listed("include", "Extra fields: metadata, faces, people, file_data, variants."),
    ) -> AssetPage:
        check_includes(list_param(request, "include"))
        f = await asset_filter(principal, filter_values)
        rows, has_more = await assets.list_assets(
            f,
            order=order,
            limit=limit,
            starting_after=None
            if starting_after_id is None
            else ids.decode_filter(ids.ASSET, starting_after_id, "starting_after_id"),
        )
        return AssetPage(data=await _render_all(request, shared, rows), has_more=has_more)

    @get("/counts", action=access.READ, dependencies=ASSET_FILTER_PARAMS)
    async def counts(
        self,
        principal: Principal,
        filter_values: Values,
        group_by: Literal["day", "week", "month", "year"] = "month",
        order: Literal["asc", "desc"] = "desc",
        limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_bucket: str | None = None,
        person_id: str | None = None,
    ) -> CountPage:
        values = filter_values
        if person_id is not None:  # deprecated single-person alias
            if values("person_ids"):
                raise InputError("Use person_ids or person_id, not both", "query", "person_id")
            values = _with(values, "person_ids", [person_id])
        f = await asset_filter(principal, values)
        with filter_errors():
            rows, has_more = await assets.counts(
                f, group_by=group_by, order=order, limit=limit,
                starting_after_bucket=optional_datetime(starting_after_bucket, "starting_after_bucket"),
            )
        return CountPage(data=[CountBucket(time_bucket=r["time_bucket"], count=r["count"]) for r in rows],
                         has_more=has_more)

    @get("/geo-clusters", action=access.READ, dependencies=ASSET_FILTER_PARAMS)
    async def geo_clusters(self, principal: Principal, filter_values: Values,
                           cell_size: float | None = None) -> GeoClusters:
        # Required, but checked here so that authentication is answered first.
        if cell_size is None:
            raise InputError("cell_size is required", "query", "cell_size")
        f = await asset_filter(principal, filter_values)
        with filter_errors():
            rows = await assets.geo_clusters(f, cell_size)
        return GeoClusters(data=[
            GeoCluster(latitude=r["latitude"], longitude=r["longitude"], count=r["count"],
                       representative_asset_id=ids.encode(ids.ASSET, r["representative"]))
            for r in rows
        ])

    @post("/bulk-update", status_code=200, action=access.WRITE)
    async def bulk_update(self, request: Request, principal: Principal, shared: Shared, data: BulkUpdateBody) -> dict:
        items = []
        for update in data.updates:  # a malformed id is as unknown as a well-formed one naming nothing
            asset_id = ids.try_decode(ids.ASSET, update.id)
            if asset_id is None:
                raise NotFound(f"Asset {update.id} not found")
            items.append((asset_id, update.change.patch()))
        with native_ids_in_errors():
            await assets.bulk_update(principal, items, shared.queue)
        return EMPTY

    @post("/exist", status_code=200, action=access.READ)
    async def check_existence(
        self, principal: Principal, data: ExistBody, library_id: str | None = None
    ) -> AssetExistence:
        if sum(x is not None for x in (data.checksums, data.checksum_sha1s, data.device_asset_ids)) != 1:
            raise InputError("Give exactly one of checksums, checksum_sha1s, or deviceAssetIds with deviceId", "body")
        if data.device_asset_ids is not None and not data.device_id:
            raise InputError("deviceId is required with deviceAssetIds", "body", "deviceId")
        items = data.checksums or data.checksum_sha1s or data.device_asset_ids or []
        if len(items) > assets.MAX_EXIST_ITEMS:
            raise InputError(f"At most {assets.MAX_EXIST_ITEMS} items per request", "body")
        rows = await assets.existing_assets(
            principal,
            library_uuid(library_id),
            sha256s=None if data.checksums is None else _checksums(data.checksums, 32, "checksums"),
            sha1s=None if data.checksum_sha1s is None else _checksums(data.checksum_sha1s, 20, "checksum_sha1s"),
            device_asset_ids=data.device_asset_ids,
            device_id=data.device_id,
        )
        return AssetExistence(assets=[asset_lite(r) for r in rows])

    @post("/trash", status_code=200, action=access.DELETE)
    async def trash(self, principal: Principal, data: IdsBody, library_id: str | None = None) -> dict:
        asset_ids = body_asset_ids(data.ids, "ids")
        with native_ids_in_errors():
            await assets.set_trashed(principal, library_uuid(library_id), asset_ids, trashed=True)
        return EMPTY

    @post("/restore", status_code=200, action=access.DELETE)
    async def restore(self, principal: Principal, data: IdsBody, library_id: str | None = None) -> dict:
        asset_ids = body_asset_ids(data.ids, "ids")
        with native_ids_in_errors():
            await assets.set_trashed(principal, library_uuid(library_id), asset_ids, trashed=False)
        return EMPTY

    @post("/empty-trash", status_code=200, action=access.DELETE_PERMANENTLY)
    async def empty_trash(self, principal: Principal, shared: Shared, library_id: str | None = None) -> dict:
        await assets.empty_trash(principal, shared.store, library_uuid(library_id))
        return EMPTY

    @delete("/", status_code=200, action=access.DELETE_PERMANENTLY)
    async def delete_list(
        self, principal: Principal, shared: Shared, data: IdsBody, library_id: str | None = None
    ) -> dict:
        asset_ids = body_asset_ids(data.ids, "ids")
        with native_ids_in_errors():
            await assets.delete_assets(principal, shared.store, library_uuid(library_id), asset_ids)
        return EMPTY

    @get("/{asset_id:str}", action=access.READ)
    async def retrieve(
        self, request: Request, principal: Principal, shared: Shared, asset_id: str,
        listed_include: list[str] | None = listed("include", "Extra fields: metadata, faces, people, file_data, variants."),
    ) -> AssetResponse:
        check_includes(list_param(request, "include"))
        row = await access.load_asset(principal, ids.decode(ids.ASSET, asset_id), access.READ)
        return await _render(request, shared, row)

    @patch("/{asset_id:str}", action=access.WRITE)
    async def update(
        self, request: Request, principal: Principal, shared: Shared, asset_id: str, data: AssetUpdate
    ) -> AssetResponse:
        change = data.patch()  # the body is checked before the id is looked up
        row = await assets.update_asset(principal, ids.decode(ids.ASSET, asset_id), change, shared.queue)
        return await _render(request, shared, row)

    @delete("/{asset_id:str}", status_code=200, action=access.DELETE_PERMANENTLY)
    async def delete_one(self, principal: Principal, shared: Shared, asset_id: str) -> dict:
        await assets.delete_asset(principal, shared.store, ids.decode(ids.ASSET, asset_id))
        return EMPTY
