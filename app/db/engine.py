"""The Piccolo engine over asyncpg, and the few helpers every repository uses."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, AsyncIterator, Iterator

import asyncpg
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

log = logging.getLogger(__name__)


def build_engine() -> PostgresEngine:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError(
            "DATABASE_URL is not set: start the server with `python -m app serve`, "
            "or run the command through `python -m app`, which finds or starts the database"
        )
    # No extensions: gen_random_uuid() is built in, and embedded Postgres has no uuid-ossp.
    # Plans made for each statement's values, never a generic one: asyncpg prepares every statement,
    # and after five runs PostgreSQL may switch to a plan made without the values, with guessed
    # selectivities. For a search page that meant a sort of the whole library (25 ms on 20,000
    # assets) instead of an index walk stopping at the page (1 ms); planning costs far less.
    return PostgresEngine(config={"dsn": url, "server_settings": {"plan_cache_mode": "force_custom_plan"}},
                          extensions=())


_engine: PostgresEngine | None = None


def engine() -> PostgresEngine:
    """The one engine of this process; piccolo_conf.DB (which Table classes find) is this one."""
    global _engine
    if _engine is None:
        _engine = build_engine()
    return _engine


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What the pool does to a connection it takes back, past asyncpg's own step (which rolls back
    an open transaction and drops listeners): nothing. asyncpg's default also sends
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` every time, one more round trip
    per query or transaction (a pipeline step made about twenty); no code here leaves a cursor,
    a LISTEN or a SET behind, and the code that holds a session-level lock uses session_connection,
    which resets its own connection."""


async def open_pool(max_size: int = 10, *, step_pool: bool = False) -> None:
    """The pool, and with step_pool a second one of the same size for pipeline steps (see step_plans)."""
    global _step_pool
    if _step_pool is not None:
        raise RuntimeError("the pools are open: close_pool() first")
    await engine().start_connection_pool(min_size=1, max_size=max_size, reset=_keep_session)
    if step_pool:
        config = {**engine().config, "server_settings": {**engine().config["server_settings"], **_STEP_SETTINGS}}
        try:
            _step_pool = await asyncpg.create_pool(**config, min_size=1, max_size=max_size, reset=_keep_session)
        except BaseException:
            await close_pool()
            raise


# Pipeline steps (metadata, variants, faces, smart search of one asset) run some forty short statements
# per photo, each finding rows by primary key or asset id, where a generic plan is as good as a custom
# one. Planned afresh on every run (the pool's force_custom_plan), they cost Postgres 19 s of CPU for
# 2,000 small photos, against 14 s on connections that let PostgreSQL keep a prepared statement's plan
# after five runs, as it does by default (bench/small_images.py, same run).
_STEP_SETTINGS = {"plan_cache_mode": "auto"}
_step_pool: asyncpg.Pool | None = None
_in_step: ContextVar[bool] = ContextVar("in_pipeline_step", default=False)


@contextmanager
def step_plans() -> Iterator[None]:
    """Statements in this block (this task and those it starts) use the pipeline steps' connections
    when the process has them: db.fetch and the like, and transactions begun here. A transaction begun
    before stays on its connection; session_connection and Piccolo's queries outside a transaction
    stay on the pool's."""
    token = _in_step.set(True)
    try:
        yield
    finally:
        _in_step.reset(token)


def _pool() -> asyncpg.Pool | None:
    """The pool a statement outside a transaction, or a new transaction, takes its connection from."""
    if _step_pool is not None and _in_step.get():
        return _step_pool
    return engine().pool


@asynccontextmanager
async def session_connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for session-level state (an advisory lock held across transactions).
    Its session is reset before it goes back to the pool; one that cannot be (cancelled, broken)
    is closed, which ends whatever it held."""
    async with engine().pool.acquire() as conn:
        try:
            yield conn
        finally:
            try:
                await conn.execute(conn.get_reset_query())
            except BaseException:
                conn.terminate()
                raise


# How long stopping waits for connections still in use before it closes them anyway.
CLOSE_POOL_S = 10.0


async def close_pool() -> None:
    global _step_pool
    pools = [p for p in (_step_pool, engine().pool) if p is not None]
    _step_pool = None
    try:
        # Together: a stop waits CLOSE_POOL_S at most, however many pools have connections in use.
        await asyncio.gather(*(_close(p) for p in pools))
    finally:
        engine().pool = None


async def _close(pool: asyncpg.Pool) -> None:
    try:
        # asyncpg's close waits for every connection to come back; a task stuck mid-query must
        # not hold the process up for ever, so past the wait they are closed under it.
        await asyncio.wait_for(pool.close(), CLOSE_POOL_S)
    except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.warning("database connections still in use after %.0f s; closing them anyway", CLOSE_POOL_S)
        pool.terminate()


class _ReleasingTransaction(PostgresTransaction):
    """Piccolo's transaction, except that its connection always goes back to the pool.

    Piccolo releases the connection only after a successful commit or rollback. A task cancelled
    mid-query (a worker stopping, a client gone) makes the rollback fail, as does a commit that
    fails; each such connection stayed checked out for good, so the pool shrank and closing it
    waited for ever. asyncpg's release resets or discards the connection, whatever state it is in.
    """

    __slots__ = ("_lender",)

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        # The pool that lends the connection takes it back, even if the engine's pool has been
        # closed or replaced meanwhile.
        self._lender = _pool()
        self.connection = await (self._lender.acquire() if self._lender is not None else self.get_connection())
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def _give_back(self) -> None:
        """Never raises an error of its own: the transaction's outcome (committed, or the body's
        error) is what the caller must see. A connection the pool cannot reset is closed by it."""
        try:
            if self._lender is not None:
                await self._lender.release(self.connection)
            else:
                self.connection.terminate()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError):
            log.warning("a database connection could not be reset; it was closed", exc_info=True)

    async def __aexit__(self, exception_type, exception, traceback) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            try:
                await self._give_back()
            finally:
                self.engine.current_transaction.reset(self.context)
        return exception is None


# Change events of the outermost running transaction, announced only once it commits.
_changes: ContextVar[list[dict] | None] = ContextVar("changes", default=None)


def note_change(change: dict) -> None:
    pending = _changes.get()
    if pending is not None:
        pending.append(change)


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """A transaction whose connection Piccolo queries in this task share."""
    if _changes.get() is not None:  # nested: Piccolo reuses the outer one, which announces
        async with _ReleasingTransaction(engine()) as tx:
            yield tx.connection
        return
    pending: list[dict] = []
    token = _changes.set(pending)
    try:
        async with _ReleasingTransaction(engine()) as tx:
            yield tx.connection
    finally:
        _changes.reset(token)
    if pending:  # committed (a rollback raised above)
        from app import realtime

        realtime.publish({"kind": "events", "events": pending})


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """The current transaction's connection, or one from the pool."""
    db = engine()
    current = db.current_transaction.get()
    if current is not None:
        yield current.connection
        return
    async with _pool().acquire() as conn:
        yield conn


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    async with connection() as conn:
        return await conn.fetch(sql, *args)


async def fetchrow(sql: str, *args: Any) -> asyncpg.Record | None:
    async with connection() as conn:
        return await conn.fetchrow(sql, *args)


async def fetchval(sql: str, *args: Any) -> Any:
    async with connection() as conn:
        return await conn.fetchval(sql, *args)


async def execute(sql: str, *args: Any) -> str:
    async with connection() as conn:
        return await conn.execute(sql, *args)
