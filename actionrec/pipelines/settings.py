"""The one source of the pipelines' settings and defaults.

``TagSettings`` (what a tag run does with each video, ``InferenceSettings`` plus sharding) and
``RetrainSettings`` (what a retrain run compares and promotes; training itself is ``TrainConfig``)
are read by the flows' signatures, the command line (its flags are generated from these fields),
the deployments that ``serve`` registers and ``deployments/prefect.yaml`` (a test compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from actionrec.errors import ConfigError
from actionrec.inference.settings import DEFAULTS as INFERENCE_DEFAULTS
from actionrec.inference.settings import InferenceSettings
from actionrec.loop.drift import DEFAULT_MIN_VIDEOS, DEFAULT_THRESHOLD, DEFAULT_WINDOW
from actionrec.moments.segments import SEGMENT_DEFAULTS, SegmentRules
from actionrec.names import DEFAULT_MODEL_NAME, check_name
from actionrec.options import check_int, check_positive_seconds, check_seconds_or_zero, option

EvalSplit = Literal["val", "test"]
EVAL_SPLITS: tuple[str, ...] = get_args(EvalSplit)
WhenIncomparable = Literal["keep", "promote"]
WHEN_INCOMPARABLE: tuple[str, ...] = get_args(WhenIncomparable)
INIT_CHOICES = ("scratch", "champion")


@dataclass(frozen=True)
class TagSettings(InferenceSettings):
    """How a tag run works through an archive."""

    shard_size: int = option(64, "videos per shard: one task, one pair of Parquet files, retried as a whole")
    shard_timeout_s: float = option(7200.0, "seconds a shard may run before it is stopped (and retried once)")
    lease_ttl_s: float = option(600.0, "seconds a run's claim on the lake lasts unless renewed (the run renews "
                                       "it; a crashed run's claim expires)")
    lease_wait_s: float = option(0.0, "seconds to wait while another run is tagging the same lake (0: exit at once)")
    queue_size: int = option(20, "videos per run put in the labeling queue for people (0: none)")
    queue_per_label: int = option(2, "queue slots kept for each predicted label, rarest labels first, so rare "
                                     "labels are not starved")
    # Drift watch (actionrec.loop.drift explains the defaults, measured by `python -m bench.drift_noise`).
    drift_window: int = option(DEFAULT_WINDOW, "earlier complete runs of the same model whose pooled label and "
                                               "confidence mix a run is compared with")
    drift_threshold: float = option(DEFAULT_THRESHOLD, "Jensen-Shannon divergence (bits, 0 to 1) of the label or "
                                                       "confidence mix past which a run is flagged as drifting")
    drift_min_videos: int = option(DEFAULT_MIN_VIDEOS, "a run (or window) with fewer tagged videos is compared "
                                                       "but never flagged: too few to tell a shift from chance")
    embeddings: bool = option(False, "also store each video's embedding (the model's pooled penultimate features, "
                                     "L2-normalised) in the lake's embeddings table, for `actionrec similar`")
    # Segments of dense runs (--every; actionrec.moments.segments explains the rules).
    segment_smoothing_s: float = option(SEGMENT_DEFAULTS.smoothing_s, "seconds around each clip over which its "
                                                                      "scores are averaged before segments are cut, "
                                                                      "so a noisy clip does not split a segment "
                                                                      "(0: none)")
    segment_min_score: float = option(SEGMENT_DEFAULTS.min_score, "segments whose label scores lower than this "
                                                                  "on average are not kept")
    segment_min_s: float = option(SEGMENT_DEFAULTS.min_seconds, "seconds: a shorter run is merged into a neighbour, "
                                                                "a shorter segment is not kept",
                                  flag="--segment-min-seconds")
    shot_snap_s: float = option(SEGMENT_DEFAULTS.snap_s, "seconds within which a segment edge moves onto a shot "
                                                         "change (0: never)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.segment_rules()  # validates the segment fields
        check_int("TagSettings", "shard_size", self.shard_size, 1)
        check_positive_seconds("TagSettings", "shard_timeout_s", self.shard_timeout_s)
        check_positive_seconds("TagSettings", "lease_ttl_s", self.lease_ttl_s)
        check_seconds_or_zero("TagSettings", "lease_wait_s", self.lease_wait_s)
        check_int("TagSettings", "queue_size", self.queue_size, 0)
        check_int("TagSettings", "queue_per_label", self.queue_per_label, 0)
        check_int("TagSettings", "drift_window", self.drift_window, 1)
        check_int("TagSettings", "drift_min_videos", self.drift_min_videos, 1)
        t = self.drift_threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or not 0 < t <= 1:
            raise ConfigError(f"TagSettings.drift_threshold must be a number of bits in (0, 1] (1: never "
                              f"flag), got {t!r}")
        if not isinstance(self.embeddings, bool):
            raise ConfigError(f"TagSettings.embeddings must be true or false, got {self.embeddings!r}")

    def segment_rules(self) -> SegmentRules:
        return SegmentRules(self.segment_smoothing_s, self.segment_min_score, self.segment_min_s, self.shot_snap_s)


@dataclass(frozen=True)
class RetrainSettings:
    """How a retrain run decides: what it starts from, where it compares, when it promotes."""

    model_name: str = option(DEFAULT_MODEL_NAME, "model name in the lake's registry", flag="--name")
    init: str = option("scratch", "start from: scratch, champion (fine-tune the current champion) or a model "
                                  "reference")
    split: EvalSplit = option("test", "held-out split on which candidate and champion are compared")
    clips: int = option(INFERENCE_DEFAULTS.clips, "clips per video in the comparison")
    margin: float = option(0.0, "top-1 the candidate must gain over the champion to be promoted")
    when_incomparable: WhenIncomparable = option(
        "keep", "when the champion knows other classes than the labels, keep it, or promote the candidate")
    min_eval_videos: int = option(10, "no promotion on an evaluation of fewer videos (checked before training)")
    min_eval_classes: int = option(2, "no promotion on an evaluation of fewer classes (checked before training)")

    def __post_init__(self) -> None:
        check_name("model name", self.model_name)
        if not isinstance(self.init, str) or not self.init.strip():
            raise ConfigError(f"RetrainSettings.init must be scratch, champion or a model reference, got {self.init!r}")
        if self.split not in EVAL_SPLITS:
            raise ConfigError(f"RetrainSettings.split must be one of {EVAL_SPLITS}, got {self.split!r}")
        check_int("RetrainSettings", "clips", self.clips, 1)
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, int | float) or not math.isfinite(m) or not 0 <= m < 1:
            raise ConfigError(f"RetrainSettings.margin must be a finite number in [0, 1), got {m!r}")
        check_int("RetrainSettings", "min_eval_videos", self.min_eval_videos, 1)
        check_int("RetrainSettings", "min_eval_classes", self.min_eval_classes, 2)
        if self.when_incomparable not in WHEN_INCOMPARABLE:
            raise ConfigError(f"RetrainSettings.when_incomparable must be one of {WHEN_INCOMPARABLE}, "
                              f"got {self.when_incomparable!r}")


@dataclass(frozen=True)
class TriggerSettings:
    """When people's answers start a retrain (the ``retrain-on-labels`` deployment)."""

    min_new_labels: int = option(50, "answers imported since the latest candidate that start a retrain")

    def __post_init__(self) -> None:
        check_int("TriggerSettings", "min_new_labels", self.min_new_labels, 1)


TAG_DEFAULTS = TagSettings()
TRIGGER_DEFAULTS = TriggerSettings()
RETRAIN_DEFAULTS = RetrainSettings()


def defaults_of(cls: type) -> dict[str, Any]:
    """Field name -> default of a settings dataclass (what the flows' signatures must match)."""
    return {f.name: f.default for f in fields(cls)}
