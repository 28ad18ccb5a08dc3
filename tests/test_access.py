"""Access control: every route authenticates, scopes hold, another user's objects are 404."""

from __future__ import annotations

import re

import gumnut
import httpx
import pytest

from app.api.app import create_native_app
from app.api.route_access import Declaration
from app.api.state import Shared
from app.settings import load_settings
from tests.helpers import upload
from tests.media import png_bytes


def _routes():
    app = create_native_app(Shared.build(load_settings()))
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", [])):
                if method in ("HEAD", "OPTIONS"):
                    continue
                yield method, Declaration(handler).public, route.path


@pytest.mark.parametrize("auth", [None, "Bearer apikey_wrong", "Basic Zm9vOmJhcg==", "Bearer", "apikey_no_scheme"])
def test_every_private_route_answers_401_without_valid_credentials(server, auth):
    checked = 0
    for method, public, path in _routes():
        if public:
            continue
        concrete = re.sub(r"\{[^}]+\}", "asset_" + "2" * 22, path)
        headers = {"Authorization": auth} if auth else {}
        r = httpx.request(method, server.base_url + concrete, headers=headers, json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert set(r.json()) == {"detail"}
        checked += 1
    assert checked >= 12


def test_users_me_and_libraries(account):
    me = account.client.users.me()
    assert me.email == account.email and me.id.startswith("intuser_")
    libs = account.client.libraries.list()
    assert len(libs) == 1 and libs[0].name == "Default Library" and libs[0].role == "owner"
    assert libs[0].owner.id == me.id and libs[0].asset_count == 0
    upload(account, "x.png", png_bytes(50))
    lib = account.client.libraries.retrieve(libs[0].id)
    assert lib.asset_count == 1 and lib.storage_used_bytes == len(png_bytes(50))


def test_library_create_is_find_or_create(account):
    raw = account.client.libraries.with_raw_response.create(name="  Trips ")
    assert raw.status_code == 201 and raw.parse().name == "Trips"
    again = account.client.libraries.with_raw_response.create(name="trips")
    assert again.status_code == 200 and again.parse().id == raw.parse().id
    with pytest.raises(gumnut.ConflictError) as err:
        account.client.libraries.create(name="TRIPS", description="different")
    assert err.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(gumnut.UnprocessableEntityError):
        account.client.libraries.create(name="   ")


def test_read_only_key_cannot_write(make_account):
    from app.domain import access

    ro = make_account(actions=frozenset({access.READ}))
    with pytest.raises(gumnut.PermissionDeniedError):
        upload(ro, "ro.png", png_bytes(60))
    assert list(ro.client.assets.list()) == []
    with pytest.raises(gumnut.PermissionDeniedError):
        ro.client.libraries.create(name="nope")


def test_trash_needs_delete_and_hard_delete_needs_delete_permanently(make_account):
    from app.db import engine as db
    from app.domain import access, users
    from tests.conftest import run

    owner = make_account(actions=frozenset({access.READ, access.WRITE}))
    asset = upload(owner, "keep.png", png_bytes(61)).parse()
    with pytest.raises(gumnut.PermissionDeniedError):
        owner.client.assets.trash(ids=[asset.id])
    with pytest.raises(gumnut.PermissionDeniedError):
        owner.client.assets.delete(asset.id)
    _, trash_only = run(users.create_api_key(owner.user_id, "trash", actions=frozenset({access.READ, access.DELETE})))
    trasher = gumnut.Gumnut(api_key=trash_only, base_url=owner.base_url, max_retries=0)
    trasher.assets.trash(ids=[asset.id])
    with pytest.raises(gumnut.PermissionDeniedError):
        trasher.assets.empty_trash()
    assert run(db.fetchval("SELECT count(*) FROM assets WHERE owner_id = $1", owner.user_id)) == 1


def test_selected_library_key_sees_only_its_library(make_account):
    from app.api import ids
    from app.domain import access, libraries, users
    from tests.conftest import run

    owner = make_account()
    principal = access.Principal(owner.user_id, False, None, access.ALL_ACTIONS, None)
    default_lib = owner.client.libraries.list()[0].id
    other_uuid, _ = run(libraries.create_library(principal, "Private", None))
    other_lib = ids.encode(ids.LIBRARY, other_uuid)
    hidden = upload(owner, "hidden.png", png_bytes(70), library_id=other_lib).parse()

    _, secret = run(users.create_api_key(owner.user_id, "scoped", library_ids=[ids.decode(ids.LIBRARY, default_lib)]))
    scoped = gumnut.Gumnut(api_key=secret, base_url=owner.base_url, max_retries=0)
    assert [lib.id for lib in scoped.libraries.list()] == [default_lib]
    # Only one library in scope: library_id may be omitted and means that one.
    assert upload(type(owner)(owner.email, owner.user_id, secret, scoped, owner.base_url), "s.png", png_bytes(71)).status_code == 201
    with pytest.raises(gumnut.NotFoundError):
        scoped.assets.retrieve(hidden.id)
    with pytest.raises(gumnut.NotFoundError):
        scoped.assets.list(library_id=other_lib)
    with pytest.raises(gumnut.NotFoundError):
        scoped.libraries.retrieve(other_lib)
    with pytest.raises(gumnut.PermissionDeniedError):
        scoped.libraries.create(name="Widen my reach")
