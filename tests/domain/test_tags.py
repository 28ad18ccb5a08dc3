"""Tags (app/domain/tags.py): the tree and its closure, upsert, tagging with per-id results, the
delete cascade, who may do what, and the tag filter of asset_filters."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import access, tags
from app.domain.asset_filters import AssetFilter
from app.domain.errors import Conflict, Invalid, NotFound
from tests.domain import factories as f
from tests.domain.test_asset_filters import ids, matching


async def _by_value(principal) -> dict[str, object]:
    return {r["value"]: r for r in await tags.list_tags(principal)}


async def test_a_path_creates_its_missing_parents(principal):
    [leaf] = await tags.upsert_tags(principal, ["Travel/2024/Rome"])
    tree = await _by_value(principal)
    assert list(tree) == ["Travel", "Travel/2024", "Travel/2024/Rome"]
    assert leaf["id"] == tree["Travel/2024/Rome"]["id"]
    assert tree["Travel/2024"]["parent_id"] == tree["Travel"]["id"]
    assert tree["Travel"]["parent_id"] is None
    assert tags.name_of(leaf["value"]) == "Rome"
    ancestors = {r["ancestor_id"] for r in await db.fetch(
        "SELECT ancestor_id FROM tag_closure WHERE descendant_id = $1", leaf["id"])}
    assert ancestors == {tree[v]["id"] for v in tree}


async def test_upsert_returns_existing_tags_once_in_the_order_asked(principal):
    first = await tags.upsert_tags(principal, ["a/b", " a / c ", "a//b/"])
    assert [r["value"] for r in first] == ["a/b", "a/c"]  # levels trimmed, empty ones dropped
    again = await tags.upsert_tags(principal, ["a/c", "a/b", "a/b"])
    assert [r["id"] for r in again] == [first[1]["id"], first[0]["id"]]
    with pytest.raises(Invalid):
        await tags.upsert_tags(principal, [" / "])


async def test_create_below_a_parent_and_refuse_a_duplicate(principal):
    parent = await tags.create_tag(principal, "Family", color="#ff0000")
    child = await tags.create_tag(principal, "Kids", parent_id=parent["id"])
    assert (child["value"], child["parent_id"], parent["color"]) == ("Family/Kids", parent["id"], "#ff0000")
    with pytest.raises(Conflict):
        await tags.create_tag(principal, "Family/Kids")
    # an existing parent level is reused; the tag asked for is new
    deep = await tags.create_tag(principal, "Family/Kids/Anna")
    assert deep["parent_id"] == child["id"]
    updated = await tags.update_color(principal, parent["id"], None)
    assert updated["color"] is None


async def test_tags_are_their_users_own(principal):
    mine = await tags.create_tag(principal, "Private")
    stranger = f.principal_for(await f.new_user())
    assert await tags.list_tags(stranger) == []
    for call in (tags.get_tag(stranger, mine["id"]), tags.update_color(stranger, mine["id"], "#fff"),
                 tags.delete_tag(stranger, mine["id"]), tags.add_assets(stranger, mine["id"], []),
                 tags.create_tag(stranger, "x", parent_id=mine["id"]), tags.require_tags(stranger, [mine["id"]])):
        with pytest.raises(NotFound):
            await call
    # the same path is another user's own tag
    [theirs] = await tags.upsert_tags(stranger, ["Private"])
    assert theirs["id"] != mine["id"]


async def test_tagging_needs_write_access_to_the_asset(user, principal):
    mine = await f.new_asset(user)
    other_owner = await f.new_user()
    foreign = await f.new_asset(other_owner)
    shared_lib = await f.new_library(other_owner)
    await f.new_member(shared_lib, user, "viewer")
    read_only = await f.new_asset(other_owner, library_id=shared_lib["id"])
    collab_lib = await f.new_library(other_owner)
    await f.new_member(collab_lib, user, "collaborator")
    writable = await f.new_asset(other_owner, library_id=collab_lib["id"])
    locked = await f.new_asset(user, visibility="locked")
    tag = await tags.create_tag(principal, "T")
    asked = [mine["id"], foreign["id"], read_only["id"], writable["id"], locked["id"], mine["id"]]
    result = await tags.add_assets(principal, tag["id"], asked)
    assert result.done == [mine["id"], writable["id"]]
    assert result.no_permission == [foreign["id"], read_only["id"], locked["id"]]
    again = await tags.add_assets(principal, tag["id"], [mine["id"], foreign["id"]])
    assert (again.done, again.duplicate, again.no_permission) == ([], [mine["id"]], [foreign["id"]])
    removed = await tags.remove_assets(principal, tag["id"], [mine["id"], foreign["id"]])
    assert (removed.done, removed.not_found) == ([mine["id"]], [foreign["id"]])
    read_only_key = f.principal_for(user, actions=frozenset({access.READ}))
    with pytest.raises(Exception):
        await tags.add_assets(read_only_key, tag["id"], [mine["id"]])


async def test_bulk_tagging_counts_new_links_and_passes_over_the_rest(user, principal):
    a, b = await f.new_asset(user), await f.new_asset(user)
    foreign = await f.new_asset(await f.new_user())
    x, y = await tags.upsert_tags(principal, ["x", "y"])
    theirs = (await tags.upsert_tags(f.principal_for(await f.new_user()), ["z"]))[0]
    count, changed = await tags.tag_assets_bulk(principal, [x["id"], y["id"], theirs["id"]],
                                                [a["id"], b["id"], foreign["id"]])
    assert count == 4 and set(changed) == {a["id"], b["id"]}
    count, changed = await tags.tag_assets_bulk(principal, [x["id"]], [a["id"]])
    assert (count, changed) == (0, [])
    on_a = (await tags.tags_of_assets([a["id"]]))[a["id"]]
    assert [r["value"] for r in on_a] == ["x", "y"]
    events = await db.fetch("SELECT * FROM events WHERE entity_type = 'asset_tag' AND entity_id = $1", a["id"])
    assert sorted(e["payload"] for e in events) == sorted(f'{{"tag_id": "{t["id"]}"}}' for t in (x, y))


async def test_the_filter_matches_a_tag_or_any_below_it(user, library_id, principal):
    rome = await f.new_asset(user)
    paris = await f.new_asset(user)
    other = await f.new_asset(user)
    untagged = await f.new_asset(user)
    r, p, o = await tags.upsert_tags(principal, ["Travel/2024/Rome", "Travel/2023/Paris", "Work"])
    tree = await _by_value(principal)
    await tags.add_assets(principal, r["id"], [rome["id"]])
    await tags.add_assets(principal, p["id"], [paris["id"]])
    await tags.add_assets(principal, o["id"], [other["id"], rome["id"]])
    assert await matching(AssetFilter(library_id, tag_ids=[tree["Travel"]["id"]])) == ids(rome, paris)
    assert await matching(AssetFilter(library_id, tag_ids=[tree["Travel/2024"]["id"]])) == ids(rome)
    # every tag named must match (AND)
    assert await matching(AssetFilter(library_id, tag_ids=[tree["Travel"]["id"], o["id"]])) == ids(rome)
    assert await matching(AssetFilter(library_id, untagged=True)) == ids(untagged)


async def test_deleting_a_tag_deletes_the_tags_below_it_and_their_links(user, principal):
    asset = await f.new_asset(user)
    leaf, keep = await tags.upsert_tags(principal, ["Travel/2024", "Work"])
    await tags.tag_assets_bulk(principal, [leaf["id"], keep["id"]], [asset["id"]])
    travel = (await _by_value(principal))["Travel"]
    assert await tags.delete_tag(principal, travel["id"]) == [asset["id"]]
    assert list(await _by_value(principal)) == ["Work"]
    assert [r["value"] for r in (await tags.tags_of_assets([asset["id"]]))[asset["id"]]] == ["Work"]
    gone = await db.fetch("SELECT entity_id FROM events WHERE entity_type = 'tag' AND event_type = 'tag_deleted'"
                          " AND owner_id = $1", user["id"])
    assert [r["entity_id"] for r in gone] == [leaf["id"], travel["id"]]
    assert await db.fetchval("SELECT count(*) FROM tag_closure WHERE ancestor_id = $1 OR descendant_id = $1",
                             leaf["id"]) == 0


async def test_a_files_tags_replace_the_owners_tags_on_the_asset(user, principal):
    asset = await f.new_asset(user)
    [old] = await tags.upsert_tags(principal, ["Old"])
    await tags.add_assets(principal, old["id"], [asset["id"]])
    async with db.transaction() as conn:
        await tags.replace_from_file(conn, asset, ["Frost", "Places/Yard", "Frost"])
    values = [r["value"] for r in (await tags.tags_of_assets([asset["id"]]))[asset["id"]]]
    assert values == ["Frost", "Places/Yard"]
    assert "Places" in await _by_value(principal)


HIERARCHICAL = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Kept</rdf:li></rdf:Alt>
</dc:title><lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Rome</rdf:li><rdf:li>AC/DC</rdf:li></rdf:Bag>
</lr:hierarchicalSubject></rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_a_files_tags_in_immichs_order():
    from app.media.metadata import parse_tags, read_sidecar

    sidecar = read_sidecar(HIERARCHICAL)
    # HierarchicalSubject levels are "|"-separated; a "/" inside a level would split it, so it becomes "|"
    assert parse_tags({}, sidecar).tags == ["Places/Rome", "AC|DC"]
    keywords = {"Iptc.Application2.Keywords": ["Frost", "Yard"]}
    assert parse_tags(keywords).tags == ["Frost", "Yard"]
    assert parse_tags(keywords, sidecar).tags == ["Places/Rome", "AC|DC"]  # XMP before IPTC
    listed = {**sidecar, "Xmp.digiKam.TagsList": ["Travel/2024"]}
    assert parse_tags(keywords, listed).tags == ["Travel/2024"]  # TagsList first of all
    assert parse_tags({}).tags is None


def test_the_sidecar_gets_the_tags_list_and_keeps_the_rest():
    from app.media.metadata import RefusedSidecar, read_sidecar, with_tags_list

    written = read_sidecar(with_tags_list(HIERARCHICAL, ["Travel/2024", "Work"]))
    assert written["Xmp.digiKam.TagsList"] == ["Travel/2024", "Work"]
    assert written["Xmp.dc.title"] == {'lang="x-default"': "Kept"}
    assert read_sidecar(with_tags_list(None, ["A"]))["Xmp.digiKam.TagsList"] == ["A"]
    with pytest.raises(RefusedSidecar):
        with_tags_list(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", ["A"])


async def test_an_over_long_path_is_refused_and_passed_over_on_import(user, principal):
    with pytest.raises(Invalid):
        await tags.upsert_tags(principal, ["é" * 1001])
    parent = await tags.create_tag(principal, "p" * 1500)
    with pytest.raises(Invalid):
        await tags.create_tag(principal, "c" * 600, parent_id=parent["id"])
    asset = await f.new_asset(user)
    async with db.transaction() as conn:
        await tags.replace_from_file(conn, asset, ["é" * 1001, "Fine"])
    assert [r["value"] for r in (await tags.tags_of_assets([asset["id"]]))[asset["id"]]] == ["Fine"]


async def test_a_link_made_after_the_file_was_read_outlives_the_files_tags(user, principal):
    asset = await f.new_asset(user)
    read_at = await db.fetchval("SELECT clock_timestamp()")
    [late] = await tags.upsert_tags(principal, ["Late"])
    await tags.add_assets(principal, late["id"], [asset["id"]])
    async with db.transaction() as conn:
        await tags.replace_from_file(conn, asset, ["FromFile"], read_at)
    assert [r["value"] for r in (await tags.tags_of_assets([asset["id"]]))[asset["id"]]] == ["FromFile", "Late"]


async def test_tag_cleanup_removes_tags_with_no_photo_on_them_or_below():
    from app.domain import job_queues

    owner = await f.new_user()
    me = f.principal_for(owner)
    photo = await f.new_asset(owner)
    made = {t["value"]: t["id"] for t in await tags.upsert_tags(me, ["Trip/Day1", "Empty/Leaf"])}
    await tags.add_assets(me, made["Trip/Day1"], [photo["id"]])
    assert await job_queues.run_manual_job("tag-cleanup", None) >= 2
    assert {t["value"] for t in await tags.list_tags(me)} == {"Trip", "Trip/Day1"}
