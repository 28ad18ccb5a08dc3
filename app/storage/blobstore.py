"""The blob store: files under DATA_DIR, written temp -> fsync -> atomic rename.

Keys are relative paths. Originals live at
library/<library_id>/originals/<asset_id[:2]>/<asset_id>.<ext>, derived files
at library/<library_id>/derived/<asset_id>/<kind>.<ext>. Asset ids are random
UUIDs, so keys never collide. With the storage template on, originals move to
templated/<storage label or owner id>/<rendered path>.<ext> (see
app/domain/storage_template.py, which picks names that collide with nothing).

Temp files are named DATA_DIR/tmp/upload-<owner>-<random>, where <owner> is one
BlobStore instance that holds an exclusive flock on DATA_DIR/run/uploads/<owner>.lock
for as long as it lives. The kernel drops the lock when the process dies, however it
dies, so any process starting on the same DATA_DIR can tell a crashed process's
leftovers (lock free, or lock file gone) from files a live process is still writing
(lock held), and remove only the former.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


# Where the storage template puts originals; apart from library/, whose layout the
# reconciliation reads asset ids from (a rendered name could look like one).
TEMPLATED = "templated"


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


_TEMP_NAME = re.compile(r"upload-([0-9a-f]{32})-[0-9a-f]{32}")
_LEGACY_TEMP_NAME = re.compile(r"upload-[0-9a-f]{32}")


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on path, or None if another open file holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self._resolved_root = root.resolve()  # the store's folder does not move while it is open
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.locks = root / "run" / "uploads"
        self.owner: str | None = None
        self._owner_fd: int | None = None

    def _own(self) -> str:
        """This store's owner id, its lock taken (once) before its first temp file exists."""
        while self.owner is None:
            self.locks.mkdir(parents=True, exist_ok=True)
            owner = uuid.uuid4().hex
            path = self.locks / f"{owner}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweeper may have unlinked the file between open and flock (it looked
            # free); then this lock guards nothing, so start over with a new id.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self.owner, self._owner_fd = owner, fd
        return self.owner

    def _temp_path(self) -> Path:
        """A new temp file's name, under this store's owner lock (sweep_stale_uploads)."""
        return self.tmp / f"upload-{self._own()}-{uuid.uuid4().hex}"

    def stage(self) -> StagedFile:
        return StagedFile(self._temp_path())

    @staticmethod
    def original_key(library_id: uuid.UUID, asset_id: uuid.UUID, ext: str) -> str:
        name = asset_id.hex
        return f"library/{library_id}/originals/{name[:2]}/{name}{ext.lower()}"

    @staticmethod
    def derived_prefix(library_id: uuid.UUID, asset_id: uuid.UUID) -> str:
        return f"library/{library_id}/derived/{asset_id.hex}"

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self._resolved_root not in path.parents:
            raise ValueError(f"blob key escapes the store: {key}")
        return path

    def commit(self, staged: StagedFile, key: str, durable: bool = True) -> None:
        """Move a finished upload to its key atomically, durable once this returns."""
        self._place(staged.path, key, durable)

    def _place(self, temp: Path, key: str, durable: bool) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(temp, target)
        if durable:
            self._sync_dir(target.parent)

    def place_copy(self, old_key: str, new_key: str, sha256: bytes | None = None) -> None:
        """Make new_key a second, durable name for old_key's bytes; never replaces a file.

        A hard link when the filesystem allows it (no bytes move, so nothing to verify);
        otherwise a copy written to tmp, fsynced, checked against sha256 when given, then
        linked into place. FileExistsError if new_key exists; ValueError if the copy differs.
        """
        source, target = self.path(old_key), self.path(new_key)
        try:
            _link(source, target)
        except FileExistsError:
            raise
        except OSError:
            staged = self.stage()
            try:
                with open(source, "rb") as f:
                    while chunk := f.read(1 << 20):
                        staged.write(chunk)
                staged.finish()
                if staged.size != source.stat().st_size or (sha256 is not None and staged.sha256 != sha256):
                    raise ValueError(f"the copy of {old_key} does not match the original")
                _link(staged.path, target)
            finally:
                staged.discard()
        self._sync_dir(target.parent)

    @staticmethod
    def _sync_dir(path: Path) -> None:
        dir_fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def sha256(self, key: str) -> bytes:
        digest = hashlib.sha256()
        with open(self.path(key), "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.digest()

    def templated_keys(self) -> list[str]:
        """Every file under templated/ (originals placed by the storage template)."""
        base = self.root / TEMPLATED
        if not base.is_dir():
            return []
        return [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()]

    def remove_empty_dirs(self, prefix: str) -> None:
        """Remove the empty folders under prefix (left by files moved away), deepest first."""
        base = self.path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, _, _ in sorted(os.walk(base), key=lambda entry: entry[0].count(os.sep), reverse=True):
            if dirpath != str(base):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass  # not empty, or already gone

    def put_derived(self, key: str, data: bytes) -> None:
        """Write a derived file (temp -> atomic rename). No fsync: derived files can always
        be regenerated from the original, so they are not worth a disk flush each."""
        # Not a StagedFile: nothing reads an upload's two checksums of a rendition.
        temp = self._temp_path()
        try:
            temp.write_bytes(data)
            self._place(temp, key, durable=False)
        finally:
            temp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def sweep_stale_uploads(self, legacy_older_than_s: float = 24 * 3600) -> int:
        """Remove temp files whose owner is gone (a crash), at once; the owner's lock says so.

        Files of live owners, in this process or another sharing DATA_DIR, are left alone.
        Files named before owners existed are removed after a day, as before.
        """
        alive: dict[str, bool] = {}
        held: list[int] = []  # dead owners' locks, held until their files are gone

        def owner_alive(owner: str) -> bool:
            if owner == self.owner:
                return True
            if owner not in alive:
                fd = _try_lock(self.locks / f"{owner}.lock")
                # No lock file: its owner never created a temp file after losing it (see _own),
                # or the owner is long gone and a sweep already removed it.
                alive[owner] = fd is None and (self.locks / f"{owner}.lock").exists()
                if fd is not None:
                    held.append(fd)
            return alive[owner]

        cutoff = time.time() - legacy_older_than_s
        removed = 0
        try:
            for entry in self.tmp.iterdir():
                try:
                    match = _TEMP_NAME.fullmatch(entry.name)
                    if match is not None:
                        stale = not owner_alive(match.group(1))
                    else:
                        stale = bool(_LEGACY_TEMP_NAME.fullmatch(entry.name)) and entry.stat().st_mtime < cutoff
                    if stale:
                        entry.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
            if self.locks.is_dir():
                for lock in self.locks.iterdir():
                    owner = lock.stem
                    if lock.suffix == ".lock" and not owner_alive(owner):
                        lock.unlink(missing_ok=True)
        finally:
            for fd in held:
                os.close(fd)
        return removed

    def asset_blobs(self) -> list[tuple[uuid.UUID, str, bool]]:
        """(asset id, key, is_original) for every original file and derived folder in the store."""
        found = []
        library = self.root / "library"
        if not library.is_dir():
            return found
        for lib in library.iterdir():
            originals = lib / "originals"
            if originals.is_dir():
                for shard in originals.iterdir():
                    if not shard.is_dir():
                        continue
                    for entry in shard.iterdir():
                        asset_id = _asset_id(entry.name.split(".", 1)[0])
                        if asset_id is not None and entry.is_file():
                            found.append((asset_id, entry.relative_to(self.root).as_posix(), True))
            derived = lib / "derived"
            if derived.is_dir():
                for entry in derived.iterdir():
                    asset_id = _asset_id(entry.name)
                    if asset_id is not None and entry.is_dir():
                        found.append((asset_id, entry.relative_to(self.root).as_posix(), False))
        return found


def _link(source: Path, target: Path) -> None:
    """Hard-link target to source, making its folder; again once if an empty-folder cleanup
    (the storage template migration's) removed the folder in between."""
    for attempt in (1, 2):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            if attempt == 2 or not source.exists():
                raise


def _asset_id(name: str) -> uuid.UUID | None:
    if len(name) != 32:
        return None
    try:
        return uuid.UUID(hex=name)
    except ValueError:
        return None
