"""The PIN that guards a user's locked folder (Immich's PIN code): set, change, reset, and the
unlock of one session with it.

Hashed with the password hasher (app.domain.users). Resetting the PIN locks every session of the
user again, as Immich does. Six digits are few, so every check of the PIN (or of the password in
its place) is a guess counted by the sign-in throttle, under a key of its own per account: a stolen
session cannot try PINs freely, and PIN guesses never lock out password sign-in.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.db import engine as db
from app.domain import sessions, users
from app.domain.errors import BadRequest, Unauthorized
from app.domain.login_throttle import LoginThrottle

PIN_PATTERN = re.compile(r"\d{6}")


def valid_pin(pin: str) -> bool:
    return PIN_PATTERN.fullmatch(pin) is not None


@dataclass(frozen=True)
class Secrets:
    pin_hash: str | None
    password_hash: str | None


async def _secrets(user_id: uuid.UUID) -> Secrets:
    row = await db.fetchrow(
        "SELECT u.password_hash, p.pin_hash FROM users u LEFT JOIN pin_codes p ON p.user_id = u.id"
        " WHERE u.id = $1 AND u.deleted_at IS NULL",
        user_id,
    )
    if row is None:
        raise Unauthorized("Invalid user token")
    return Secrets(row["pin_hash"], row["password_hash"])


@dataclass(frozen=True)
class Guard:
    """Where a guess comes from, for the throttle (None: not counted, for in-process callers)."""

    throttle: LoginThrottle | None = None
    address: str = ""


async def _check(user_id: uuid.UUID, found: Secrets, *, pin: str | None, password: str | None,
                 guard: Guard) -> None:
    """The PIN or the password proves the caller; the password is asked first when both come."""
    if not found.pin_hash:
        raise BadRequest("User does not have a PIN code")
    if not pin and not password:
        raise BadRequest("Either password or pinCode is required")
    attempt = (await guard.throttle.begin(f"pin-code:{user_id}", guard.address)
               if guard.throttle is not None else None)
    if password:
        if not users.verify_password(found.password_hash, password):
            raise BadRequest("Wrong password")
    elif pin:
        if not users.verify_password(found.pin_hash, pin):
            raise BadRequest("Wrong PIN code")
    if attempt is not None:
        await attempt.succeeded()


async def has_pin(user_id: uuid.UUID) -> bool:
    return (await _secrets(user_id)).pin_hash is not None


async def set_up(user_id: uuid.UUID, pin: str) -> None:
    if (await _secrets(user_id)).pin_hash:
        raise BadRequest("User already has a PIN code")
    # ON CONFLICT: two set-ups racing, the first one's PIN stands and the second is refused.
    done = await db.execute("INSERT INTO pin_codes (user_id, pin_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            user_id, users.hash_password(pin))
    if done == "INSERT 0 0":
        raise BadRequest("User already has a PIN code")


async def change(user_id: uuid.UUID, new_pin: str, *, pin: str | None, password: str | None,
                 guard: Guard = Guard()) -> None:
    await _check(user_id, await _secrets(user_id), pin=pin, password=password, guard=guard)
    await db.execute("UPDATE pin_codes SET pin_hash = $2 WHERE user_id = $1", user_id, users.hash_password(new_pin))


async def reset(user_id: uuid.UUID, *, pin: str | None, password: str | None, guard: Guard = Guard()) -> None:
    """Removes the PIN and locks all the user's sessions."""
    await _check(user_id, await _secrets(user_id), pin=pin, password=password, guard=guard)
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM pin_codes WHERE user_id = $1", user_id)
        await conn.execute("UPDATE sessions SET pin_expires_at = NULL WHERE user_id = $1", user_id)


async def unlock_session(user_id: uuid.UUID, session_id: uuid.UUID, *, pin: str | None,
                         guard: Guard = Guard()) -> None:
    """Unlocks the session for a while (sessions.UNLOCK_MINUTES). Immich takes only the PIN here."""
    await _check(user_id, await _secrets(user_id), pin=pin, password=None, guard=guard)
    await sessions.unlock(session_id)


@dataclass(frozen=True)
class Status:
    has_pin: bool
    has_password: bool
    elevated: bool
    expires_at: datetime | None
    pin_expires_at: datetime | None


async def status(user_id: uuid.UUID, session_id: uuid.UUID | None, *, elevated: bool) -> Status:
    found = await _secrets(user_id)
    session = await sessions.get_session(session_id) if session_id is not None else None
    return Status(
        has_pin=found.pin_hash is not None, has_password=bool(found.password_hash), elevated=elevated,
        expires_at=session["expires_at"] if session else None,
        pin_expires_at=session["pin_expires_at"] if session else None,
    )
