"""Live notices between processes over Redis pub/sub, best effort.

Any process (API or worker) publishes what it committed; every API process listens and
tells its connected clients. A lost notice costs a client one refresh at most, so nothing
here retries, blocks the caller or raises into it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "photos:live"
QUEUE_SIZE = 1000
SEND_TIMEOUT = 2.0


class _Bus:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.loop = asyncio.get_running_loop()
        self.redis = Redis.from_url(redis_url, socket_timeout=SEND_TIMEOUT, socket_connect_timeout=SEND_TIMEOUT)
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.dropped = 0
        self.failing = False
        self.sender = asyncio.create_task(self._send_forever(), name="realtime-sender")

    def put(self, data: str) -> None:
        if self.queue.full():  # the oldest notice is the least useful one
            self.queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("live notice queue full: %d dropped so far", self.dropped)
        self.queue.put_nowait(data)

    async def _send_forever(self) -> None:
        while True:
            data = await self.queue.get()
            try:
                # Bounded by the client's socket timeouts. Not by wait_for: cancelling redis-py
                # mid-connect can leave the wait hanging forever.
                await self.redis.publish(CHANNEL, data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.failing:  # once per outage, not once per notice
                    log.warning("live notices cannot reach Redis (%s); dropping them until it answers", exc)
                    self.failing = True
                continue
            if self.failing:
                log.info("live notices reach Redis again")
                self.failing = False


_bus: _Bus | None = None


def configure(redis_url: str) -> None:
    """Start publishing for this process (call from its event loop)."""
    global _bus
    if _bus is not None:
        raise RuntimeError("the live notice bus is already configured")
    _bus = _Bus(redis_url)


def configured() -> bool:
    return _bus is not None


async def close(flush_timeout: float = 1.0) -> None:
    global _bus
    bus, _bus = _bus, None
    if bus is None:
        return
    deadline = bus.loop.time() + flush_timeout
    while not bus.queue.empty() and not bus.failing and bus.loop.time() < deadline:
        await asyncio.sleep(0.01)
    bus.sender.cancel()
    await asyncio.wait([bus.sender], timeout=SEND_TIMEOUT)
    try:
        await bus.redis.aclose()
    except Exception:
        log.debug("closing the live notice connection failed", exc_info=True)


def publish(message: dict[str, Any]) -> None:
    """Queue a JSON-able notice for every API process; a no-op where no bus is configured."""
    bus = _bus
    if bus is None:
        return
    try:
        data = json.dumps(message, default=str)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is bus.loop:
            bus.put(data)
        else:  # from a worker thread: the queue belongs to the bus's loop
            bus.loop.call_soon_threadsafe(bus.put, data)
    except Exception:
        log.exception("dropped a live notice")


async def listen(reconnect_delay: float = 0.5) -> AsyncIterator[dict[str, Any]]:
    """Notices from every process, from now on. Reconnects after Redis errors (what was
    published meanwhile is lost). Needs configure() first."""
    bus = _bus
    if bus is None:
        raise RuntimeError("the live notice bus is not configured")
    delay = reconnect_delay
    while True:
        # Its own connection: a subscribed connection can do nothing else. The health check
        # pings while idle, so a dead connection is noticed without a read timeout.
        redis = Redis.from_url(bus.redis_url, socket_connect_timeout=SEND_TIMEOUT, health_check_interval=15)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            delay = reconnect_delay
            while True:
                item = await pubsub.get_message(timeout=10)
                if item is None or item.get("type") != "message":
                    continue
                try:
                    message = json.loads(item["data"])
                except ValueError:
                    log.warning("ignored a malformed live notice")
                    continue
                yield message
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("live notice subscription lost (%s); retrying in %.1fs", exc, delay)
        finally:
            try:
                await pubsub.aclose()
                await redis.aclose()
            except Exception:
                pass
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
