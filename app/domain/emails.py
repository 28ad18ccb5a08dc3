"""The e-mails the server sends: their templates, the administrator's test e-mail and previews, and
mail sent on the server's own behalf (which never holds up nor fails what triggered it).

Templates are Immich's: `welcome`, `album-invite`, `album-update` and `test`, each with the values
Immich gives it. The markup is this server's own, kept plain so every mail client shows it. An
administrator's custom template (Immich's templates config) is HTML with `{name}` tags, filled with
the same values; a tag with no value stays as written, as in Immich.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from app import mail
from app.db import engine as db
from app.domain import access, system_config
from app.domain.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

TEST = "test"
WELCOME = "welcome"
ALBUM_INVITE = "album-invite"
ALBUM_UPDATE = "album-update"


@dataclass(frozen=True)
class Email:
    subject: str
    html: str
    text: str


def _page(paragraphs: list[str], link: tuple[str, str] | None) -> str:
    """Paragraphs (already escaped HTML) and a button-like link, in one small centred page."""
    body = "".join(f'<p style="margin:0 0 16px 0">{p}</p>' for p in paragraphs)
    if link is not None:
        href, label = (html.escape(part, quote=True) for part in link)
        body += (f'<p style="margin:24px 0"><a href="{href}" style="background:#4250af;color:#ffffff;'
                 f'padding:10px 28px;border-radius:20px;text-decoration:none;font-weight:bold">{label}</a></p>'
                 f'<p style="margin:0;font-size:13px"><a href="{href}">{href}</a></p>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
            '<body style="margin:0;padding:24px;background:#f4f5fb;font-family:sans-serif;color:#1f2340">'
            '<div style="max-width:480px;margin:0 auto;padding:32px;background:#ffffff;border-radius:16px;'
            f'font-size:16px;line-height:24px">{body}</div></body></html>')


def _text(value: str) -> str:
    """The plain-text part of a page: its text, one paragraph a line."""
    value = re.sub(r"</p>", "\n\n", value)
    value = re.sub(r"<br\s*/?>", "\n", value)
    return html.unescape(re.sub(r"<[^>]+>", "", value)).strip() + "\n"


def _e(values: dict[str, str | None], key: str) -> str:
    return html.escape(values.get(key) or "")


def _test(v: dict[str, str | None]) -> tuple[str, list[str], tuple[str, str] | None]:
    return ("Test email from Immich",
            [f"Hello <strong>{_e(v, 'displayName')}</strong>,",
             "This is a test e-mail from your photo server: its e-mail settings work."],
            (v.get("baseUrl") or "", "Open"))


def _welcome(v: dict[str, str | None]) -> tuple[str, list[str], tuple[str, str] | None]:
    login = f"<strong>Username</strong>: {_e(v, 'username')}"
    if v.get("password"):
        login += f"<br><strong>Password</strong>: {_e(v, 'password')}"
    return ("Welcome to Immich",
            [f"Hello <strong>{_e(v, 'displayName')}</strong>,",
             "An account has been created for you.", login],
            (f"{v.get('baseUrl') or ''}/auth/login", "Sign in"))


def _album_invite(v: dict[str, str | None]) -> tuple[str, list[str], tuple[str, str] | None]:
    return (f"You have been added to a shared album - {v.get('albumName') or ''}",
            [f"Hello <strong>{_e(v, 'recipientName')}</strong>,",
             f"<strong>{_e(v, 'senderName')}</strong> shared the album <strong>{_e(v, 'albumName')}</strong>"
             " with you."],
            (f"{v.get('baseUrl') or ''}/albums/{v.get('albumId') or ''}", "View the album"))


def _album_update(v: dict[str, str | None]) -> tuple[str, list[str], tuple[str, str] | None]:
    return (f"New media has been added to an album - {v.get('albumName') or ''}",
            [f"Hello <strong>{_e(v, 'recipientName')}</strong>,",
             f"New photos or videos were added to the album <strong>{_e(v, 'albumName')}</strong>."],
            (f"{v.get('baseUrl') or ''}/albums/{v.get('albumId') or ''}", "View the album"))


_TEMPLATES: dict[str, Callable[[dict[str, str | None]], tuple[str, list[str], tuple[str, str] | None]]] = {
    TEST: _test, WELCOME: _welcome, ALBUM_INVITE: _album_invite, ALBUM_UPDATE: _album_update,
}

# The values Immich previews each template with (its own names and album ids, so a preview of an
# administrator's custom template reads the same here).
_PREVIEW_VALUES: dict[str, dict[str, str | None]] = {
    WELCOME: {"displayName": "John Doe", "username": "john@doe.com", "password": "thisIsAPassword123"},
    ALBUM_INVITE: {"albumId": "1", "albumName": "John Doe's Favorites", "senderName": "John Doe",
                   "recipientName": "Jane Doe"},
    ALBUM_UPDATE: {"albumId": "1", "albumName": "Favorite Photos", "recipientName": "Jane Doe"},
}


def _fill(template: str, values: dict[str, str | None]) -> str:
    return re.sub(r"\{(.*?)\}", lambda m: html.escape(values[m[1]]) if values.get(m[1]) is not None else m[0],
                  template)


def render(name: str, values: dict[str, str | None], custom: str | None = None) -> Email:
    """The named template filled with `values` (Immich's names: displayName, username, password,
    albumId, albumName, senderName, recipientName, baseUrl); `custom` replaces the markup."""
    subject, paragraphs, link = _TEMPLATES[name](values)
    page = _fill(custom, values) if custom else _page(paragraphs, link)
    return Email(subject=subject, html=page, text=_text(page))


async def _deliver(smtp: mail.Smtp, to: str, rendered: Email) -> str:
    return await mail.send(smtp, mail.message(smtp, to=to, subject=rendered.subject, html=rendered.html,
                                              text=rendered.text))


async def preview(principal: access.Principal, name: str, base_url: str, custom: str | None = None) -> str:
    """The HTML of a template as Immich previews it for an administrator, with its sample values;
    empty for a name Immich has no preview of, as Immich answers."""
    principal.require_admin()
    if name not in _PREVIEW_VALUES:
        return ""
    config = await system_config.current()
    return render(name, {**_PREVIEW_VALUES[name], "baseUrl": system_config.web_address(config, base_url)},
                  custom or _custom(config, name)).html


async def send_test_email(principal: access.Principal, smtp: mail.Smtp, base_url: str) -> str:
    """Send the test e-mail to the administrator's own address through `smtp` (the settings being
    tried, not the saved ones); the Message-ID of the message the SMTP server took."""
    principal.require(access.WRITE)
    principal.require_admin()
    user = await db.fetchrow("SELECT name, email FROM users WHERE id = $1 AND deleted_at IS NULL",
                             principal.user_id)
    if user is None:
        raise NotFound("User not found", kind="user", ids=(principal.user_id,))
    rendered = render(TEST, {"displayName": user["name"],
                             "baseUrl": system_config.web_address(await system_config.current(), base_url)})
    try:
        return await _deliver(smtp, user["email"], rendered)
    except mail.MailError as exc:
        log.info("test e-mail not sent: %s", exc)
        if exc.connecting:
            raise BadRequest("Failed to verify SMTP configuration") from None
        raise BadRequest(f"Failed to send the test email: {exc}") from None


# Mail sent in the background: referenced until done, so none is collected half-way.
_sending: set[asyncio.Task] = set()


def _in_background(work: Coroutine[Any, Any, None], what: str) -> asyncio.Task:
    """Run `work` apart from the request that asked for it; a failure is logged, never raised."""
    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("could not send %s", what)

    task = asyncio.create_task(run(), name=f"mail: {what}")
    _sending.add(task)
    task.add_done_callback(_sending.discard)
    return task


def send_later(smtp: mail.Smtp, to: str, rendered: Email) -> asyncio.Task:
    """Send one rendered e-mail in the background."""
    return _in_background(_deliver(smtp, to, rendered), f"{rendered.subject!r} to {to}")


async def _configured() -> tuple[mail.Smtp | None, dict[str, Any]]:
    """The saved SMTP settings when e-mail is enabled (else None), and the whole config."""
    config = await system_config.current()
    smtp = config["notifications"]["smtp"]
    return (mail.Smtp.from_config(smtp) if smtp.get("enabled") else None), config


# Where Immich's config keeps an administrator's custom template of each.
_CONFIG_TEMPLATES = {WELCOME: "welcomeTemplate", ALBUM_INVITE: "albumInviteTemplate",
                     ALBUM_UPDATE: "albumUpdateTemplate"}


def _custom(config: dict[str, Any], name: str) -> str | None:
    key = _CONFIG_TEMPLATES.get(name)
    return (config["templates"]["email"].get(key) or None) if key else None


def _wants(user: asyncpg.Record, kind: str) -> bool:
    """Whether the user's Immich preferences take this kind of e-mail (yes unless turned off)."""
    prefs = user["preferences"]
    prefs = json.loads(prefs) if isinstance(prefs, str) else (prefs or {})
    chosen = prefs.get("emailNotifications") or {}
    return chosen.get("enabled", True) is not False and chosen.get(kind, True) is not False


async def _send_welcome(user_id: uuid.UUID, password: str | None, base_url: str) -> None:
    smtp, config = await _configured()
    user = await db.fetchrow("SELECT name, email, should_change_password FROM users"
                             " WHERE id = $1 AND deleted_at IS NULL", user_id)
    if smtp is None or user is None:
        return
    rendered = render(WELCOME, {"displayName": user["name"], "username": user["email"],
                                "password": password if user["should_change_password"] else None,
                                "baseUrl": system_config.web_address(config, base_url)}, _custom(config, WELCOME))
    await _deliver(smtp, user["email"], rendered)


def welcome_later(principal: access.Principal, user_id: uuid.UUID, password: str | None,
                  base_url: str) -> asyncio.Task:
    """An administrator created the account and asked for Immich's welcome e-mail: sent in the
    background when e-mail is enabled. As Immich, the password is in it only when the user must
    change it at first sign-in (a temporary one)."""
    principal.require_admin()
    return _in_background(_send_welcome(user_id, password, base_url), f"the welcome e-mail for user {user_id}")


async def _send_album_invites(album_id: uuid.UUID, user_ids: list[uuid.UUID], base_url: str) -> None:
    smtp, config = await _configured()
    album = await db.fetchrow("SELECT a.id, a.name, u.name AS owner_name FROM albums a"
                              " JOIN users u ON u.id = a.owner_id WHERE a.id = $1", album_id)
    if smtp is None or album is None:
        return
    recipients = await db.fetch("SELECT u.name, u.email, u.preferences FROM users u JOIN album_users au"
                                " ON au.user_id = u.id AND au.album_id = $1"
                                " WHERE u.id = ANY($2::uuid[]) AND u.deleted_at IS NULL", album_id, user_ids)
    for user in recipients:
        if not _wants(user, "albumInvite"):
            continue
        rendered = render(ALBUM_INVITE, {"albumId": str(album["id"]), "albumName": album["name"],
                                         "senderName": album["owner_name"], "recipientName": user["name"],
                                         "baseUrl": system_config.web_address(config, base_url)},
                          _custom(config, ALBUM_INVITE))
        try:  # one recipient's refusal keeps none of the others from theirs
            await _deliver(smtp, user["email"], rendered)
        except mail.MailError:
            log.exception("could not send the album invitation to %s", user["email"])


def album_invites_later(principal: access.Principal, album_id: uuid.UUID, user_ids: list[uuid.UUID],
                        base_url: str) -> asyncio.Task | None:
    """The caller just shared the album with these users: each whose preferences take album
    invitations gets Immich's album-invite e-mail, in the background, when e-mail is enabled."""
    principal.require(access.WRITE)
    if not user_ids:
        return None
    return _in_background(_send_album_invites(album_id, list(user_ids), base_url), f"album invitations for {album_id}")
