"""Immich license keys (app/domain/licenses.py), checked with Immich's real staging licenses."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import licenses, users
from app.domain.errors import BadRequest, Forbidden, NotFound
from tests.domain import factories as f

# Immich's published staging licenses (from its end-to-end tests): valid for its staging public keys.
SERVER_KEY = "IMSV-6ECZ-91TE-WZRM-Q7AQ-MBN4-UW48-2CPT-71X9"
SERVER_ACTIVATION = (
    "4kJUNUWMq13J14zqPFm1NodRcI6MV6DeOGvQNIgrM8Sc9nv669wyEVvFw1Nz4Kb1W7zLWblOtXEQzpRRqC4r4fKjewJxfbpeo9sEsqAVIfl4"
    "Ero-Vp1Dg21-sVdDGZEAy2oeTCXAyCT5d1JqrqR6N1qTAm4xOx9ujXQRFYhjRG8uwudw7_Q49pF18Tj5OEv9qCqElxztoNck4i6O_azsmsoO"
    "QrLIENIWPh3EynBN3ESpYERdCgXO8MlWeuG14_V1HbNjnJPZDuvYg__YfMzoOEtfm1sCqEaJ2Ww-BaX7yGfuCL4XsuZlCQQNHjfscy_WywVfIZP"
    "KCiW8QR74i0cSzQ")
CLIENT_KEY = "IMCL-FF69-TUK1-RWZU-V9Q8-QGQS-S5GC-X4R2-UFK4"
CLIENT_ACTIVATION = (
    "KuX8KsktrBSiXpQMAH0zLgA5SpijXVr_PDkzLdWUlAogCTMBZ0I3KCHXK0eE9EEd7harxup8_EHMeqAWeHo5VQzol6LGECpFv585U9asXD4Zc"
    "-UXt3mhJr2uhazqipBIBwJA2YhmUCDy8hiyiGsukDQNu9Rg9C77UeoKuZBWVjWUBWG0mc1iRqfvF0faVM20w53czAzlhaMxzVGc3Oimbd7xi_C"
    "AMSujF_2y8QpA3X2fOVkQkzdcH9lV0COejl7IyH27zQQ9HrlrXv3Lai5Hw67kNkaSjmunVBxC5PS0TpKoc9SfBJMaAGWnaDbjhjYUrm-8nIDQn"
    "oeEAidDXVAdPw")


@pytest.fixture
def staging(monkeypatch):
    monkeypatch.setenv("IMMICH_ENV", "testing")


def test_signatures_verify_with_the_matching_staging_key_only(staging):
    assert licenses.signed_by("server", SERVER_KEY, SERVER_ACTIVATION)
    assert licenses.signed_by("client", CLIENT_KEY, CLIENT_ACTIVATION)
    assert not licenses.signed_by("client", SERVER_KEY, SERVER_ACTIVATION)
    assert not licenses.signed_by("server", CLIENT_KEY, CLIENT_ACTIVATION)
    assert not licenses.signed_by("server", SERVER_KEY.replace("6ECZ", "6ECY"), SERVER_ACTIVATION)
    for garbage in ("", "!!!", "invalid" + SERVER_ACTIVATION, SERVER_ACTIVATION[:-4]):
        assert not licenses.signed_by("server", SERVER_KEY, garbage)


def test_production_accepts_no_staging_license(monkeypatch):
    monkeypatch.delenv("IMMICH_ENV", raising=False)
    assert not licenses.signed_by("server", SERVER_KEY, SERVER_ACTIVATION)
    monkeypatch.setenv("IMMICH_ENV", "production")
    assert not licenses.signed_by("client", CLIENT_KEY, CLIENT_ACTIVATION)


async def test_the_server_license_is_the_administrators(staging):
    admin = f.principal_for(await f.new_user(is_admin=True))
    member = f.principal_for(await f.new_user())
    await licenses.delete_server_license(admin)
    with pytest.raises(NotFound):
        await licenses.server_license(admin)
    assert not await licenses.is_server_licensed()
    with pytest.raises(Forbidden):
        await licenses.set_server_license(member, SERVER_KEY, SERVER_ACTIVATION)
    with pytest.raises(BadRequest, match="Invalid license key"):
        await licenses.set_server_license(admin, CLIENT_KEY, CLIENT_ACTIVATION)  # a client key never
    with pytest.raises(BadRequest, match="Invalid license key"):
        await licenses.set_server_license(admin, SERVER_KEY, "invalid" + SERVER_ACTIVATION)
    made = await licenses.set_server_license(admin, SERVER_KEY, SERVER_ACTIVATION)
    assert await licenses.server_license(admin) == made and await licenses.is_server_licensed()
    await licenses.delete_server_license(admin)
    assert not await licenses.is_server_licensed()


async def test_a_user_holds_a_client_or_a_server_license(staging):
    row = await f.new_user()
    me = f.principal_for(row)
    with pytest.raises(NotFound):
        await licenses.user_license(me)
    with pytest.raises(BadRequest, match="Invalid license key"):
        await licenses.set_user_license(me, CLIENT_KEY, "invalid" + CLIENT_ACTIVATION)
    with pytest.raises(BadRequest, match="Invalid license key"):
        await licenses.set_user_license(me, "IMXX" + CLIENT_KEY[4:], CLIENT_ACTIVATION)
    await licenses.set_user_license(me, SERVER_KEY, SERVER_ACTIVATION)
    made = await licenses.set_user_license(me, CLIENT_KEY, CLIENT_ACTIVATION)  # replaces the first
    assert await licenses.user_license(me) == made
    account = await users.user_by_id(row["id"])
    assert (account["license_key"], account["license_activation_key"]) == (CLIENT_KEY, CLIENT_ACTIVATION)
    await licenses.delete_user_license(me)
    with pytest.raises(NotFound):
        await licenses.user_license(me)
    assert await db.fetchval("SELECT count(*) FROM user_licenses WHERE user_id = $1", row["id"]) == 0
