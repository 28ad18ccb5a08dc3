"""Face models on the real test pack (MTCNN + MobileFaceNet built from PyPI/npm packages).

No server: these call app.faces.models directly. The pack is built once into
.cache/models/test-pack by tools/fetch_face_models.py and reused afterwards.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from app.faces.models import (
    ARCFACE_TEMPLATE,
    BuffaloL,
    DetectedFace,
    FaceModels,
    ModelDownloadError,
    MtcnnMobileFaceNet,
    align_face,
    download_buffalo_l,
    load_face_models,
    missing_models_reason,
    similarity_transform,
)
from tools.fetch_face_models import ensure_test_models

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / ".cache" / "models" / "test-pack"
ASSETS = ROOT.parent / "shared" / "test-assets"
PORTRAIT = ASSETS / "metadata" / "faces" / "portrait.jpg"
needs_assets = pytest.mark.skipif(not ASSETS.exists(), reason="../shared/test-assets is absent")

# Face regions from the photo's own XMP (mwg-rs, normalised centre/size) in 840x700 pixels.
MARIE = (262.0, 146.0, 357.0, 285.0)
PIERRE = (537.0, 83.0, 618.0, 252.0)


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def best(faces: list[DetectedFace], region) -> DetectedFace | None:
    scored = [(iou(f.box, region), f) for f in faces]
    scored = [s for s in scored if s[0] > 0.4]
    return max(scored, key=lambda s: s[0])[1] if scored else None


@pytest.fixture(scope="module")
def models() -> FaceModels:
    ensure_test_models(PACK)
    loaded = load_face_models(PACK.parent)
    assert loaded is not None, missing_models_reason(PACK.parent)
    return loaded


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return np.asarray(Image.open(PORTRAIT).convert("RGB"))


@pytest.fixture(scope="module")
def upright(models, portrait) -> list[DetectedFace]:
    return models.detect(portrait)


def test_pack_manifest_and_loader(models):
    assert isinstance(models, MtcnnMobileFaceNet)
    assert models.name == "mtcnn-mobilefacenet" and models.embedding_dim == 192
    assert (PACK / "pack.json").exists() and ensure_test_models(PACK) == PACK.resolve()
    for name in ("pnet.onnx", "rnet.onnx", "onet.onnx", "mobilefacenet.onnx"):
        assert (PACK / name).stat().st_size > 10_000
    assert (PACK / "licenses" / "NOTICE.txt").read_text().count("MIT") == 2
    # The pack directory itself also works as MODEL_DIR (pack.json at its top).
    assert isinstance(load_face_models(PACK), MtcnnMobileFaceNet)


@needs_assets
def test_detects_the_two_people(upright, portrait):
    assert len(upright) == 2, [(f.box, f.score) for f in upright]
    assert upright[0].score >= upright[1].score >= 0.7
    marie, pierre = best(upright, MARIE), best(upright, PIERRE)
    assert marie is not None and pierre is not None and marie is not pierre
    h, w = portrait.shape[:2]
    for face in upright:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert 40 < x2 - x1 < 200 and 40 < y2 - y1 < 250
        lm = face.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        assert ((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1) & (lm[:, 1] <= y2)).all(), (face.box, lm)
        assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1])  # eyes above the mouth corners
        assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # nose between
    # Frontal face: "left" landmarks are on the image left.
    lm = marie.landmarks
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


@needs_assets
def test_embeddings(models, portrait, upright):
    emb = models.embed(portrait, upright)
    assert emb.shape == (2, 192) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    marie_i = upright.index(best(upright, MARIE))
    marie, pierre = emb[marie_i], emb[1 - marie_i]
    # Measured: 0.22 between the two people.
    assert float(marie @ pierre) < 0.45

    # Same person in an edited copy: measured 0.96 (mirrored + brightened), 0.98 (brightened).
    src = Image.fromarray(portrait)
    edited = np.asarray(ImageEnhance.Brightness(src.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).enhance(1.3))
    faces = models.detect(edited)
    w = portrait.shape[1]
    mirrored_marie = (w - MARIE[2], MARIE[1], w - MARIE[0], MARIE[3])
    found = best(faces, mirrored_marie)
    assert found is not None
    again = models.embed(edited, [found])[0]
    assert float(again @ marie) > 0.85
    assert float(again @ pierre) < 0.45

    # A single face (padded to MobileFaceNet's fixed batch of 2) embeds as it does in a pair.
    alone = models.embed(portrait, [upright[marie_i]])
    np.testing.assert_allclose(alone[0], marie, atol=1e-5)
    assert models.embed(portrait, []).shape == (0, 192)


def test_alignment_moves_landmarks_onto_the_template():
    # A known similarity (scale 2.3, 20 degrees, shift) of the template, drawn as bright dots.
    angle = np.deg2rad(20)
    rot = 2.3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE @ rot.T + [150.0, 60.0]
    m = similarity_transform(points, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(points @ m[:, :2].T + m[:, 2], ARCFACE_TEMPLATE, atol=1e-3)

    image = np.zeros((400, 500, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    crop = align_face(image, np.round(points))
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    grey = crop[:, :, 0].astype(np.float64)
    errors = []
    for tx, ty in ARCFACE_TEMPLATE:
        x0, y0 = int(tx) - 5, int(ty) - 5
        win = grey[y0 : y0 + 11, x0 : x0 + 11]
        ys, xs = np.mgrid[y0 : y0 + 11, x0 : x0 + 11]
        errors.append(((xs * win).sum() / win.sum() - tx, (ys * win).sum() / win.sum() - ty))
    errors = np.array(errors)
    assert np.abs(errors).max() < 0.5, errors
    # No systematic shift (a half-pixel convention slip between numpy and Pillow would show here).
    assert np.abs(errors.mean(axis=0)).max() < 0.15, errors


@needs_assets
def test_mirrored_pixels_map_back(models, portrait, upright):
    w = portrait.shape[1]
    faces = models.detect(np.ascontiguousarray(portrait[:, ::-1]))
    assert faces
    for face in faces:
        x1, y1, x2, y2 = face.box
        back = (w - x2, y1, w - x1, y2)
        match = max(upright, key=lambda u: iou(u.box, back))
        assert iou(match.box, back) > 0.7, (back, match.box)
        # The image-left eye of the mirror is the image-right eye of the original.
        lm = face.landmarks.copy()
        lm[:, 0] = w - lm[:, 0]
        assert np.abs(lm[[1, 0, 2, 4, 3]] - match.landmarks).max() < 12
    assert best(faces, (w - MARIE[2], MARIE[1], w - MARIE[0], MARIE[3])) is not None


@needs_assets
@pytest.mark.parametrize("turn", ["rot90", "rot180", "rot270", "flipud"])
def test_rotated_pixels_raise_no_phantom_faces(models, portrait, upright, turn):
    """Pixels turned (np.rot90 is counter-clockwise) or flipped, detected, boxes mapped back.

    Measured: MTCNN finds no face at all in these frames. Neither it nor SCRFD is rotation
    invariant, so callers must pass upright pixels (the preview is). What is found in a
    turned frame must still map back onto a real upright face.
    """
    h, w = portrait.shape[:2]
    pixels, back = {  # back: turned (x, y) -> original (x, y)
        "rot90": (np.rot90(portrait, 1), lambda x, y: (w - y, x)),
        "rot180": (np.rot90(portrait, 2), lambda x, y: (w - x, h - y)),
        "rot270": (np.rot90(portrait, 3), lambda x, y: (y, h - x)),
        "flipud": (portrait[::-1], lambda x, y: (x, h - y)),
    }[turn]
    faces = models.detect(np.ascontiguousarray(pixels))
    for face in faces:
        (ax, ay), (bx, by) = back(face.box[0], face.box[1]), back(face.box[2], face.box[3])
        box = (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
        assert max(iou(u.box, box) for u in upright) > 0.7, (turn, box)


@needs_assets
def test_coordinates_survive_offset_and_downscale(models, portrait, upright):
    marie = best(upright, MARIE)
    # Offset on a non-square canvas: boxes and landmarks shift by exactly the padding.
    padded = np.pad(portrait, ((37, 0), (101, 0), (0, 0)))
    shifted = [
        DetectedFace(box=tuple(np.array(f.box) - [101, 37, 101, 37]), landmarks=f.landmarks - [101, 37], score=f.score)
        for f in models.detect(padded)
    ]
    found = best(shifted, MARIE)
    assert found is not None and iou(found.box, marie.box) > 0.7
    assert np.abs(found.landmarks - marie.landmarks).max() < 8
    # Larger than 1440 px: detected on a downscaled copy, reported in input pixels.
    big = np.asarray(Image.fromarray(portrait).resize((2100, 1750), Image.Resampling.LANCZOS))
    scaled = [
        DetectedFace(box=tuple(v / 2.5 for v in f.box), landmarks=f.landmarks / 2.5, score=f.score)
        for f in models.detect(big)
    ]
    found = best(scaled, MARIE)
    assert found is not None and iou(found.box, marie.box) > 0.7
    assert np.abs(found.landmarks - marie.landmarks).max() < 8


def test_blank_and_tiny_images(models):
    assert models.detect(np.full((300, 400, 3), 128, np.uint8)) == []
    assert models.detect(np.zeros((8, 8, 3), np.uint8)) == []
    with pytest.raises(ValueError):
        models.detect(np.zeros((10, 10, 3), np.float32))


def test_missing_models(tmp_path):
    assert load_face_models(tmp_path) is None
    reason = missing_models_reason(tmp_path)
    assert "models download" in reason and "det_10g.onnx" in reason and "w600k_r50.onnx" in reason
    assert "fetch_face_models" in reason
    (tmp_path / "buffalo_l").mkdir()
    (tmp_path / "buffalo_l" / "det_10g.onnx").write_bytes(b"")
    assert load_face_models(tmp_path) is None
    assert "not w600k_r50.onnx" in missing_models_reason(tmp_path)
    assert "does not exist" in missing_models_reason(tmp_path / "nowhere")


def test_download_failure_explains_what_to_do(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: a real, immediate connection failure
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/buffalo_l.zip"
    with pytest.raises(ModelDownloadError) as err:
        download_buffalo_l(tmp_path, url=url, timeout=5)
    message = str(err.value)
    assert url in message and "offline" in message
    assert "det_10g.onnx" in message and "w600k_r50.onnx" in message and str(tmp_path / "buffalo_l") in message
    assert list(tmp_path.iterdir()) == []  # no half install, no temp dir left behind


# --- buffalo_l plumbing on tiny synthetic ONNX models (the real weights are not available here) ---


def _synthetic_buffalo_l(dest: Path) -> None:
    """det_10g/w600k_r50 stand-ins with the real I/O shapes: one face at a known place, linear embeddings."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, outputs, tensors = [], [], []
    for stride in (8, 16, 32):
        cells = (640 // stride) ** 2 * 2
        score, dist, kps = (np.zeros((cells, n), np.float32) for n in (1, 4, 10))
        if stride == 16:
            # Cell (row 10, col 15), second anchor: centre (240, 160) in the 640x640 input.
            i = (10 * 40 + 15) * 2 + 1
            score[i] = 0.95
            dist[i] = [2, 3, 4, 5]  # in strides: box 208..304 x 112..240
            kps[i] = [-1, -1, 1, -1, 0, 0, -1, 1.5, 1, 1.5]
            score[i - 1] = 0.9  # the other anchor of the same cell, overlapping: NMS drops it
            dist[i - 1] = [2, 3, 4, 5.5]
        for kind, arr in (("score", score), ("bbox", dist), ("kps", kps)):
            tensors.append((f"{kind}_{stride}", arr))
    for name, arr in reversed(tensors):  # reversed: outputs must be matched by shape, not order
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr)))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(arr.shape)))
    det_in = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])
    det = helper.make_graph(nodes, "det", [det_in], outputs)
    onnx.save(helper.make_model(det, opset_imports=[helper.make_opsetid("", 13)]), dest / "det_10g.onnx")

    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32), "w")
    rec = helper.make_graph(
        [helper.make_node("ReduceMean", ["input.1"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["683"])],
        "rec",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
        initializer=[weights],
    )
    onnx.save(helper.make_model(rec, opset_imports=[helper.make_opsetid("", 13)]), dest / "w600k_r50.onnx")


def test_buffalo_l_plumbing(tmp_path):
    pytest.importorskip("onnx")
    (tmp_path / "buffalo_l").mkdir()
    _synthetic_buffalo_l(tmp_path / "buffalo_l")
    ensure_test_models(PACK)
    (tmp_path / "test-pack").symlink_to(PACK)  # buffalo_l wins over the test pack
    models = load_face_models(tmp_path, min_score=0.5)
    assert isinstance(models, BuffaloL) and models.name == "buffalo_l" and models.embedding_dim == 512
    # 1280x960 letterboxes into 640x640 at scale 0.5, so input pixels are twice the model's.
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (960, 1280, 3), dtype=np.uint8)
    faces = models.detect(image)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, (416, 224, 608, 480), atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks[0], (448, 288), atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks[4], (512, 368), atol=1e-3)
    assert faces[0].score == pytest.approx(0.95)
    assert load_face_models(tmp_path, min_score=0.97).detect(image) == []
    emb = models.embed(image, faces * 3)
    assert emb.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
