"""The external-library walk (app.domain.library_scan.walk, GNU find underneath) against a plain
os.scandir walk of the same rules, on one tree with every kind of entry a photo folder or a NAS
share holds. No database: the walk only reads the disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.domain import library_scan
from app.domain.library_scan import Matcher, Seen, seen_of, walk

EXCLUSIONS = ["**/@eaDir/**", "**/*.tmp.jpg"]
JPEG = b"\xff\xd8\xff\xe0 not decoded by the walk"


def reference(matcher: Matcher) -> dict[str, Seen]:
    """The walk's rules, spelled out one entry at a time: hidden entries skipped, excluded folders
    not entered, links followed, each folder read once, media names only, empty files left out, and
    each file's sidecar in Immich's order (photo.jpg.xmp, photo.jpg.XMP, photo.xmp, photo.XMP)."""
    files: dict[str, tuple[int, int]] = {}
    sidecars: set[str] = set()
    visited: set[tuple[int, int]] = set()
    stack = [r for r in matcher.roots if not matcher.excluded_dir(r)]
    while stack:
        folder = stack.pop()
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            try:
                est = os.stat(entry.path)
            except OSError:
                continue
            if stat.S_ISDIR(est.st_mode):
                if not matcher.excluded_dir(entry.path):
                    stack.append(entry.path)
            elif stat.S_ISREG(est.st_mode) and entry.name[-4:] in (".xmp", ".XMP"):
                sidecars.add(entry.path)  # of any size; the two spellings sidecar_for looks for
            elif stat.S_ISREG(est.st_mode) and est.st_size > 0:
                if library_scan.is_media_name(entry.path) and not matcher.excluded_file(entry.path):
                    try:
                        entry.path.encode()
                    except UnicodeEncodeError:
                        continue
                    files[entry.path] = (est.st_mtime_ns, est.st_size)
    return {p: Seen(m, s, library_scan.sidecar_for(p, sidecars)) for p, (m, s) in files.items()}


def put(path: Path, data: bytes = JPEG, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def build(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "photos", tmp_path / "elsewhere"
    put(root / "2019" / "beach" / "IMG_1.jpg", mtime_ns=1_577_836_800_123_456_789)
    put(root / "2019" / "beach" / "IMG_1.jpg.xmp", b"<x/>")
    put(root / "2019" / "beach" / "IMG_2.JPG")
    put(root / "2019" / "beach" / "IMG_2.xmp", b"<x/>")
    put(root / "2019" / "beach" / "IMG_3.heic")
    put(root / "2019" / "beach" / "IMG_3.XMP", b"<x/>")
    put(root / "2019" / "beach" / "IMG_4.jpg")
    put(root / "2019" / "beach" / "IMG_4.jpg.XMP", b"<x/>")
    put(root / "2019" / "beach" / "IMG_4.jpg.xmp", b"<x/>")  # wins: Immich's order
    put(root / "2019" / "beach" / "IMG_5.jpg")
    put(root / "2019" / "beach" / "IMG_5.XMP", b"<x/>")
    put(root / "2019" / "beach" / "IMG_5.xmp", b"<x/>")
    put(root / "2019" / "beach" / "IMG_6.jpg")
    put(root / "2019" / "beach" / "IMG_6.jpg.xmp", b"")  # empty, still its sidecar
    put(root / "2019" / "beach" / "IMG_7.jpg")
    put(root / "2019" / "beach" / "IMG_7.jpg.Xmp", b"<x/>")  # neither spelling: no sidecar
    put(root / "2019" / "with space" / "line\nbreak.png")
    put(root / "2019" / "notes.txt", b"not a photo")
    put(root / "2019" / "empty.jpg", b"")
    put(root / "2019" / "draft.tmp.jpg")  # an excluded file pattern
    put(root / "old" / "scan-1965.jpg", mtime_ns=-157_766_399_500_000_000)  # before 1970, half a second in
    put(root / "old" / "epoch.jpg", mtime_ns=0)
    put(root / ".hidden" / "secret.jpg")
    put(root / "2019" / ".thumb.jpg")
    put(root / "2019" / "@eaDir" / "IMG_1.jpg" / "SYNOFILE_THUMB_XL.jpg")
    for i in range(300):  # an excluded folder that spans many of find's read chunks
        put(root / "nas" / "@eaDir" / f"thumb-{i:03d}.jpg")
    for i in range(300):
        put(root / "nas" / "album" / f"P{i:03d}.jpg")
    put(outside / "linked" / "far.jpg")
    put(outside / "linked" / "far.jpg.xmp", b"<x/>")
    put(outside / "single.webp")
    put(outside / "empty.xmp", b"")
    (root / "links").mkdir()
    (root / "links" / "to-folder").symlink_to(outside / "linked", target_is_directory=True)
    (root / "links" / "to-file.webp").symlink_to(outside / "single.webp")
    (root / "links" / "to-file.xmp").symlink_to(outside / "empty.xmp")  # an empty sidecar, linked
    (root / "links" / "broken.jpg").symlink_to(outside / "gone.jpg")
    (root / "links" / "@eaDir").symlink_to(outside / "linked", target_is_directory=True)  # excluded by name
    bad = os.path.join(os.fsencode(root / "2019"), b"caf\xe9.jpg")  # Latin-1, not UTF-8
    with open(bad, "wb") as f:
        f.write(JPEG)
    return root, outside


@pytest.mark.parametrize("read", [library_scan._READ, 97])  # 97 bytes: entries cut at every place
def test_the_walk_finds_what_a_plain_walk_of_the_same_rules_finds(tmp_path, monkeypatch, read):
    monkeypatch.setattr(library_scan, "_READ", read)
    root, outside = build(tmp_path)
    matcher = Matcher([str(root)], EXCLUSIONS)
    found, unreadable = walk(matcher)
    assert unreadable == []
    expected = reference(matcher)
    assert {p: seen_of(p, s) for p, s in found.items()} == expected
    assert len(expected) == 312
    names = {p.removeprefix(str(root) + "/") for p in found}
    assert {"2019/with space/line\nbreak.png", "links/to-folder/far.jpg", "links/to-file.webp",
            "old/scan-1965.jpg", "old/epoch.jpg"} <= names
    assert not any("@eaDir" in n or "hidden" in n or "caf" in n or "tmp" in n for n in names)
    beach = str(root / "2019" / "beach")
    assert seen_of(beach + "/IMG_2.JPG", found[beach + "/IMG_2.JPG"]).sidecar == beach + "/IMG_2.xmp"
    assert found[str(root / "old" / "scan-1965.jpg")].startswith("-157766400.5000000000 ")
    for photo, sidecar in (("IMG_4.jpg", "IMG_4.jpg.xmp"), ("IMG_5.jpg", "IMG_5.xmp"), ("IMG_6.jpg", "IMG_6.jpg.xmp")):
        assert seen_of(f"{beach}/{photo}", found[f"{beach}/{photo}"]).sidecar == f"{beach}/{sidecar}"
    assert seen_of(f"{beach}/IMG_7.jpg", found[f"{beach}/IMG_7.jpg"]).sidecar is None
    linked = str(root / "links" / "to-file.webp")
    assert seen_of(linked, found[linked]).sidecar == str(root / "links" / "to-file.xmp")


def test_folders_excluded_by_a_literal_name_are_not_read_by_find():
    matcher = Matcher(["/photos"], ["**/@eaDir/**", "**/#snapshot", "**/*.tmp/**", "**/a/b/**", "**/._*"])
    assert matcher.excluded_folder_names == ["#snapshot", "@eaDir"]
    expression = " ".join(library_scan._find_expression(matcher))
    assert "( -type d ( -name #snapshot -o -name @eaDir ) -prune )" in expression


def test_a_find_that_fails_stops_the_walk_rather_than_missing_files(tmp_path, monkeypatch):
    put(tmp_path / "photos" / "a.jpg")
    broken = tmp_path / "find"
    broken.write_text("#!/bin/sh\nprintf 'f\\0001.0000000000 3\\000%s/a.jpg\\000' \"$2\"\nkill -9 $$\n")
    broken.chmod(0o755)
    monkeypatch.setattr(library_scan, "_find", lambda: str(broken))
    with pytest.raises(RuntimeError, match="find stopped"):
        walk(Matcher([str(tmp_path / "photos")], []))


def test_a_folder_reached_twice_is_read_once(tmp_path):
    root, outside = tmp_path / "photos", tmp_path / "elsewhere"
    put(outside / "shared" / "a.jpg")
    put(root / "own" / "b.jpg")
    (root / "one").symlink_to(outside / "shared", target_is_directory=True)
    (root / "two").symlink_to(outside / "shared", target_is_directory=True)
    (root / "own" / "loop").symlink_to(root, target_is_directory=True)
    found, _ = walk(Matcher([str(root), str(root / "own")], []))
    assert str(root / "own" / "b.jpg") in found
    assert len([p for p in found if p.endswith("/a.jpg")]) == 1
    assert len(found) == 2


def test_an_import_path_that_is_a_link_or_is_missing(tmp_path):
    real = put(tmp_path / "real" / "a.jpg").parent
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    missing = tmp_path / "missing"
    found, unreadable = walk(Matcher([str(tmp_path / "link"), str(missing)], []))
    assert list(found) == [str(tmp_path / "link" / "a.jpg")]
    assert unreadable == [str(missing)]


def test_a_stamp_that_is_not_finds_is_read_from_the_file(tmp_path):
    photo = put(tmp_path / "a.jpg", mtime_ns=1_600_000_000_000_000_001)
    assert seen_of(str(photo), "1600000000.0000000010 30") == Seen(1_600_000_000_000_000_001, 30, None)
    assert seen_of(str(photo), "nonsense") == Seen(1_600_000_000_000_000_001, len(JPEG), None)


def test_an_entry_find_cannot_read_is_passed_over(tmp_path):
    # The real find, on a start that has gone: one "No such file" line, status 1, a walk that went on.
    entries = library_scan._Entries(Matcher([str(tmp_path)], []))
    library_scan._run_find(str(tmp_path / "gone"), entries)
    assert entries.fatal_problems == 0


def test_any_other_complaint_of_find_stops_the_walk(tmp_path, monkeypatch):
    put(tmp_path / "photos" / "a.jpg")
    broken = tmp_path / "find"
    broken.write_text("#!/bin/sh\necho \"find: failed to read file names from file system at or below '$2':"
                      " Cannot allocate memory\" >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(library_scan, "_find", lambda: str(broken))
    with pytest.raises(RuntimeError, match="find stopped with status 1"):
        walk(Matcher([str(tmp_path / "photos")], []))
