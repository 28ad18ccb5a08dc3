"""Immich's storage template language: its variables, presets, sanitising and validation.

Rendering is pure; app/domain/storage_moves.py decides where each asset goes and moves it.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import Invalid


# Immich's defaults for the storageTemplate config section (system_config holds the live values).
DEFAULTS = {"enabled": False, "hashVerificationEnabled": True, "template": "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}"}

TOKENS = {
    "secondOptions": ["s", "ss", "SSS"],
    "minuteOptions": ["m", "mm"],
    "dayOptions": ["d", "dd"],
    "weekOptions": ["W", "WW"],
    "hourOptions": ["h", "hh", "H", "HH"],
    "yearOptions": ["y", "yy"],
    "monthOptions": ["M", "MM", "MMM", "MMMM"],
}

PRESETS = [
    "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}",
    "{{y}}/{{MM}}-{{dd}}/{{filename}}",
    "{{y}}/{{MMMM}}-{{dd}}/{{filename}}",
    "{{y}}/{{MM}}/{{filename}}",
    "{{y}}/{{#if album}}{{album}}{{else}}Other/{{MM}}{{/if}}/{{filename}}",
    "{{#if album}}{{album-startDate-y}}/{{album}}{{else}}{{y}}/Other/{{MM}}{{/if}}/{{filename}}",
    "{{y}}/{{MMM}}/{{filename}}",
    "{{y}}/{{MMMM}}/{{filename}}",
    "{{y}}/{{MM}}/{{dd}}/{{filename}}",
    "{{y}}/{{MMMM}}/{{dd}}/{{filename}}",
    "{{y}}/{{y}}-{{MM}}/{{y}}-{{MM}}-{{dd}}/{{filename}}",
    "{{y}}-{{MM}}-{{dd}}/{{filename}}",
    "{{y}}-{{MMM}}-{{dd}}/{{filename}}",
    "{{y}}-{{MMMM}}-{{dd}}/{{filename}}",
    "{{y}}/{{y}}-{{MM}}/{{filename}}",
    "{{y}}/{{y}}-{{WW}}/{{filename}}",
    "{{y}}/{{y}}-{{MM}}-{{dd}}/{{assetId}}",
    "{{y}}/{{y}}-{{MM}}/{{assetId}}",
    "{{y}}/{{y}}-{{WW}}/{{assetId}}",
    "{{album}}/{{filename}}",
    "{{make}}/{{model}}/{{lensModel}}/{{filename}}",
]


def options() -> dict:
    """Immich's SystemConfigTemplateStorageOptionDto."""
    return {**{name: list(tokens) for name, tokens in TOKENS.items()}, "presetOptions": list(PRESETS)}


# --- the template language: the part of Handlebars that templates use ---------------------------

class TemplateError(ValueError):
    pass


_TAG = re.compile(r"\{\{(\{?)(.*?)\}?\}\}", re.S)
_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Handlebars HTML-escapes every {{value}}; Immich's paths carry the escapes (`&` -> `&amp;`).
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}


def _parse(template: str) -> list:
    """Nodes: text, ("value", name, escape), ("if", name, negate, then, otherwise)."""
    root: list = []
    stack: list[tuple[list, tuple | None]] = [(root, None)]  # (where nodes go, the open block)
    pos = 0
    for match in _TAG.finditer(template):
        stack[-1][0].append(template[pos:match.start()])
        pos = match.end()
        raw, body = match.group(1), match.group(2).strip().strip("~").strip()
        if body.startswith("!"):
            continue  # a comment
        if raw:
            if not _NAME.fullmatch(body):
                raise TemplateError(f"unsupported expression {{{{{{{body}}}}}}}")
            stack[-1][0].append(("value", body, False))
        elif body.startswith("#"):
            helper, _, name = body[1:].partition(" ")
            name = name.strip()
            if helper not in ("if", "unless") or not _NAME.fullmatch(name):
                raise TemplateError(f"unsupported block {{{{{body}}}}}")
            block = ("if", name, helper == "unless", [], [])
            stack[-1][0].append(block)
            stack.append((block[3], block))
        elif body == "else":
            nodes, block = stack[-1]
            if block is None or nodes is block[4]:
                raise TemplateError("{{else}} outside an {{#if}} block")
            stack[-1] = (block[4], block)
        elif body.startswith("/"):
            _, block = stack[-1]
            expected = None if block is None else ("unless" if block[2] else "if")
            if body[1:].strip() != expected:
                raise TemplateError(f"{{{{{body}}}}} does not close an open block")
            stack.pop()
        elif _NAME.fullmatch(body):
            stack[-1][0].append(("value", body, True))
        else:
            raise TemplateError(f"unsupported expression {{{{{body}}}}}")
    rest = template[pos:]
    if "{{" in rest:
        raise TemplateError("unclosed {{")
    stack[-1][0].append(rest)
    if len(stack) > 1:
        raise TemplateError("an {{#if}} block is not closed")
    return root


def _evaluate(nodes: list, values: dict[str, str], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
            continue
        name = node[1]
        if name not in values:  # Handlebars' strict mode, as Immich compiles templates
            raise TemplateError(f'"{name}" is not a template variable')
        if node[0] == "value":
            text = values[name]
            out.append("".join(_ESCAPES.get(c, c) for c in text) if node[2] else text)
        else:
            chosen = node[3] if bool(values[name]) != node[2] else node[4]
            _evaluate(chosen, values, out)


def render(template: str, values: dict[str, str]) -> str:
    out: list[str] = []
    _evaluate(_parse(template), values, out)
    return re.sub(r"/{2,}", "/", "".join(out))


# --- values --------------------------------------------------------------------------------------

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def date_values(when: datetime, prefix: str = "") -> dict[str, str]:
    """Immich's (Luxon's) date tokens, in the server's time zone as Immich renders them."""
    t = when.astimezone() if when.tzinfo is not None else when
    hour12 = t.hour % 12 or 12
    week = t.isocalendar()[1]
    values = {
        "y": str(t.year), "yy": f"{t.year % 100:02d}",
        "M": str(t.month), "MM": f"{t.month:02d}", "MMM": _MONTHS[t.month - 1][:3], "MMMM": _MONTHS[t.month - 1],
        "W": str(week), "WW": f"{week:02d}",
        "d": str(t.day), "dd": f"{t.day:02d}",
        "h": str(hour12), "hh": f"{hour12:02d}", "H": str(t.hour), "HH": f"{t.hour:02d}",
        "m": str(t.minute), "mm": f"{t.minute:02d}",
        "s": str(t.second), "ss": f"{t.second:02d}", "SSS": f"{t.microsecond // 1000:03d}",
    }
    return {prefix + k: v for k, v in values.items()}


_ILLEGAL = re.compile(r'[/?<>\\:*|"\x00-\x1f\x80-\x9f]')
_RESERVED = re.compile(r"^\.+$")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)
_WINDOWS_TRAILING = re.compile(r"[. ]+$")


def sanitize(name: str) -> str:
    """A name safe as one path component, as npm's sanitize-filename (Immich's) makes it."""
    for pattern in (_ILLEGAL, _RESERVED, _WINDOWS_RESERVED, _WINDOWS_TRAILING):
        name = pattern.sub("", name)
    return name.encode()[:255].decode(errors="ignore")


# Immich stores these extensions under one spelling each.
_EXTENSION_ALIASES = {"jpeg": "jpg", "jpe": "jpg", "tif": "tiff", "3gpp": "3gp", "mpeg": "mpg", "mpe": "mpg",
                      "m2ts": "mts", "m2t": "mts"}


def file_extension(name: str) -> str:
    base = posixpath.basename(name)
    return base.rsplit(".", 1)[1] if "." in base.lstrip(".") else ""


def stored_extension(key: str) -> str:
    """The extension a stored file keeps under the template, in Immich's spelling."""
    ext = file_extension(key).lower()
    return _EXTENSION_ALIASES.get(ext, ext)


def file_stem(name: str) -> str:
    ext = file_extension(name)
    return name[: -len(ext) - 1] if ext else name


@dataclass
class Subject:
    """What a template is rendered from (for a live photo's video: its still photo's)."""

    asset_id: uuid.UUID
    media_type: str
    file_name: str  # the original file name, extension included
    taken_at: datetime
    album: str | None = None
    album_start: datetime | None = None
    album_end: datetime | None = None
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None


def values_for(subject: Subject, extension: str) -> dict[str, str]:
    image = subject.media_type == "image"
    values = {
        "filename": sanitize(file_stem(posixpath.basename(subject.file_name))),
        "ext": extension,
        "filetype": "IMG" if image else "VID",
        "filetypefull": "IMAGE" if image else "VIDEO",
        "assetId": str(subject.asset_id),
        "assetIdShort": str(subject.asset_id)[-12:],
        # Dots go so that an album cannot name "." or ".."; no album: the template's else branch.
        "album": sanitize(re.sub(r"\.+", "", subject.album)) if subject.album else "",
        "make": subject.make or "",
        "model": subject.model or "",
        "lensModel": subject.lens_model or "",
        **date_values(subject.taken_at),
    }
    if subject.album:
        for prefix, when in (("album-startDate-", subject.album_start), ("album-endDate-", subject.album_end)):
            tokens = date_values(when, prefix) if when else {}
            values.update({prefix + t: tokens.get(prefix + t, "") for group in TOKENS.values() for t in group})
    return values


def relative_path(template: str, subject: Subject, extension: str) -> str | None:
    """The rendered path (no extension) inside the owner's folder, or None when it would leave it."""
    rendered = render(template, values_for(subject, extension)).replace("\x00", "")
    path = posixpath.normpath(rendered.lstrip("/")) if rendered.strip("/") else "."
    if path == "." or path == ".." or path.startswith("../"):
        return None
    return path


_SAMPLE = Subject(uuid.UUID("d587e44b-f8c0-4832-9ba3-43268bbf5d4e"), "image", "IMG_123.jpg", datetime.now(),
                  album="album", album_start=datetime.now(), album_end=datetime.now(), make="FUJIFILM",
                  model="X-T50", lens_model="XF27mm F2.8 R WR")


def validate(template: str) -> None:
    """Refuse a template Immich would refuse (rendered against a sample asset), or one whose
    path leaves the owner's folder or names no file."""
    try:
        path = relative_path(template, _SAMPLE, "jpg")
    except TemplateError as exc:
        raise Invalid(f"Invalid storage template: {exc}", "template") from exc
    if path is None:
        raise Invalid("Invalid storage template: the path must stay inside the user's folder and name a file",
                      "template")
