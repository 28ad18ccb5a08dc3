"""The face pipeline's geometry on OpenCV agrees with the numpy/Pillow code it replaced.

Oracles:
* `umeyama` and `nms_numpy` below are frozen copies of the functions app/faces/models.py
  had before OpenCV (commit 6ae9cc7): the comparison reference, not product code.
* tests/data/face_geometry_reference.npz holds what that code detected and embedded on
  the test portrait and the variants made by `variants` (test pack, which is pinned).
  Regenerate it only from a checkout of the old code:
  `python tests/test_face_geometry.py OLD/app/faces/models.py tests/data/face_geometry_reference.npz`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script to write the fixture: make `app` and `tools` importable
    sys.path.insert(0, str(ROOT))

from app.faces.models import (  # noqa: E402
    ARCFACE_TEMPLATE,
    DetectedFace,
    _nms,
    align_face,
    load_face_models,
    similarity_transform,
)
from tools.fetch_face_models import ensure_test_models  # noqa: E402

PACK = ROOT / ".cache" / "models" / "test-pack"
PORTRAIT = ROOT.parent / "shared" / "test-assets" / "metadata" / "faces" / "portrait.jpg"
REFERENCE = ROOT / "tests" / "data" / "face_geometry_reference.npz"
needs_assets = pytest.mark.skipif(not PORTRAIT.exists(), reason="../shared/test-assets is absent")


# --- frozen reference implementations (pre-OpenCV) -------------------------------------------


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mean_s, mean_d = src.mean(0), dst.mean(0)
    sc, dc = src - mean_s, dst - mean_d
    var_s = (sc**2).sum() / len(src)
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (s * d).sum() / var_s if var_s > 0 else 1.0
    shift = mean_d - scale * rot @ mean_s
    return np.hstack([scale * rot, shift[:, None]])


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        if mode == "min":
            overlap = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        else:
            overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= threshold]
    return np.array(keep, np.int64)


def pillow_align(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    m = umeyama(landmarks, ARCFACE_TEMPLATE * (size / 112.0))
    inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    c = inv[:, 2] + 0.5 - 0.5 * inv[:, :2].sum(axis=1)
    coeffs = (inv[0, 0], inv[0, 1], c[0], inv[1, 0], inv[1, 1], c[1])
    out = Image.fromarray(rgb).transform(
        (size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


def variants(portrait: np.ndarray) -> dict[str, np.ndarray]:
    """The test portrait and edited copies: mirrored, offset, above MTCNN's max side, small, rotated."""
    src = Image.fromarray(portrait)
    return {
        "portrait": portrait,
        "mirrored_bright": np.asarray(
            ImageEnhance.Brightness(src.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).enhance(1.3)
        ),
        "padded": np.ascontiguousarray(np.pad(portrait, ((37, 0), (101, 0), (0, 0)))),
        "big": np.asarray(src.resize((2100, 1750), Image.Resampling.LANCZOS)),
        "small": np.asarray(src.resize((420, 350), Image.Resampling.LANCZOS)),
        "rot_small": np.asarray(src.rotate(12, resample=Image.Resampling.BICUBIC)),
    }


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --- transform and NMS on synthetic input ----------------------------------------------------


def landmark_sets(count: int, seed: int = 3):
    """Template copies under random similarities, with noise up to 10 template px, some mirrored."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.05, 20.0)
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = ARCFACE_TEMPLATE @ rot.T + rng.uniform(-2000, 2000, 2)
        pts = pts + rng.normal(0.0, rng.uniform(0.0, 10.0) * scale, pts.shape)
        if i % 7 == 0:
            pts = pts[:, ::-1]  # a reflection: the best proper similarity is a poor fit, scale near 0
        yield pts


def test_similarity_transform_matches_umeyama():
    for pts in landmark_sets(1000):
        got, want = similarity_transform(pts, ARCFACE_TEMPLATE), umeyama(pts, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(got, want, atol=1e-4)
    # Exact recovery of a known similarity.
    angle = np.deg2rad(-33)
    rot = 0.4 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = ARCFACE_TEMPLATE @ rot.T + [512.25, -7.5]
    m = similarity_transform(pts, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(pts @ m[:, :2].T + m[:, 2], ARCFACE_TEMPLATE, atol=1e-4)
    # All landmarks in one spot: a shift only, as before.
    same = np.full((5, 2), 40.0)
    np.testing.assert_allclose(similarity_transform(same, ARCFACE_TEMPLATE), umeyama(same, ARCFACE_TEMPLATE), atol=1e-9)
    with pytest.raises(ValueError):
        similarity_transform(np.full((5, 2), np.nan), ARCFACE_TEMPLATE)


def random_boxes(rng, n: int) -> np.ndarray:
    xy = rng.uniform(0, 300, (n, 2))
    wh = rng.uniform(5, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


@pytest.mark.parametrize("threshold", [0.3, 0.4, 0.5, 0.7])
def test_nms_matches_numpy(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    for n in (0, 1, 2, 10, 60, 300):
        boxes = random_boxes(rng, n)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        if n > 4:
            scores[: n // 4] = scores[n // 4]  # ties in score: both keep input order
        for mode in ("union", "min"):
            got = _nms(boxes, scores, threshold, mode)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, nms_numpy(boxes, scores, threshold, mode))


def test_nms_ties_at_the_threshold_are_suppressed():
    # P-Net windows 4 px apart overlap by exactly 0.5 (96 / 192): with threshold 0.5 the
    # worse one goes, every time, rather than by rounding.
    grid = np.array([[0, 0, 12, 12], [4, 0, 16, 12], [0, 20, 12, 32], [0, 26, 12, 38]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert _nms(grid, scores, 0.5).tolist() == [3, 0, 2]
    # Zero-size boxes do not crash it.
    flat = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], np.float64)
    assert sorted(_nms(flat, np.array([0.5, 0.6], np.float32), 0.5).tolist()) == [0, 1]


# --- on the test portrait: alignment, detection and embeddings --------------------------------


@pytest.fixture(scope="module")
def models():
    ensure_test_models(PACK)
    loaded = load_face_models(PACK.parent)
    assert loaded is not None
    return loaded


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return np.asarray(Image.open(PORTRAIT).convert("RGB"))


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


def reference_faces(reference, name: str) -> list[DetectedFace]:
    return [
        DetectedFace(box=b, landmarks=lm, score=s)
        for b, lm, s in zip(reference[f"{name}.boxes"], reference[f"{name}.landmarks"], reference[f"{name}.scores"])
    ]


@needs_assets
def test_warp_matches_pillow(portrait, reference):
    for face in reference_faces(reference, "portrait"):
        new, old = align_face(portrait, face.landmarks), pillow_align(portrait, face.landmarks)
        assert new.shape == old.shape == (112, 112, 3) and new.dtype == np.uint8
        diff = np.abs(new.astype(np.int16) - old.astype(np.int16))
        # Measured: mean 0.5 grey levels, none more than 1 apart (rounding: OpenCV's bilinear
        # weights are fixed point, Pillow's float).
        assert diff.mean() < 1.0 and diff.max() <= 2, (diff.mean(), diff.max())
    # A face hanging off the image edge: both fill with black.
    lm = reference_faces(reference, "portrait")[0].landmarks - [300.0, 180.0]
    new, old = align_face(portrait, lm), pillow_align(portrait, lm)
    assert (new[:20, :20] == 0).all() and (old[:20, :20] == 0).all()


@needs_assets
@pytest.mark.parametrize("name", ["portrait", "mirrored_bright", "padded", "big", "small", "rot_small"])
def test_embeddings_agree_with_the_previous_code(models, portrait, reference, name):
    image = variants(portrait)[name]
    ref_faces = reference_faces(reference, name)
    ref_emb = reference[f"{name}.embeddings"]
    assert ref_faces

    # Same landmarks, new alignment: the embeddings are the same (measured >= 0.9996).
    again = models.embed(image, ref_faces)
    assert ((again * ref_emb).sum(axis=1) >= 0.999).all(), (again * ref_emb).sum(axis=1)

    # Whole pipeline. The MTCNN cascade keeps Pillow's BOX resampling (see _crops), so on
    # the portrait and most copies detection is unchanged to the pixel. Two copies move:
    # "big" is shrunk to 1440 px by cv2.INTER_AREA instead of Pillow's bilinear, and on
    # "small" the old code kept a few P-Net windows overlapping exactly 0.5 by rounding.
    faces = models.detect(image)
    emb = models.embed(image, faces)
    assert len(faces) == len(ref_faces), [f.box for f in faces]
    moved = name in ("big", "small")
    for j, ref in enumerate(ref_faces):
        k = max(range(len(faces)), key=lambda i: iou(faces[i].box, ref.box))
        cos = float(emb[k] @ ref_emb[j])
        if moved:
            # Measured: IoU 0.92-0.99, landmarks within 2 px, cosine 0.985-0.999.
            assert iou(faces[k].box, ref.box) > 0.9 and np.abs(faces[k].landmarks - ref.landmarks).max() < 3
            assert cos >= 0.98, cos
        else:
            np.testing.assert_allclose(faces[k].box, ref.box, atol=0.05)
            np.testing.assert_allclose(faces[k].landmarks, ref.landmarks, atol=0.05)
            assert abs(faces[k].score - ref.score) < 1e-4
            assert cos >= 0.99, cos


def write_reference(models_py: Path, out: Path) -> None:
    """Detect and embed `variants` with the models module at models_py (the pre-OpenCV code)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_face_models", models_py)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    ensure_test_models(PACK)
    models = module.load_face_models(PACK.parent)
    portrait = np.asarray(Image.open(PORTRAIT).convert("RGB"))
    arrays = {}
    for name, image in variants(portrait).items():
        faces = models.detect(image)
        arrays[f"{name}.boxes"] = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        arrays[f"{name}.landmarks"] = np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2)
        arrays[f"{name}.scores"] = np.array([f.score for f in faces], np.float32)
        arrays[f"{name}.embeddings"] = models.embed(image, faces).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    write_reference(Path(sys.argv[1]), Path(sys.argv[2]))
