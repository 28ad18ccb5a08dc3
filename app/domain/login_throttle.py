"""Throttling of password sign-in, with counters in Redis so every API process shares them.

The rule (also in README):

- Three counters of failed attempts, each over a fixed window of `login_window_seconds`:
  the (account, address) pair, the address over all accounts, and the account over all addresses.
  "Account" is the email as typed, lower-cased, so unknown emails are throttled like real ones.
  "Address" is the TCP peer (never a forwarded header), an IPv6 client counted per /64.
- A sign-in is refused with 429 and `Retry-After` when its pair has `login_max_failures`, or its
  address has `login_max_failures_per_address`, or its account has `login_max_failures_per_account`
  AND this address has itself failed on the account in the window.
- So failures from other addresses can never lock out an address that has not failed: someone
  hammering alice's account from X does not stop alice signing in from Y. A spread-out attack (many
  addresses) still gets at most one try per address once the account-wide count is reached.
- An attempt is counted before the password is checked (so parallel requests cannot slip past the
  limit while the hash is verified); a success takes its own count back and clears its pair.
- A refused attempt checks no password and counts nothing, so waiting out `Retry-After` always works.

If Redis cannot be reached, sign-in goes on unthrottled (logged): an outage of the shared counters
must not lock every user out, and the password hash still makes each guess slow.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.domain.errors import DomainError

log = logging.getLogger(__name__)

_PREFIX = "photos:login:"

# KEYS: pair, address, account. ARGV: window ms, pair limit, address limit, account limit.
# Returns 0 when the attempt may go on (and has been counted), else the milliseconds to wait.
_BEGIN = """
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
local address = tonumber(redis.call('GET', KEYS[2]) or '0')
local account = tonumber(redis.call('GET', KEYS[3]) or '0')
local blocking = {}
if pair >= tonumber(ARGV[2]) then table.insert(blocking, KEYS[1]) end
if address >= tonumber(ARGV[3]) then table.insert(blocking, KEYS[2]) end
if pair > 0 and account >= tonumber(ARGV[4]) then table.insert(blocking, KEYS[3]) end
if #blocking > 0 then
  local wait = 1
  for _, key in ipairs(blocking) do
    local ttl = redis.call('PTTL', key)
    if ttl > wait then wait = ttl end
  end
  return wait
end
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
return 0
"""

# A success: give back the attempt counted for it (only where the counter still exists, so an
# expired key is never recreated without a lifetime) and forget the pair's earlier failures.
_SUCCEED = """
for i = 2, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 and tonumber(redis.call('GET', KEYS[i])) > 0 then
    redis.call('DECR', KEYS[i])
  end
end
redis.call('DEL', KEYS[1])
return 0
"""


def client_key(address: str) -> str:
    """The unit an address is counted in: an IPv6 client usually holds a whole /64, so counting
    single addresses would give it 2^64 fresh starts; IPv4 (also when IPv4-mapped) counts as is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Throttled(DomainError):
    status = 429

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed sign-in attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    window_seconds: int
    per_pair: int
    per_address: int
    per_account: int


class Attempt:
    """One counted sign-in attempt; call succeeded() when the password was right."""

    def __init__(self, throttle: "LoginThrottle | None", keys: list[str]):
        self._throttle = throttle
        self._keys = keys

    async def succeeded(self) -> None:
        if self._throttle is None:
            return
        try:
            await self._throttle._succeed(keys=self._keys)
        except (RedisError, OSError) as exc:
            log.warning("login throttle: could not record a success: %s", exc)


class LoginThrottle:
    def __init__(self, redis: Redis, limits: Limits):
        self.limits = limits
        self._begin = redis.register_script(_BEGIN)
        self._succeed = redis.register_script(_SUCCEED)

    @staticmethod
    def _keys(email: str, address: str) -> list[str]:
        # Hashed, so the shared store holds no email addresses.
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        address = client_key(address)
        return [f"{_PREFIX}pair:{account}:{address}", f"{_PREFIX}addr:{address}", f"{_PREFIX}acct:{account}"]

    async def begin(self, email: str, address: str) -> Attempt:
        """Count an attempt, or raise Throttled when this (account, address) must wait."""
        keys = self._keys(email, address)
        limits = self.limits
        try:
            wait_ms = await self._begin(keys=keys, args=[limits.window_seconds * 1000, limits.per_pair,
                                                         limits.per_address, limits.per_account])
        except (RedisError, OSError) as exc:
            log.warning("login throttle unavailable, signing in unthrottled: %s", exc)
            return Attempt(None, keys)
        if wait_ms:
            raise Throttled(max(1, math.ceil(int(wait_ms) / 1000)))
        return Attempt(self, keys)


def throttle_for(redis: Redis | None, settings) -> LoginThrottle | None:
    """The throttle over a process's Redis and its settings (None without Redis: no shared store)."""
    if redis is None:
        return None
    return LoginThrottle(redis, Limits(settings.login_window_seconds, settings.login_max_failures,
                                       settings.login_max_failures_per_address,
                                       settings.login_max_failures_per_account))
