"""Training and validation clips as a torch ``Dataset``: one clip per item, decoded once per video.

Before the first epoch, ``prepare`` opens every video once: short ones are decoded into memory
(epochs re-read them), long ones are remembered for reading per item, and the ones that cannot be
read at all are dropped with their reason, so one bad file in a label table costs one video, not
the training run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Dataset

from actionrec.data.clips import crop_thwc
from actionrec.data.sampling import random_clip, uniform_clips
from actionrec.data.spec import InputSpec
from actionrec.data.transforms import LabelAwareAugment, random_resized_crop, to_clip_cthw
from actionrec.errors import VideoError
from actionrec.io.storage import open_input
from actionrec.io.video import DecodedFrames, VideoReader, output_size


class _LazyVideo:
    """A video too large for the cache: opened and read for each request."""

    def __init__(self, uri: str, short_side: int, duration: Fraction, fps: Fraction) -> None:
        self.uri, self.short_side, self.duration, self.fps = uri, short_side, duration, fps

    def read(self, timestamps_s: Sequence[Fraction]) -> np.ndarray:
        with open_input(self.uri) as source, VideoReader(source) as reader:
            return reader.read(timestamps_s, short_side=self.short_side).frames_thwc


class ClipDataset(Dataset):
    """Decodes one clip per item: a random position, crop and the allowed augmentations for training,
    the centre clip otherwise. Items are ``(uri, class id)``; in training each video is drawn
    ``repeats`` times per epoch, each time at its own place and crop."""

    def __init__(
        self,
        items: Sequence[tuple[str, int]],
        spec: InputSpec,
        *,
        train: bool,
        augment: LabelAwareAugment | None = None,
        seed: int = 0,
        cache_mb: int = 1024,
        repeats: int = 1,
        min_crop_scale: float = 1.0,
    ) -> None:
        self.items = list(items)
        self.repeats = repeats if train else 1
        self.min_crop_scale = min_crop_scale
        self.spec = spec
        self.train = train
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.cache_bytes = cache_mb * 2**20
        self._videos: dict[str, DecodedFrames | _LazyVideo] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def prepare(self, *, progress: bool = False, desc: str = "reading videos") -> dict[str, str]:
        """Open every video once; drop those that cannot be read. Returns ``{uri: reason}`` of the dropped."""
        from tqdm.auto import tqdm

        skipped: dict[str, str] = {}
        for uri in tqdm(sorted({u for u, _ in self.items}), desc=desc, unit="video", disable=not progress):
            try:
                self._video(uri)
            except VideoError as e:
                skipped[uri] = e.reason
        self.items = [(u, y) for u, y in self.items if u not in skipped]
        return skipped

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        uri, label = self.items[i % len(self.items)]
        rng = random.Random(f"{self.seed}:{self.epoch}:{i}")
        spec = self.spec
        video = self._video(uri)
        if self.train:
            times = random_clip(video.duration, video.fps, spec.clip_sampling, rng)
        else:
            times = uniform_clips(video.duration, video.fps, 1, spec.clip_sampling)[0]
        frames = video.read(times)
        if self.train and self.min_crop_scale < 1:
            frames = random_resized_crop(frames, spec.crop_hw, rng, self.min_crop_scale)
        else:
            frames = crop_thwc(frames, spec.crop_hw, rng if self.train else None)
        if self.train and self.augment is not None:
            frames, label = self.augment(frames, label, rng)
        return to_clip_cthw(frames, spec), label

    def _video(self, uri: str) -> DecodedFrames | _LazyVideo:
        """Short videos are decoded once and kept (epochs re-read them); long ones are read per item."""
        video = self._videos.get(uri)
        if video is not None:
            return video
        with open_input(uri) as source, VideoReader(source) as reader:
            info = reader.info()
            width, height = output_size(info.width, info.height, self.spec.short_side)
            size = info.num_frames * width * height * 3
            if self._cached_bytes + size <= self.cache_bytes:
                video = reader.decode_all(short_side=self.spec.short_side)
                self._cached_bytes += size
            else:
                video = _LazyVideo(uri, self.spec.short_side, reader.duration, reader.fps)
        self._videos[uri] = video
        return video
