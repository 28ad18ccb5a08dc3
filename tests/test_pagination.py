"""Native asset list walks stay stable while jobs rewrite capture times, trash and restore mid-walk."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import threading

import asyncpg

from app.api import ids
from tests.conftest import run
from tests.helpers import UTC, upload, wait_processed
from tests.media import png_bytes

START = dt.datetime(2020, 1, 1)


def _seed(account, count: int) -> list:
    """One real upload, cloned in SQL into count assets of the same library with their own checksums and times.

    The clones copy every column of the processed upload (library, owner, visibility, media type,
    dimensions), so the list sees them as it sees uploads; only identity and time columns differ."""
    raw = upload(account, "seed.png", png_bytes(4242), created=dt.datetime(2021, 6, 1, tzinfo=UTC))
    assert raw.status_code == 201
    wait_processed(account, raw.parse().id)  # clones copy a processed row; its times no longer move on their own
    seed = ids.decode(ids.ASSET, raw.parse().id)

    async def clone():
        from app.db import engine as db

        skip = {"id", "checksum_sha256", "checksum_sha1", "device_asset_id", "local_datetime", "captured_at",
                "original_version_id", "created_at", "updated_at", "storage_key"}
        columns = [r["column_name"] for r in await db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'assets'"
            " AND is_generated = 'NEVER' ORDER BY ordinal_position"  # Postgres computes the generated ones
        ) if r["column_name"] not in skip]
        copied = ", ".join(columns)
        await db.execute(
            f"""
            INSERT INTO assets (id, checksum_sha256, checksum_sha1, device_asset_id, local_datetime, captured_at,
                                storage_key, {copied})
            SELECT gen_random_uuid(), sha256(convert_to(src.id::text || g, 'UTF8')),
                   substring(sha256(convert_to(g || src.id::text, 'UTF8')) FROM 1 FOR 20),
                   'clone-' || g, $2::timestamp + g * interval '1 hour',
                   ($2::timestamp + g * interval '1 hour') AT TIME ZONE 'UTC',
                   src.storage_key || '.clone-' || g,  -- a file is one asset's (storage keys are unique)
                   {", ".join("src." + c for c in columns)}
            FROM assets src, generate_series(1, $3) g WHERE src.id = $1
            """,
            seed, START, count - 1,
        )
        rows = await db.fetch(
            "SELECT a.id FROM assets a WHERE a.library_id = (SELECT library_id FROM assets WHERE id = $1)", seed
        )
        return [r["id"] for r in rows]

    made = run(clone())
    assert len(made) == count
    return made


class Rewriter(threading.Thread):
    """Rewrites capture times of random assets in batches, as the metadata step does, until stopped."""

    def __init__(self, asset_ids: list) -> None:
        super().__init__(daemon=True)
        self.asset_ids = asset_ids
        self.stop = threading.Event()
        self.batches = 0
        self.ready = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        rng = random.Random(7)
        try:
            while not self.stop.is_set():
                batch = rng.sample(self.asset_ids, 15)
                # New times anywhere in the range, so assets jump both ahead of and behind the cursor.
                times = [START + dt.timedelta(minutes=rng.randrange(0, 600 * 60)) for _ in batch]
                for asset_id, when in zip(batch, times):  # one asset per transaction, as the metadata step writes
                    await conn.execute(
                        "UPDATE assets SET local_datetime = $2::timestamp,"
                        " captured_at = $2::timestamp AT TIME ZONE 'UTC', updated_at = now() WHERE id = $1",
                        asset_id, when,
                    )
                with self.ready:
                    self.batches += 1
                    self.ready.notify_all()
                await asyncio.sleep(0.005)
        except BaseException as exc:  # surfaced by the test, which stops waiting for batches
            with self.ready:
                self.error = exc
                self.ready.notify_all()
        finally:
            await conn.close()

    def wait_batches(self, count: int) -> None:
        with self.ready:
            target = self.batches + count
            assert self.ready.wait_for(lambda: self.batches >= target or self.error is not None, timeout=30)
        assert self.error is None, self.error


def _walk(account, rewriter: Rewriter, order: str, on_page=None) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        kwargs = {"starting_after_id": after} if after else {}
        page = account.client.assets.list(limit=7, order=order, **kwargs)
        seen += [a.id for a in page.data]
        if not page.has_more:
            return seen
        after = page.data[-1].id
        if on_page is not None:
            on_page(page)
        rewriter.wait_batches(2)  # capture times move between every two page reads


def test_walk_sees_each_asset_once_while_capture_times_change(account):
    made = _seed(account, 500)
    rewriter = Rewriter(made)
    rewriter.start()
    try:
        for order in ("desc", "asc"):
            seen = _walk(account, rewriter, order)
            assert len(seen) == len(set(seen)), f"{order}: repeated {len(seen) - len(set(seen))} assets"
            assert set(seen) == {ids.encode(ids.ASSET, i) for i in made}, f"{order}: skipped assets"
    finally:
        rewriter.stop.set()
        rewriter.join()
    assert rewriter.error is None and rewriter.batches > 100


def test_walk_survives_trashing_its_anchor_and_restores(account):
    made = _seed(account, 200)
    everyone = [ids.encode(ids.ASSET, i) for i in made]
    rewriter = Rewriter(made)
    rewriter.start()
    ever_trashed: set[str] = set()
    in_trash: set[str] = set()
    rng = random.Random(11)
    c = account.client.assets

    def churn(page):
        # Trash the anchor itself and one random asset; restore an earlier one (back in the
        # timeline, with its trash time cleared). None of this may repeat or skip anyone else.
        victims = [page.data[-1].id, rng.choice(everyone)]
        c.trash(ids=victims)
        ever_trashed.update(victims)
        in_trash.update(victims)
        if len(in_trash) > 3:
            back = rng.choice(sorted(in_trash - set(victims)))
            c.restore(ids=[back])
            in_trash.discard(back)

    try:
        seen = _walk(account, rewriter, "desc", on_page=churn)
    finally:
        rewriter.stop.set()
        rewriter.join()
    assert rewriter.error is None
    assert len(seen) == len(set(seen)), "an asset was listed twice"
    assert not (set(everyone) - set(seen) - ever_trashed), "an asset never trashed was skipped"


def test_expired_walks_and_history_are_pruned_and_their_cursors_still_page(account):
    made = _seed(account, 30)
    first = account.client.assets.list(limit=7)
    anchor = first.data[-1].id

    async def age_and_prune():
        from app.db import engine as db
        from app.domain import maintenance

        library = await db.fetchval("SELECT library_id FROM assets WHERE id = $1", made[0])
        await db.execute("UPDATE assets SET local_datetime = local_datetime + interval '1 minute' WHERE id = $1",
                         made[0])
        await db.execute("UPDATE asset_list_walks SET started_at = now() - interval '25 hours' WHERE library_id = $1",
                         library)
        await db.execute("UPDATE asset_key_history SET changed_at = now() - interval '49 hours'"
                         " WHERE library_id = $1", library)
        removed = await maintenance.prune_list_walks()
        left = await db.fetchval(
            "SELECT (SELECT count(*) FROM asset_list_walks WHERE library_id = $1)"
            " + (SELECT count(*) FROM asset_key_history WHERE library_id = $1)", library)
        return removed, left

    removed, left = run(age_and_prune())
    assert removed >= 2 and left == 0
    # The forgotten walk's cursor still pages, from the anchor's current key.
    rest = []
    after = anchor
    while True:
        page = account.client.assets.list(limit=7, starting_after_id=after)
        rest += [a.id for a in page.data]
        if not page.has_more:
            break
        after = page.data[-1].id
    assert len(rest) == len(set(rest)) == 23 and not set(rest) & {a.id for a in first.data}
