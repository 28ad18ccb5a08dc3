"""The process and its commands: admin with and without a running server, restarts, workers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import redis

from tests.conftest import ROOT, ServerProcess
from tests.media import png_bytes


def _upload(base_url: str, key: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/assets",
        headers={"Authorization": f"Bearer {key}"},
        files={"asset_data": (name, data, "image/png")},
        data={"device_asset_id": name, "device_id": "cli", "file_created_at": "2024-01-01T00:00:00",
              "file_modified_at": "2024-01-01T00:00:00"},
        timeout=60,
    )


def test_admin_commands_while_serve_runs(server):
    created = server.cli("admin", "create-user", "--email", "cli-live@example.com", "--password", "pw", "--admin")
    assert created.returncode == 0, created.stderr
    key = server.cli("admin", "create-api-key", "--email", "cli-live@example.com", "--name", "laptop")
    assert key.returncode == 0, key.stderr
    lines = key.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("apikey_")
    me = httpx.get(f"{server.base_url}/api/users/me", headers={"Authorization": f"Bearer {lines[0]}"})
    assert me.status_code == 200 and me.json()["is_superuser"] is True
    dup = server.cli("admin", "create-user", "--email", "CLI-LIVE@example.com", "--password", "pw")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    unknown = server.cli("admin", "create-api-key", "--email", "nobody@example.com", "--name", "x")
    assert unknown.returncode == 1 and unknown.stdout == ""


def test_fresh_data_dir_admin_then_serve_restart_keeps_data(workdir):
    srv = ServerProcess(workdir / "fresh")
    assert srv.cli("migrate").returncode == 0
    assert srv.cli("admin", "create-user", "--email", "fresh@example.com", "--password", "pw").returncode == 0
    key = srv.cli("admin", "create-api-key", "--email", "fresh@example.com", "--name", "k").stdout.strip()
    assert key.startswith("apikey_")

    srv.start()
    try:
        first = _upload(srv.base_url, key, "keep.png", png_bytes(1))
        assert first.status_code == 201
        services = srv.services()
        if "pid" in services:  # embedded services: check Redis keeps data too
            redis.Redis.from_url(services["redis_url"]).set("pytest:persist", "yes")
    finally:
        srv.stop()
    assert not (srv.data_dir / "run" / "services.json").exists()

    srv.start()
    try:
        again = httpx.get(f"{srv.base_url}/api/assets/{first.json()['id']}", headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 200 and again.json()["checksum"] == first.json()["checksum"]
        services = srv.services()
        if "pid" in services:
            assert redis.Redis.from_url(services["redis_url"]).get("pytest:persist") == b"yes"
    finally:
        srv.stop()


def test_a_port_in_use_is_said_before_anything_starts(workdir):
    srv = ServerProcess(workdir / "busy-port")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", srv.immich_port))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=srv.env,
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{srv.immich_port}" in result.stderr
    assert "Traceback" not in result.stderr
    # One port for both listeners: both binds succeed (SO_REUSEADDR); the second listen does not.
    shared = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, capture_output=True, text=True,
                            env={**srv.env, "IMMICH_PORT": str(srv.port)}, timeout=60, check=False)
    assert shared.returncode == 1 and f"cannot listen on 127.0.0.1:{srv.port}: Address already in use" in shared.stderr
    assert "Traceback" not in shared.stderr
    # Neither embedded service was started for a server that cannot listen.
    assert not (srv.data_dir / "postgres").exists() and not (srv.data_dir / "redis").exists()


def test_separate_worker_process_joins_the_running_server(workdir):
    srv = ServerProcess(workdir / "workers").start("--no-worker")
    worker = None
    try:
        log_path = workdir / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=srv.env,
                                      stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(srv.services()["redis_url"])
        deadline = time.time() + 60
        while time.time() < deadline and not client.exists("arq:queue:health-check"):
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.3)
        assert client.exists("arq:queue:health-check"), log_path.read_text()
        # The worker did not start services of its own: it uses the server's.
        assert json.loads((srv.data_dir / "run" / "services.json").read_text())["pid"] == srv.proc.pid
    finally:
        code = None
        if worker is not None:
            worker.terminate()
            code = worker.wait(timeout=30)
        srv.stop()  # before asserting, so a failure never leaves a server running
    assert code == 0, log_path.read_text()
