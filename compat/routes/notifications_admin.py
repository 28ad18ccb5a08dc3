"""Immich's Notifications (admin) tag: an administrator sends a user a notification, previews the
e-mail templates, and tries SMTP settings with a test e-mail to their own address."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post

from app import mail
from app.domain import access, emails, notifications
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.routes.notifications import invalid, uuid_field
from compat.routes.users import unknown_user_is_bad_request


class NewNotification(dtos.NotificationCreateDto, kw_only=True):
    # Immich takes `data: null` as no data (its DTO marks it nullable; the spec does not say so).
    data: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET


def _unset_as_none(value):
    return None if value is msgspec.UNSET else value


@post("/api/admin/notifications", status_code=201, action=access.WRITE, admin=True)
async def create_notification(auth: ImmichAuth, data: NewNotification) -> dtos.NotificationDto:
    """A new, unread notification for the user; readAt in the request is ignored, as by Immich."""
    user = uuid_field(data.userId, "userId", "body")
    with unknown_user_is_bad_request():
        created = await notifications.create(
            auth.principal, user, data.title, description=_unset_as_none(data.description),
            level=_unset_as_none(data.level) or notifications.DEFAULT_LEVEL,
            type=_unset_as_none(data.type) or notifications.DEFAULT_TYPE, data=_unset_as_none(data.data))
    return mapping.notification(created)


@post("/api/admin/notifications/templates/{name:str}", status_code=200, action=access.READ, admin=True)
async def template_preview(auth: ImmichAuth, request: Request, name: str,
                           data: dtos.TemplateDto) -> dtos.TemplateResponseDto:
    """The named template with Immich's sample values; `template`, when not empty, is a custom one."""
    html = await emails.preview(auth.principal, name, mapping.web_address(request.base_url), data.template or None)
    return dtos.TemplateResponseDto(name=name, html=html)


@post("/api/admin/notifications/test-email", status_code=200, action=access.WRITE, admin=True)
async def send_test_email(auth: ImmichAuth, request: Request,
                          data: dtos.SystemConfigSmtpDto) -> dtos.TestEmailResponseDto:
    """Sent through the SMTP settings in the request (enabled or not), to the administrator."""
    if not 0 <= data.transport.port <= 65535:
        raise invalid("transport.port", "Too big: expected number to be <=65535" if data.transport.port > 0
                      else "Too small: expected number to be >=0", "body")
    smtp = mail.Smtp.from_config(msgspec.to_builtins(data))
    return dtos.TestEmailResponseDto(messageId=await emails.send_test_email(auth.principal, smtp,
                                                                            mapping.web_address(request.base_url)))


ROUTES = [create_notification, template_preview, send_test_email]
