"""Notifications (app/domain/notifications.py) and e-mail (app/domain/emails.py, app/mail.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import datetime, timezone

import pytest

from app import mail
from app.db import engine as db
from app.domain import album_sharing, emails, notifications, system_config
from app.domain.errors import BadRequest, Forbidden, Invalid, NotFound
from tests.domain import factories as f
from tests.smtp import closed_port, loopback_smtp, smtp_config

READ_AT = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


async def _admin_and_user():
    admin = f.principal_for(await f.new_user(is_admin=True))
    user = await f.new_user()
    return admin, user, f.principal_for(user)


async def test_an_admin_notifies_a_user_who_lists_filters_and_marks_it_read():
    admin, user, me = await _admin_and_user()
    first = await notifications.create(admin, user["id"], "Backup failed", level="error", type="BackupFailed",
                                       description="disk full", data={"job": "backup"})
    second = await notifications.create(admin, user["id"], "Hello")
    assert (second["level"], second["type"], second["read_at"]) == ("info", "Custom", None)
    assert first["data"] == {"job": "backup"}

    assert [n["id"] for n in await notifications.list_notifications(me)] == [second["id"], first["id"]]
    by_level = notifications.NotificationFilter(level="error")
    assert [n["id"] for n in await notifications.list_notifications(me, by_level)] == [first["id"]]
    by_type = notifications.NotificationFilter(type="Custom", id=second["id"])
    assert [n["id"] for n in await notifications.list_notifications(me, by_type)] == [second["id"]]

    await notifications.update(me, [first["id"]], read_at=READ_AT)
    assert (await notifications.get(me, first["id"]))["read_at"] == READ_AT
    unread = notifications.NotificationFilter(unread=True)
    assert [n["id"] for n in await notifications.list_notifications(me, unread)] == [second["id"]]
    # unread=False narrows nothing, as in Immich; leaving readAt out changes nothing; null is unread.
    assert len(await notifications.list_notifications(me, notifications.NotificationFilter(unread=False))) == 2
    await notifications.update(me, [first["id"]])
    assert (await notifications.get(me, first["id"]))["read_at"] == READ_AT
    await notifications.update(me, [first["id"], second["id"]], read_at=None)
    assert len(await notifications.list_notifications(me, unread)) == 2


async def test_only_its_user_reaches_a_notification_and_a_foreign_id_refuses_the_whole_batch():
    admin, user, me = await _admin_and_user()
    other = f.principal_for(await f.new_user())
    mine = await notifications.create(admin, user["id"], "Mine")
    theirs = await notifications.create(admin, other.user_id, "Theirs")
    for attempt in (notifications.get(other, mine["id"]), notifications.get(admin, mine["id"]),
                    notifications.update(me, [mine["id"], theirs["id"]], read_at=READ_AT),
                    notifications.delete(me, [theirs["id"]]), notifications.delete(me, [uuid.uuid4()])):
        with pytest.raises(NotFound):
            await attempt
    assert (await notifications.get(me, mine["id"]))["read_at"] is None
    assert await notifications.list_notifications(other) != []


async def test_a_removed_notification_is_gone_and_every_change_is_logged_for_its_user():
    admin, user, me = await _admin_and_user()
    item = await notifications.create(admin, user["id"], "Soon gone")
    await notifications.update(me, [item["id"]], read_at=READ_AT)
    await notifications.delete(me, [item["id"]])
    assert await notifications.list_notifications(me) == []
    with pytest.raises(NotFound):
        await notifications.get(me, item["id"])
    with pytest.raises(NotFound):  # removing it twice finds nothing the second time
        await notifications.delete(me, [item["id"]])
    logged = await db.fetch("SELECT event_type, owner_id, library_id FROM events WHERE entity_id = $1 ORDER BY id",
                            item["id"])
    assert [r["event_type"] for r in logged] == [notifications.CREATED, notifications.UPDATED, notifications.DELETED]
    assert {(r["owner_id"], r["library_id"]) for r in logged} == {(user["id"], None)}


async def test_only_an_admin_creates_and_only_for_a_live_user_with_known_values():
    admin, user, me = await _admin_and_user()
    with pytest.raises(Forbidden):
        await notifications.create(me, user["id"], "Self-made")
    with pytest.raises(NotFound):
        await notifications.create(admin, uuid.uuid4(), "Nobody")
    gone = await f.new_user(deleted_at=datetime.now(timezone.utc))
    with pytest.raises(NotFound):
        await notifications.create(admin, gone["id"], "Deleted")
    with pytest.raises(Invalid):
        await notifications.create(admin, user["id"], "Loud", level="critical")


def test_templates_escape_their_values_and_a_custom_one_fills_its_tags():
    rendered = emails.render(emails.ALBUM_INVITE, {"albumName": "<Trip>", "albumId": "a1", "senderName": "Ann",
                                                   "recipientName": "Bo", "baseUrl": "https://photos.example"})
    assert rendered.subject == "You have been added to a shared album - <Trip>"
    assert "&lt;Trip&gt;" in rendered.html and "<Trip>" not in rendered.html
    assert 'href="https://photos.example/albums/a1"' in rendered.html
    assert "Ann shared the album <Trip> with you." in rendered.text
    custom = emails.render(emails.WELCOME, {"displayName": "<b>", "username": "u@x"}, "<p>{displayName} {other}</p>")
    assert custom.html == "<p>&lt;b&gt; {other}</p>"


async def test_previews_are_for_admins_and_empty_for_an_unknown_template():
    admin, _, me = await _admin_and_user()
    welcome = await emails.preview(admin, emails.WELCOME, "https://photos.example")
    assert "john@doe.com" in welcome and "thisIsAPassword123" in welcome
    assert "https://photos.example/auth/login" in welcome
    assert await emails.preview(admin, "no-such-template", "https://photos.example") == ""
    with pytest.raises(Forbidden):
        await emails.preview(me, emails.WELCOME, "https://photos.example")


async def test_the_test_email_reaches_the_admin_through_the_given_smtp_server():
    admin_row = await f.new_user(is_admin=True, name="Ada")
    admin = f.principal_for(admin_row)
    with loopback_smtp() as inbox:
        smtp = mail.Smtp.from_config(smtp_config(inbox.port, enabled=False))  # enabled or not, it is tried
        message_id = await emails.send_test_email(admin, smtp, "https://photos.example")
        [(recipients, received)] = await asyncio.to_thread(inbox.wait_for, 1)
    assert recipients == [admin_row["email"]]
    assert received["Message-ID"] == message_id and received["Subject"] == "Test email from Immich"
    assert received["From"] == "Photos <photos@example.com>"
    assert "Ada" in received.get_body(("plain",)).get_content()
    assert "<strong>Ada</strong>" in received.get_body(("html",)).get_content()


async def test_an_unreachable_smtp_server_is_a_bad_request_and_only_admins_send():
    admin = f.principal_for(await f.new_user(is_admin=True))
    smtp = mail.Smtp.from_config(smtp_config(closed_port()))
    with pytest.raises(BadRequest, match="Failed to verify SMTP configuration"):
        await emails.send_test_email(admin, smtp, "https://photos.example")
    with pytest.raises(Forbidden):
        await emails.send_test_email(f.principal_for(await f.new_user()), smtp, "https://photos.example")


async def test_mail_sent_later_delivers_and_a_failure_is_only_logged(caplog):
    rendered = emails.render(emails.WELCOME, {"displayName": "Kid", "username": "kid@example.com",
                                              "baseUrl": "https://photos.example"})
    with loopback_smtp() as inbox:
        await emails.send_later(mail.Smtp.from_config(smtp_config(inbox.port)), "kid@example.com", rendered)
        [(recipients, received)] = await asyncio.to_thread(inbox.wait_for, 1)
    assert recipients == ["kid@example.com"] and received["Subject"] == "Welcome to Immich"
    with caplog.at_level(logging.ERROR, logger="app.domain.emails"):
        await emails.send_later(mail.Smtp.from_config(smtp_config(closed_port())), "kid@example.com", rendered)
    assert "could not send 'Welcome to Immich'" in caplog.text


@contextlib.asynccontextmanager
async def _saved_config(overrides: dict):
    """Immich's system config with these overrides stored, for the test's length (the key is
    server-wide, so it is removed again, and the cache dropped both ways)."""
    await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key)"
                     " DO UPDATE SET value = excluded.value", system_config.KEY, json.dumps(overrides))
    system_config.invalidate()
    try:
        yield
    finally:
        await db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY)
        system_config.invalidate()


async def test_the_welcome_email_goes_out_when_smtp_is_enabled_with_a_temporary_password_only():
    admin = f.principal_for(await f.new_user(is_admin=True))
    kid = await f.new_user(name="Kid", should_change_password=True)
    grown = await f.new_user(name="Grown")
    with loopback_smtp() as inbox:
        async with _saved_config({"notifications": {"smtp": smtp_config(inbox.port)},
                                  "server": {"externalDomain": "https://photos.example/"}}):
            await emails.welcome_later(admin, kid["id"], "temp-pw", "http://ignored")
            await emails.welcome_later(admin, grown["id"], "own-pw", "http://ignored")
        received = await asyncio.to_thread(inbox.wait_for, 2)
    by_address = {to[0]: message for to, message in received}
    assert set(by_address) == {kid["email"], grown["email"]}
    kid_text = by_address[kid["email"]].get_body(("plain",)).get_content()
    assert by_address[kid["email"]]["Subject"] == "Welcome to Immich"
    assert "temp-pw" in kid_text and kid["email"] in kid_text and "https://photos.example/auth/login" in kid_text
    assert "own-pw" not in by_address[grown["email"]].get_body(("plain",)).get_content()


async def test_no_mail_while_smtp_is_disabled():
    admin = f.principal_for(await f.new_user(is_admin=True))
    user = await f.new_user()
    with loopback_smtp() as inbox:
        async with _saved_config({"notifications": {"smtp": smtp_config(inbox.port, enabled=False)}}):
            await emails.welcome_later(admin, user["id"], None, "https://photos.example")
        assert inbox.messages == []


async def test_album_invitations_go_to_new_album_users_who_take_them():
    owner = await f.new_user(name="Olga")
    keen, unwilling = await f.new_user(name="Keen"), await f.new_user(
        preferences={"emailNotifications": {"enabled": True, "albumInvite": False, "albumUpdate": True}})
    album = await f.new_album(owner, name="Summer\n<24>")  # a line break cannot reach a header
    me = f.principal_for(owner)
    await album_sharing.add_users(me, album["id"], [(keen["id"], "viewer"), (unwilling["id"], "editor")])
    with loopback_smtp() as inbox:
        async with _saved_config({"notifications": {"smtp": smtp_config(inbox.port)}}):
            await emails.album_invites_later(me, album["id"], [keen["id"], unwilling["id"]], "https://photos.example")
        [(recipients, received)] = await asyncio.to_thread(inbox.wait_for, 1)
    assert recipients == [keen["email"]]
    assert received["Subject"] == "You have been added to a shared album - Summer <24>"
    text = received.get_body(("plain",)).get_content()
    assert "Olga shared the album Summer <24> with you." in " ".join(text.split())
    assert f"https://photos.example/albums/{album['id']}" in text
