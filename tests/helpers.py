from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.conftest import Account, run

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 7, 15, 12, 0, tzinfo=UTC)


def upload(account: Account, name: str, data: bytes, *, created: dt.datetime = NOW, library_id=None,
           device_asset_id: str | None = None, content_type: str = "application/octet-stream"):
    kwargs = {"library_id": library_id} if library_id else {}
    return account.client.assets.with_raw_response.create(
        asset_data=(name, data, content_type),
        device_asset_id=device_asset_id or name,
        device_id="pytest",
        file_created_at=created,
        file_modified_at=created,
        **kwargs,
    )


def originals(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "library").rglob("originals/*/*") if p.is_file()]


def temp_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "tmp").iterdir()]


def asset_rows(user_id) -> list:
    from app.db import engine as db

    return run(db.fetch("SELECT * FROM assets WHERE owner_id = $1 ORDER BY created_at", user_id))


def event_rows(user_id) -> list:
    from app.db import engine as db

    return run(db.fetch("SELECT * FROM events WHERE owner_id = $1 ORDER BY txid, id", user_id))


def wait_processed(account: Account, asset_id: str, timeout: float = 90.0) -> list:
    """Wait until the asset's pipeline tasks have all ended; returns them (newest first)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        found = account.client.tasks.list_for_asset(asset_id)
        types = {t.task_type for t in found}
        done = all(t.status in ("success", "failure") for t in found)
        if done and len(types) >= 2:
            return found
        time.sleep(0.25)
    raise AssertionError(f"asset {asset_id} not processed in {timeout}s: {found}")


def session_token(account: Account, password: str = "session-pw") -> str:
    """Sign the account in with a password (the first-party session) and return its token."""
    from app.db import engine as db
    from app.domain import sessions, users

    async def go():
        await db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account.user_id,
                         users.hash_password(password))
        _, token = await sessions.login(account.email, password)
        return token

    return run(go())


def create_account(server, **key_options) -> Account:
    """An account with a full API key, as the make_account fixture makes it, for fixtures of a wider scope."""
    import uuid

    from gumnut import Gumnut

    from app.domain import users

    email = f"user-{uuid.uuid4().hex[:10]}@example.com"

    async def create():
        user = await users.create_user(email, "secret-pw")
        _, secret = await users.create_api_key(user["id"], "tests", **key_options)
        return user["id"], secret

    user_id, secret = run(create())
    return Account(email, user_id, secret, Gumnut(api_key=secret, base_url=server.base_url, max_retries=0),
                   server.base_url)
