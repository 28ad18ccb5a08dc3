"""The in-process domain tier: domain functions called directly on the real embedded Postgres
(and Valkey), with no HTTP server.

The servers are found or started by the app's own starter (app.runtime.acquire_services) once for
this package, under a temporary DATA_DIR, and the migrations are applied with the app's migrator.
Every test runs on one event loop shared by the whole package, because the connection pool is bound
to the loop that opened it; `async def` tests are run on that loop by the hook below. Tests isolate
themselves by making their own user and library with the factories, so nothing is rolled back and
nothing needs cleaning between tests.

The HTTP suite (tests/conftest.py) points the same process-wide engine at its server's database
once its server starts. This package swaps in an engine of its own while it runs and puts back
exactly what it found when it is done, so the two can run in one session in either order.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import sys
import tempfile
from pathlib import Path

import msgspec
import pytest


def _all_table_classes() -> list[type]:
    """Every Piccolo Table class loaded so far (ours and Piccolo's migration bookkeeping), since
    each caches the engine it first used."""
    from piccolo.table import Table

    found, stack = [], list(Table.__subclasses__())
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


class _EngineSwap:
    """Points the process's engine (app.db.engine, piccolo_conf.DB and every Table's cached engine)
    at another database, and back."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.saved: dict = {}

    def __enter__(self):
        from app.db import engine as db
        from app.db import tables  # noqa: F401  (loaded first, so its classes are reset too)

        self.saved = {
            "env": os.environ.get("DATABASE_URL"),
            "engine": db._engine,
            "piccolo_conf": sys.modules.get("piccolo_conf"),
            "tables": {cls: cls._meta._db for cls in _all_table_classes()},
        }
        os.environ["DATABASE_URL"] = self.database_url
        db._engine = None
        sys.modules.pop("piccolo_conf", None)  # re-imported on first use: DB = the new engine
        for cls in self.saved["tables"]:
            cls._meta._db = None
        return self

    def __exit__(self, *exc) -> None:
        from app.db import engine as db

        saved = self.saved
        if saved["env"] is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved["env"]
        db._engine = saved["engine"]
        if saved["piccolo_conf"] is None:
            sys.modules.pop("piccolo_conf", None)
        else:
            sys.modules["piccolo_conf"] = saved["piccolo_conf"]
        for cls in _all_table_classes():
            cls._meta._db = saved["tables"].get(cls)


class Domain:
    """What the package shares: the loop every test runs on, and how to reach the servers."""

    def __init__(self, runner: asyncio.Runner, database_url: str, redis_url: str, data_dir: Path):
        self.runner = runner
        self.database_url = database_url
        self.redis_url = redis_url
        self.data_dir = data_dir

    def run(self, coro):
        """Run a coroutine on the package's loop (for synchronous fixtures)."""
        return self.runner.run(coro)


@pytest.fixture(scope="package", autouse=True)
def domain():
    from app.runtime import acquire_services
    from app.settings import load_settings
    from tests.conftest import BASE_ENV

    data_dir = Path(tempfile.mkdtemp(prefix="photos-domain-"))
    # A database or Redis the run was given (CI) is used as is; otherwise embedded ones under
    # data_dir. Not one a server fixture of this session exported later: its workers would share it.
    settings = msgspec.structs.replace(
        load_settings(), data_dir=data_dir, database_url=BASE_ENV.get("DATABASE_URL") or None
    )
    services = acquire_services(settings, need_redis=True)
    runner = asyncio.Runner()
    try:
        with _EngineSwap(services.database_url):
            from app.db import engine as db
            from app.db.migrate import apply_migrations

            async def start():
                await apply_migrations(services.database_url)
                await db.open_pool(max_size=4)

            runner.run(start())
            try:
                yield Domain(runner, services.database_url, services.redis_url, data_dir)
            finally:
                runner.run(db.close_pool())
    finally:
        runner.close()
        services.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """`async def` tests of this package run on the package's loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    domain: Domain = pyfuncitem.funcargs["domain"]
    kwargs = {name: pyfuncitem.funcargs[name] for name in inspect.signature(pyfuncitem.obj).parameters}
    domain.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.fixture
def user(domain):
    """A fresh user with a default library (asyncpg record of the users row)."""
    from tests.domain import factories

    return domain.run(factories.new_user())


@pytest.fixture
def library_id(user):
    return user["default_library_id"]


@pytest.fixture
def principal(user):
    """The fresh user, signed in with every action on every library."""
    from tests.domain import factories

    return factories.principal_for(user)


@pytest.fixture
def step_connections(domain):
    """The pool reopened with the pipeline steps' own connections, as a process with a worker has it."""
    from app.db import engine as db

    domain.run(db.close_pool())
    domain.run(db.open_pool(max_size=4, step_pool=True))
    yield
    domain.run(db.close_pool())
    domain.run(db.open_pool(max_size=4))
