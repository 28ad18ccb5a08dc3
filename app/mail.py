"""Outgoing e-mail over SMTP (aiosmtplib), with the settings Immich's SMTP config holds.

`secure` is TLS from the first byte (SMTPS, usually port 465); otherwise the connection is upgraded
with STARTTLS when the server offers it. `ignore_cert` accepts any certificate. The server is
logged into only when a user name or a password is set.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

TIMEOUT_SECONDS = 5


class MailError(Exception):
    """The SMTP server could not be reached or logged into (`connecting`), or refused the message."""

    def __init__(self, detail: str, *, connecting: bool):
        super().__init__(detail)
        self.connecting = connecting


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    reply_to: str = ""
    username: str = ""
    password: str = ""
    secure: bool = False
    ignore_cert: bool = False

    @classmethod
    def from_config(cls, smtp: dict[str, Any]) -> Smtp:
        """From Immich's `notifications.smtp` config object (camelCase, transport nested)."""
        transport = smtp.get("transport") or {}
        return cls(host=transport.get("host") or "", port=int(transport.get("port") or 587),
                   sender=smtp.get("from") or "", reply_to=smtp.get("replyTo") or "",
                   username=transport.get("username") or "", password=transport.get("password") or "",
                   secure=bool(transport.get("secure")), ignore_cert=bool(transport.get("ignoreCert")))


def message(smtp: Smtp, *, to: str, subject: str, html: str, text: str) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with a fresh Message-ID."""
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Reply-To"] = smtp.reply_to or smtp.sender
    msg["Subject"] = " ".join(subject.split())  # a header is one line: an album name may hold line breaks
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(smtp.sender)[1].rpartition("@")[2] or None
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


async def _connect(smtp: Smtp) -> aiosmtplib.SMTP:
    """A connection, logged in when the settings name a user or a password."""
    client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, use_tls=smtp.secure,
                             start_tls=False if smtp.secure else None, validate_certs=not smtp.ignore_cert,
                             timeout=TIMEOUT_SECONDS)
    try:
        await client.connect()
        if smtp.username or smtp.password:
            await client.login(smtp.username, smtp.password)
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        client.close()
        raise MailError(f"Could not connect to {smtp.host}:{smtp.port}: {exc}", connecting=True) from exc
    return client


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


async def verify(smtp: Smtp) -> None:
    """Reach the SMTP server and log in, sending nothing (MailError when that fails)."""
    await _close(await _connect(smtp))


async def send(smtp: Smtp, msg: EmailMessage) -> str:
    """Deliver the message to the SMTP server; its Message-ID."""
    client = await _connect(smtp)
    try:
        await client.send_message(msg)
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        raise MailError(f"The SMTP server refused the message: {exc}", connecting=False) from exc
    finally:
        await _close(client)
    return msg["Message-ID"]
