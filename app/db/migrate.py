"""Apply Piccolo migrations, one process at a time."""

from __future__ import annotations

import contextlib
import io
import logging

import asyncpg

from piccolo.apps.migrations.commands.forwards import run_forwards

log = logging.getLogger(__name__)

_LOCK_KEY = 0x70686F746F73  # any constant shared by every process of this project


async def apply_migrations(database_url: str) -> None:
    # Several processes (serve and workers) may start together: serialise them.
    lock_conn = await asyncpg.connect(database_url)
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        # Piccolo reports progress on stdout; keep stdout for command output (API key secrets).
        report = io.StringIO()
        with contextlib.redirect_stdout(report):
            result = await run_forwards(app_name="photos", migration_id="all")
        for line in report.getvalue().splitlines():
            if line.strip():
                log.info("migrations: %s", line.strip())
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}")
    finally:
        await lock_conn.close()


def sql_migration(migration_id: str, description: str, sql: str):
    """A Piccolo `forwards` that runs one SQL script inside the migration's transaction."""

    async def run(conn: asyncpg.Connection) -> None:
        await conn.execute(sql)

    return python_migration(migration_id, description, run)


def python_migration(migration_id: str, description: str, run):
    """A Piccolo `forwards` that calls `run(conn)` inside the migration's transaction."""
    from piccolo.apps.migrations.auto.migration_manager import MigrationManager
    from piccolo.engine import engine_finder

    async def apply() -> None:
        tx = engine_finder().current_transaction.get()
        if tx is not None:
            await run(tx.connection)
            return
        conn = await engine_finder().get_new_connection()
        try:
            async with conn.transaction():
                await run(conn)
        finally:
            await conn.close()

    async def forwards() -> MigrationManager:
        manager = MigrationManager(migration_id=migration_id, app_name="photos", description=description)
        manager.add_raw(apply)
        return manager

    return forwards
