"""`python -m app reprocess`: rebuild metadata and/or variants for many assets, with progress."""

from __future__ import annotations

import asyncio
import sys

from tqdm import tqdm

from app.db import engine as db
from app.api import ids
from app.domain import processing, recognition
from app.storage.blobstore import BlobStore


async def reprocess(store: BlobStore, library: str | None, what: str, concurrency: int,
                    settings=None) -> tuple[int, int]:
    library_id = ids.decode(ids.LIBRARY, library) if library else None
    rows = await db.fetch(
        "SELECT * FROM assets WHERE ($1::uuid IS NULL OR library_id = $1) ORDER BY created_at, id", library_id
    )
    steps = ["metadata", "variants", "faces"] if what == "all" else [what]
    failed = 0
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(rows), unit="asset", file=sys.stderr, dynamic_ncols=True, desc=f"reprocess {what}")

    async def one(asset) -> None:
        nonlocal failed
        async with gate:
            outcome = "ok"
            for step in steps:
                task_id = await processing.new_task(asset, step)
                if step == "metadata":
                    outcome = await processing.run_metadata(store, task_id, None, chain=False)
                elif step == "variants":
                    outcome = await processing.run_variants(store, task_id, chain=False)
                elif settings is not None and asset["visibility"] != "hidden":
                    outcome = await recognition.run_detection(settings, store, task_id, None)
            failed += outcome == "failed"
            bar.update(1)
            bar.set_postfix(failed=failed)

    await asyncio.gather(*(one(r) for r in rows))
    bar.close()
    if "faces" in steps and settings is not None:
        # Detection keeps stored faces it finds again (and their people); new ones are clustered now.
        for library_row in {r["library_id"] for r in rows}:
            await recognition.run_clustering(settings, library_row)
    return len(rows), failed
