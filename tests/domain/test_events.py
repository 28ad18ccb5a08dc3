"""The change log's reader (app/domain/events.py): cursor order, limits, filters, and the horizon
that keeps a reader from passing a transaction that has not committed yet."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from app.db import engine as db
from app.domain import events
from app.domain.errors import BadRequest
from tests.domain import factories as f


async def feed(library_id, *, after=None, horizon=None, entity_types=None, created_at_gte=None, created_at_lt=None,
               limit=100):
    async with db.connection() as conn:
        return await events.read_feed(conn, library_id=library_id, after=after, horizon=horizon,
                                      entity_types=entity_types, created_at_gte=created_at_gte,
                                      created_at_lt=created_at_lt, limit=limit)


def cursor(row) -> tuple[int, int]:
    return row["txid"], row["id"]


def test_cursor_and_horizon_round_trip():
    assert events.decode_cursor(events.encode_cursor(0x1234, 0xABC)) == (0x1234, 0xABC)
    assert events.encode_cursor(255, 16) == "ff.10"
    assert events.decode_horizon(events.encode_horizon(4096)) == 4096


@pytest.mark.parametrize("value", ["", "ff", "ff.", ".10", "FF.10", "g.1", "1.2.3", "1" * 16 + ".1", "-1.1"])
def test_malformed_cursors_are_bad_requests(value):
    with pytest.raises(BadRequest):
        events.decode_cursor(value)


@pytest.mark.parametrize("value", ["", "h", "ff", "hx", "h" + "1" * 16])
def test_malformed_horizons_are_bad_requests(value):
    with pytest.raises(BadRequest):
        events.decode_horizon(value)


async def test_events_come_in_commit_order_and_page_by_cursor(user, library_id):
    assets = [await f.new_asset(user, event="asset_created") for _ in range(5)]
    rows, more, bound = await feed(library_id)
    assert [r["entity_id"] for r in rows] == [a["id"] for a in assets]
    assert not more and all(r["txid"] < bound for r in rows)
    first, more, _ = await feed(library_id, limit=2)
    assert more and len(first) == 2
    rest, more, _ = await feed(library_id, after=cursor(first[-1]), limit=10)
    assert not more and [r["id"] for r in first + rest] == [r["id"] for r in rows]


async def test_library_creation_is_not_a_feed_event(user, library_id):
    await f.record_event("library", library_id, "library_created", library_id=library_id, owner_id=user["id"])
    assert (await feed(library_id))[0] == []


async def test_feed_is_per_library_and_filters_by_kind_and_time(user, library_id):
    other = await f.new_user()
    await f.new_asset(other, event="asset_created")
    asset = await f.new_asset(user, event="asset_created")
    album = await f.new_album(user, event="album_created")
    rows, _, _ = await feed(library_id)
    assert [r["entity_id"] for r in rows] == [asset["id"], album["id"]]
    rows, _, _ = await feed(library_id, entity_types=["album"])
    assert [r["entity_id"] for r in rows] == [album["id"]]
    later = rows[0]["created_at"]
    rows, _, _ = await feed(library_id, created_at_gte=later)
    assert album["id"] in [r["entity_id"] for r in rows]
    rows, _, _ = await feed(library_id, created_at_lt=later)
    assert album["id"] not in [r["entity_id"] for r in rows]
    rows, _, _ = await feed(library_id, created_at_gte=later, created_at_lt=later)
    assert rows == []


async def test_payloads_are_stored_as_given(user, library_id):
    entity = uuid.uuid4()
    await f.record_event("asset", entity, "asset_updated", library_id=library_id, owner_id=user["id"],
                         payload={"asset_id": str(entity), "fields": ["rating"]})
    (row,), _, _ = await feed(library_id)
    payload = row["payload"]
    assert (payload if isinstance(payload, dict) else __import__("json").loads(payload)) == {
        "asset_id": str(entity), "fields": ["rating"]}


async def test_an_open_transaction_holds_back_everything_after_it(domain, user, library_id):
    """A reader never passes an event whose transaction may still commit below its cursor."""
    before = await f.new_asset(user, event="asset_created")
    slow = await asyncpg.connect(domain.database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type)"
            " VALUES ($1, $2, 'asset', $3, 'asset_created')", library_id, user["id"], uuid.uuid4())
        after = await f.new_asset(user, event="asset_created")  # commits first, but started later
        rows, _, bound = await feed(library_id)
        assert [r["entity_id"] for r in rows] == [before["id"]]
        await tx.commit()
    finally:
        await slow.close()
    rest, _, _ = await feed(library_id, after=cursor(rows[-1]))
    assert len(rest) == 2 and rest[-1]["entity_id"] == after["id"]
    assert bound <= rest[0]["txid"]


async def test_a_horizon_caps_the_read_and_cursors_ahead_of_the_database_are_refused(user, library_id):
    first = await f.new_asset(user, event="asset_created")
    rows, _, bound = await feed(library_id)
    await f.new_asset(user, event="asset_created")
    capped, _, capped_bound = await feed(library_id, horizon=bound)
    assert capped_bound == bound and [r["entity_id"] for r in capped] == [first["id"]]
    with pytest.raises(BadRequest, match="as_of"):
        await feed(library_id, horizon=bound + 10**9)
    with pytest.raises(BadRequest, match="after_cursor"):
        await feed(library_id, after=(rows[-1]["txid"] + 10**9, rows[-1]["id"]))
    with pytest.raises(BadRequest, match="after_cursor"):
        await feed(library_id, after=(rows[-1]["txid"], rows[-1]["id"] + 10**9))


async def test_many_events_in_one_round_trip(user, library_id):
    made = [await f.new_asset(user) for _ in range(3)]
    async with db.transaction() as conn:
        await events.record_many(conn, entity_type="asset", event_type="asset_trashed",
                                 rows=[(a["id"], library_id, user["id"]) for a in made])
        await events.record_many(conn, entity_type="asset", event_type="asset_trashed", rows=[])
    rows, _, _ = await feed(library_id)
    assert [(r["entity_id"], r["event_type"]) for r in rows] == [(a["id"], "asset_trashed") for a in made]
    assert len({r["txid"] for r in rows}) == 1  # one transaction, ordered by id within it


async def test_a_rolled_back_write_leaves_no_event(user, library_id):
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await f.new_asset(user, event="asset_created")
            raise RuntimeError("abandon")
    assert (await feed(library_id))[0] == []


def test_payload_of_reads_stored_text_or_json():
    from app.domain.sync import Change, payload_of

    def change(payload):
        return Change((1, 1), uuid.uuid4(), None, payload, None)

    assert payload_of(change('{"a": 1}')) == {"a": 1}
    assert payload_of(change({"a": 1})) == {"a": 1}
    assert payload_of(change(None)) == {}
