"""Immich activities: comments and likes on an album, or on an asset in it.

Immich refuses every id the caller cannot act on with 400 `Not found or no <permission> access`,
naming the permission its check asked for: album.read to list and count, activity.create to add
(also when the album takes no activity), activity.delete to remove.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import delete, get, post
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from litestar.response import Response

from app.domain import access, activities
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as


def _invalid(field: str, message: str, source: str = "body") -> ValidationException:
    return ValidationException(detail=f"{field}: {message}", extra=[{"source": source, "key": field,
                                                                    "message": message}])


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    return None if value is None else mapping.parse_uuid(value, field)


@get("/api/activities", action=access.READ)
async def list_activities(auth: ImmichAuth, albumId: str, assetId: str | None = None,
                          level: dtos.ReactionLevel | None = None,
                          kind: dtos.ReactionType | None = QueryParameter(name="type", default=None),
                          userId: str | None = None) -> list[dtos.ActivityResponseDto]:
    """Oldest first. level=album keeps the album's own; assetId one asset's; type and userId narrow."""
    album = _uuid(albumId, "albumId")
    wanted = activities.ActivityFilter(asset_id=_uuid(assetId, "assetId"), level=level, kind=kind,
                                       user_id=_uuid(userId, "userId"))
    with refused_as("album.read"):
        found = await activities.list_activities(auth.principal, album, wanted)
    return [mapping.activity(a) for a in found]


@get("/api/activities/statistics", action=access.READ)
async def activity_statistics(auth: ImmichAuth, albumId: str,
                              assetId: str | None = None) -> dtos.ActivityStatisticsResponseDto:
    album = _uuid(albumId, "albumId")
    with refused_as("album.read"):
        comments, likes = await activities.statistics(auth.principal, album, _uuid(assetId, "assetId"))
    return dtos.ActivityStatisticsResponseDto(comments=comments, likes=likes)


@post("/api/activities", status_code=201, action=access.WRITE)
async def create_activity(auth: ImmichAuth, data: dtos.ActivityCreateDto) -> Response[dtos.ActivityResponseDto]:
    """201 with a new activity; 200 with the existing one when the caller already likes the same thing."""
    comment = None if data.comment is msgspec.UNSET else data.comment
    if data.type == activities.COMMENT and (comment is None or not comment.strip()):
        raise _invalid("comment", "Comment is required when type is COMMENT")
    if data.type != activities.COMMENT and comment:  # Immich lets a like carry an empty one
        raise _invalid("comment", "Comment must not be provided when type is not COMMENT")
    asset = None if data.assetId is msgspec.UNSET else _uuid(data.assetId, "assetId")
    album = _uuid(data.albumId, "albumId")
    with refused_as("activity.create"):
        item, created = await activities.create(auth.principal, album, data.type, asset_id=asset,
                                                comment=comment if data.type == activities.COMMENT else None)
    return Response(mapping.activity(item), status_code=201 if created else 200)


@delete("/api/activities/{activity_id:str}", status_code=204, action=access.DELETE)
async def delete_activity(auth: ImmichAuth, activity_id: str) -> None:
    activity = _uuid(activity_id, "id")
    with refused_as("activity.delete"):
        await activities.delete(auth.principal, activity)


ROUTES = [list_activities, activity_statistics, create_activity, delete_activity]
