"""CLIP image-embedding throughput on 24 MP JPEGs, from the preview the pipeline already made.

    OPENBLAS_NUM_THREADS=1 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/clip_embed.py [--count 8] [--runs 3] [--model-dir DIR]

(one BLAS thread: the worker runs the model on one thread, and so should the proxy below)

Corpus: `--count` generated 24 MP JPEGs (bench/variants.py's corpus: 6000x4000, photo-like
smooth noise, Q90, cached in bench/out/corpus). Each goes through the variants step's own
renderer (app.media.images.render_image) once, untimed except for a line of context; its preview
JPEG is what the smart-search step reads. Then, per image and --runs times, the step's work as
app/domain/smart_search.run_encoding does it, timed in parts:
  - decode the preview to RGB (smart_search._load_rgb)
  - preprocess (resize, centre crop, normalise as visual/preprocess_cfg.json says)
  - the visual model (ONNX Runtime, one thread as the worker loads it)
The floor is the model alone (the last part); the preprocessing share is (decode + preprocess) /
total. Model: the CLIP test model test-clip-64 (tools/fetch_clip_models.py; a 16x16 average pool
and a projection, so far cheaper than ViT-B-32: its share of preprocessing is an upper bound).
No registry package ships ViT-B-32's weights, so a last line times the matrix products of one
ViT-B/32 forward pass in numpy (a proxy of the real model's arithmetic, labelled as such) and
gives the rate and share the step would have with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants import ROOT, corpus  # noqa: E402

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def vit_b32_proxy() -> float:
    """Seconds for the matrix products of one ViT-B/32 image forward pass, random float32 operands."""
    rng = np.random.default_rng(0)
    tokens, width, heads, mlp = 50, 768, 12, 3072
    weights = {shape: rng.standard_normal(shape, dtype=np.float32) * 0.02
               for shape in ((3 * 32 * 32, width), (width, 3 * width), (width, width), (width, mlp), (mlp, width),
                             (width, 512))}
    patches = rng.standard_normal((tokens - 1, 3 * 32 * 32), dtype=np.float32)
    t0 = time.perf_counter()
    x = np.vstack([np.zeros((1, width), np.float32), patches @ weights[(3 * 32 * 32, width)]])
    for _ in range(12):
        qkv = x @ weights[(width, 3 * width)]
        q, k, v = (qkv[:, i * width:(i + 1) * width].reshape(tokens, heads, -1).transpose(1, 0, 2) for i in range(3))
        scores = q @ k.transpose(0, 2, 1) / 8.0
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attended = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        x = x + attended.transpose(1, 0, 2).reshape(tokens, width) @ weights[(width, width)]
        hidden = x @ weights[(width, mlp)]
        x = x + np.maximum(hidden, 0) @ weights[(mlp, width)]
    _ = x[0] @ weights[(width, 512)]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".cache" / "models")
    args = parser.parse_args()
    blas = os.environ.get("OPENBLAS_CORETYPE")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f};"
          f" OPENBLAS_CORETYPE {'=' + blas if blas else 'unset'};"
          f" OPENBLAS_NUM_THREADS {os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; {datetime.now().isoformat(timespec='seconds')}")

    from fetch_clip_models import ensure_test_clip_model

    from app.clip.models import load_clip_model, model_path
    from app.domain.smart_search import _load_rgb
    from app.media.images import render_image

    name = ensure_test_clip_model(args.model_dir)
    model = load_clip_model(args.model_dir, name, threads=1)
    print(f"model {name} ({model.dim}-d) from {model_path(args.model_dir, name)}")

    files = corpus(args.count)
    work = Path(tempfile.mkdtemp(prefix="bench-clip-embed-"))
    previews = []
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        rendered = render_image(path, "image/jpeg")
        preview = next(r for r in rendered.renditions if r.kind == "preview")
        out = work / f"preview_{i}.jpg"
        out.write_bytes(preview.data)
        previews.append(out)
    render_s = time.perf_counter() - t0
    print(f"{len(files)} x 24 MP JPEG -> preview {preview.width}x{preview.height} (the variants step, context only):"
          f" {render_s / len(files) * 1000:.0f} ms per image")

    decode, prep, infer = [], [], []
    session, input_name = model._visual, model._image_input
    for _ in range(args.runs):
        for path in previews:
            t0 = time.perf_counter()
            rgb = _load_rgb(path)
            t1 = time.perf_counter()
            tensor = model.preprocess(rgb)
            t2 = time.perf_counter()
            session.run(None, {input_name: tensor})
            t3 = time.perf_counter()
            decode.append(t1 - t0)
            prep.append(t2 - t1)
            infer.append(t3 - t2)
    total = np.sum(decode) + np.sum(prep) + np.sum(infer)
    n = len(infer)
    print(f"embedding step over {n} previews ({args.runs} runs of {len(previews)}):")
    print(f"  decode preview: {np.mean(decode) * 1000:.1f} ms/image; preprocess: {np.mean(prep) * 1000:.1f} ms/image;"
          f" model: {np.mean(infer) * 1000:.1f} ms/image")
    print(f"  ours (decode + preprocess + model): {n / total:.1f} images/s")
    print(f"  floor (model alone): {n / np.sum(infer):.1f} images/s; ratio floor/ours {total / np.sum(infer):.1f}x")
    print(f"  preprocessing share (decode + preprocess): {(np.sum(decode) + np.sum(prep)) / total:.0%}")
    # The test model is a pool and a projection. No registry ships ViT-B-32 weights, so its cost is
    # estimated from its arithmetic: the same matrix products (ViT-B/32 at 224 px: 49 patches plus
    # the class token, width 768, 12 layers, 12 heads, MLP 3072, projection to 512) in numpy.
    vit = [vit_b32_proxy() for _ in range(max(3, args.runs))]
    per_image = float(np.median(vit))
    pre = (np.sum(decode) + np.sum(prep)) / n
    print(f"  ViT-B-32-sized matrix products (a proxy of Immich's default model, not the model):"
          f" {per_image * 1000:.0f} ms/image; with it the step would run {1 / (pre + per_image):.1f} images/s"
          f" and preprocessing would be {pre / (pre + per_image):.0%} of it")
    for path in previews:
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
