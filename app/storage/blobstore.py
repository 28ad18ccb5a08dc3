"""The blob store: files under DATA_DIR, written temp -> fsync -> atomic rename.

Keys are relative paths. Originals live at
library/<library_id>/originals/<asset_id[:2]>/<asset_id>.<ext>, derived files
at library/<library_id>/derived/<asset_id>/<kind>.<ext>. Asset ids are random
UUIDs, so keys never collide.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


class StagedFile:
    """An upload being received: written to DATA_DIR/tmp and hashed in the same pass."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "wb", buffering=0)
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1()
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        # Runs in a worker thread: hashlib and file writes release the GIL on large buffers.
        if len(self.head) < 8192:
            self.head += bytes(chunk[: 8192 - len(self.head)])
        self._sha256.update(chunk)
        self._sha1.update(chunk)
        view = memoryview(chunk)
        while view:
            written = self._file.write(view)
            view = view[written:]
        self.size += len(chunk)

    def finish(self, durable: bool = True) -> None:
        if durable:
            os.fsync(self._file.fileno())
        self._file.close()

    @property
    def sha256(self) -> bytes:
        return self._sha256.digest()

    @property
    def sha1(self) -> bytes:
        return self._sha1.digest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def stage(self) -> StagedFile:
        return StagedFile(self.tmp / f"upload-{uuid.uuid4().hex}")

    @staticmethod
    def original_key(library_id: uuid.UUID, asset_id: uuid.UUID, ext: str) -> str:
        name = asset_id.hex
        return f"library/{library_id}/originals/{name[:2]}/{name}{ext.lower()}"

    @staticmethod
    def derived_prefix(library_id: uuid.UUID, asset_id: uuid.UUID) -> str:
        return f"library/{library_id}/derived/{asset_id.hex}"

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key escapes the store: {key}")
        return path

    def commit(self, staged: StagedFile, key: str, durable: bool = True) -> None:
        """Move a finished upload to its key atomically, durable once this returns."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged.path, target)
        if not durable:
            return
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def put_derived(self, key: str, data: bytes) -> None:
        """Write a derived file (temp -> atomic rename). No fsync: derived files can always
        be regenerated from the original, so they are not worth a disk flush each."""
        staged = self.stage()
        try:
            staged.write(data)
            staged.finish(durable=False)
            self.commit(staged, key, durable=False)
        finally:
            staged.discard()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def sweep_stale_uploads(self, older_than_s: float = 24 * 3600) -> int:
        """Remove temp files left by a crash. Only old ones: other processes may be uploading."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self.tmp.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
