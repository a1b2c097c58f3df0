"""The input spec a model carries: how to turn a video into the tensor it was trained on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from actionrec.errors import ConfigError
from actionrec.sampling import ClipSampling

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class InputSpec:
    """Frames per clip and how they are spaced, then resize / crop / normalisation of each frame."""

    frames_per_clip: int = 16
    sampling: str = "stride"  # "stride" (frame_stride apart) or "spread" (evenly over the window)
    frame_stride: int = 2
    short_side: int = 128
    crop_size: int = 112
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        ClipSampling(self.frames_per_clip, self.sampling, self.frame_stride)  # validates those three
        if self.crop_size < 1:
            raise ConfigError(f"crop_size must be >= 1, got {self.crop_size}")
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
    def clip_sampling(self) -> ClipSampling:
        return ClipSampling(self.frames_per_clip, self.sampling, self.frame_stride)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def replace(self, **changes: Any) -> InputSpec:
        return InputSpec.from_dict({**self.to_dict(), **changes})
