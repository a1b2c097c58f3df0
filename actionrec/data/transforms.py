"""From decoded frames to model input: ``frames_thwc`` uint8 -> ``clip_cthw`` float -> batch NCTHW.

Frames arrive already scaled (short side = ``spec.short_side``) by the decoder, so only the crop,
the float conversion and the normalisation happen here. Training augmentations that change what
a clip means (a mirror turns "moving left" into "moving right", a time reversal turns "opening"
into "closing") take the dataset's declared label mapping and return the new label with the clip.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from actionrec.data.spec import InputSpec
from actionrec.errors import ConfigError


def normalize_ncthw(clips_nthwc_uint8: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 NTHWC (cropped; on any device) -> normalised float NCTHW, the model's input layout."""
    x = clips_nthwc_uint8.permute(0, 4, 1, 2, 3).float().div_(255.0)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1, 1)
    return x.sub_(mean).div_(std)


def to_clip_cthw(frames_thwc: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """uint8 THWC (already cropped) -> normalised float CTHW."""
    return normalize_ncthw(torch.from_numpy(np.ascontiguousarray(frames_thwc))[None], spec)[0]


@dataclass(frozen=True)
class LabelAwareAugment:
    """Mirror and time reversal that are allowed only where the dataset says what they do to labels.

    ``hflip`` / ``reverse`` map a class to the class the transform turns it into; a class not in
    the map is unchanged. ``None`` means the transform is not declared and is never applied.
    """

    classes: tuple[str, ...]
    hflip: Mapping[str, str] | None = None
    reverse: Mapping[str, str] | None = None
    p: float = 0.5
    _ids: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"p must be in [0, 1], got {self.p}")
        ids = {c: i for i, c in enumerate(self.classes)}
        for name in ("hflip", "reverse"):
            mapping = getattr(self, name)
            for a, b in (mapping or {}).items():
                if a in ids and b not in ids:  # rules about classes not in this table do not matter
                    raise ConfigError(f"{name} maps {a!r} -> {b!r}, but {b!r} is not among the classes")
        self._ids.update(ids)

    def _mapped(self, mapping: Mapping[str, str], label: int) -> int:
        name = self.classes[label]
        return self._ids[mapping.get(name, name)]

    def __call__(self, frames_thwc: np.ndarray, label: int, rng: random.Random) -> tuple[np.ndarray, int]:
        if self.hflip is not None and rng.random() < self.p:
            frames_thwc = frames_thwc[:, :, ::-1]
            label = self._mapped(self.hflip, label)
        if self.reverse is not None and rng.random() < self.p:
            frames_thwc = frames_thwc[::-1]
            label = self._mapped(self.reverse, label)
        return frames_thwc, label


def applicable(mapping: Mapping[str, str] | None, classes: tuple[str, ...]) -> Mapping[str, str] | None:
    """A declared rule, or None when it would turn one of ``classes`` into a class outside them."""
    if mapping is None:
        return None
    if any(a in classes and b not in classes for a, b in mapping.items()):
        return None
    return {a: b for a, b in mapping.items() if a in classes}


def random_resized_crop(frames_thwc: np.ndarray, size: int | tuple[int, int], rng: random.Random,
                        min_scale: float, ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    """Scale and aspect jitter (training only): a box ``min_scale``..1 times the size of the largest
    box of the output's shape that fits the frame, its aspect jittered by a factor in ``ratio``, at a
    random place, resized to ``size`` (square, or (height, width)). The same box for every frame,
    so motion is not invented. uint8 THWC in, uint8 THWC out."""
    oh, ow = (size, size) if isinstance(size, int) else size
    t, h, w, _ = frames_thwc.shape
    fit = min(h / oh, w / ow)  # the largest box of the output's shape that fits: (oh * fit, ow * fit)
    scale = fit * rng.uniform(min_scale, 1.0)
    aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
    ch = max(1, min(h, round(oh * scale / math.sqrt(aspect))))
    cw = max(1, min(w, round(ow * scale * math.sqrt(aspect))))
    top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    box = torch.from_numpy(np.ascontiguousarray(frames_thwc[:, top : top + ch, left : left + cw]))
    resized = torch.nn.functional.interpolate(box.permute(0, 3, 1, 2).float(), size=(oh, ow), mode="bilinear",
                                              align_corners=False, antialias=True)
    return resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


# A class name with one of these words may change meaning in a mirror ("swiping left").
DIRECTION_WORDS = frozenset({"left", "right", "leftward", "rightward", "leftwards", "rightwards", "clockwise",
                             "counterclockwise", "anticlockwise"})


def says_a_direction(name: str) -> bool:
    return any(word in DIRECTION_WORDS for word in re.split(r"[^a-z]+", name.lower()))


def mirror_rule(mode: str, declared: Mapping[str, str] | None, classes: Sequence[str]) -> Mapping[str, str] | None:
    """Which mirror applies in training: ``declared`` only as the data set maps classes; ``auto`` also
    mirrors, keeping labels, when no class name says a direction; ``off`` never. None: no mirror."""
    names = tuple(classes)
    if mode == "off":
        return None
    if declared is not None or mode == "declared":
        return applicable(declared, names)
    return None if any(says_a_direction(c) for c in names) else {}
