"""HMAC-signed media URLs: the signature is the credential, so URLs work without headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

_DAY = 86400
# URLs stay valid 7-8 days and only change once a day, so clients can cache them.
_VALID_DAYS = 8


class UrlSigner:
    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, asset_id: uuid.UUID, variant: str, expires: int, state: str = "") -> str:
        # `state` binds a URL to the state of the object it was issued for (see media_state), so a
        # change of that state (trashing an asset) ends every URL issued before it.
        msg = f"{asset_id}:{variant}:{expires}{':' + state if state else ''}".encode()
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, asset_id: uuid.UUID, variant: str, now: float | None = None, state: str = "") -> tuple[int, str]:
        day = int((now if now is not None else time.time()) // _DAY)
        expires = (day + _VALID_DAYS) * _DAY
        return expires, self._mac(asset_id, variant, expires, state)

    def verify(self, asset_id: uuid.UUID, variant: str, expires: int, signature: str, state: str = "") -> bool:
        if expires < time.time():
            return False
        if not signature.isascii():  # compare_digest raises on non-ASCII text; no real signature has any
            return False
        return hmac.compare_digest(self._mac(asset_id, variant, expires, state), signature)


def media_state(trashed_at) -> str:
    """What an asset URL is bound to: a live asset's URLs stop working when it is trashed, and the
    URLs the trash view gets (bound to that trashing) stop working when it is restored or deleted."""
    return "" if trashed_at is None else f"trashed-{trashed_at.timestamp():.6f}"
