"""The server's settings as Immich's system config: one JSON document with Immich's field names.

What is stored is only what differs from the defaults (Immich does the same), under the key
`system-config` of `system_metadata`; the effective config is that partial document deep-merged
over `defaults()`. With `IMMICH_CONFIG_FILE` set, the file (JSON or YAML, partial or whole) takes
the place of the stored document and the config cannot be changed through the API.

`current()` is what every reader calls (a request, a job). It is cached per process for
`CACHE_SECONDS`, and a write drops the writer's cache at once, so a change made by one process
(the API server) is seen by every other (separate workers) within that time without a restart. A
re-read is one indexed single-row query, so the cache keeps the cost per call near nothing.

Environment and config: where this server read a setting from the environment before Immich's
config existed (FACE_MIN_SCORE, FACE_MAX_DISTANCE, FACE_MIN_FACES), the variable, when set, is the
default of its config field; a value saved through the API wins over it. Immich's own
IMMICH_MACHINE_LEARNING_ENABLED / IMMICH_MACHINE_LEARNING_URL set defaults the way Immich's do.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

from app import mail, realtime
from app.db import engine as db
from app.domain import storage_template, system_config_schema, system_metadata
from app.domain.errors import BadRequest, Invalid
from app.domain.principal import Principal

KEY = "system-config"
CONFIG_FILE_ENV = "IMMICH_CONFIG_FILE"
CACHE_SECONDS = 1.0

_EVERY_DAY_AT_MIDNIGHT = "0 0 * * *"
_EVERY_DAY_AT_2AM = "0 02 * * *"
_EVERY_DAY_AT_3AM = "0 03 * * *"

# Immich 3.1.0's defaults (server/src/config.ts), one entry per field of the spec's SystemConfigDto.
# Where config.ts was not at hand for a 3.1 field (integrityChecks, ffmpeg.realtime,
# newVersionCheck.channel, job.integrityCheck) the values are Immich's as its release notes and
# logs describe them: checks nightly at 03:00, the checksum pass bounded to one hour and 100%.
_IMMICH_DEFAULTS: dict[str, Any] = {
    "backup": {"database": {"enabled": True, "cronExpression": _EVERY_DAY_AT_2AM, "keepLastAmount": 14}},
    "ffmpeg": {
        "crf": 23,
        "threads": 0,
        "preset": "ultrafast",
        "targetVideoCodec": "h264",
        "acceptedVideoCodecs": ["h264"],
        "targetAudioCodec": "aac",
        "acceptedAudioCodecs": ["aac", "mp3", "opus"],
        "acceptedContainers": ["mov", "ogg", "webm"],
        "targetResolution": "720",
        "maxBitrate": "0",
        "bframes": -1,
        "refs": 0,
        "gopSize": 0,
        "temporalAQ": False,
        "cqMode": "auto",
        "twoPass": False,
        "preferredHwDevice": "auto",
        "transcode": "required",
        "tonemap": "hable",
        "accel": "disabled",
        "accelDecode": False,
        "realtime": {"enabled": False, "resolutions": [480, 720, 1080], "videoCodecs": ["h264"]},
    },
    "image": {
        "thumbnail": {"format": "webp", "size": 250, "quality": 80, "progressive": False},
        "preview": {"format": "jpeg", "size": 1440, "quality": 80, "progressive": False},
        "colorspace": "p3",
        "extractEmbedded": False,
        "fullsize": {"enabled": False, "format": "jpeg", "quality": 80, "progressive": False},
    },
    "integrityChecks": {
        "missingFiles": {"enabled": True, "cronExpression": _EVERY_DAY_AT_3AM},
        "untrackedFiles": {"enabled": True, "cronExpression": _EVERY_DAY_AT_3AM},
        "checksumFiles": {"enabled": True, "cronExpression": _EVERY_DAY_AT_3AM,
                          "timeLimit": 60 * 60 * 1000, "percentageLimit": 1},
    },
    "job": {
        "backgroundTask": {"concurrency": 5},
        "smartSearch": {"concurrency": 2},
        "metadataExtraction": {"concurrency": 5},
        "faceDetection": {"concurrency": 2},
        "search": {"concurrency": 5},
        "sidecar": {"concurrency": 5},
        "library": {"concurrency": 5},
        "migration": {"concurrency": 5},
        "thumbnailGeneration": {"concurrency": 3},
        "videoConversion": {"concurrency": 1},
        "notifications": {"concurrency": 5},
        "ocr": {"concurrency": 1},
        "workflow": {"concurrency": 5},
        "editor": {"concurrency": 2},
        "integrityCheck": {"concurrency": 1},
    },
    "library": {"scan": {"enabled": True, "cronExpression": _EVERY_DAY_AT_MIDNIGHT}, "watch": {"enabled": False}},
    "logging": {"enabled": True, "level": "log"},
    "machineLearning": {
        "enabled": True,
        "urls": ["http://immich-machine-learning:3003"],
        "availabilityChecks": {"enabled": True, "timeout": 2000, "interval": 30000},
        "clip": {"enabled": True, "modelName": "ViT-B-32__openai"},
        "duplicateDetection": {"enabled": True, "maxDistance": 0.01},
        "facialRecognition": {"enabled": True, "modelName": "buffalo_l", "minScore": 0.7, "maxDistance": 0.5,
                              "minFaces": 3},
        "ocr": {"enabled": True, "modelName": "PP-OCRv5_mobile", "minDetectionScore": 0.5,
                "minRecognitionScore": 0.8, "maxResolution": 736},
    },
    "map": {
        "enabled": True,
        "lightStyle": "https://tiles.immich.cloud/v1/style/light.json",
        "darkStyle": "https://tiles.immich.cloud/v1/style/dark.json",
    },
    "metadata": {"faces": {"import": False}},
    "newVersionCheck": {"enabled": True, "channel": "stable"},
    "nightlyTasks": {"startTime": "00:00", "databaseCleanup": True, "generateMemories": True,
                     "syncQuotaUsage": True, "missingThumbnails": True, "clusterNewFaces": True},
    "notifications": {"smtp": {"enabled": False, "from": "", "replyTo": "", "transport": {
        "ignoreCert": False, "host": "", "port": 587, "secure": False, "username": "", "password": ""}}},
    "oauth": {
        "autoLaunch": False,
        "autoRegister": True,
        "buttonText": "Login with OAuth",
        "clientId": "",
        "clientSecret": "",
        "defaultStorageQuota": None,
        "enabled": False,
        "issuerUrl": "",
        "endSessionEndpoint": "",
        "mobileOverrideEnabled": False,
        "mobileRedirectUri": "",
        "scope": "openid email profile",
        "prompt": "",
        "signingAlgorithm": "RS256",
        "profileSigningAlgorithm": "none",
        "storageLabelClaim": "preferred_username",
        "storageQuotaClaim": "immich_quota",
        "roleClaim": "immich_role",
        "tokenEndpointAuthMethod": "client_secret_post",
        "timeout": 30000,
        "allowInsecureRequests": False,
    },
    "passwordLogin": {"enabled": True},
    "reverseGeocoding": {"enabled": True},
    "server": {"externalDomain": "", "loginPageMessage": "", "publicUsers": True},
    "storageTemplate": {"enabled": False, "hashVerificationEnabled": True,
                        "template": "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}"},
    "templates": {"email": {"welcomeTemplate": "", "albumInviteTemplate": "", "albumUpdateTemplate": ""}},
    "theme": {"customCss": ""},
    "trash": {"enabled": True, "days": 30},
    "user": {"deleteDelay": 7},
}

# Environment variables that set a field's default: (path, variable, parse).
_ENV_DEFAULTS: tuple[tuple[tuple[str, ...], str, Any], ...] = (
    (("machineLearning", "facialRecognition", "minScore"), "FACE_MIN_SCORE", float),
    (("machineLearning", "facialRecognition", "maxDistance"), "FACE_MAX_DISTANCE", float),
    (("machineLearning", "facialRecognition", "minFaces"), "FACE_MIN_FACES", int),
    (("machineLearning", "enabled"), "IMMICH_MACHINE_LEARNING_ENABLED", lambda v: v != "false"),
    (("machineLearning", "urls"), "IMMICH_MACHINE_LEARNING_URL", lambda v: [v]),
    (("machineLearning", "availabilityChecks", "timeout"), "IMMICH_MACHINE_LEARNING_PING_TIMEOUT", int),
)


def defaults() -> dict[str, Any]:
    """Immich's defaults, with the environment's values for the fields it sets (a fresh copy)."""
    config = copy.deepcopy(_IMMICH_DEFAULTS)
    for path, variable, parse in _ENV_DEFAULTS:
        raw = os.environ.get(variable)
        if not raw:
            continue
        try:
            value = parse(raw)
        except ValueError:
            continue  # a malformed variable leaves Immich's default in place
        parent = config
        for name in path[:-1]:
            parent = parent[name]
        parent[path[-1]] = value
    return config


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it, object by object; lists and values replace whole.
    Keys `base` does not have are dropped, so an old stored field never leaks into the answer."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in merged:
            continue
        if isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def difference(config: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The part of `config` that differs from `base`: what gets stored."""
    changed: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = difference(value, base[key])
            if inner:
                changed[key] = inner
        elif key not in base or base[key] != value:
            changed[key] = copy.deepcopy(value)
    return changed


def config_file() -> Path | None:
    """The file the config is read from, when IMMICH_CONFIG_FILE names one."""
    name = os.environ.get(CONFIG_FILE_ENV)
    return Path(name) if name else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's document: JSON, or YAML when its name says so (as Immich reads it)."""
    text = path.read_text()
    if path.suffix.lower() in (".yml", ".yaml"):
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not YAML: {exc}") from None
    else:
        document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the config must be an object")
    return document


async def _stored() -> dict[str, Any]:
    value = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", KEY)
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else value


class ConfigFileInvalid(RuntimeError):
    """IMMICH_CONFIG_FILE names a file that cannot be read or that Immich's rules refuse: the
    server does not start with it (as Immich does not)."""


def _from_file(path: Path) -> dict[str, Any]:
    try:
        return system_config_schema.parse(deep_merge(defaults(), read_config_file(path)))
    except system_config_schema.InvalidConfig as invalid:
        problems = "; ".join(f"{'.'.join(map(str, i['path']))}: {i['message']}" for i in invalid.issues)
        raise ConfigFileInvalid(f"{CONFIG_FILE_ENV} {path}: {problems}") from None
    except (OSError, ValueError) as exc:
        raise ConfigFileInvalid(f"{CONFIG_FILE_ENV} {path}: {exc}") from None


async def _load() -> dict[str, Any]:
    path = config_file()
    if path is not None:
        return _from_file(path)
    return deep_merge(defaults(), await _stored())


# (engine, expiry on the monotonic clock, config). Keyed by the engine, so a process that points
# its engine at another database (the domain tests do) never reads the other database's config.
_cache: tuple[object, float, dict[str, Any]] | None = None


def invalidate() -> None:
    """Forget the cached config: the next `current()` reads it again."""
    global _cache
    _cache = None


def _cached() -> dict[str, Any] | None:
    if _cache is not None and _cache[0] is db.engine() and _cache[1] > time.monotonic():
        return _cache[2]
    return None


async def current() -> dict[str, Any]:
    """The effective config (camelCase, Immich's shape). Callers must not change what they get;
    `copy.deepcopy` it first if they need to."""
    global _cache
    if (config := _cached()) is not None:
        return config
    # Callers that find the cache stale at once each read it; the reads are cheap and agree.
    config = await _load()
    _cache = (db.engine(), time.monotonic() + CACHE_SECONDS, config)
    return config


# --- changing the config ----------------------------------------------------------------------

CONFIG_FILE_IN_USE = "Cannot update configuration while IMMICH_CONFIG_FILE is in use"
LOG_LEVEL_ENV = "IMMICH_LOG_LEVEL"


async def update(principal: Principal, document: Any) -> dict[str, Any]:
    """Replace the config with `document` (a whole SystemConfigDto), after Immich's checks: the
    schema's (InvalidConfig), then the file in use, then the rules that span fields (BadRequest
    with Immich's message). Stores only what differs from the defaults; answers the new config."""
    principal.require_admin()
    config = system_config_schema.parse(document)
    if config_file() is not None:
        raise BadRequest(CONFIG_FILE_IN_USE)
    old = await current()
    _check_rules(config, old)
    await _check_smtp(config["notifications"]["smtp"], old["notifications"]["smtp"])
    await system_metadata.write(principal, KEY, difference(config, defaults()), payload={"key": KEY})
    invalidate()
    realtime.publish({"kind": "config_updated"})  # Immich clients reload the server config
    return await current()


async def _check_smtp(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Immich reaches the SMTP server (and logs in) before it keeps enabled mail settings that changed."""
    if not new["enabled"] or new == old:
        return
    try:
        await mail.verify(mail.Smtp.from_config(new))
    except mail.MailError as exc:
        raise BadRequest(f"Invalid SMTP configuration: {exc}") from None


def _check_rules(new: dict[str, Any], old: dict[str, Any]) -> None:
    """The checks Immich's services make when a config is about to change (its config.validate)."""
    if os.environ.get(LOG_LEVEL_ENV) and new["logging"] != old["logging"]:
        raise BadRequest("Logging cannot be changed while the environment variable IMMICH_LOG_LEVEL is set.")
    schedules = [new["library"]["scan"], new["backup"]["database"], *new["integrityChecks"].values()]
    for schedule in schedules:
        if not valid_cron(schedule["cronExpression"]):
            raise BadRequest(f"Invalid cron expression {schedule['cronExpression']}")
    try:
        storage_template.validate(new["storageTemplate"]["template"])
    except Invalid as exc:
        raise BadRequest(exc.detail) from exc


_CRON_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}),
                (1, 12, {m: i + 1 for i, m in enumerate(
                    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
                (0, 7, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))


def valid_cron(expression: str) -> bool:
    """Whether a cron schedule parses: five fields (minute to weekday), or six with seconds first;
    each a list of `*`, values, ranges and steps, with month and weekday names."""
    fields = expression.split()
    if len(fields) == 6:
        fields, ranges = fields, ((0, 59, {}), *_CRON_FIELDS)
    elif len(fields) == 5:
        ranges = _CRON_FIELDS
    else:
        return False
    return all(_valid_cron_field(text, *limits) for text, limits in zip(fields, ranges))


def _valid_cron_field(text: str, low: int, high: int, names: dict[str, int]) -> bool:
    def value(token: str) -> int | None:
        number = names.get(token.lower()) if not token.isdigit() else int(token)
        return number if number is not None and low <= number <= high else None

    for part in text.split(","):
        span, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if span == "*":
            continue
        start, dash, end = span.partition("-")
        first, last = value(start), value(end) if dash else None
        if first is None or (dash and (last is None or last < first)):
            return False
    return True


def web_address(config: dict[str, Any], fallback: str) -> str:
    """Where links to this server point (e-mails, link previews): Immich's external domain when set,
    else the address given (PUBLIC_URL or the request's)."""
    return ((config.get("server") or {}).get("externalDomain") or fallback).rstrip("/")
