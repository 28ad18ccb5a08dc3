"""The pool under cancellation: a transaction's connection always goes back (app/db/engine.py)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from app.db import engine as db



async def _all_back(pool) -> bool:
    for _ in range(50):
        if pool.get_idle_size() == pool.get_size():
            return True
        await asyncio.sleep(0.02)
    return False


async def _cancel_transactions_mid_query(pool, *, in_step: bool = False) -> None:
    """More transactions than the pool holds, each cancelled mid-query: a leak would starve the last."""
    started = asyncio.Event()

    async def slow():
        with db.step_plans() if in_step else contextlib.nullcontext():
            async with db.transaction() as conn:
                started.set()
                await conn.execute("SELECT pg_sleep(30)")

    for _ in range(pool.get_max_size() + 1):
        task = asyncio.create_task(slow())
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.05)  # the query is on the server
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started.clear()
        assert await _all_back(pool)


async def test_a_transaction_cancelled_mid_query_gives_its_connection_back(domain):
    await _cancel_transactions_mid_query(db.engine().pool)
    assert await db.fetchval("SELECT 1") == 1


async def test_a_transaction_cancelled_while_committing_gives_its_connection_back(domain):
    pool = db.engine().pool
    committing = asyncio.Event()

    async def slow_commit():
        async with db.transaction() as conn:
            # A deferred trigger runs at COMMIT: the commit itself takes long enough to be cancelled.
            await conn.execute("""
                CREATE FUNCTION pg_temp.slow_at_commit() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
                CREATE TEMP TABLE t_slow (id int) ON COMMIT DROP;
                CREATE CONSTRAINT TRIGGER t_slow_check AFTER INSERT ON t_slow
                    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.slow_at_commit();
                INSERT INTO t_slow VALUES (1);
            """)
            committing.set()

    task = asyncio.create_task(slow_commit())
    await asyncio.wait_for(committing.wait(), 10)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _all_back(pool)
    assert await db.fetchval("SELECT 1") == 1


async def test_a_failed_commit_gives_its_connection_back(domain):
    pool = db.engine().pool
    with pytest.raises(asyncpg.PostgresError):
        async with db.transaction() as conn:
            # A deferred check fails at COMMIT, after the body ran without error.
            await conn.execute("CREATE TEMP TABLE t_deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
                               " ON COMMIT DROP")
            await conn.execute("INSERT INTO t_deferred VALUES (1), (1)")
    assert await _all_back(pool)
    assert db.engine().current_transaction.get() is None


async def test_nested_transactions_share_the_outer_connection(domain):
    async with db.transaction() as outer:
        async with db.transaction() as inner:
            assert inner is outer
            assert await db.fetchval("SELECT 1") == 1
    assert await _all_back(db.engine().pool)


async def test_a_session_connection_gives_its_locks_back_with_it(domain):
    # The pool takes connections back without resetting their sessions (one round trip less per
    # use): a session-level lock must be taken through session_connection, which resets its own.
    async with db.session_connection() as conn:
        assert await conn.fetchval("SELECT pg_try_advisory_lock(424242)")
    other = await asyncpg.connect(domain.database_url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock(424242)")
    finally:
        await other.close()



async def test_pooled_connections_plan_each_statement_for_its_values():
    # A generic plan (PostgreSQL's choice after five runs of a prepared statement) guessed its way
    # to a whole-library sort for search pages; every connection asks for custom plans.
    assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


async def test_pipeline_steps_may_keep_a_prepared_statements_plan(step_connections):
    assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    with db.step_plans():
        assert await db.fetchval("SHOW plan_cache_mode") == "auto"
        async with db.transaction() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
        # Tasks a step starts run there too.
        assert await asyncio.create_task(db.fetchval("SHOW plan_cache_mode")) == "auto"
    assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


async def test_a_step_inside_a_transaction_stays_on_the_transactions_connection(step_connections):
    async with db.transaction() as conn:
        with db.step_plans():
            async with db.transaction() as inner:
                assert inner is conn
            assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


async def test_without_step_connections_a_step_uses_the_pool(domain):
    with db.step_plans():
        assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"


async def test_a_steps_cancelled_transaction_gives_its_connection_back_to_the_step_pool(step_connections):
    await _cancel_transactions_mid_query(db._step_pool, in_step=True)
    assert await _all_back(db.engine().pool)


async def test_closing_closes_the_step_connections_too(step_connections):
    step_pool = db._step_pool
    await db.close_pool()
    assert step_pool.is_closing() and db._step_pool is None and db.engine().pool is None
    await db.open_pool(max_size=4)  # for the fixture's own close


async def test_opening_again_without_closing_is_refused(step_connections):
    step_pool = db._step_pool
    with pytest.raises(RuntimeError):
        await db.open_pool(max_size=4, step_pool=True)
    assert db._step_pool is step_pool and not step_pool.is_closing()
