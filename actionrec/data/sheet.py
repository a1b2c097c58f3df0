"""Contact sheets: the sampled frames laid out as a grid (one row per clip), to see what a model sees."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from actionrec.io.atomic import atomic_path


def contact_sheet(frames_thwc: np.ndarray, times_s: Sequence[float], rows: int, path: str | os.PathLike,
                  gap: int = 2, captions: Sequence[str] | None = None) -> Path:
    """Tile frames row by row with a thin gap, each above its caption (default: its time); the file
    is written whole or not at all."""
    from PIL import Image, ImageDraw

    t, h, w, _ = frames_thwc.shape
    cols = -(-t // rows)
    label_h = 12
    sheet = np.full((rows * (h + label_h + gap), cols * (w + gap), 3), 255, np.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        y, x = r * (h + label_h + gap) + label_h, c * (w + gap)
        sheet[y : y + h, x : x + w] = frames_thwc[i]
    image = Image.fromarray(sheet)
    draw = ImageDraw.Draw(image)
    for i, ts in enumerate(times_s):
        r, c = divmod(i, cols)
        text = captions[i] if captions is not None else f"{ts:.2f}s"
        draw.text((c * (w + gap) + 1, r * (h + label_h + gap)), text, fill=(0, 0, 0))
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
