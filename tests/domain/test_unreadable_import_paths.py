"""An import path or a folder the server cannot read, for real: validate says so in Immich's words and
the walk goes on without it. Root reads every folder, so when the tests run as root the checks run
in a child process without root's power to bypass file permissions (util-linux `setpriv` drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH): the same code, on the same files, refused for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DROP = "-dac_override,-dac_read_search"

CHECK = """
import json, sys
from pathlib import Path
from app.domain.external_libraries import import_path_problem
from app.domain.library_scan import Matcher, walk
root, locked = sys.argv[1], sys.argv[2]
found, unreadable = walk(Matcher([root], ["**/@eaDir/**", "**/Thumb[s]/**"]), [root])
print(json.dumps({"locked": import_path_problem(locked, Path("/nonexistent-data-dir")),
                  "root": import_path_problem(root, Path("/nonexistent-data-dir")),
                  "found": sorted(found), "unreadable": unreadable}))
"""


def _as_unprivileged(root: Path, locked: Path) -> dict:
    command = [sys.executable, "-c", CHECK, str(root), str(locked)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv: no way to be refused a folder")
        command = [setpriv, f"--bounding-set={DROP}", f"--inh-caps={DROP}", *command]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_unreadable_import_path_is_reported_and_an_unreadable_folder_skipped():
    base = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        root = base / "photos"
        (root / "locked").mkdir(parents=True)
        (root / "ok.jpg").write_bytes(b"\xff\xd8\xff\xe0 a jpeg's first bytes")
        (root / "locked" / "hidden-away.jpg").write_bytes(b"\xff\xd8\xff\xe0")
        (root / "locked").chmod(0)
        for excluded in ("@eaDir", "Thumbs"):  # shut, but excluded (by name, then by a glob): not the walk's concern
            (root / "x" / excluded).mkdir(parents=True)
            (root / "x" / excluded).chmod(0)
        seen = _as_unprivileged(root, root / "locked")
    finally:
        for folder in ("locked", "x/@eaDir", "x/Thumbs"):
            (base / "photos" / folder).chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
    assert seen["root"] is None
    assert seen["locked"] == "Lacking read permission for folder"
    assert seen["found"] == [str(root / "ok.jpg")]
    assert seen["unreadable"] == [str(root / "locked")]
