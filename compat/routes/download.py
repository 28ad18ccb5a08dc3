"""Immich's Download tag: what a selection downloads as (archives of a target size), and one archive
streamed as a zip. A shared link downloads only when it allows downloads."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.response import Stream

from app.api.state import Shared
from app.api.zip_streaming import zip_stream
from app.domain import access, downloads
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as


def _given(value):
    return None if value is msgspec.UNSET else value


@post("/api/download/info", status_code=201, action=access.READ, shared_link=True)
async def get_download_info(auth: ImmichAuth, data: dtos.DownloadInfoDto) -> dtos.DownloadResponseDto:
    asset_ids = _given(data.assetIds)
    album_id, user_id = _given(data.albumId), _given(data.userId)
    # Immich names the permission of the source it checked.
    permission = ("asset.download" if asset_ids is not None else
                  "album.download" if album_id is not None else "timeline.download")
    with refused_as(permission):
        found = await downloads.plan(
            auth.principal,
            asset_ids=None if asset_ids is None else [mapping.parse_uuid(i) for i in asset_ids],
            album_id=None if album_id is None else mapping.parse_uuid(album_id),
            user_id=None if user_id is None else mapping.parse_uuid(user_id),
            archive_size=_given(data.archiveSize),
        )
    return dtos.DownloadResponseDto(
        archives=[dtos.DownloadArchiveInfo(assetIds=[str(i) for i in a.asset_ids], size=a.size)
                  for a in found.archives],
        totalSize=found.total_size,
    )


@post("/api/download/archive", status_code=200, action=access.READ, shared_link=True)
async def download_archive(auth: ImmichAuth, shared: Shared, data: dtos.DownloadArchiveDto) -> Stream:
    with refused_as("asset.download"):
        entries = await downloads.archive_entries(auth.principal, [mapping.parse_uuid(i) for i in data.assetIds],
                                                  edited=_given(data.edited) is True)
    by_name = {e.name: e for e in entries}

    async def relocate(name: str):
        key = await downloads.moved_key(by_name[name])
        return None if key is None else shared.store.path(key)

    return zip_stream(((e.name, downloads.entry_file(shared.store, e)) for e in entries), relocate)


ROUTES = [get_download_info, download_archive]
