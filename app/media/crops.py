"""Face crops: the thumbnail of a face, and so of the person it shows."""

from __future__ import annotations

FACE_THUMBNAIL_SIZE = 250  # Immich's person thumbnail size
# Room around the face so hair and chin show, as people pickers expect.
MARGIN = 1.6


def face_crop(source, box: tuple[int, int, int, int], display: tuple[int, int]) -> bytes:
    """A square JPEG around `box` (display-space x, y, w, h of an image display[0] x display[1]).

    `source` is an upright rendering of the asset's upload at any scale: the preview's path, or a
    decoded image (an edited asset's preview shows the edit, not the upload the boxes are in).
    """
    import pyvips

    image = source if isinstance(source, pyvips.Image) else pyvips.Image.new_from_file(str(source))
    scale = image.width / display[0]
    x, y, w, h = (v * scale for v in box)
    side = min(max(w, h) * MARGIN, image.width, image.height)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(cx - side / 2, 0), image.width - side))
    top = int(min(max(cy - side / 2, 0), image.height - side))
    side = max(int(side), 1)
    crop = image.crop(left, top, min(side, image.width - left), min(side, image.height - top))
    if crop.hasalpha():
        crop = crop.flatten(background=[255, 255, 255])
    crop = crop.thumbnail_image(FACE_THUMBNAIL_SIZE, height=FACE_THUMBNAIL_SIZE, size="both")
    return crop.jpegsave_buffer(Q=85, strip=True)
