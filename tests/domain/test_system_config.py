"""The system config (app/domain/system_config.py): Immich's defaults, stored overrides merged over
them, Immich's validation, and a change seen by every process within the cache's second."""

from __future__ import annotations

import asyncio
import copy
import json
from contextlib import asynccontextmanager

import pytest

from app.db import engine as db
from app.domain import system_config
from app.domain.errors import BadRequest, Forbidden
from app.domain.system_config_schema import InvalidConfig
from tests.domain import factories as f
from tests.immich_contract import validate_component


@asynccontextmanager
async def _fresh_server():
    """An admin on a server that never saved a config; the config is server-wide, so the test
    leaves it that way too."""
    await _reset()
    try:
        yield f.principal_for(await f.new_user(is_admin=True))
    finally:
        await _reset()


async def _reset():
    await db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY)
    system_config.invalidate()


def test_the_defaults_are_a_whole_immich_config():
    defaults = system_config.defaults()
    validate_component("SystemConfigDto", defaults)
    assert defaults["image"]["thumbnail"] == {"format": "webp", "size": 250, "quality": 80, "progressive": False}
    assert defaults["trash"] == {"enabled": True, "days": 30} and defaults["user"] == {"deleteDelay": 7}
    assert defaults["storageTemplate"]["template"] == "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}"
    defaults["trash"]["days"] = 1  # callers get their own copy
    assert system_config.defaults()["trash"]["days"] == 30


def test_face_variables_set_the_defaults_of_their_config_fields(monkeypatch):
    monkeypatch.setenv("FACE_MIN_SCORE", "0.55")
    monkeypatch.setenv("FACE_MIN_FACES", "5")
    faces = system_config.defaults()["machineLearning"]["facialRecognition"]
    assert faces["minScore"] == 0.55 and faces["minFaces"] == 5 and faces["maxDistance"] == 0.5


def test_overrides_merge_object_by_object_and_only_differences_are_kept():
    base = system_config.defaults()
    merged = system_config.deep_merge(base, {"trash": {"days": 3}, "gone": {"x": 1},
                                             "machineLearning": {"urls": ["http://ml:1"]}})
    assert merged["trash"] == {"enabled": True, "days": 3} and "gone" not in merged
    assert merged["machineLearning"]["urls"] == ["http://ml:1"]
    assert merged["machineLearning"]["clip"] == base["machineLearning"]["clip"]
    assert system_config.difference(merged, base) == {"trash": {"days": 3},
                                                       "machineLearning": {"urls": ["http://ml:1"]}}


async def test_an_admin_saves_a_config_and_only_its_differences_are_stored():
    async with _fresh_server() as admin:
        wanted = system_config.defaults()
        wanted["image"]["thumbnail"]["size"] = 300
        wanted["passwordLogin"]["enabled"] = False
        saved = await system_config.update(admin, wanted)
        assert saved == wanted == await system_config.current()
        stored = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", system_config.KEY)
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert stored == {"image": {"thumbnail": {"size": 300}}, "passwordLogin": {"enabled": False}}
        # Saving the defaults again leaves nothing stored to differ.
        assert await system_config.update(admin, system_config.defaults()) == system_config.defaults()


async def test_a_change_made_by_another_process_is_seen_within_the_cache_time():
    async with _fresh_server():
        assert (await system_config.current())["trash"]["days"] == 30
        # Another process's write reaches this one only through the database, as this one does.
        await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)",
                         system_config.KEY, json.dumps({"trash": {"days": 2}}))
        await asyncio.sleep(system_config.CACHE_SECONDS + 0.1)
        assert (await system_config.current())["trash"]["days"] == 2


async def test_immich_schema_issues_name_the_field_and_nothing_is_saved():
    async with _fresh_server() as admin:
        bad = system_config.defaults()
        bad["image"]["thumbnail"]["size"] = 0
        bad["image"]["preview"]["format"] = "png"
        bad["trash"]["days"] = "30x"
        bad["map"]["lightStyle"] = "not a url"
        bad["server"]["externalDomain"] = "example"
        del bad["user"]
        with pytest.raises(InvalidConfig) as refused:
            await system_config.update(admin, bad)
        issues = {".".join(map(str, i["path"])): i["message"] for i in refused.value.issues}
        assert issues == {
            "image.thumbnail.size": "Too small: expected number to be >=1",
            "image.preview.format": 'Invalid option: expected one of "jpeg"|"webp"',
            "trash.days": "Invalid input: expected int, received string",
            "map.lightStyle": "Invalid URL",
            "server.externalDomain": "External domain must be an empty string or a valid URL",
            "user": "Invalid input: expected object, received undefined",
        }
        assert await db.fetchval("SELECT 1 FROM system_metadata WHERE key = $1", system_config.KEY) is None


async def test_immich_coercions_are_applied():
    document = system_config.defaults()
    document["trash"]["enabled"] = "false"
    document["ffmpeg"]["crf"] = "30"
    document["ffmpeg"]["acceptedAudioCodecs"] = ["libopus"]
    document["unknown"] = {"dropped": True}
    parsed = system_config.system_config_schema.parse(document)
    assert parsed["trash"]["enabled"] is False and parsed["ffmpeg"]["crf"] == 30
    assert parsed["ffmpeg"]["acceptedAudioCodecs"] == ["opus"] and "unknown" not in parsed


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["library"]["scan"].update(cronExpression="0 0 32 * *"), "Invalid cron expression 0 0 32 * *"),
    (lambda c: c["storageTemplate"].update(template="{{foo}}"), "Invalid storage template"),
    (lambda c: c["storageTemplate"].update(template="{{#if album}}{{album}}"), "Invalid storage template"),
])
async def test_rules_across_fields_refuse_with_immich_messages(change, message):
    async with _fresh_server() as admin:
        document = system_config.defaults()
        change(document)
        with pytest.raises(BadRequest) as refused:
            await system_config.update(admin, document)
        assert refused.value.detail.startswith(message) and not isinstance(refused.value, InvalidConfig)


async def test_only_an_admin_changes_the_config():
    async with _fresh_server():
        member = f.principal_for(await f.new_user())
        with pytest.raises(Forbidden):
            await system_config.update(member, system_config.defaults())


async def test_a_config_file_replaces_the_stored_config_and_refuses_changes(tmp_path, monkeypatch):
    async with _fresh_server() as admin:
        path = tmp_path / "immich.yaml"
        path.write_text("trash:\n  days: 9\nserver:\n  loginPageMessage: hello\n")
        monkeypatch.setenv(system_config.CONFIG_FILE_ENV, str(path))
        system_config.invalidate()
        config = await system_config.current()
        assert config["trash"] == {"enabled": True, "days": 9} and config["server"]["loginPageMessage"] == "hello"
        with pytest.raises(BadRequest) as refused:
            await system_config.update(admin, copy.deepcopy(config))
        assert refused.value.detail == system_config.CONFIG_FILE_IN_USE
        monkeypatch.delenv(system_config.CONFIG_FILE_ENV)
        system_config.invalidate()


async def test_a_config_file_immich_would_refuse_stops_the_config_from_loading(tmp_path, monkeypatch):
    path = tmp_path / "immich.json"
    path.write_text(json.dumps({"trash": {"days": -1}}))
    monkeypatch.setenv(system_config.CONFIG_FILE_ENV, str(path))
    system_config.invalidate()
    try:
        with pytest.raises(system_config.ConfigFileInvalid, match="trash.days: Too small"):
            await system_config.current()
    finally:
        monkeypatch.delenv(system_config.CONFIG_FILE_ENV)
        system_config.invalidate()


async def test_public_users_off_leaves_a_member_listing_only_itself():
    from app.domain import users

    async with _fresh_server() as admin:
        member_row = await f.new_user()
        member = f.principal_for(member_row)
        assert len(await users.users_visible_to(member)) > 1  # Immich's default: everyone is listed
        config = system_config.defaults()
        config["server"]["publicUsers"] = False
        await system_config.update(admin, config)
        assert [row["id"] for row in await users.users_visible_to(member)] == [member_row["id"]]
        assert len(await users.users_visible_to(admin)) > 1


async def test_enabled_mail_settings_are_kept_only_when_the_smtp_server_answers():
    from tests.smtp import closed_port, loopback_smtp, smtp_config

    async with _fresh_server() as admin:
        document = system_config.defaults()
        document["notifications"]["smtp"] = smtp_config(closed_port())
        with pytest.raises(BadRequest) as refused:
            await system_config.update(admin, document)
        assert refused.value.detail.startswith("Invalid SMTP configuration: ")
        assert not (await system_config.current())["notifications"]["smtp"]["enabled"]
        with loopback_smtp() as inbox:
            document["notifications"]["smtp"] = smtp_config(inbox.port)
            saved = await system_config.update(admin, document)
        assert saved["notifications"]["smtp"]["enabled"] is True and not inbox.messages  # reached, nothing sent
        # Unchanged settings are not checked again (the server may be away for a moment).
        await system_config.update(admin, saved)
