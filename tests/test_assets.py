"""Reading and changing assets through gumnut-sdk: lists, filters, trash, delete, exist, patch, media."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import gumnut
import httpx
import pytest

from app.api import ids
from tests.helpers import UTC, asset_rows, event_rows, originals, upload, wait_processed
from tests.media import mp4_bytes, png_bytes


def _seed(account, count, start=dt.datetime(2023, 1, 1, tzinfo=UTC), seed_base=1000):
    ids = []
    for i in range(count):
        raw = upload(account, f"p{i}.png", png_bytes(seed_base + i), created=start + dt.timedelta(hours=i))
        assert raw.status_code == 201
        ids.append(raw.parse().id)
    return ids  # oldest first


def test_list_paginates_to_the_end_newest_first(account):
    ids = _seed(account, 45, seed_base=2000)
    seen = [a.id for a in account.client.assets.list(limit=10)]
    assert seen == list(reversed(ids))
    first = account.client.assets.list(limit=10)
    assert first.has_more is True and len(first.data) == 10
    asc = [a.id for a in account.client.assets.list(limit=7, order="asc")]
    assert asc == ids


def test_list_filters(account):
    ids = _seed(account, 5, start=dt.datetime(2022, 6, 1, 12, tzinfo=UTC), seed_base=3000)
    video = upload(account, "v.mp4", mp4_bytes(3001), created=dt.datetime(2022, 6, 1, 20, tzinfo=UTC)).parse()
    c = account.client.assets
    assert [a.id for a in c.list(media_type="video")] == [video.id]
    assert len(list(c.list(media_type="image"))) == 5
    # Exclusive naive bounds on the wall clock (these assets carry offset +00:00).
    window = [a.id for a in c.list(local_datetime_after=dt.datetime(2022, 6, 1, 13), local_datetime_before=dt.datetime(2022, 6, 1, 16))]
    assert window == [ids[3], ids[2]]
    # Aware bounds compare instants.
    tz = dt.timezone(dt.timedelta(hours=2))
    window = [a.id for a in c.list(local_datetime_after=dt.datetime(2022, 6, 1, 15, tzinfo=tz), local_datetime_before=dt.datetime(2022, 6, 1, 18, tzinfo=tz))]
    assert window == [ids[3], ids[2]]
    assert sorted(a.id for a in c.list(ids=[ids[0], ids[4]])) == sorted([ids[0], ids[4]])
    # Comma-joined lists mean the same as repeated ones.
    with account.http() as http:
        r = http.get("/api/assets", params={"ids": f"{ids[0]},{ids[4]}"})
    assert sorted(a["id"] for a in r.json()["data"]) == sorted([ids[0], ids[4]])


def test_list_validation(account):
    c = account.client.assets
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(limit=201)
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(include=["nonsense"])
    with pytest.raises(gumnut.NotFoundError):
        c.list(album_id="album_x")  # a filter naming no album is an error, not an empty page
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(album_filter="not_in_album", album_id="album_" + "2" * 22)
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(local_datetime_after=dt.datetime(2022, 1, 1), local_datetime_before=dt.datetime(2023, 1, 1, tzinfo=UTC))
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(ids=["not-an-id"])


def test_trash_restore_and_states(account):
    ids = _seed(account, 3, seed_base=4000)
    c = account.client.assets
    assert c.trash(ids=[ids[0], ids[1]]).to_dict() == {}
    assert c.trash(ids=[ids[0]]).to_dict() == {}  # idempotent
    assert [a.id for a in c.list()] == [ids[2]]
    trashed = list(c.list(state="trashed"))
    assert {a.id for a in trashed} == {ids[0], ids[1]} and all(a.trashed_at for a in trashed)
    assert len(list(c.list(state="all"))) == 3
    assert c.retrieve(ids[0]).trashed_at is not None
    c.restore(ids=[ids[0], ids[2]])
    assert {a.id for a in c.list()} == {ids[0], ids[2]}
    kinds = [e["event_type"] for e in event_rows(account.user_id)
             if e["event_type"] in ("asset_created", "asset_trashed", "asset_restored")]
    assert kinds == ["asset_created"] * 3 + ["asset_trashed", "asset_trashed", "asset_restored"]


def test_bulk_changes_are_all_or_nothing(account, make_account):
    mine = _seed(account, 2, seed_base=5000)
    theirs = _seed(make_account(), 1, seed_base=5100)
    with pytest.raises(gumnut.NotFoundError):
        account.client.assets.trash(ids=[mine[0], theirs[0]])
    assert len(list(account.client.assets.list())) == 2
    with pytest.raises(gumnut.NotFoundError):
        account.client.assets.delete_list(ids=[mine[0], theirs[0]])
    assert len(asset_rows(account.user_id)) == 2


def test_native_errors_name_native_ids_and_fields(account, make_account):
    mine = _seed(account, 1, seed_base=5200)[0]
    theirs = _seed(make_account(), 1, seed_base=5300)[0]
    with account.http() as http:
        for path in ("/api/assets/trash", "/api/assets/restore"):
            r = http.post(path, json={"ids": [mine, theirs]})
            assert r.status_code == 404 and r.json() == {"detail": f"Asset {theirs} not found"}, r.text
            r = http.post(path, json={"ids": [mine, "asset_malformed"]})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "ids"], r.text
        for bad in (theirs, "asset_malformed"):
            r = http.post("/api/assets/bulk-update", json={"updates": [{"id": mine, "change": {"rating": 1}},
                                                                       {"id": bad, "change": {"rating": 1}}]})
            assert r.status_code == 404 and r.json() == {"detail": f"Asset {bad} not found"}, r.text
        r = http.post("/api/assets/bulk-update", json={"updates": [{"id": mine, "change": {"rating": 9}}]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "updates", 0, "change", "rating"]
        # A number sent as a string is refused, not read as the number; visibility is not a native field.
        for body, field in (({"rating": "3"}, "rating"), ({"visibility": "archive"}, "visibility")):
            r = http.patch(f"/api/assets/{mine}", json=body)
            assert r.status_code == 422 and field in r.text, r.text
        assert (http.get(f"/api/assets/{mine}").json()["metadata"] or {}).get("rating") is None


def test_the_trash_retention_job_purges_only_old_trash(account, server):
    from app.db import engine as db
    from app.domain import maintenance
    from app.storage.blobstore import BlobStore
    from tests.conftest import run

    old, recent, live = _seed(account, 3, seed_base=5400)
    # A background purge skips rows another transaction holds (a worker still processing the upload):
    # let processing finish, so this purge is the one that takes the old photo.
    wait_processed(account, old)
    account.client.assets.trash(ids=[old, recent])

    async def age_and_purge():
        await db.execute("UPDATE assets SET trashed_at = now() - interval '40 days' WHERE id = $1",
                         ids.decode(ids.ASSET, old))
        return await maintenance.purge_trash_older_than(BlobStore(server.data_dir), dt.timedelta(days=30))

    assert run(age_and_purge()) >= 1
    assert {ids.encode(ids.ASSET, r["id"]) for r in asset_rows(account.user_id)} == {recent, live}


def test_delete_removes_row_file_and_records_event(account, server):
    ids = _seed(account, 3, seed_base=6000)
    rows = {r["id"] for r in asset_rows(account.user_id)}
    c = account.client.assets
    assert c.delete(ids[0]).to_dict() == {}
    assert c.delete_list(ids=[ids[1]]).to_dict() == {}
    with pytest.raises(gumnut.NotFoundError):
        c.retrieve(ids[0])
    remaining = asset_rows(account.user_id)
    assert [r["id"] for r in remaining] and len(remaining) == 1
    gone = rows - {remaining[0]["id"]}
    assert not [p for p in originals(server.data_dir) if any(g.hex in p.name for g in gone)]
    kinds = [e["event_type"] for e in event_rows(account.user_id) if e["entity_type"] == "asset"]
    assert kinds.count("asset_deleted") == 2


def test_empty_trash_deletes_only_trashed(account, server):
    ids = _seed(account, 4, seed_base=7000)
    c = account.client.assets
    c.trash(ids=ids[:3])
    assert c.empty_trash().to_dict() == {}
    assert [a.id for a in c.list(state="all")] == [ids[3]]
    assert len(asset_rows(account.user_id)) == 1


def test_exist_by_each_criterion(account):
    data = png_bytes(8000)
    a = upload(account, "e.png", data, device_asset_id="dev-asset-1").parse()
    c = account.client.assets
    sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()
    absent = base64.b64encode(hashlib.sha256(b"absent").digest()).decode()
    assert [x.id for x in c.check_existence(checksums=[sha256, absent]).assets] == [a.id]
    assert [x.id for x in c.check_existence(checksum_sha1s=[sha1]).assets] == [a.id]
    hit = c.check_existence(device_asset_ids=["dev-asset-1", "nope"], device_id="pytest").assets
    assert [(x.id, x.checksum, x.checksum_sha1, x.device_asset_id) for x in hit] == [(a.id, sha256, sha1, "dev-asset-1")]
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.check_existence(checksums=[sha256], checksum_sha1s=[sha1])
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.check_existence(checksums=["not base64!"])
    with account.http() as http:
        r = http.post("/api/assets/exist", json={"checksums": [sha256], "surprise": 1})
    assert r.status_code == 422


def test_patch_user_metadata(account):
    from tests.helpers import wait_processed

    a = upload(account, "m.png", png_bytes(9000)).parse()
    wait_processed(account, a.id)
    seen = len(event_rows(account.user_id))
    c = account.client.assets
    out = c.update_asset(a.id, rating=4, description="at the beach", latitude=1.5, longitude=2.5,
                         original_datetime=dt.datetime(2020, 1, 2, 3, 4, 5))
    assert (out.metadata.rating, out.metadata.description, out.metadata.latitude, out.metadata.longitude) == (4, "at the beach", 1.5, 2.5)
    with account.http() as http:
        body = http.get(f"/api/assets/{a.id}").json()
    assert body["local_datetime"] == "2020-01-02T03:04:05"
    assert body["metadata"]["original_datetime"] == "2020-01-02T03:04:05"
    # null clears the user's value; the upload's time shows through again.
    with account.http() as http:
        cleared = http.patch(f"/api/assets/{a.id}", json={"original_datetime": None, "rating": None,
                                                           "description": None, "latitude": None, "longitude": None}).json()
    assert cleared["local_datetime"] == "2024-07-15T12:00:00Z"
    m = cleared["metadata"]  # the file's (empty) values show through
    assert m is None or (m["rating"], m["description"], m["latitude"], m["original_datetime"]) == (None, None, None, None)
    with account.http() as http:
        assert http.patch(f"/api/assets/{a.id}", json={"latitude": 1}).status_code == 422
        assert http.patch(f"/api/assets/{a.id}", json={"rating": 6}).status_code == 422
        assert http.patch(f"/api/assets/{a.id}", json={"colour": "red"}).status_code == 422
    kinds = [e["event_type"] for e in event_rows(account.user_id)[seen:]]
    # Two PATCHes: each an asset_updated and a metadata_updated (the GPS change adds a refresh's own).
    assert kinds.count("metadata_updated") >= 2 and kinds[:2] == ["asset_updated", "metadata_updated"]


def test_other_users_assets_are_not_found(account, make_account):
    theirs = _seed(make_account(), 1, seed_base=9500)[0]
    missing = "asset_" + "2" * 22
    c = account.client.assets
    for call in (lambda i: c.retrieve(i), lambda i: c.update_asset(i, rating=1), lambda i: c.delete(i)):
        errors = []
        for asset_id in (theirs, missing, "asset_malformed"):
            with pytest.raises(gumnut.NotFoundError) as err:
                call(asset_id)
            errors.append(err.value.body)
        assert errors[0] == errors[1] == errors[2] == {"detail": "Asset not found"}


def test_media_url_serves_bytes_with_range_and_etag(account):
    data = png_bytes(9900, 32, 32)
    a = upload(account, "serve me.png", data).parse()
    url = a.asset_urls["original"].url
    full = httpx.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "image/png"
    assert full.headers["content-disposition"] == "attachment; filename=\"serve me.png\"; filename*=UTF-8''serve%20me.png"
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = httpx.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    assert httpx.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    assert httpx.get(url, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    assert httpx.get(url.replace("sig=", "sig=x")).status_code == 403
    # The URL is stable between reads.
    assert account.client.assets.retrieve(a.id).asset_urls["original"].url == url


def test_public_url_setting_is_not_needed_for_absolute_urls(account, server):
    a = upload(account, "abs.png", png_bytes(9950)).parse()
    assert a.asset_urls["original"].url.startswith("http://127.0.0.1:")


def test_original_with_a_non_latin_name_downloads(account):
    a = upload(account, "фото 夏.png", png_bytes(9990)).parse()
    r = httpx.get(a.asset_urls["original"].url)
    assert r.status_code == 200
    assert "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%20%E5%A4%8F.png" in r.headers["content-disposition"]
    assert r.headers["content-disposition"].startswith("attachment; ")


def test_media_is_served_nosniff_on_both_listeners(account, server):
    a = upload(account, "sniff.png", png_bytes(9991)).parse()
    assert httpx.get(a.asset_urls["original"].url).headers["x-content-type-options"] == "nosniff"
    immich = httpx.get(f"{server.immich_url}/api/assets/{ids.decode(ids.ASSET, a.id)}/original",
                       headers={"x-api-key": account.api_key})
    assert immich.status_code == 200 and immich.headers["x-content-type-options"] == "nosniff"


def test_signed_urls_end_when_the_asset_is_trashed_restored_or_deleted(account):
    a = upload(account, "short-lived.png", png_bytes(9992)).parse()
    live_url = a.asset_urls["original"].url
    assert httpx.get(live_url).status_code == 200
    account.client.assets.trash(ids=[a.id])
    assert httpx.get(live_url).status_code == 403  # issued before trashing: ended
    trash_url = account.client.assets.retrieve(a.id).asset_urls["original"].url
    assert trash_url != live_url and httpx.get(trash_url).status_code == 200  # the trash view still shows it
    account.client.assets.restore(ids=[a.id])
    assert httpx.get(trash_url).status_code == 403
    restored_url = account.client.assets.retrieve(a.id).asset_urls["original"].url
    assert httpx.get(restored_url).status_code == 200
    account.client.assets.delete(a.id)
    assert httpx.get(restored_url).status_code in (403, 404)
