"""The input spec a model carries: how to turn a video into the tensor it was trained on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from actionrec.data.sampling import ClipSampling
from actionrec.errors import ConfigError

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class InputSpec:
    """Frames per clip and how they are placed in time, then resize / crop / normalisation.

    Frames are scaled so their short side is ``short_side``, then cropped to ``crop_size`` high and
    ``crop_width`` wide (unset: square). A wide crop keeps the whole width of a 16:9 frame, where a
    square centre crop drops both sides (surveillance footage puts the action anywhere).

    ``sampling="fps"`` (the default) places frames ``1 / sample_fps`` seconds apart, so the model
    sees the same time window whatever the source frame rate. ``stride`` (``frame_stride`` source
    frames apart) is read from checkpoints that were trained that way; ``spread`` is TSN's one
    frame per segment.
    """

    frames_per_clip: int = 16
    sampling: str = "fps"
    frame_stride: int = 2
    sample_fps: float | None = 15.0
    short_side: int = 128
    crop_size: int = 112
    crop_width: int | None = None
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.sample_fps is not None:
            object.__setattr__(self, "sample_fps", float(self.sample_fps))
        self.clip_sampling  # noqa: B018 - validates frames_per_clip, sampling, frame_stride, sample_fps
        for name in ("short_side", "crop_size", "crop_width"):
            value = getattr(self, name)
            if name == "crop_width" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.short_side < self.crop_size:
            raise ConfigError(f"short_side ({self.short_side}) must be >= crop_size ({self.crop_size})")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ConfigError(f"{name} must have 3 values (RGB), got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std must be > 0, got {self.std!r}")

    @property
    def crop_hw(self) -> tuple[int, int]:
        """The model's frame size: (height, width)."""
        return self.crop_size, self.crop_width or self.crop_size

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """One decoded clip, ``frames_thwc``: (T, H, W, 3)."""
        return (self.frames_per_clip, *self.crop_hw, 3)

    @property
    def clip_sampling(self) -> ClipSampling:
        return ClipSampling(self.frames_per_clip, self.sampling, self.frame_stride, self.sample_fps)

    @property
    def clip_seconds(self) -> float | None:
        """Seconds one clip covers, when that does not depend on the video (the ``fps`` rule)."""
        if self.sampling == "fps" and self.sample_fps:
            return self.frames_per_clip / self.sample_fps
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """A spec from its dict; a dict written before ``sample_fps`` existed keeps its stride rule."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "sampling" in d and "sample_fps" not in d:
            known["sample_fps"] = None
        return cls(**known)

    def replace(self, **changes: Any) -> InputSpec:
        return InputSpec.from_dict({**self.to_dict(), **changes})
