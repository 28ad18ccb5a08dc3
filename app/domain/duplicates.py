"""Immich's duplicate groups: detection for one owner, and the group reads and changes.

An asset's group is assets.duplicate_id; the assets of one owner sharing an id are one group.

Detection (the job "detect_duplicates", one owner at a time) looks at every eligible asset of the
owner (not hidden, locked, stacked or trashed) at once instead of one asset per job as Immich
does: the owner's CLIP embeddings are read in one query and searched as one batch (FAISS k-means cells,
the same media type only, pairs within machineLearning.duplicateDetection.maxDistance cosine
distance), and the pairs found are joined by union-find. Immich's rules carry over: an asset with
a near neighbour joins its group, groups that meet merge and keep an id one of them already had,
and an asset with an embedding that now has no neighbour leaves its group. Beyond Immich, assets
of the owner with the same bytes (checksum_sha256), in any of the owner's libraries, are one group
whether or not they have embeddings.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import numpy as np

from app.db import engine as db
from app.domain import access, events, system_config
from app.domain.errors import BadRequest

log = logging.getLogger(__name__)

JOB = "detect_duplicates"
# Up to this many vectors of one media type every pair is compared; above it, k-means cells (_search).
EXACT_LIMIT = 10_000
PROBES = 3  # cells each vector is compared within
_QUERY_BLOCK = 2048  # rows per matrix product, bounding its memory
_LOAD_BATCH = 5000  # embeddings read per round trip

# What detection and the group list look at: the owner's live assets in the timeline or archive.
_ELIGIBLE = ("a.trashed_at IS NULL AND a.stack_id IS NULL AND a.visibility IN ('timeline', 'archive')")


def job_id(owner_id: uuid.UUID) -> str:
    return f"{JOB}:{owner_id}"


def enabled(config: dict) -> tuple[str, float] | None:
    """(CLIP model name, max distance) when duplicate detection runs; Immich needs smart search on too."""
    ml = config["machineLearning"]
    if not (ml["enabled"] and ml["clip"]["enabled"] and ml["duplicateDetection"]["enabled"]):
        return None
    return ml["clip"]["modelName"], float(ml["duplicateDetection"]["maxDistance"])


@dataclass
class Detection:
    assets: int = 0  # eligible assets looked at (with an embedding or a checksum twin)
    grouped: int = 0  # of those, in a group afterwards
    changed: int = 0  # assets whose duplicate_id changed


# --- detection -----------------------------------------------------------------------------------


async def _load_embeddings(owner_id: uuid.UUID, model: str):
    """The owner's eligible embeddings: ids, media types, current groups and an [n, dim] matrix."""
    ids: list[uuid.UUID] = []
    kinds: list[str] = []
    groups: list[uuid.UUID | None] = []
    chunks: list[bytes] = []
    async with db.transaction() as conn:
        # All rows are wanted: plan for the last row, not the first (the default plans a cursor for
        # a tenth, which merged two index scans in id order, reading the heap at random). The hash
        # of the owner's assets (about 40 bytes each) in memory: past work_mem the join wrote the
        # embeddings to temp files and read them back.
        await conn.execute("SET LOCAL cursor_tuple_fraction = 1")
        await conn.execute("SET LOCAL work_mem = '64MB'")
        cursor = await conn.cursor(
            "SELECT a.id, a.media_type, a.duplicate_id, s.embedding FROM smart_search s"
            " JOIN assets a ON a.id = s.asset_id"
            f" WHERE a.owner_id = $1 AND s.model = $2 AND {_ELIGIBLE}",
            owner_id, model)
        while rows := await cursor.fetch(_LOAD_BATCH):  # a batch at a time: no Python step per row
            ids.extend(r["id"] for r in rows)
            kinds.extend(r["media_type"] for r in rows)
            groups.extend(r["duplicate_id"] for r in rows)
            chunks.extend(r["embedding"] for r in rows)
    if not chunks:
        return ids, kinds, groups, np.zeros((0, 0), dtype=np.float32)
    dim = len(chunks[0]) // 4
    if all(len(blob) == dim * 4 for blob in chunks):
        matrix = np.frombuffer(b"".join(chunks), dtype="<f4").reshape(len(chunks), dim)
    else:
        matrix = np.empty((len(chunks), dim), dtype="<f4")
        for i, blob in enumerate(chunks):
            if len(blob) == dim * 4:
                matrix[i] = np.frombuffer(blob, dtype="<f4")
            else:  # an embedding of another size cannot be compared: it matches nothing
                matrix[i] = np.nan
    return ids, kinds, groups, matrix


def _close_pairs(queries: np.ndarray, query_rows: np.ndarray, members: np.ndarray, member_rows: np.ndarray,
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (query row, member row) whose inner product reaches threshold, by blocked matrix products."""
    lefts, rights = [], []
    for start in range(0, len(queries), _QUERY_BLOCK):
        scores = queries[start:start + _QUERY_BLOCK] @ members.T
        i, j = np.nonzero(scores >= threshold)
        lefts.append(query_rows[start + i])
        rights.append(member_rows[j])
    return np.concatenate(lefts), np.concatenate(rights)


def _search(vectors: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of rows within max_distance cosine distance (rows are L2-normalised, so
    that is an inner product of at least 1 - max_distance).

    Up to EXACT_LIMIT rows every pair is compared. Above it FAISS's k-means cuts the rows into
    cells (about sqrt(PROBES * n) of them, which balances finding the cells against comparing
    within them), one batch search finds each row's PROBES nearest cells, and each row is compared
    with the rows of those cells in one matrix product per cell: a 200,000-row owner in seconds.
    Near-identical rows share a cell (or the next one), so the probes lose none of the pairs that
    matter here. Every close pair counts rather than the 64 nearest Immich looks at: groups are the
    pairs' connected components either way, so they differ only when more than 64 assets are all
    alike, and then Immich's assets join up through one another too."""
    import faiss

    usable = np.flatnonzero(np.isfinite(vectors).all(axis=1))
    empty = np.zeros(0, dtype=np.int64)
    if len(usable) < 2:
        return empty, empty
    data = np.ascontiguousarray(vectors[usable], dtype=np.float32)
    n, dim = data.shape
    threshold = np.float32(1.0 - max_distance)
    rows = np.arange(n)
    if n <= EXACT_LIMIT:
        a, b = _close_pairs(data, rows, data, rows, threshold)
    else:
        cells = int(np.sqrt(PROBES * n))
        kmeans = faiss.Kmeans(dim, cells, niter=10, spherical=True, seed=1, min_points_per_centroid=5,
                              max_points_per_centroid=20)
        kmeans.train(data[np.random.default_rng(0).choice(n, min(n, cells * 20), replace=False)])
        quantizer = faiss.IndexFlatIP(dim)
        quantizer.add(kmeans.centroids)
        _, near_cells = quantizer.search(data, PROBES)
        home = near_cells[:, 0]
        member_order = np.argsort(home, kind="stable")
        member_bounds = np.searchsorted(home[member_order], np.arange(cells + 1))
        probe_cells = near_cells.ravel()
        probe_rows = np.repeat(rows, PROBES)
        query_order = np.argsort(probe_cells, kind="stable")
        query_bounds = np.searchsorted(probe_cells[query_order], np.arange(cells + 1))
        lefts, rights = [empty], [empty]
        for cell in range(cells):
            in_cell = member_order[member_bounds[cell]:member_bounds[cell + 1]]
            asking = probe_rows[query_order[query_bounds[cell]:query_bounds[cell + 1]]]
            if len(in_cell) and len(asking):
                left, right = _close_pairs(data[asking], asking, data[in_cell], in_cell, threshold)
                lefts.append(left)
                rights.append(right)
        a, b = np.concatenate(lefts), np.concatenate(rights)
    keep = a != b
    pairs = np.unique(np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])]), axis=1)
    return usable[pairs[0]], usable[pairs[1]]


def _near_pairs(kinds: list[str], matrix: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """_search within each media type (a photo is never a video's duplicate), as global row indexes."""
    lefts, rights = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    kind_of = np.array(kinds)
    for kind in sorted(set(kinds)):
        rows = np.flatnonzero(kind_of == kind)
        a, b = _search(matrix[rows], max_distance)
        lefts.append(rows[a])
        rights.append(rows[b])
    return np.concatenate(lefts), np.concatenate(rights)


class _Components:
    """Union-find over integer nodes."""

    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Plan:
    assign: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)  # asset -> its group
    merge: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # old group id -> the id it joins


def _plan(ids: list[uuid.UUID], groups: list[uuid.UUID | None], pairs: list[tuple[int, int]],
          embedded: int) -> _Plan:
    """Which group each asset ends in. Nodes: the assets (the first `embedded` have embeddings),
    then each existing group id. An asset with a pair joins its old group's node, so groups that
    meet merge; each component keeps the existing id most of its assets hold (Immich keeps one of
    the ids it finds), else gets a new one. An embedded asset with no pair leaves its group."""
    group_ids = sorted({g for g in groups if g is not None}, key=str)
    node_of_group = {g: len(ids) + n for n, g in enumerate(group_ids)}
    uf = _Components(len(ids) + len(group_ids))
    paired = set()
    for a, b in pairs:
        uf.union(a, b)
        paired.update((a, b))
    for a in paired:
        if groups[a] is not None:
            uf.union(a, node_of_group[groups[a]])
    members: dict[int, list[int]] = {}
    for a in sorted(paired):
        members.setdefault(uf.find(a), []).append(a)
    plan = _Plan()
    for root, assets in members.items():
        held = Counter(groups[a] for a in assets if groups[a] is not None)
        target = min(held, key=lambda g: (-held[g], str(g))) if held else uuid.uuid4()
        for a in assets:
            plan.assign[ids[a]] = target
        for g, node in node_of_group.items():
            if g != target and uf.find(node) == root:
                plan.merge[g] = target
    for a in range(embedded):
        if a not in paired and groups[a] is not None:
            plan.assign[ids[a]] = None
    return plan


async def _checksum_twins(owner_id: uuid.UUID) -> list[asyncpg.Record]:
    """The owner's eligible assets whose bytes another eligible asset of the owner also has."""
    return await db.fetch(
        "SELECT a.id, a.duplicate_id, a.checksum_sha256 FROM assets a"
        f" WHERE a.owner_id = $1 AND {_ELIGIBLE} AND a.checksum_sha256 IN ("
        f"   SELECT a.checksum_sha256 FROM assets a WHERE a.owner_id = $1 AND {_ELIGIBLE}"
        "   GROUP BY a.checksum_sha256 HAVING count(*) > 1)"
        " ORDER BY a.checksum_sha256, a.id",
        owner_id)


async def owners_unchecked() -> list[uuid.UUID]:
    """Owners with an embedding the detection has not looked at yet. An embedding stored while its
    owner's detection job runs cannot queue another (one job id per owner): the sweep finds it."""
    settings = enabled(await system_config.current())
    if settings is None:
        return []
    # Only what detection looks at (it stamps those): a hidden or trashed asset's embedding would
    # otherwise queue its owner again at every sweep.
    rows = await db.fetch("SELECT DISTINCT a.owner_id FROM smart_search s JOIN assets a ON a.id = s.asset_id"
                          f" WHERE s.duplicates_checked_at IS NULL AND s.model = $1 AND {_ELIGIBLE}", settings[0])
    return [r["owner_id"] for r in rows]


async def detect(owner_id: uuid.UUID) -> Detection | None:
    """Group the owner's duplicates; None when duplicate detection (or smart search) is off."""
    import asyncio

    settings = enabled(await system_config.current())
    if settings is None:
        return None
    model, max_distance = settings
    ids, kinds, groups, matrix = await _load_embeddings(owner_id, model)
    embedded = len(ids)
    a, b = await asyncio.to_thread(_near_pairs, kinds, matrix, max_distance) if embedded else ([], [])
    pairs = list(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    position = {asset_id: n for n, asset_id in enumerate(ids)}
    by_checksum: dict[bytes, list[int]] = {}
    for row in await _checksum_twins(owner_id):
        if row["id"] not in position:
            position[row["id"]] = len(ids)
            ids.append(row["id"])
            groups.append(row["duplicate_id"])
        by_checksum.setdefault(row["checksum_sha256"], []).append(position[row["id"]])
    for twins in by_checksum.values():
        pairs.extend((twins[0], other) for other in twins[1:])
    plan = _plan(ids, groups, pairs, embedded)
    current = dict(zip(ids, groups))
    assign = {asset: group for asset, group in plan.assign.items() if current[asset] != group}
    changed = await _write(owner_id, model, assign, plan.merge, ids[:embedded])
    grouped = sum(1 for group in plan.assign.values() if group is not None)
    return Detection(assets=len(ids), grouped=grouped, changed=changed)


async def _write(owner_id: uuid.UUID, model: str, assign: dict[uuid.UUID, uuid.UUID | None],
                 merge: dict[uuid.UUID, uuid.UUID], checked: list[uuid.UUID]) -> int:
    """The plan in one transaction: each change with its asset_updated event, and the embeddings
    looked at stamped as checked."""
    async with db.transaction() as conn:
        # One detection per owner at a time (the job id already makes this so; a direct call too).
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('detect_duplicates'), hashtext($1::text))",
                           str(owner_id))
        rows = []
        if merge:
            rows += await conn.fetch(
                "UPDATE assets a SET duplicate_id = m.target, updated_at = now()"
                " FROM unnest($2::uuid[], $3::uuid[]) AS m(source, target)"
                " WHERE a.owner_id = $1 AND a.duplicate_id = m.source AND NOT (a.id = ANY($4::uuid[]))"
                " RETURNING a.id, a.library_id, a.owner_id",
                owner_id, list(merge), list(merge.values()), list(assign))
        if assign:
            rows += await conn.fetch(
                "UPDATE assets a SET duplicate_id = u.target, updated_at = now()"
                " FROM unnest($2::uuid[], $3::uuid[]) AS u(id, target)"
                " WHERE a.id = u.id AND a.owner_id = $1 AND a.duplicate_id IS DISTINCT FROM u.target"
                " RETURNING a.id, a.library_id, a.owner_id",
                owner_id, list(assign), list(assign.values()))
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                                 rows=[(r["id"], r["library_id"], r["owner_id"]) for r in rows])
        if checked:
            await conn.execute("UPDATE smart_search SET duplicates_checked_at = now()"
                               " WHERE model = $1 AND asset_id = ANY($2::uuid[])", model, checked)
    return len(rows)


async def owners_with_embeddings(model: str) -> list[uuid.UUID]:
    """Every owner with an embedding of the model (what the duplicateDetection queue's start runs for)."""
    rows = await db.fetch("SELECT DISTINCT a.owner_id FROM smart_search s JOIN assets a ON a.id = s.asset_id"
                          " WHERE s.model = $1 ORDER BY a.owner_id", model)
    return [r["owner_id"] for r in rows]


# --- the groups, as the caller sees them ---------------------------------------------------------


async def set_group(conn, asset_rows: list[asyncpg.Record], duplicate_id: uuid.UUID | None) -> None:
    """Put the assets in a group (None: in none), each change with its event."""
    rows = await conn.fetch(
        "UPDATE assets SET duplicate_id = $2, updated_at = now()"
        " WHERE id = ANY($1::uuid[]) AND duplicate_id IS DISTINCT FROM $2"
        " RETURNING id, library_id, owner_id",
        [r["id"] for r in asset_rows], duplicate_id)
    await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                             rows=[(r["id"], r["library_id"], r["owner_id"]) for r in rows])


async def set_duplicate_id(principal: access.Principal, asset_ids: list[uuid.UUID],
                           duplicate_id: uuid.UUID | None) -> None:
    """Immich's bulk asset update of duplicateId: every asset must be one the caller may change."""
    found = await access.load_assets(principal, list(dict.fromkeys(asset_ids)), access.WRITE)
    async with db.transaction() as conn:
        await set_group(conn, list(found.values()), duplicate_id)


async def _clear_singletons(conn, principal: access.Principal) -> None:
    """Immich clears a group left with one member (the others trashed, stacked or regrouped) first."""
    rows = await conn.fetch(
        "UPDATE assets a SET duplicate_id = NULL, updated_at = now() WHERE a.owner_id = $1 AND a.duplicate_id IN ("
        "  SELECT duplicate_id FROM assets WHERE owner_id = $1 AND duplicate_id IS NOT NULL"
        "  AND trashed_at IS NULL AND stack_id IS NULL GROUP BY duplicate_id HAVING count(*) = 1)"
        " AND a.trashed_at IS NULL AND a.stack_id IS NULL RETURNING a.id, a.library_id, a.owner_id",
        principal.user_id)
    await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                             rows=[(r["id"], r["library_id"], r["owner_id"]) for r in rows])


async def _members(conn, principal: access.Principal, duplicate_ids: list[uuid.UUID] | None) -> list[asyncpg.Record]:
    libraries = await access.live_library_ids(principal)
    return await conn.fetch(
        f"SELECT a.* FROM assets a WHERE a.owner_id = $1 AND a.library_id = ANY($2::uuid[]) AND {_ELIGIBLE}"
        " AND a.duplicate_id IS NOT NULL AND ($3::uuid[] IS NULL OR a.duplicate_id = ANY($3::uuid[]))"
        " ORDER BY a.local_datetime, a.id",
        principal.user_id, libraries, duplicate_ids)


async def list_groups(principal: access.Principal) -> list[tuple[uuid.UUID, list[asyncpg.Record]]]:
    """The caller's groups of two or more live timeline/archive assets, each in capture order;
    groups in the order of their first asset."""
    principal.require(access.READ)
    async with db.transaction() as conn:
        await _clear_singletons(conn, principal)
        rows = await _members(conn, principal, None)
    groups: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in rows:
        groups.setdefault(row["duplicate_id"], []).append(row)
    return [(g, members) for g, members in groups.items() if len(members) > 1]


async def _require_groups(principal: access.Principal, duplicate_ids: list[uuid.UUID]) -> None:
    """Immich's duplicate access: each id must be the group of one of the caller's assets (else 400)."""
    held = {r["duplicate_id"] for r in await db.fetch(
        "SELECT DISTINCT duplicate_id FROM assets WHERE owner_id = $1 AND duplicate_id = ANY($2::uuid[])",
        principal.user_id, duplicate_ids)}
    if any(d not in held for d in duplicate_ids):
        raise BadRequest("Not found or no duplicate.delete access")


async def dissolve(principal: access.Principal, duplicate_ids: list[uuid.UUID]) -> None:
    """Immich's DELETE /duplicates: the caller's assets leave these groups; the assets stay."""
    principal.require(access.DELETE)
    wanted = list(dict.fromkeys(duplicate_ids))
    await _require_groups(principal, wanted)
    async with db.transaction() as conn:
        rows = await conn.fetch("SELECT * FROM assets WHERE owner_id = $1 AND duplicate_id = ANY($2::uuid[])",
                                principal.user_id, wanted)
        await set_group(conn, rows, None)


async def group_members(principal: access.Principal, duplicate_id: uuid.UUID) -> list[asyncpg.Record]:
    async with db.transaction() as conn:
        return await _members(conn, principal, [duplicate_id])


async def require_groups(principal: access.Principal, duplicate_ids: list[uuid.UUID]) -> None:
    principal.require(access.DELETE)
    await _require_groups(principal, list(dict.fromkeys(duplicate_ids)))
