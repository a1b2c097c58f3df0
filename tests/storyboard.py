"""A long synthetic video told in segments of solid colours (with noise, a brief flash and a fade),
and the segments it truly has: ground truth for dense tagging with ``write_colour_checkpoint``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actionrec.io.video import write_video

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "white": (230, 230, 230)}
# 9 segments of 4 to 6 s (43 s): the first holds a 0.5 s blue flash, the 4th fades to black into the 5th.
STORY = [("red", 6), ("green", 4), ("blue", 5), ("white", 4), ("red", 5), ("blue", 4), ("green", 6), ("white", 5),
         ("red", 4)]
FLASH = (2.0, 2.5)  # seconds of blue inside the first red segment
FADE_S = 0.5  # out at the end of the 4th segment, in at the start of the 5th


def write_story(path: Path, fps: int = 8, size: int = 64, seed: int = 0) -> list[tuple[str, float, float]]:
    """Encode the story; returns the true segments (label, start s, end s) and leaves the flash
    and the fade inside them, as a real recording would."""
    rng = np.random.default_rng(seed)
    frames, truth, t0 = [], [], 0.0
    for k, (label, seconds) in enumerate(STORY):
        for i in range(seconds * fps):
            t = t0 + i / fps
            colour = np.array(COLOURS["blue" if k == 0 and FLASH[0] <= t < FLASH[1] else label], np.float64)
            if k == 3:
                colour *= min(1.0, (seconds - i / fps) / FADE_S)
            elif k == 4:
                colour *= min(1.0, i / fps / FADE_S)
            frame = colour[None, None, :] + rng.normal(0, 12, (size, size, 3))
            frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        truth.append((label, t0, t0 + seconds))
        t0 += seconds
    write_video(path, frames, fps=fps)
    return truth
