"""Scanning an external library: its import paths walked in place, and its asset rows brought in
line with what is there (new files indexed, changed ones re-processed, gone ones offline, returned
ones online).

The walk (GNU find) only reads directory entries and stat results; the diff against the
library's rows is one query, and every write is a batch (unnest arrays), with its change-log events
in the same transaction. The content is not read here: the pipeline's first step for an external
asset hashes and sniffs it (app/domain/external_content.py), so a scan of a large tree indexes it at
the speed of the directory walk.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import logging
import os
import re
import shutil
import stat as stat_module
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from typing import Any, NamedTuple

import asyncpg
from wcmatch import glob

from app.db import engine as db
from app.domain import events, external_libraries, media_types, originals, processing, tasks
from app.settings import load_settings

log = logging.getLogger(__name__)

SCAN_JOB = "library_scan"
DEVICE_ID = "Library Import"
# Rows per INSERT/UPDATE statement: big enough to amortise the round trip, small enough for memory.
CHUNK = 5000
WRITERS = 2
_GLOB_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.FORCEUNIX


@dataclass
class Summary:
    added: int = 0
    changed: int = 0
    offline: int = 0
    online: int = 0
    unchanged: int = 0
    # Directories the walk could not read (no permission, vanished): their files count as gone.
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "changed": self.changed, "offline": self.offline, "online": self.online,
                "unchanged": self.unchanged, "unreadable": self.unreadable}


class Seen(NamedTuple):  # a tuple: one is made per file of the tree
    mtime_ns: int
    size: int
    sidecar: str | None


class Matcher:
    """Which paths of a library count: under an import path, not hidden, not excluded (Immich's
    picomatch globs on the absolute path, case-sensitive), with a supported extension."""

    def __init__(self, import_paths: list[str], exclusions: list[str]):
        self.roots = [os.path.normpath(p) for p in import_paths if p]
        self.excluded = glob.compile(exclusions, flags=_GLOB_FLAGS) if exclusions else None
        # A pattern ending in "/**" only matches what is inside an excluded folder, which the walk
        # prunes before entering: files need matching only against the others (the hot loop).
        for_files = [p for p in exclusions if not p.endswith("/**")]
        self.excluded_files = glob.compile(for_files, flags=_GLOB_FLAGS) if for_files else None
        # `**/name/**` and `**/name` with a literal name (Immich's defaults: @eaDir, #recycle,
        # #snapshot) exclude every folder of that name: the walk has find skip those unread.
        names = {p[3:].removesuffix("/**") for p in exclusions if p.startswith("**/")}
        self.excluded_folder_names = sorted(n for n in names if n and not any(c in n for c in "/*?[]\\"))

    def excluded_dir(self, path: str) -> bool:
        # `**/x/**` matches what is inside x (x + "/"), `**/x` the directory itself: either prunes it.
        return self.excluded is not None and (self.excluded.match(path) or self.excluded.match(path + "/"))

    def excluded_file(self, path: str) -> bool:
        return self.excluded is not None and self.excluded.match(path)

    def root_of(self, path: str) -> str | None:
        for root in self.roots:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return root
        return None

    def wanted(self, path: str) -> bool:
        """A file path (absolute, normalised) this library indexes, judged by its name alone."""
        root = self.root_of(path)
        if root is None or not is_media_name(path) or self.excluded_file(path):
            return False
        parts = path[len(root):].strip("/").split("/")
        if any(part.startswith(".") for part in parts):
            return False
        # An excluded folder on the way excludes the file (the walk prunes it).
        here = root
        for part in parts[:-1]:
            here = f"{here.rstrip('/')}/{part}"
            if self.excluded_dir(here):
                return False
        return True


_MEDIA_EXTENSIONS = frozenset(media_types.SUPPORTED)


def is_media_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in _MEDIA_EXTENSIONS


def _is_sidecar_name(name: str) -> bool:
    return name[-4:] in (".xmp", ".XMP")  # the two sidecar_for looks for


def sidecar_for(path: str, sidecars: set[str]) -> str | None:
    """Immich's order: photo.jpg.xmp, then photo.xmp."""
    for candidate in (path + ".xmp", path + ".XMP", os.path.splitext(path)[0] + ".xmp",
                      os.path.splitext(path)[0] + ".XMP"):
        if candidate in sidecars:
            return candidate
    return None


def _lower_case_first(sidecar: str) -> tuple[str, bool]:
    return sidecar[:-4], sidecar[-4:] != ".xmp"


def _with_sidecars(files: dict[str, str], sidecars: set[str]) -> None:
    """Appends to each file's stamp its sidecar, in Immich's order (photo.jpg.xmp, then photo.xmp),
    working from the sidecars (a few) rather than from the files (all of them) where it can."""
    by_stem: dict[str, str] = {}
    given: set[str] = set()
    for sidecar in sorted(sidecars, key=_lower_case_first):  # photo.xmp before photo.XMP, as sidecar_for
        photo = sidecar[:-4]  # photo.jpg.xmp -> photo.jpg
        stamp = files.get(photo)
        if stamp is not None and photo not in given:
            files[photo] = f"{stamp} {sidecar}"
            given.add(photo)
        by_stem.setdefault(photo, sidecar)  # photo.xmp -> the stem "photo"
    if not by_stem:
        return
    for path in files:
        dot, slash = path.rfind("."), path.rfind("/")
        if dot > slash and (sidecar := by_stem.get(path[:dot])) is not None and path not in given:
            files[path] = f"{files[path]} {sidecar}"


# The walk is GNU find's (findutils, part of every Debian system): it reads the tree in C and, as a
# process of its own, on the other core while this one reads the library's rows, where a Python
# walk costs a few microseconds of interpreter per file on top of the stat and holds the GIL. Every
# entry comes as three NUL-ended fields, kind, what is known of it and its path, in pre-order (a
# folder's contents right after it): "d" a folder ("<dev> <inode>", to read each folder once),
# "f" a file ("<mtime> <size>", as find prints them: the stamp, see seen_of), "u" a folder it
# cannot enter, "l" a symbolic link. Hidden entries and folders excluded by a literal name are
# pruned by find; the other exclusion globs and the folder dedup are applied here, on the folders.
# Links are not followed by find (following all of them costs a stat of every folder too): walk
# follows the few there are.
def _find_expression(matcher: Matcher) -> list[str]:
    prune_names: list[str] = []
    for name in matcher.excluded_folder_names:
        prune_names += [*(["-o"] if prune_names else []), "-name", name]
    return [
        "-mindepth", "1",
        "(", "-name", ".*", "-prune", ")", "-o",
        *(["(", "-type", "d", "(", *prune_names, ")", "-prune", ")", "-o"] if prune_names else []),
        "(", "-type", "d", "!", "(", "-readable", "-executable", ")", "-printf", "u\\0\\0%p\\0", "-prune", ")",
        "-o", "(", "-type", "d", "-printf", "d\\0%D %i\\0%p\\0", ")",
        # Empty files are no photos, but an empty sidecar is still one (it names the file's sidecar).
        "-o", "(", "-type", "f", "(", "-size", "+0c", "-o", "-iname", "*.xmp", ")",
        "-printf", "f\\0%T@ %s\\0%p\\0", ")",
        "-o", "(", "-type", "l", "-printf", "l\\0\\0%p\\0", ")",
    ]


@functools.cache
def _find() -> str:
    found = shutil.which("find")
    version = "" if found is None else subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    if "GNU findutils" not in version:
        raise RuntimeError("external library scans need GNU find (findutils) on the PATH")
    return found


def seen_of(path: str, stamp: str) -> Seen:
    """A walk's stamp of a file as numbers: "<seconds>.<10 digits> <size>[ <sidecar>]" (find's %T@,
    whose whole seconds are floored, so a fraction is always added). Anything else is read again."""
    mtime, _, rest = stamp.partition(" ")
    size, _, sidecar = rest.partition(" ")
    seconds, _, fraction = mtime.partition(".")
    try:
        if len(fraction) != 10:
            raise ValueError(stamp)
        mtime_ns = int(seconds) * 1_000_000_000 + int(fraction[:9])
        size_bytes = int(size)
    except ValueError:
        st = os.stat(path)
        mtime_ns, size_bytes = st.st_mtime_ns, st.st_size
    return Seen(mtime_ns, size_bytes, sidecar or None)


def walk(matcher: Matcher, tops: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Every wanted file under the import paths (or under `tops`, folders inside them) with its stamp
    (mtime, size and sidecar as text; seen_of reads it), and the folders that could not be read.
    Hidden entries are skipped, excluded folders left out, and a folder reached twice (a symlink
    loop, two links to one folder) read once. Links are followed, as stat follows them."""
    entries = _Entries(matcher)
    visited, unreadable = entries.visited, entries.unreadable
    folders = [os.path.normpath(p) for p in (matcher.roots if tops is None else tops)]
    while folders:  # the import paths, then the folders links lead to, then theirs...
        starts: list[str] = []
        for folder in folders:
            if matcher.excluded_dir(folder):
                continue
            try:
                st = os.stat(folder)
                usable = stat_module.S_ISDIR(st.st_mode) and os.access(folder, os.R_OK | os.X_OK)
            except (OSError, ValueError):
                usable = False
            if not usable or not os.path.isabs(folder):  # absolute: never read as one of find's options
                unreadable.append(folder)
                continue
            key = f"{st.st_dev} {st.st_ino}"
            if key not in visited:
                visited.add(key)
                starts.append(folder)
        for start in starts:  # one find each: a folder left out inside one start ends with it
            _run_find(start, entries)
        folders = []
        for link in entries.take_links():
            try:
                st = os.stat(link)
            except (OSError, ValueError):
                continue  # a broken link
            if stat_module.S_ISDIR(st.st_mode):
                folders.append(link)
            elif stat_module.S_ISREG(st.st_mode) and (st.st_size > 0 or _is_sidecar_name(link)):
                seconds, fraction = divmod(st.st_mtime_ns, 1_000_000_000)
                entries.add(["f", f"{seconds}.{fraction:09d}0 {st.st_size}", link])
    files = entries.files
    for path in [p for p in files if not p.isascii() and not _encodable(p)]:
        del files[path]
    if entries.sidecars:
        _with_sidecars(files, entries.sidecars)
    return files, unreadable


_READ = 1 << 18
_PIPE = 1 << 20
# An entry find could not read, in the C locale (a name with odd bytes comes escaped: logged only).
_FIND_PROBLEM = re.compile(r"^find: '.*': (Permission denied|No such file or directory|Input/output error"
                           r"|Stale file handle|Not a directory|Too many levels of symbolic links)$")


def _run_find(start: str, entries: "_Entries") -> None:
    # -H: a start that is a link (an import path may be one) is followed. Read as find writes, so
    # this thread sorts one part while find reads the next.
    with subprocess.Popen(["find", "-H", start, *_find_expression(entries.matcher)], executable=_find(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "LC_ALL": "C"}) as find:
        try:  # a deep pipe: find goes on writing while this thread sorts what it read
            fcntl.fcntl(find.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE)
        except OSError:
            pass  # an unprivileged process may be held to a smaller size; only slower
        problems = threading.Thread(target=lambda: entries.note_problems(find.stderr.read()), daemon=True)
        problems.start()
        rest = b""
        while chunk := find.stdout.read(_READ):
            fields = (rest + chunk).split(b"\0")
            whole = (len(fields) - 1) // 3 * 3  # the fields of whole entries; the rest waits for more
            rest = b"\0".join(fields[whole:])
            if whole:
                entries.add(b"\0".join(fields[:whole]).decode("utf-8", "surrogateescape").split("\0"))
        problems.join()
    entries.skipping = None
    # 1 with only entries it could not read (each logged; their files count as gone, as a folder the
    # walk's own check refuses): it went on past them. Anything else (killed, out of memory, not
    # run) is a walk that may have stopped early, whose missing files must not be taken offline.
    if find.returncode != 0 and (find.returncode != 1 or entries.fatal_problems):
        raise RuntimeError(f"find stopped with status {find.returncode} walking {start}")


class _Entries:
    """What a walk keeps of find's entries, taken a part at a time in find's order."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.visited: set[str] = set()  # folders read or being read, as "<dev> <inode>"
        self.unreadable: list[str] = []
        self.files: dict[str, str] = {}
        self.sidecars: set[str] = set()
        self.skipping: str | None = None  # the inside ("folder/") of a folder left out, while in it
        self.links: list[str] = []
        self.fatal_problems = 0

    def take_links(self) -> list[str]:
        links, self.links = self.links, []
        return links

    def note_problems(self, text: bytes) -> None:
        """What find said went wrong: an entry it could not read (it goes on) or anything else."""
        for line in text.decode("utf-8", "surrogateescape").splitlines():
            if not _FIND_PROBLEM.match(line):
                self.fatal_problems += 1
            log.warning("%s", line)

    def add(self, fields: list[str]) -> None:
        kinds, stamps, paths = fields[0::3], fields[1::3], fields[2::3]
        count = len(paths)
        # A folder left out takes its contents with it: the entries after it that are inside it.
        dropped: list[tuple[int, int]] = []
        if self.skipping is not None:
            end = self._end_of(paths, 0, self.skipping)
            if end:
                dropped.append((0, end))
        for index in [i for i, kind in enumerate(kinds) if kind != "f"]:
            if dropped and index < dropped[-1][1]:
                continue  # inside a folder already left out
            path, kind = paths[index], kinds[index]
            if kind == "l":
                self.links.append(path)  # judged once followed (walk)
            elif kind == "d" and stamps[index] not in self.visited and not self.matcher.excluded_dir(path):
                self.visited.add(stamps[index])
            elif kind == "u":
                if not self.matcher.excluded_dir(path):
                    self.unreadable.append(path)
            else:  # left out with what is inside it
                self.skipping = path + "/"
                dropped.append((index, self._end_of(paths, index + 1, self.skipping)))
        if dropped:
            keep = [slice(end, start) for (_, end), (start, _) in zip([(0, 0), *dropped], dropped)]
            keep.append(slice(dropped[-1][1], count))
            kinds = [k for part in keep for k in kinds[part]]
            stamps = [s for part in keep for s in stamps[part]]
            paths = [p for part in keep for p in paths[part]]
        media = _MEDIA_EXTENSIONS
        found = {p: s for k, s, p in zip(kinds, stamps, paths) if k == "f" and p[p.rfind("."):].lower() in media}
        if self.matcher.excluded_files is not None:
            excluded = self.matcher.excluded_files.match
            found = {p: s for p, s in found.items() if not excluded(p)}
        self.files.update(found)
        self.sidecars.update(p for k, p in zip(kinds, paths) if k == "f" and _is_sidecar_name(p))

    def _end_of(self, paths: list[str], start: int, inside: str) -> int:
        """The first entry from `start` that is not inside; the folder's end if it is in this part."""
        end = start
        while end < len(paths) and paths[end].startswith(inside):
            end += 1
        if end < len(paths):
            self.skipping = None
        return end


def usable_roots(paths: list[str], *, quiet: bool = False) -> list[str]:
    """The import paths a scan or watcher may look at now, as Immich checks them again at each scan:
    validate's checks (create does not check; a folder may have gone since), so the server's own
    DATA_DIR (every user's originals and thumbnails) is never indexed into one user's library."""
    data_dir = load_settings().data_dir
    usable = []
    for path in paths:
        problem = external_libraries.import_path_problem(path, data_dir)
        if problem is None:
            usable.append(path)
        elif not quiet:  # the watcher asks every few seconds; a scan says it once
            log.warning("import path %s skipped: %s", path, problem)
    return usable


def _encodable(path: str) -> bool:
    """A name that is not valid in the file system's encoding (a Latin-1 name from an old NAS) can be
    neither stored nor hashed as text: such a file is left out, with a warning, and the scan goes on."""
    if path.isascii():
        return True
    try:
        path.encode()
        return True
    except UnicodeEncodeError:
        log.warning("file name not valid UTF-8, left out: %r", path)
        return False


def path_checksums(path: str) -> tuple[bytes, bytes]:
    """Immich's checksums of a file not read yet: of "path:" + its path (sha256, sha1)."""
    data = f"path:{path}".encode()
    return hashlib.sha256(data).digest(), hashlib.sha1(data).digest()


async def _library(external_library_id: uuid.UUID) -> Any:
    return await db.fetchrow("SELECT * FROM external_libraries WHERE id = $1 AND deleted_at IS NULL",
                             external_library_id)


_ROW_COLUMNS = "id, original_path, file_mtime_ns, file_size_bytes, is_offline, sidecar_path"


async def _existing(external_library_id: uuid.UUID) -> dict[str, Any]:
    rows = await db.fetch(f"SELECT {_ROW_COLUMNS} FROM assets WHERE external_library_id = $1", external_library_id)
    return {r["original_path"]: r for r in rows}


# A row's stamp as the walk writes a file's (see seen_of): equal stamps are an unchanged file.
# Whole seconds floored and the fraction non-negative, as find prints times before 1970.
# In whole numbers: a numeric division rounds to 8 places and can carry into the next second.
# (bigint division truncates: one less for a negative time with a fraction; no overflow at the ends)
_NS_PAST_SECOND = "((file_mtime_ns % 1000000000 + 1000000000) % 1000000000)"
_ROW_STAMP = ("(file_mtime_ns / 1000000000 - (file_mtime_ns % 1000000000 < 0)::int) || '.'"
              f" || lpad({_NS_PAST_SECOND}::text, 9, '0') || '0 '"
              " || file_size_bytes || coalesce(' ' || sidecar_path, '')")


async def _online_files(external_library_id: uuid.UUID) -> dict[str, str]:
    """The stamps of the library's online rows, by path: the same text a walk gives each file, so
    the two compare as they are. Two arrays cross the wire instead of a record per asset, each
    ordered by id: Postgres does not promise that the aggregates of one query see the rows in one
    order unless told (it sorts once for both)."""
    row = await db.fetchrow(
        "SELECT coalesce(array_agg(original_path ORDER BY id), '{}') AS paths,"
        f" coalesce(array_agg({_ROW_STAMP} ORDER BY id), '{{}}') AS stamps"
        " FROM assets WHERE external_library_id = $1 AND NOT is_offline", external_library_id)
    return dict(zip(row["paths"], row["stamps"]))


async def _differing(external_library_id: uuid.UUID, found: dict[str, str],
                     online: dict[str, str]) -> tuple[dict[str, Seen], dict[str, Any], int]:
    """The part of a scan's comparison that can differ, each side with its rows: files no online
    row describes as they are (new, changed, back online) and rows of files gone or changed; and how
    many files matched their row exactly (unchanged). A file costs one dict lookup and a string
    comparison here; only the differing files are read as numbers and their rows as records."""
    get = online.get
    suspects = {path: seen_of(path, stamp) for path, stamp in found.items() if get(path) != stamp}
    by_path = [p for p in suspects if p in online]
    matched = len(found) - len(suspects)
    if len(online) > matched + len(by_path):  # some online row has no file any more
        by_path += online.keys() - found.keys()
    rows = await db.fetch(
        f"SELECT {_ROW_COLUMNS} FROM assets WHERE external_library_id = $1"
        " AND (is_offline OR original_path = ANY($2::text[]))", external_library_id, by_path)
    return suspects, {r["original_path"]: r for r in rows}, matched


async def scan(external_library_id: uuid.UUID, queue: Any = None) -> Summary:
    """The whole library: every import path walked, every row compared."""
    library = await _library(external_library_id)
    if library is None:
        return Summary()
    matcher = Matcher(list(library["import_paths"]), list(library["exclusion_patterns"]))
    valid = usable_roots(matcher.roots)
    if not valid:
        log.warning("external library %s has no readable import path; nothing scanned", external_library_id)
    matcher.roots = valid or matcher.roots
    # The walk (find, a process of its own) and reading the library's rows (Postgres) overlap.
    (found, unreadable), online = await asyncio.gather(asyncio.to_thread(walk, matcher, valid),
                                                       _online_files(external_library_id))
    suspects, existing, unchanged = await _differing(external_library_id, found, online)
    summary = await _apply(library, suspects, existing, queue)
    summary.unchanged += unchanged
    summary.unreadable = unreadable
    await db.execute("UPDATE external_libraries SET refreshed_at = now() WHERE id = $1", external_library_id)
    return summary


async def sync_paths(external_library_id: uuid.UUID, paths: list[str], queue: Any = None) -> Summary:
    """Only the given paths (files or folders, as a watcher reports them): the same rules as a scan,
    restricted to them; a path that is gone takes its asset (or the assets under it) offline."""
    library = await _library(external_library_id)
    if library is None:
        return Summary()
    matcher = Matcher(list(library["import_paths"]), list(library["exclusion_patterns"]))
    targets = sorted({os.path.normpath(p) for p in paths if os.path.isabs(p)})

    def look() -> tuple[dict[str, Seen], list[str]]:
        found: dict[str, Seen] = {}
        unreadable: list[str] = []
        for path in targets:
            if os.path.isdir(path):
                if matcher.root_of(path) is not None and not matcher.excluded_dir(path):
                    sub, bad = walk(matcher, [path])
                    found.update({p: seen_of(p, s) for p, s in sub.items() if matcher.wanted(p)})
                    unreadable += bad
                continue
            if not matcher.wanted(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat_module.S_ISREG(st.st_mode) and st.st_size > 0 and _encodable(path):
                folder = os.path.dirname(path)
                try:
                    sidecars = {e.path for e in os.scandir(folder) if _is_sidecar_name(e.name)}
                except OSError:
                    sidecars = set()
                found[path] = Seen(st.st_mtime_ns, st.st_size, sidecar_for(path, sidecars))
        return found, unreadable

    found, unreadable = await asyncio.to_thread(look)
    existing = await _existing(external_library_id)
    in_scope = {p: r for p, r in existing.items()
                if any(p == t or p.startswith(t.rstrip("/") + "/") for t in targets)}
    summary = await _apply(library, found, in_scope, queue)
    summary.unreadable = unreadable
    return summary


async def enqueue_scan(queue: Any, external_library_id: uuid.UUID) -> bool:
    """A scan job for the library (one at a time: another is not added while one is queued or runs)."""
    return await queue.enqueue_plain(SCAN_JOB, str(external_library_id), job_id=f"{SCAN_JOB}:{external_library_id}")


async def enqueue_all(queue: Any) -> int:
    """A scan of every external library (Immich's "library" queue start, the nightly scan)."""
    ids = await db.fetch("SELECT id FROM external_libraries WHERE deleted_at IS NULL ORDER BY created_at")
    for row in ids:
        await enqueue_scan(queue, row["id"])
    return len(ids)


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def _apply(library: Any, found: dict[str, Seen], existing: dict[str, Any], queue: Any) -> Summary:
    """Bring the rows of `existing` (the rows in the looked-at scope) in line with `found`."""
    summary = Summary()
    new: list[str] = []
    changed: list[tuple[Any, Seen]] = []
    back: list[Any] = []
    for path, seen in found.items():
        row = existing.get(path)
        if row is None:
            new.append(path)
            continue
        if row["is_offline"]:
            back.append(row)
        if (row["file_mtime_ns"] != seen.mtime_ns or row["file_size_bytes"] != seen.size
                or row["sidecar_path"] != seen.sidecar):
            changed.append((row, seen))
        elif not row["is_offline"]:
            summary.unchanged += 1
    gone = [row for path, row in existing.items() if path not in found and not row["is_offline"]]

    # Chunks are written two at a time (Postgres checks and indexes one on each core) and each
    # chunk's first pipeline steps are queued as soon as it commits.
    gate = asyncio.Semaphore(WRITERS)

    async def write(job) -> None:
        async with gate:
            started = await job
        await _enqueue(queue, started)

    # Gone files go offline first: a new file's first step may run as soon as its chunk commits, and
    # it can only be recognised as a moved file if the asset it moved from is already offline.
    for chunk in _chunks(gone):
        await _set_offline(library, chunk)
    summary.offline = len(gone)
    await asyncio.gather(*(write(_insert(library, chunk, found)) for chunk in _chunks(new)))
    summary.added = len(new)
    await asyncio.gather(*(write(_update_changed(library, chunk)) for chunk in _chunks(changed)))
    summary.changed = len(changed)
    for chunk in _chunks(back):
        await _set_online(library, chunk)
    summary.online = len(back)
    return summary


def _timestamp(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)


async def _insert(library: Any, paths: list[str], found: dict[str, Seen]) -> list[tuple[str, uuid.UUID, str]]:
    ids, kinds, mimes, names, keys, sizes, sha256s, sha1s, device_ids = [], [], [], [], [], [], [], [], []
    times, walls, mtimes, sidecars = [], [], [], []
    for path in paths:
        seen = found[path]
        asset_id = uuid.uuid4()
        mime = media_types.SUPPORTED[os.path.splitext(path)[1].lower()]
        name = os.path.basename(path)
        sha256, sha1 = path_checksums(path)
        when = _timestamp(seen.mtime_ns)
        ids.append(asset_id)
        kinds.append(mime.split("/")[0])
        mimes.append(mime)
        names.append(name[:1024])
        keys.append(originals.external_key(asset_id))
        sizes.append(seen.size)
        sha256s.append(sha256)
        sha1s.append(sha1)
        device_ids.append("".join(name.split()))  # Immich's deviceAssetId: the name without whitespace
        times.append(when)
        walls.append(when.replace(tzinfo=None))
        mtimes.append(seen.mtime_ns)
        sidecars.append(seen.sidecar)
    async with db.transaction() as conn:
        # Without this, a scan that read the library before it was deleted could add rows after the
        # delete job purged it, and they would stay until the hourly sweep.
        if not await external_libraries.hold_for_insert(conn, library["id"]):
            return []
        try:
            # COPY: the fastest way in for many rows. A path a watcher indexed meanwhile makes the
            # chunk fail as a whole (unique path): it is written again below, skipping such paths.
            async with conn.transaction():
                await conn.copy_records_to_table("assets", columns=_COPY_COLUMNS, records=zip(
                    ids, repeat(library["library_id"]), repeat(library["owner_id"]), kinds, mimes, names, keys,
                    sizes, sha256s, sha1s, device_ids, repeat(DEVICE_ID), times, times, walls,
                    repeat(library["id"]), paths, mtimes, repeat("path"), sidecars))
            rows = [{"id": i, "media_type": k} for i, k in zip(ids, kinds)]
        except asyncpg.UniqueViolationError:
            rows = await conn.fetch(
                """
                INSERT INTO assets (id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,
                                    file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id,
                                    file_created_at, file_modified_at, local_datetime, external_library_id,
                                    original_path, file_mtime_ns, checksum_source, sidecar_path)
                SELECT u.id, $1, $2, u.kind, u.mime, u.name, u.key, u.size, u.sha256, u.sha1, u.device_asset_id, $3,
                       u.at, u.at, u.wall, $4, u.path, u.mtime, 'path', u.sidecar
                FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bytea[],
                            $12::bytea[], $13::text[], $14::timestamptz[], $15::timestamp[], $16::text[],
                            $17::bigint[], $18::text[])
                     AS u(id, kind, mime, name, key, size, sha256, sha1, device_asset_id, at, wall, path, mtime, sidecar)
                ON CONFLICT (external_library_id, original_path) WHERE external_library_id IS NOT NULL DO NOTHING
                RETURNING id, media_type
                """,
                library["library_id"], library["owner_id"], DEVICE_ID, library["id"], ids, kinds, mimes, names, keys,
                sizes, sha256s, sha1s, device_ids, times, walls, paths, mtimes, sidecars,
            )
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_created",
                                 rows=[(r["id"], library["library_id"], library["owner_id"]) for r in rows])
        return await _start_pipelines(conn, library, rows)


_COPY_COLUMNS = ("id", "library_id", "owner_id", "media_type", "mime_type", "original_file_name", "storage_key",
                 "file_size_bytes", "checksum_sha256", "checksum_sha1", "device_asset_id", "device_id",
                 "file_created_at", "file_modified_at", "local_datetime", "external_library_id", "original_path",
                 "file_mtime_ns", "checksum_source", "sidecar_path")


async def _update_changed(library: Any, items: list[tuple[Any, Seen]]) -> list[tuple[str, uuid.UUID, str]]:
    """A changed file: what stat says now, and path checksums again until the pipeline reads it."""
    ids = [row["id"] for row, _ in items]
    paths = [row["original_path"] for row, _ in items]
    sums = [path_checksums(p) for p in paths]
    async with db.transaction() as conn:
        rows = await conn.fetch(
            """
            UPDATE assets a SET file_mtime_ns = u.mtime, file_size_bytes = u.size, sidecar_path = u.sidecar,
                   file_modified_at = u.at, checksum_sha256 = u.sha256, checksum_sha1 = u.sha1,
                   checksum_source = 'path', processing_error = NULL, updated_at = now()
            FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::bytea[],
                        $7::bytea[]) AS u(id, mtime, size, sidecar, at, sha256, sha1)
            WHERE a.id = u.id
            RETURNING a.id, a.media_type
            """,
            ids, [s.mtime_ns for _, s in items], [s.size for _, s in items], [s.sidecar for _, s in items],
            [_timestamp(s.mtime_ns) for _, s in items], [s[0] for s in sums], [s[1] for s in sums],
        )
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                                 rows=[(r["id"], library["library_id"], library["owner_id"]) for r in rows])
        return await _start_pipelines(conn, library, rows)


async def _set_offline(library: Any, rows: list[Any]) -> None:
    """Gone (or excluded, or outside the import paths): offline, and in the trash as in Immich,
    unless the user had put it there already."""
    ids = [r["id"] for r in rows]
    async with db.transaction() as conn:
        changed = await conn.fetch(
            "UPDATE assets SET is_offline = true, trashed_at = coalesce(trashed_at, now()), updated_at = now()"
            " WHERE id = ANY($1::uuid[]) AND NOT is_offline"
            " RETURNING id, (trashed_at = now()) AS trashed_now",
            ids,
        )
        # The payload marks a trash the scan put there: coming back online takes only that one out.
        trashed = [r for r in changed if r["trashed_now"]]
        kept = [r for r in changed if not r["trashed_now"]]
        owner, lib = library["owner_id"], library["library_id"]
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_trashed",
                                 rows=[(r["id"], lib, owner) for r in trashed],
                                 payloads=[{"offline": True}] * len(trashed))
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                                 rows=[(r["id"], lib, owner) for r in kept], payloads=[{"offline": True}] * len(kept))


async def _set_online(library: Any, rows: list[Any]) -> None:
    """Back in place: online, and out of the trash if it was the scan that put it there (its latest
    trash or restore event is the offline one)."""
    ids = [r["id"] for r in rows]
    async with db.transaction() as conn:
        by_scan = await conn.fetch(
            """
            SELECT DISTINCT ON (entity_id) entity_id, coalesce(payload ->> 'offline' = 'true', false) AS by_scan
            FROM events WHERE entity_type = 'asset' AND entity_id = ANY($1::uuid[])
              AND event_type IN ('asset_trashed', 'asset_restored')
            ORDER BY entity_id, id DESC
            """,
            ids,
        )
        restore = [r["entity_id"] for r in by_scan if r["by_scan"]]
        changed = await conn.fetch(
            "UPDATE assets SET is_offline = false, updated_at = now(),"
            " trashed_at = CASE WHEN id = ANY($2::uuid[]) THEN NULL ELSE trashed_at END"
            " WHERE id = ANY($1::uuid[]) AND is_offline RETURNING id, trashed_at IS NULL AS restored",
            ids, restore,
        )
        owner, lib = library["owner_id"], library["library_id"]
        restored = [r for r in changed if r["restored"]]
        other = [r for r in changed if not r["restored"]]
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_restored",
                                 rows=[(r["id"], lib, owner) for r in restored],
                                 payloads=[{"offline": False}] * len(restored))
        await events.record_many(conn, entity_type=events.ASSET, event_type="asset_updated",
                                 rows=[(r["id"], lib, owner) for r in other], payloads=[{"offline": False}] * len(other))


async def _start_pipelines(conn: Any, library: Any, assets: list[Any]) -> list[tuple[str, uuid.UUID, str]]:
    """In the transaction that wrote the assets: the task row of each one's first pipeline step (as
    an upload's); answers the jobs to enqueue once it commits."""
    rows = await conn.fetch(
        """
        INSERT INTO tasks (owner_id, library_id, asset_id, task_type, job_id)
        SELECT $1, $2, u.asset_id, u.task_type, u.task_type || ':' || u.asset_id
        FROM unnest($3::uuid[], $4::text[]) AS u(asset_id, task_type)
        RETURNING id, job_id
        """,
        library["owner_id"], library["library_id"], [a["id"] for a in assets],
        [tasks.METADATA[a["media_type"]] for a in assets],
    )
    return [(processing.METADATA_JOB, r["id"], r["job_id"]) for r in rows]


async def _enqueue(queue: Any, jobs: list[tuple[str, uuid.UUID, str]]) -> None:
    """After the commit; a job that cannot be enqueued is left to the stalled-task sweep."""
    if queue is None or not jobs:
        return
    try:
        await queue.enqueue_many(jobs)
    except Exception:
        log.warning("could not enqueue the first steps of %d assets; the sweep will", len(jobs), exc_info=True)
