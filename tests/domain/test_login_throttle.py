"""Password sign-in throttling (app/domain/login_throttle.py) on the embedded Valkey."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from app.domain import login_throttle as lt

LIMITS = lt.Limits(window_seconds=60, per_pair=3, per_address=5, per_account=4)


@pytest.fixture
def redis_url(domain):
    return domain.redis_url


def email() -> str:
    return f"who-{uuid.uuid4().hex[:8]}@example.com"


def address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


async def fail(throttle, who, where, times):
    for _ in range(times):
        await throttle.begin(who, where)  # counted; the password was wrong, so no succeeded()


async def with_throttle(redis_url, test):
    redis = Redis.from_url(redis_url)
    try:
        await test(lt.LoginThrottle(redis, LIMITS))
    finally:
        await redis.aclose()


@pytest.mark.parametrize("given, counted", [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("not an address", "not an address"),
])
def test_client_keys(given, counted):
    assert lt.client_key(given) == counted


async def test_a_pair_is_refused_after_its_failures_and_others_are_not(redis_url):
    async def test(throttle):
        who, where = email(), address()
        await fail(throttle, who, where, LIMITS.per_pair)
        with pytest.raises(lt.Throttled) as refused:
            await throttle.begin(who, where)
        assert 1 <= refused.value.retry_after <= LIMITS.window_seconds
        await throttle.begin(who, address())  # the same account from elsewhere
        await throttle.begin(email(), where)  # another account from here

    await with_throttle(redis_url, test)


async def test_a_success_clears_its_pair(redis_url):
    async def test(throttle):
        who, where = email(), address()
        await fail(throttle, who, where, LIMITS.per_pair - 1)
        attempt = await throttle.begin(who, where)
        await attempt.succeeded()
        # Without the clearing, the pair would now hold per_pair attempts and be refused.
        await throttle.begin(who, where)

    await with_throttle(redis_url, test)


async def test_an_address_failing_on_many_accounts_is_refused(redis_url):
    async def test(throttle):
        where = address()
        for _ in range(LIMITS.per_address):
            await throttle.begin(email(), where)
        with pytest.raises(lt.Throttled):
            await throttle.begin(email(), where)

    await with_throttle(redis_url, test)


async def test_an_attacked_account_stays_open_to_addresses_that_never_failed(redis_url):
    async def test(throttle):
        who = email()
        attacker = address()
        for _ in range(LIMITS.per_account):
            await throttle.begin(who, address())  # spread out
        await throttle.begin(who, address())  # a clean address still gets through
        await throttle.begin(who, attacker)  # one failure here, with the account over its limit:
        with pytest.raises(lt.Throttled):
            await throttle.begin(who, attacker)

    await with_throttle(redis_url, test)


async def test_emails_count_whatever_their_case(redis_url):
    async def test(throttle):
        who, where = email(), address()
        await fail(throttle, who.upper(), where, LIMITS.per_pair)
        with pytest.raises(lt.Throttled):
            await throttle.begin(f"  {who}  ", where)

    await with_throttle(redis_url, test)


async def test_without_redis_sign_in_goes_on_unthrottled():
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        throttle = lt.LoginThrottle(redis, LIMITS)
        for _ in range(LIMITS.per_pair + 2):
            attempt = await throttle.begin(email(), "192.0.2.1")
            await attempt.succeeded()
    finally:
        await redis.aclose()


def test_no_redis_no_throttle():
    assert lt.throttle_for(None, object()) is None
