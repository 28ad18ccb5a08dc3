"""Native ids: `<prefix>_` + shortuuid of a version-4 UUID. The domain and Immich see the bare UUID;
the native API encodes and decodes at its edge, here."""

from __future__ import annotations

import uuid

import shortuuid

from app.api.errors import InputError
from app.domain.errors import NotFound

ASSET = "asset"
ALBUM = "album"
ALBUM_ASSET = "album_asset"
PERSON = "person"
FACE = "face"
LIBRARY = "lib"
STACK = "asset_stack"
VERSION = "asset_version"
USER = "intuser"
API_KEY = "apikey"
TASK = "btask"
INVITATION = "libinv"
MEMBERSHIP = "libmem"

_NAMES = {
    ASSET: "Asset",
    ALBUM: "Album",
    ALBUM_ASSET: "Album asset",
    PERSON: "Person",
    FACE: "Face",
    LIBRARY: "Library",
    STACK: "Stack",
    VERSION: "Asset version",
    USER: "User",
    API_KEY: "API key",
    TASK: "Task",
    INVITATION: "Invitation",
    MEMBERSHIP: "Membership",
}
_SUFFIX_LEN = 22
_ALPHABET = set(shortuuid.get_alphabet())


def encode(prefix: str, value: uuid.UUID) -> str:
    return f"{prefix}_{shortuuid.encode(value)}"


def try_decode(prefix: str, value: str) -> uuid.UUID | None:
    head = prefix + "_"
    if not isinstance(value, str) or not value.startswith(head):  # ids from JSON bodies may be any type
        return None
    suffix = value[len(head) :]
    if len(suffix) != _SUFFIX_LEN or not set(suffix) <= _ALPHABET:
        return None
    try:
        return shortuuid.decode(suffix)
    except ValueError:
        return None


def decode(prefix: str, value: str) -> uuid.UUID:
    """Decode an id naming one object; a malformed id is simply not found."""
    decoded = try_decode(prefix, value)
    if decoded is None:
        raise NotFound(f"{_NAMES[prefix]} not found")
    return decoded


def decode_filter(prefix: str, value: str, field: str) -> uuid.UUID:
    """Decode an id used as a list filter; a malformed one is a validation error."""
    decoded = try_decode(prefix, value)
    if decoded is None:
        raise InputError(f"'{value}' is not a valid {_NAMES[prefix].lower()} id", "query", field)
    return decoded
