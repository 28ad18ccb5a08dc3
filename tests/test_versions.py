"""Native asset versions through gumnut-sdk: append, list, replace, revert, delete. Each version keeps
its bytes and checksum, and the asset (its original URL, size, kind, dimensions) follows the current one."""

from __future__ import annotations

import base64
import hashlib
import json

import gumnut
import httpx
import pytest
import pyvips

from tests.helpers import upload, wait_processed
from tests.test_immich_edits import wait_rendered


def _jpeg(width: int, height: int, shade: int) -> bytes:
    return pyvips.Image.black(width, height).add([shade, 90, 30]).cast("uchar").copy(
        interpretation="srgb").jpegsave_buffer()


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _original_bytes(asset) -> bytes:
    r = httpx.get(asset.asset_urls["original"].url)
    assert r.status_code == 200
    return r.content


def test_append_replace_revert_delete(account):
    client = account.client
    first = _jpeg(640, 480, 10)
    asset = upload(account, "v.jpg", first).parse()
    wait_processed(account, asset.id)
    versions = client.assets.versions.list(asset.id)
    assert [(v.position, v.kind, v.params, v.checksum) for v in versions] == [(0, "original", None, _sha(first))]
    original_id = versions[0].id
    assert original_id.startswith("asset_version_") and client.assets.retrieve(asset.id).current_version_id == original_id

    edit = _jpeg(300, 200, 200)
    appended = client.assets.versions.append(asset.id, file=("e.jpg", edit, "image/jpeg"), kind="edit",
                                             params=json.dumps({"crop": [0, 0, 300, 200]}))
    assert (appended.position, appended.kind, appended.params) == (1, "edit", {"crop": [0, 0, 300, 200]})
    assert (appended.width, appended.height, appended.file_size_bytes, appended.checksum) == (
        300, 200, len(edit), _sha(edit))
    shown = client.assets.retrieve(asset.id, include=["file_data"])
    assert (shown.current_version_id, shown.kind, shown.width, shown.height) == (appended.id, "edit", 300, 200)
    assert shown.file_size_bytes == len(edit) and shown.file_data.checksum == _sha(first)  # the upload's
    assert _original_bytes(shown) == edit
    wait_rendered(account, asset.id, 2)

    # Only one rendering above the original: a second append must replace instead.
    with pytest.raises(gumnut.ConflictError):
        client.assets.versions.append(asset.id, file=("e.jpg", edit, "image/jpeg"), kind="edit", params="{}")

    better = _jpeg(320, 240, 120)
    replaced = client.assets.versions.replace(appended.id, asset_id=asset.id, file=("b.jpg", better, "image/jpeg"),
                                              kind="external:retoucher", params="{}")
    assert (replaced.position, replaced.kind, replaced.checksum) == (1, "external:retoucher", _sha(better))
    listed = client.assets.versions.list(asset.id, include=["variants"])
    assert [v.id for v in listed] == [original_id, replaced.id]
    assert [v.checksum for v in listed] == [_sha(first), _sha(better)]
    assert httpx.get(listed[0].version_urls["original"].url).content == first  # an older version's exact bytes
    assert _original_bytes(client.assets.retrieve(asset.id)) == better
    with pytest.raises(gumnut.NotFoundError):  # the replaced version is gone from the chain
        client.assets.versions.replace(appended.id, asset_id=asset.id, file=("b.jpg", better, "image/jpeg"),
                                       kind="edit", params="{}")

    with pytest.raises(gumnut.UnprocessableEntityError):
        client.assets.versions.delete(original_id, asset_id=asset.id)
    reverted = client.assets.versions.revert(original_id, asset_id=asset.id)
    assert (reverted.current_version_id, reverted.kind, reverted.width, reverted.height) == (
        original_id, "original", 640, 480)
    assert _original_bytes(reverted) == first
    assert [v.id for v in client.assets.versions.list(asset.id)] == [original_id]
    # Reverting to the current version changes nothing.
    assert client.assets.versions.revert(original_id, asset_id=asset.id).current_version_id == original_id

    again = client.assets.versions.append(asset.id, file=("e.jpg", edit, "image/jpeg"), kind="edit", params="{}")
    after_delete = client.assets.versions.delete(again.id, asset_id=asset.id)
    assert (after_delete.current_version_id, after_delete.width) == (original_id, 640)
    wait_rendered(account, asset.id, 5)


def test_bad_versions_are_refused(account):
    client = account.client
    asset = upload(account, "w.jpg", _jpeg(64, 48, 33)).parse()
    good = _jpeg(32, 24, 5)

    def append(**overrides):
        args = {"file": ("e.jpg", good, "image/jpeg"), "kind": "edit", "params": "{}", **overrides}
        return client.assets.versions.append(asset.id, **args)

    for bad in ({"params": "[1]"}, {"params": "{oops"}, {"kind": "original"}, {"kind": "mine"},
                {"file": ("e.gif", b"GIF89a" + b"\0" * 40, "image/gif")},
                {"file": ("e.png", good, "image/png")}):  # declared PNG, sniffed JPEG
        with pytest.raises(gumnut.UnprocessableEntityError):
            append(**bad)
    with pytest.raises(gumnut.UnprocessableEntityError):
        client.assets.versions.list(asset.id, include=["faces"])
    with pytest.raises(gumnut.NotFoundError):
        client.assets.versions.revert("asset_version_" + "2" * 22, asset_id=asset.id)
    assert [v.kind for v in client.assets.versions.list(asset.id)] == ["original"]
