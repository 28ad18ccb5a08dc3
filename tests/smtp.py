"""A real SMTP server on loopback (aiosmtpd) whose received messages a test reads."""

from __future__ import annotations

import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.ports import free_port


@dataclass
class Inbox:
    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append((list(envelope.rcpt_tos), parsed))
            self.arrived.notify_all()
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
        return list(self.messages)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@contextlib.contextmanager
def loopback_smtp() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def smtp_config(port: int, *, enabled: bool = True, sender: str = "Photos <photos@example.com>") -> dict:
    """Immich's notifications.smtp object for the loopback server."""
    return {"enabled": enabled, "from": sender, "replyTo": "",
            "transport": {"host": "127.0.0.1", "port": port, "username": "", "password": "",
                          "secure": False, "ignoreCert": False}}
