"""ThumbHash encoding (Evan Wallace's format, https://evanw.github.io/thumbhash/), with numpy.

The PyPI `thumbhash` 0.1.2 package cannot encode any image with transparency: a precedence
slip (`x = f() if alpha else 1.0, [], 1.0`) turns the alpha DC term into a tuple and
`round()` raises TypeError. It is unmaintained, so this is a port of the reference
JavaScript encoder (`rgbaToThumbHash` in the npm `thumbhash` package), alpha included,
byte for byte: tests compare it with vectors the reference produced. numpy does the
arithmetic; each coefficient is one vectorised product and sum instead of a Python loop.
"""

from __future__ import annotations

import numpy as np

MAX_SIDE = 100  # the reference refuses larger inputs: more pixels change nothing but the cost


def _js_round(value: float) -> int:
    """JavaScript's Math.round (halves go up); Python's round() would send 2.5 to 2."""
    return int(np.floor(value + 0.5))


def _encode_channel(channel: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
    h, w = channel.shape
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    # The reference's triangular set of frequencies, in its order (rows of cy, then cx).
    pairs = [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    # Each cosine row is computed by the same expression on the same shape as the reference's loop
    # would, so the values are bitwise the same; only the products and sums are batched.
    fx = np.stack([np.cos(np.pi / w * cx * xs) for cx in range(nx)])
    fy = np.stack([np.cos(np.pi / h * cy * ys) for cy in range(ny)])
    cxs, cys = [cx for cx, _ in pairs], [cy for _, cy in pairs]
    # Same products (channel * fx, then * fy) summed in the same order as the reference's loop:
    # cumsum is a strictly sequential sum, np.sum is pairwise. Coefficients that should be 0 land
    # on the same side of 0, so rounding at 7.5 agrees and so do the bytes.
    products = channel[None, :, :] * fx[cxs][:, None, :] * fy[cys][:, :, None]
    sums = np.cumsum(products.reshape(len(pairs), -1), axis=1)[:, -1] / (w * h)
    dc = float(sums[0])  # (0, 0) comes first
    ac = [float(v) for v in sums[1:]]
    scale = max((abs(v) for v in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * v for v in ac]
    return dc, ac, scale


def rgba_to_thumbhash(rgba: np.ndarray) -> bytes:
    """ThumbHash of straight (not premultiplied) 8-bit RGBA pixels, shape (height, width, 4)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected height x width x 4 RGBA pixels, got shape {rgba.shape}")
    h, w = rgba.shape[:2]
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"{w}x{h} doesn't fit in {MAX_SIDE}x{MAX_SIDE}")
    px = rgba.astype(np.float64)
    alpha = px[:, :, 3] / 255
    # Sequential sums, as the reference adds them (see _encode_channel).
    total_alpha = float(np.cumsum(alpha.ravel())[-1])
    avg = np.cumsum((alpha[:, :, None] / 255 * px[:, :, :3]).reshape(-1, 3), axis=0)[-1]
    if total_alpha:
        avg = avg / total_alpha
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))

    # Composite over the average colour, then to luminance / yellow-blue / red-green.
    rgb = avg[None, None, :] * (1 - alpha[:, :, None]) + alpha[:, :, None] / 255 * px[:, :, :3]
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    l_dc, l_ac, l_scale = _encode_channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(r - g, 3, 3)

    landscape = w > h
    header24 = (_js_round(63 * l_dc) | (_js_round(31.5 + 31.5 * p_dc) << 6) | (_js_round(31.5 + 31.5 * q_dc) << 12)
                | (_js_round(31 * l_scale) << 18) | (int(has_alpha) << 23))
    header16 = ((ly if landscape else lx) | (_js_round(63 * p_scale) << 3) | (_js_round(63 * q_scale) << 9)
                | (int(landscape) << 15))
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5)
        out.append(_js_round(15 * a_dc) | (_js_round(15 * a_scale) << 4))
        channels.append(a_ac)
    start = len(out)
    index = 0
    for ac in channels:
        for value in ac:
            if start + (index >> 1) == len(out):
                out.append(0)
            out[start + (index >> 1)] |= _js_round(15 * value) << ((index & 1) << 2)
            index += 1
    return bytes(out)
