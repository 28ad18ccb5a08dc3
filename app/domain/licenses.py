"""Immich licenses: the server's (kept by an administrator) and each user's.

A license key comes with an activation key, which is an RSA-SHA256 signature over the license key
made by Immich's license service; a license is accepted only when that signature verifies with
Immich's published public keys. Those are the production keys, plus the staging keys when
IMMICH_ENV is set to anything but production (as on Immich's own test servers), so the staging
licenses Immich publishes for its tests work there. A refused key gets Immich's answer: 400
`Invalid license key`.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.db import engine as db
from app.domain import system_metadata
from app.domain.errors import BadRequest, NotFound
from app.domain.principal import DELETE, READ, WRITE, Principal

SERVER_PREFIX = "IMSV-"
CLIENT_PREFIX = "IMCL-"
SERVER_LICENSE_KEY = "license"  # its system_metadata key, Immich's name for it

# Immich's public keys (base64 of a PEM document), as published in its server's configuration.
_PRODUCTION = {
    "client": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUF2LzdTMzJjUkE1KysxTm5WRHNDTQpzcFAvakpISU1xT0pYRm5oNE53QTJPcHorUk1mZGNvOTJQc09naCt3d1FlRXYxVTJjMnBqelRpUS8ybHJLcS9rCnpKUmxYd2M0Y1Vlc1FETUpPRitQMnFPTlBiQUprWHZDWFlCVUxpdENJa29Md2ZoU0dOanlJS2FSRGhkL3ROeU4KOCtoTlJabllUMWhTSWo5U0NrS3hVQ096YXRQVjRtQ0RlclMrYkUrZ0VVZVdwOTlWOWF6dkYwRkltblRXcFFTdwpjOHdFWmdPTWg0c3ZoNmFpY3dkemtQQ3dFTGFrMFZhQkgzMUJFVUNRTGI5K0FJdEhBVXRKQ0t4aGI1V2pzMXM5CmJyWGZpMHZycGdjWi82RGFuWTJxZlNQem5PbXZEMkZycmxTMXE0SkpOM1ZvN1d3LzBZeS95TWNtelRXWmhHdWgKVVFJREFRQUIKLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tDQo=",  # noqa: E501
    "server": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUFvcG5ZRGEwYS9kVTVJZUc3NGlFRQpNd2RBS2pzTmN6TGRDcVJkMVo5eTVUMndqTzdlWUlPZUpUc2wzNTBzUjBwNEtmU1VEU1h2QzlOcERwYzF0T0tsCjVzaEMvQXhwdlFBTENva0Y0anQ4dnJyZDlmQ2FYYzFUcVJiT21uaGl1Z0Q2dmtyME8vRmIzVURpM1UwVHZoUFAKbFBkdlNhd3pMcldaUExmbUhWVnJiclNLbW45SWVTZ3kwN3VrV1RJeUxzY2lOcnZuQnl3c0phUmVEdW9OV1BCSApVL21vMm1YYThtNHdNV2hpWGVoaUlPUXFNdVNVZ1BlQ3NXajhVVngxQ0dsUnpQREEwYlZOUXZlS1hXVnhjRUk2ClVMRWdKeTJGNDlsSDArYVlDbUJmN05FcjZWUTJXQjk1ZXZUS1hLdm4wcUlNN25nRmxjVUF3NmZ1VjFjTkNUSlMKNndJREFRQUIKLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tDQo=",  # noqa: E501
}
_STAGING = {
    "client": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUFuSUNyTm5jbGpPSC9JdTNtWVVaRQp0dGJLV1c3OGRuajl5M0U2ekk3dU1NUndEckdYWFhkTGhkUDFxSWtlZHh0clVVeUpCMWR4R04yQW91S082MlNGCldrbU9PTmNGQlRBWFZTdjhUNVY0S0VwWnFQYWEwaXpNaGxMaE5sRXEvY1ZKdllrWlh1Z2x6b1o3cG1nbzFSdHgKam1iRm5NNzhrYTFRUUJqOVdLaEw2eWpWRUl2MDdVS0lKWHBNTnNuS2g1V083MjZhYmMzSE9udTlETjY5VnFFRQo3dGZrUnRWNmx2U1NzMkFVMngzT255cHA4ek53b0lPTWRibGsyb09aWWROZzY0Y3l2SzJoU0FlU3NVMFRyOVc5Ckgra0Y5QlNCNlk0QXl0QlVkSmkrK2pMSW5HM2Q5cU9ieFVzTlYrN05mRkF5NjJkL0xNR0xSOC9OUFc0U0s3c0MKRlFJREFRQUIKLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tDQo=",  # noqa: E501
    "server": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUE3Sy8yd3ZLUS9NdU8ydi9MUm5saAoyUy9zTHhDOGJiTEw1UUlKOGowQ3BVZW40YURlY2dYMUpKUmtGNlpUVUtpNTdTbEhtS3RSM2JOTzJmdTBUUVg5Ck5WMEJzVzllZVB0MmlTMWl4VVFmTzRObjdvTjZzbEtac01qd29RNGtGRGFmM3VHTlZJc0dMb3UxVWRLUVhpeDEKUlRHcXVTb3NZVjNWRlk3Q1hGYTVWaENBL3poVXNsNGFuVXp3eEF6M01jUFVlTXBaenYvbVZiQlRKVzBPSytWZgpWQUJvMXdYMkVBanpBekVHVzQ3Vko4czhnMnQrNHNPaHFBNStMQjBKVzlORUg5QUpweGZzWE4zSzVtM00yNUJVClZXcTlRYStIdHRENnJ0bnAvcUFweXVkWUdwZk9HYTRCUlZTR1MxMURZM0xrb2FlRzYwUEU5NHpoYjduOHpMWkgKelFJREFRQUIKLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tDQo=",  # noqa: E501
}


@dataclass(frozen=True)
class License:
    license_key: str
    activation_key: str
    activated_at: datetime


@cache
def _public_key(encoded: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(base64.b64decode(encoded))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _keys(kind: str) -> list[str]:
    """The public keys a license of this kind (client or server) may be signed with."""
    keys = [_PRODUCTION[kind]]
    if os.environ.get("IMMICH_ENV", "production") != "production":
        keys.append(_STAGING[kind])
    return keys


def _signature(activation_key: str) -> bytes | None:
    # Node's base64 decoder, which Immich uses, reads both alphabets and tolerates missing padding.
    text = activation_key.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def signed_by(kind: str, license_key: str, activation_key: str) -> bool:
    """Whether the activation key is a signature over the license key by one of the kind's keys."""
    signature = _signature(activation_key)
    if not signature:
        return False
    for encoded in _keys(kind):
        try:
            _public_key(encoded).verify(signature, license_key.encode(), padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def _refused() -> BadRequest:
    return BadRequest("Invalid license key")


# --- the server's license ----------------------------------------------------------------------


async def server_license(principal: Principal) -> License:
    principal.require_admin()
    stored = await system_metadata.read_stored(SERVER_LICENSE_KEY)
    if stored is None:
        raise NotFound("Not Found")
    return License(stored["licenseKey"], stored["activationKey"], datetime.fromisoformat(stored["activatedAt"]))


async def is_server_licensed() -> bool:
    return await system_metadata.read_stored(SERVER_LICENSE_KEY) is not None


async def set_server_license(principal: Principal, license_key: str, activation_key: str) -> License:
    """Only a server key (IMSV-) signed with the server public key licenses the server."""
    principal.require_admin()
    if not license_key.startswith(SERVER_PREFIX) or not signed_by("server", license_key, activation_key):
        raise _refused()
    found = License(license_key, activation_key, datetime.now(timezone.utc))
    await system_metadata.write(principal, SERVER_LICENSE_KEY, {
        "licenseKey": license_key, "activationKey": activation_key, "activatedAt": found.activated_at.isoformat()})
    return found


async def delete_server_license(principal: Principal) -> None:
    principal.require_admin()
    await system_metadata.forget(principal, SERVER_LICENSE_KEY)


# --- a user's license --------------------------------------------------------------------------


async def user_license(principal: Principal) -> License:
    principal.require(READ)
    row = await db.fetchrow("SELECT * FROM user_licenses WHERE user_id = $1", principal.user_id)
    if row is None:
        raise NotFound("Not Found")
    return License(row["license_key"], row["activation_key"], row["activated_at"])


async def set_user_license(principal: Principal, license_key: str, activation_key: str) -> License:
    """A user may hold a client key (IMCL-) or a server key (IMSV-), signed with either public key,
    as Immich accepts."""
    principal.require(WRITE)
    if not license_key.startswith((CLIENT_PREFIX, SERVER_PREFIX)):
        raise _refused()
    if not (signed_by("client", license_key, activation_key) or signed_by("server", license_key, activation_key)):
        raise _refused()
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            INSERT INTO user_licenses (user_id, license_key, activation_key) VALUES ($1, $2, $3)
            ON CONFLICT (user_id) DO UPDATE SET license_key = excluded.license_key,
                activation_key = excluded.activation_key, activated_at = now()
            RETURNING *
            """,
            principal.user_id, license_key, activation_key,
        )
        # The account's answer (its license field) changed, so clients that compare it refresh.
        await conn.execute("UPDATE users SET updated_at = now() WHERE id = $1", principal.user_id)
    return License(row["license_key"], row["activation_key"], row["activated_at"])


async def delete_user_license(principal: Principal) -> None:
    principal.require(DELETE)
    await db.execute("DELETE FROM user_licenses WHERE user_id = $1", principal.user_id)
