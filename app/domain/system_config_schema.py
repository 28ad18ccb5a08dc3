"""Immich 3.1's rules for a system config document (its zod schema, `system-config.dto.ts`, with
the spec's ranges where the two are one), and the issues a bad document gets, in zod's words.

`parse(document)` answers the accepted document, coerced the way Immich coerces (the strings
'true'/'false' for booleans, numeric strings for the ffmpeg numbers, 'libopus' read as 'opus') and
with unknown keys dropped, or raises `InvalidConfig` carrying every issue: {code, message, path}.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from app.domain.errors import BadRequest

MAX_SAFE_INTEGER = 9007199254740991


class InvalidConfig(BadRequest):
    """A document the schema refuses; `issues` are zod's, one per bad value."""

    def __init__(self, issues: list[dict[str, Any]]):
        super().__init__("Validation failed")
        self.issues = issues


class _Fail(Exception):
    def __init__(self, code: str, message: str, **extra: Any):
        self.issue = {"code": code, "message": message, **extra}


def received(value: Any) -> str:
    """zod's name for what it was given (compat/validation.py names request values with it too)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "NaN" if isinstance(value, float) and math.isnan(value) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _missing_or_wrong(expected: str, value: Any) -> _Fail:
    given = "undefined" if value is _ABSENT else received(value)
    return _Fail("invalid_type", f"Invalid input: expected {expected}, received {given}", expected=expected)


_ABSENT = object()


class Rule(ABC):
    """One node of the config schema: checks a value and answers it as stored (or raises _Fail)."""

    @abstractmethod
    def check(self, value: Any) -> Any: ...


class Bool(Rule):
    """Immich's configBool: a boolean, or the strings 'true' / 'false'."""

    def check(self, value):
        value = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
        if not isinstance(value, bool):
            raise _missing_or_wrong("boolean", value)
        return value


class Str(Rule):
    def check(self, value):
        if not isinstance(value, str):
            raise _missing_or_wrong("string", value)
        return value


def _js_number(value: Any) -> Any:
    """JavaScript's Number(value), for z.coerce.number()."""
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return 0
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            number = float(text)
        except ValueError:
            return math.nan
        return int(number) if number.is_integer() else number
    return value


@dataclass
class Num(Rule):
    """z.number() (integer=False) or z.int(), with bounds; `coerce` for z.coerce.number()."""

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = True
    coerce: bool = False

    def check(self, value):
        if self.coerce:
            value = math.nan if value is _ABSENT else _js_number(value)
        expected = "int" if self.integer and not self.coerce else "number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                or math.isinf(value):
            raise _missing_or_wrong(expected, value)
        if self.integer and not float(value).is_integer():
            raise _missing_or_wrong("int", value)
        if self.integer and value > MAX_SAFE_INTEGER:
            raise _Fail("too_big", f"Too big: expected int to be <={MAX_SAFE_INTEGER}", origin="number")
        if self.integer and value < -MAX_SAFE_INTEGER:
            raise _Fail("too_small", f"Too small: expected int to be >=-{MAX_SAFE_INTEGER}", origin="number")
        if self.minimum is not None and value < self.minimum:
            raise _Fail("too_small", f"Too small: expected number to be >={_show(self.minimum)}",
                        origin="number", minimum=self.minimum)
        if self.maximum is not None and value > self.maximum:
            raise _Fail("too_big", f"Too big: expected number to be <={_show(self.maximum)}",
                        origin="number", maximum=self.maximum)
        return int(value) if self.integer else value


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass
class Enum(Rule):
    values: tuple
    aliases: dict = field(default_factory=dict)  # old spellings Immich still reads

    def check(self, value):
        value = self.aliases.get(value, value) if isinstance(value, (str, int)) else value
        if value not in self.values or isinstance(value, bool):
            options = "|".join(f'"{v}"' if isinstance(v, str) else str(v) for v in self.values)
            raise _Fail("invalid_value", f"Invalid option: expected one of {options}", values=list(self.values))
        return value


def is_url(value: str) -> bool:
    """What WHATWG URL parsing (zod's z.url()) accepts: a scheme, and for the web schemes a host."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme or "") or any(c.isspace() for c in value):
        return False
    if parts.scheme.lower() in ("http", "https", "ws", "wss", "ftp"):
        return bool(parts.hostname)
    return True


@dataclass
class Url(Rule):
    """z.url(); with `empty_or`, Immich's 'an empty string or a valid URL' refinement and message."""

    empty_or: str | None = None

    def check(self, value):
        value = Str().check(value)
        if self.empty_or is not None:
            if value and not is_url(value):
                raise _Fail("custom", self.empty_or)
        elif not is_url(value):
            raise _Fail("invalid_format", "Invalid URL", format="url")
        return value


@dataclass
class Pattern(Rule):
    """A string matching `regex` somewhere (JavaScript's RegExp.test), else `message`."""

    regex: str
    message: str
    anchored: bool = False

    def check(self, value):
        value = Str().check(value)
        found = re.fullmatch(self.regex, value) if self.anchored else re.search(self.regex, value)
        if not found:
            raise _Fail("invalid_format", self.message, format="regex", pattern=self.regex)
        return value


@dataclass
class Array(Rule):
    item: Rule
    min_items: int = 0

    def check(self, value):
        if not isinstance(value, list):
            raise _missing_or_wrong("array", value)
        if len(value) < self.min_items:
            raise _Fail("too_small", f"Too small: expected array to have >={self.min_items} items",
                        origin="array", minimum=self.min_items)
        return value  # items are checked by `_walk`, which knows their paths


@dataclass
class Nullable(Rule):
    inner: Rule

    def check(self, value):
        return None if value is None else self.inner.check(value)


@dataclass
class Optional(Rule):
    inner: Rule
    default: Any = None

    def check(self, value):
        return self.default if value is _ABSENT else self.inner.check(value)


@dataclass
class Obj(Rule):
    """An object with these fields (others are dropped); `refine` sees the checked object and
    answers a message when the fields together are wrong."""

    fields: dict[str, Rule]
    refine: Callable[[dict[str, Any]], str | None] | None = None

    def check(self, value):
        if not isinstance(value, dict):
            raise _missing_or_wrong("object", value)
        return value


def _walk(rule: Rule, value: Any, path: list, issues: list[dict[str, Any]]) -> Any:
    try:
        checked = rule.check(value)
    except _Fail as fail:
        issues.append({**fail.issue, "path": path})
        return None
    inner = rule.inner if isinstance(rule, (Nullable, Optional)) else rule
    if checked is None:
        return None
    if isinstance(inner, Obj):
        before = len(issues)
        parsed = {name: _walk(sub, checked.get(name, _ABSENT), [*path, name], issues)
                  for name, sub in inner.fields.items()}
        if inner.refine is not None and len(issues) == before and (message := inner.refine(parsed)):
            issues.append({"code": "custom", "message": message, "path": path})
        return parsed
    if isinstance(inner, Array):
        return [_walk(inner.item, item, [*path, i], issues) for i, item in enumerate(checked)]
    return checked


def parse(document: Any) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    parsed = _walk(SYSTEM_CONFIG, document, [], issues)
    if issues:
        raise InvalidConfig(issues)
    return parsed


# --- Immich's schema --------------------------------------------------------------------------

_CRON = Pattern(r"(((\d+,)+\d+|(\d+(\/|-)\d+)|\d+|\*) ?){5,7}", "Invalid cron expression")
# The spec's pattern for nightlyTasks.startTime, with zod's own message for a pattern.
_TIME = Pattern(r"(?:[01]\d|2[0-3]):[0-5]\d", r"Invalid string: must match pattern /^(?:[01]\d|2[0-3]):[0-5]\d$/",
                anchored=True)
_BOOL = Bool()
_STR = Str()

IMAGE_FORMATS = ("jpeg", "webp")
_VIDEO_CODECS = Enum(("h264", "hevc", "vp9", "av1"))
_AUDIO_CODECS = Enum(("mp3", "aac", "opus", "pcm_s16le"), aliases={"libopus": "opus"})
_CONTAINERS = Enum(("mov", "mp4", "ogg", "webm"))


def _job() -> Obj:
    return Obj({"concurrency": Num(minimum=1)})


def _generated_image(with_size: bool) -> Obj:
    fields: dict[str, Rule] = {"format": Enum(IMAGE_FORMATS), "quality": Num(minimum=1, maximum=100)}
    if with_size:
        fields["size"] = Num(minimum=1)
    else:
        fields = {"enabled": _BOOL, **fields}
    fields["progressive"] = Optional(_BOOL, default=False)
    return Obj(fields)


def _mobile_redirect(oauth: dict[str, Any]) -> str | None:
    uri = oauth["mobileRedirectUri"]
    if oauth["mobileOverrideEnabled"] and uri and not is_url(uri):
        return "Mobile redirect URI must be an empty string or a valid URL"
    return None


def _scheduled(**more: Rule) -> Obj:
    return Obj({"enabled": _BOOL, "cronExpression": _CRON, **more})


JOB_QUEUES = ("backgroundTask", "editor", "faceDetection", "integrityCheck", "library", "metadataExtraction",
              "migration", "notifications", "ocr", "search", "sidecar", "smartSearch", "thumbnailGeneration",
              "videoConversion", "workflow")

SYSTEM_CONFIG = Obj({
    "backup": Obj({"database": _scheduled(keepLastAmount=Num(minimum=1))}),
    "ffmpeg": Obj({
        "crf": Num(0, 51, coerce=True),
        "threads": Num(minimum=0, coerce=True),
        "preset": _STR,
        "targetVideoCodec": _VIDEO_CODECS,
        "acceptedVideoCodecs": Array(_VIDEO_CODECS),
        "targetAudioCodec": _AUDIO_CODECS,
        "acceptedAudioCodecs": Array(_AUDIO_CODECS),
        "acceptedContainers": Array(_CONTAINERS),
        "targetResolution": _STR,
        "maxBitrate": _STR,
        "bframes": Num(-1, 16, coerce=True),
        "refs": Num(0, 6, coerce=True),
        "gopSize": Num(minimum=0, coerce=True),
        "temporalAQ": _BOOL,
        "cqMode": Enum(("auto", "cqp", "icq")),
        "twoPass": _BOOL,
        "preferredHwDevice": _STR,
        "transcode": Enum(("all", "optimal", "bitrate", "required", "disabled")),
        "accel": Enum(("nvenc", "qsv", "vaapi", "rkmpp", "disabled")),
        "accelDecode": _BOOL,
        "tonemap": Enum(("hable", "mobius", "reinhard", "disabled")),
        "realtime": Obj({"enabled": _BOOL, "resolutions": Array(Enum((480, 720, 1080, 1440, 2160))),
                         "videoCodecs": Array(_VIDEO_CODECS)}),
    }),
    "image": Obj({
        "thumbnail": _generated_image(True),
        "preview": _generated_image(True),
        "fullsize": _generated_image(False),
        "colorspace": Enum(("srgb", "p3")),
        "extractEmbedded": _BOOL,
    }),
    "integrityChecks": Obj({
        "missingFiles": _scheduled(),
        "untrackedFiles": _scheduled(),
        "checksumFiles": _scheduled(timeLimit=Num(minimum=0), percentageLimit=Num(0, 1, integer=False)),
    }),
    "job": Obj({name: _job() for name in JOB_QUEUES}),
    "library": Obj({"scan": _scheduled(), "watch": Obj({"enabled": _BOOL})}),
    "logging": Obj({"enabled": _BOOL, "level": Enum(("verbose", "debug", "log", "warn", "error", "fatal"))}),
    "machineLearning": Obj({
        "enabled": _BOOL,
        "urls": Array(_STR, min_items=1),
        "availabilityChecks": Obj({"enabled": _BOOL, "timeout": Num(), "interval": Num()}),
        "clip": Obj({"enabled": _BOOL, "modelName": _STR}),
        "duplicateDetection": Obj({"enabled": _BOOL, "maxDistance": Num(0.001, 0.1, integer=False)}),
        "facialRecognition": Obj({
            "enabled": _BOOL,
            "modelName": _STR,
            "minScore": Num(0.1, 1, integer=False),
            "maxDistance": Num(0.1, 2, integer=False),
            "minFaces": Num(minimum=1),
        }),
        "ocr": Obj({
            "enabled": _BOOL,
            "modelName": _STR,
            "minDetectionScore": Num(0.1, 1, integer=False),
            "minRecognitionScore": Num(0.1, 1, integer=False),
            "maxResolution": Num(minimum=1),
        }),
    }),
    "map": Obj({"enabled": _BOOL, "lightStyle": Url(), "darkStyle": Url()}),
    "metadata": Obj({"faces": Obj({"import": _BOOL})}),
    "newVersionCheck": Obj({"enabled": _BOOL, "channel": Enum(("stable", "releaseCandidate"))}),
    "nightlyTasks": Obj({
        "startTime": _TIME,
        "databaseCleanup": _BOOL,
        "missingThumbnails": _BOOL,
        "clusterNewFaces": _BOOL,
        "generateMemories": _BOOL,
        "syncQuotaUsage": _BOOL,
    }),
    "notifications": Obj({"smtp": Obj({
        "enabled": _BOOL,
        "from": _STR,
        "replyTo": _STR,
        "transport": Obj({"ignoreCert": _BOOL, "host": _STR, "port": Num(0, 65535), "secure": _BOOL,
                          "username": _STR, "password": _STR}),
    })}),
    "oauth": Obj({
        "autoLaunch": _BOOL,
        "autoRegister": _BOOL,
        "buttonText": _STR,
        "clientId": _STR,
        "clientSecret": _STR,
        "tokenEndpointAuthMethod": Enum(("client_secret_post", "client_secret_basic")),
        "timeout": Num(minimum=1),
        "allowInsecureRequests": _BOOL,
        "defaultStorageQuota": Nullable(Num(minimum=0)),
        "enabled": _BOOL,
        "issuerUrl": Url(empty_or="Issuer URL must be an empty string or a valid URL"),
        "scope": _STR,
        "prompt": _STR,
        "endSessionEndpoint": Url(empty_or="endSessionEndpoint must be an empty string or a valid URL"),
        "signingAlgorithm": _STR,
        "profileSigningAlgorithm": _STR,
        "storageLabelClaim": _STR,
        "storageQuotaClaim": _STR,
        "roleClaim": _STR,
        "mobileOverrideEnabled": _BOOL,
        "mobileRedirectUri": _STR,
    }, refine=_mobile_redirect),
    "passwordLogin": Obj({"enabled": _BOOL}),
    "reverseGeocoding": Obj({"enabled": _BOOL}),
    "server": Obj({
        "externalDomain": Url(empty_or="External domain must be an empty string or a valid URL"),
        "loginPageMessage": _STR,
        "publicUsers": _BOOL,
    }),
    "storageTemplate": Obj({"enabled": _BOOL, "hashVerificationEnabled": _BOOL, "template": _STR}),
    "templates": Obj({"email": Obj({"albumInviteTemplate": _STR, "welcomeTemplate": _STR,
                                    "albumUpdateTemplate": _STR})}),
    "theme": Obj({"customCss": _STR}),
    "trash": Obj({"enabled": _BOOL, "days": Num(minimum=0)}),
    "user": Obj({"deleteDelay": Num(minimum=1)}),
})
