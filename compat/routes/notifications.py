"""Immich's Notifications tag: a user lists, reads, marks read and removes their notifications.

Only a notification's own user reaches it; any other id, someone else's or unknown, refuses the
whole request with 400 `Not found or no notification.<read|update|delete> access`, as Immich does.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import delete, get, put
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from app.domain import access, notifications
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as


def invalid(field: str, message: str, source: str) -> ValidationException:
    return ValidationException(detail=f"{field}: {message}", extra=[{"source": source, "key": field,
                                                                    "message": message}])


def uuid_field(value: str, field: str = "id", source: str = "path") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(field, "Invalid UUID", source) from None


def _ids(values: list[str]) -> list[uuid.UUID]:
    """The body's ids: at least one, each a UUID (Immich's DTO rules)."""
    if not values:
        raise invalid("ids", "Too small: expected array to have >=1 items", "body")
    return [uuid_field(v, "ids", "body") for v in values]


def _read_at(data: dtos.NotificationUpdateDto | dtos.NotificationUpdateAllDto):
    return notifications.UNCHANGED if data.readAt is msgspec.UNSET else data.readAt


@get("/api/notifications", action=access.READ)
async def list_notifications(auth: ImmichAuth, id: str | None = None, level: dtos.NotificationLevel | None = None,
                             kind: dtos.NotificationType | None = QueryParameter(name="type", default=None),
                             unread: bool | None = None) -> list[dtos.NotificationDto]:
    """Newest first; `unread=true` keeps those not yet read (false narrows nothing, as in Immich)."""
    wanted = notifications.NotificationFilter(id=None if id is None else uuid_field(id, "id", "query"), level=level,
                                              type=kind, unread=unread)
    return [mapping.notification(n) for n in await notifications.list_notifications(auth.principal, wanted)]


@get("/api/notifications/{notification_id:str}", action=access.READ)
async def get_notification(auth: ImmichAuth, notification_id: str) -> dtos.NotificationDto:
    with refused_as("notification.read"):
        return mapping.notification(await notifications.get(auth.principal, uuid_field(notification_id)))


@put("/api/notifications/{notification_id:str}", action=access.WRITE)
async def update_notification(auth: ImmichAuth, notification_id: str,
                              data: dtos.NotificationUpdateDto) -> dtos.NotificationDto:
    """readAt: a date marks it read then, null unread; left out, nothing changes."""
    found = uuid_field(notification_id)
    with refused_as("notification.update"):
        await notifications.update(auth.principal, [found], read_at=_read_at(data))
        return mapping.notification(await notifications.get(auth.principal, found))


@delete("/api/notifications/{notification_id:str}", status_code=204, action=access.DELETE)
async def delete_notification(auth: ImmichAuth, notification_id: str) -> None:
    with refused_as("notification.delete"):
        await notifications.delete(auth.principal, [uuid_field(notification_id)])


@put("/api/notifications", status_code=204, action=access.WRITE)
async def update_notifications(auth: ImmichAuth, data: dtos.NotificationUpdateAllDto) -> None:
    ids = _ids(data.ids)
    with refused_as("notification.update"):
        await notifications.update(auth.principal, ids, read_at=_read_at(data))


@delete("/api/notifications", status_code=204, action=access.DELETE)
async def delete_notifications(auth: ImmichAuth, data: dtos.NotificationDeleteAllDto) -> None:
    ids = _ids(data.ids)
    with refused_as("notification.delete"):
        await notifications.delete(auth.principal, ids)


ROUTES = [list_notifications, get_notification, update_notification, delete_notification, update_notifications,
          delete_notifications]
