"""CLIP models in Immich's layout, run on onnxruntime.

A model lives in ``MODEL_DIR/clip/<name>/`` exactly as Immich's machine-learning service
keeps the files of the Hugging Face repository ``immich-app/<name>`` (the older layout
without a revision level)::

    config.json                       open_clip config (embed_dim, text_cfg.context_length, ...)
    visual/model.onnx                 image [1,3,S,S] float32 -> embedding [1,D]
    visual/preprocess_cfg.json        size, mean, std, interpolation, resize_mode
    textual/model.onnx                text [1,77] int32 -> embedding [1,D]
    textual/tokenizer.json            HuggingFace `tokenizers` file
    textual/tokenizer_config.json     pad_token

Production models (default ``ViT-B-32__openai``) come from ``python -m app models download``;
tests use ``test-clip-64`` built by ``tools/fetch_clip_models.py``. Both load through
`load_clip_model`, so preprocessing and tokenisation are the same code in both.

Embeddings are L2-normalised here even though Immich's exports already are: a model
exported another way then still gives cosine distances that mean what the index expects.
A `ClipModel` is immutable after loading and onnxruntime sessions can be run from several
threads, so one instance per process is shared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_CLIP_MODEL = "ViT-B-32__openai"
HF_BASE_URL = "https://huggingface.co"
HF_ORG = "immich-app"

CONFIG = "config.json"
VISUAL_MODEL = "visual/model.onnx"
PREPROCESS_CFG = "visual/preprocess_cfg.json"
TEXTUAL_MODEL = "textual/model.onnx"
TOKENIZER = "textual/tokenizer.json"
TOKENIZER_CFG = "textual/tokenizer_config.json"
MODEL_FILES = (CONFIG, VISUAL_MODEL, PREPROCESS_CFG, TEXTUAL_MODEL, TOKENIZER, TOKENIZER_CFG)

# Hugging Face repository names: no path separators, no "..". The name comes from the
# system config, which an admin can set to anything, and becomes a directory name.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class ClipModelMissing(RuntimeError):
    """The model's files are absent (or unusable); `reason` says what is wrong and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClipModelDownloadError(RuntimeError):
    """The model could not be downloaded; the message says which files to place where by hand."""


def model_path(model_dir: Path, name: str) -> Path:
    return Path(model_dir) / "clip" / name


def _bad_name(name: str) -> str | None:
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        return f"{name!r} is not a valid CLIP model name (expected a Hugging Face repository name like {DEFAULT_CLIP_MODEL})"
    return None


def missing_reason(model_dir: Path, name: str) -> str | None:
    """None when every file of the model is present, else why not and what to do (a file check only)."""
    bad = _bad_name(name)
    if bad:
        return bad
    path = model_path(model_dir, name)
    missing = [f for f in MODEL_FILES if not (path / f).is_file()]
    if not missing:
        return None
    state = (f"the CLIP model directory {path} does not exist" if not path.exists()
             else f"{path} lacks {', '.join(missing)}")
    return f"{state}. {_how_to_install(model_dir, name)}"


def clip_available(model_dir: Path, name: str) -> bool:
    """Whether `load_clip_model` would find the files (nothing is loaded)."""
    return missing_reason(model_dir, name) is None


def _how_to_install(model_dir: Path, name: str) -> str:
    path = model_path(model_dir, name)
    return (
        f"Run `python -m app models download` on a machine that can reach huggingface.co, or download "
        f"{', '.join(MODEL_FILES)} from {HF_BASE_URL}/{HF_ORG}/{name} and place them under {path} "
        f"with the same relative paths (MODEL_DIR sets the directory)."
    )


def load_clip_model(model_dir: Path, name: str, *, threads: int = 1) -> "ClipModel":
    """The model `name` from model_dir; raises ClipModelMissing with the reason when it cannot be used."""
    reason = missing_reason(model_dir, name)
    if reason:
        raise ClipModelMissing(reason)
    path = model_path(model_dir, name)
    try:
        return ClipModel(path, name, threads=threads)
    except ClipModelMissing:
        raise
    except Exception as exc:  # onnxruntime / tokenizers / json errors: a damaged install
        raise ClipModelMissing(
            f"the CLIP model in {path} could not be loaded ({type(exc).__name__}: {exc}); its files may be "
            f"damaged. {_how_to_install(model_dir, name)}"
        ) from exc


def _session(path: Path, threads: int):
    import onnxruntime as ort  # imported here: only processes that run models pay for it

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # Idle pool threads would otherwise spin and steal CPU from the worker's other jobs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


_ORT_INT_TYPES = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}


class Preprocess:
    """Immich's OpenCLIP image preprocessing, from visual/preprocess_cfg.json."""

    def __init__(self, cfg: dict) -> None:
        size = cfg["size"]
        self.size = int(size[0] if isinstance(size, list) else size)
        resampling = {r.name.lower(): r for r in Image.Resampling}
        self.resample = resampling[str(cfg.get("interpolation", "bicubic")).lower()]
        self.mean = np.asarray(cfg["mean"], dtype=np.float32).reshape(3)
        self.std = np.asarray(cfg["std"], dtype=np.float32).reshape(3)
        # Older open_clip configs have no resize_mode; "shortest" was their behaviour.
        self.resize_mode = cfg.get("resize_mode", "shortest")
        if self.resize_mode not in ("shortest", "squash"):
            raise ValueError(f"unsupported resize_mode {self.resize_mode!r}")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 for an HxWx3 uint8 RGB image."""
        image = Image.fromarray(_as_rgb(rgb), "RGB")
        s = self.size
        if self.resize_mode == "squash":
            image = image.resize((s, s), resample=self.resample)
        else:
            # Shorter side to s; the longer one truncated as Immich does (int, not round).
            w, h = image.size
            new = (s, int(h / w * s)) if w < h else (int(w / h * s), s)
            image = image.resize(new, resample=self.resample)
            left = int(image.width / 2 - s / 2)
            top = int(image.height / 2 - s / 2)
            image = image.crop((left, top, left + s, top + s))
        x = np.asarray(image, dtype=np.float32) / 255.0
        # As Immich computes it (x * 1/std - mean/std), so float32 rounding matches too.
        x = x * (np.float32(1.0) / self.std) - self.mean / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def clean_text(text: str, canonicalize: bool = False) -> str:
    """Immich's clean_text: collapse whitespace; with canonicalize also drop ASCII punctuation and lowercase."""
    import string

    text = " ".join(text.split())
    if canonicalize:
        text = text.translate(str.maketrans("", "", string.punctuation)).lower()
    return text


class ClipModel:
    """An image encoder and a text encoder sharing one embedding space of `dim` dimensions."""

    def __init__(self, directory: Path, name: str, *, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        self.name = name
        self.directory = Path(directory)
        config = _read_json(self.directory / CONFIG)
        text_cfg = config.get("text_cfg") or {}
        self.preprocess = Preprocess(_read_json(self.directory / PREPROCESS_CFG))

        context_length = int(text_cfg.get("context_length", 77))
        pad_token = _read_json(self.directory / TOKENIZER_CFG)["pad_token"]
        tokenizer = Tokenizer.from_file(str(self.directory / TOKENIZER))
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"pad token {pad_token!r} is not in {TOKENIZER}")
        tokenizer.enable_padding(length=context_length, pad_token=pad_token, pad_id=pad_id)
        tokenizer.enable_truncation(max_length=context_length)
        self.tokenizer = tokenizer
        kwargs = text_cfg.get("tokenizer_kwargs") or {}
        self.canonicalize = kwargs.get("clean") == "canonicalize"

        self._visual = _session(self.directory / VISUAL_MODEL, threads)
        self._textual = _session(self.directory / TEXTUAL_MODEL, threads)
        self._image_input = self._visual.get_inputs()[0].name
        # OpenCLIP exports take "text"; Immich's M-CLIP exports take input_ids + attention_mask.
        self._text_inputs = {i.name: _ORT_INT_TYPES.get(i.type, np.int32) for i in self._textual.get_inputs()}
        if not ("text" in self._text_inputs or {"input_ids", "attention_mask"} <= set(self._text_inputs)):
            raise ClipModelMissing(
                f"{self.directory / TEXTUAL_MODEL} takes inputs {sorted(self._text_inputs)}; only OpenCLIP "
                f"('text') and M-CLIP ('input_ids', 'attention_mask') text models are supported"
            )
        self.dim = self._embedding_dim(config)

    def _embedding_dim(self, config: dict) -> int:
        dims = set()
        for session in (self._visual, self._textual):
            last = session.get_outputs()[0].shape[-1]
            if isinstance(last, int) and last > 0:
                dims.add(last)
        if not dims and isinstance(config.get("embed_dim"), int):
            dims.add(config["embed_dim"])
        if len(dims) != 1:
            raise ClipModelMissing(
                f"cannot tell the embedding size of {self.directory}: outputs give {sorted(dims) or 'none'}"
            )
        return dims.pop()

    def encode_image(self, rgb: np.ndarray) -> np.ndarray:
        """(dim,) float32, L2-normalised, for an HxWx3 uint8 RGB image."""
        out = self._visual.run(None, {self._image_input: self.preprocess(rgb)})[0]
        return _normalised(out, self.dim)

    def tokenize(self, text: str) -> dict[str, np.ndarray]:
        encoding = self.tokenizer.encode(clean_text(text, self.canonicalize))
        if "text" in self._text_inputs:
            return {"text": np.array([encoding.ids], dtype=self._text_inputs["text"])}
        return {
            "input_ids": np.array([encoding.ids], dtype=self._text_inputs["input_ids"]),
            "attention_mask": np.array([encoding.attention_mask], dtype=self._text_inputs["attention_mask"]),
        }

    def encode_text(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalised, for a query string."""
        out = self._textual.run(None, self.tokenize(text))[0]
        return _normalised(out, self.dim)

    def __repr__(self) -> str:
        return f"<ClipModel {self.name} dim={self.dim}>"


def _normalised(out: np.ndarray, dim: int) -> np.ndarray:
    vector = np.asarray(out, dtype=np.float32).reshape(-1)[:dim]
    if vector.shape != (dim,) or not np.isfinite(vector).all():
        raise ValueError(f"the model returned {np.asarray(out).shape} (or non-finite values), expected [1, {dim}]")
    norm = float(np.linalg.norm(vector))
    return vector / max(norm, 1e-12)


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


# --- download ------------------------------------------------------------------------------


def download_clip_model(model_dir: Path, name: str = DEFAULT_CLIP_MODEL, *, base_url: str = HF_BASE_URL,
                        timeout: float = 60.0) -> Path:
    """Fetch the model's files from Hugging Face `immich-app/<name>` into model_dir/clip/<name>.

    Files are moved into place only after all of them arrived, so a failed run leaves a
    previous install untouched. Returns the model directory.
    """
    bad = _bad_name(name)
    if bad:
        raise ClipModelDownloadError(bad)
    dest = model_path(model_dir, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
    try:
        for rel in MODEL_FILES:
            url = f"{base_url.rstrip('/')}/{HF_ORG}/{name}/resolve/main/{rel}"
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as f:
                    shutil.copyfileobj(response, f, 1 << 20)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise ClipModelDownloadError(
                    f"Could not download {url}: {reason}. This machine may be offline, or {HF_ORG}/{name} "
                    f"may not exist. To install by hand, download from {base_url.rstrip('/')}/{HF_ORG}/{name}:\n"
                    + "".join(f"  {r}  ->  {dest / r}\n" for r in MODEL_FILES)
                ) from exc
        for rel in MODEL_FILES:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, dest / rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
