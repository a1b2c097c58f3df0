"""``Model``: a loaded model that predicts, what ``actionrec.load_model`` returns."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from actionrec.data.spec import InputSpec
from actionrec.inference.predictor import Predictor
from actionrec.inference.results import VideoPrediction
from actionrec.inference.settings import DEFAULTS
from actionrec.models.checkpoint import LoadedModel
from actionrec.models.refs import ModelRef, PinnedModel, load_model


class Model:
    """A network with its classes and input spec, ready to tag videos (``.loaded`` is the torch side)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    @classmethod
    def load(cls, ref: str | ModelRef | PinnedModel, *, lake: str | os.PathLike | None = None) -> Model:
        return cls(load_model(ref, lake=lake))

    def __repr__(self) -> str:
        return f"Model({self.name}@{self.version}, {self.loaded.arch}, {len(self.classes)} classes)"

    @property
    def classes(self) -> list[str]:
        return self.loaded.classes

    @property
    def spec(self) -> InputSpec:
        return self.loaded.spec

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return self.loaded.version

    def predict(self, uris: Iterable[str], *, top_k: int = DEFAULTS.top_k, clips: int = DEFAULTS.clips,
                crops: int = DEFAULTS.crops, progress: bool = False, embeddings: bool = False,
                every: float | None = DEFAULTS.every, **settings: Any) -> list[VideoPrediction]:
        """One result per uri, in order: status, error, top_k, per-clip timeline (a clip every ``every``
        seconds when set; and, with ``embeddings``, each video's L2-normalised pooled penultimate
        features). ``settings`` are ``Predictor``'s (batch_size, decode_workers, device, ...)."""
        return Predictor(self.loaded, **settings).predict_all(uris, top_k=top_k, clips=clips, crops=crops,
                                                                   progress=progress, embeddings=embeddings,
                                                                   every=every)
