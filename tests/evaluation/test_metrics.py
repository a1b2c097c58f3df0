"""Metrics, report and confusion picture: hand-computed small cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from actionrec.evaluation.metrics import (
    confusion_matrix,
    evaluate_scores,
    expected_calibration_error,
)
from actionrec.evaluation.report import per_class_table, plot_confusion, render_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def one_hot_scores(predictions: list[int], num_classes: int, confidence: float = 0.8) -> np.ndarray:
    """Rows whose arg-max is ``predictions[i]``, the rest of the mass spread evenly."""
    rest = (1.0 - confidence) / (num_classes - 1)
    scores = np.full((len(predictions), num_classes), rest)
    scores[np.arange(len(predictions)), predictions] = confidence
    return scores


# name, scores, targets, classes, top1, top5, mean class accuracy, precision, recall, f1
CASES = [
    (
        "perfect",
        one_hot_scores([0, 1, 2, 0], 3),
        [0, 1, 2, 0],
        ["run", "jump", "swim"],
        1.0,
        1.0,
        1.0,
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0],
    ),
    (
        "all_wrong",
        one_hot_scores([1, 2, 0, 1], 3),
        [0, 1, 2, 0],
        ["run", "jump", "swim"],
        0.0,
        1.0,  # k = min(5, 3) = 3: every class is in the top 3
        0.0,
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ),
    (
        # predictions 0, 0, 1, 1: "swim" is never predicted -> precision 0.0, no NaN
        "class_never_predicted",
        one_hot_scores([0, 0, 1, 1], 3),
        [0, 0, 1, 2],
        ["run", "jump", "swim"],
        0.75,
        1.0,
        2 / 3,
        [1.0, 0.5, 0.0],
        [1.0, 1.0, 0.0],
        [1.0, 2 / 3, 0.0],
    ),
    (
        # 7 classes, so top-5 is a real top-5: target ranked 6th misses, ranked 2nd hits
        "top5_of_7",
        np.array(
            [
                [0.40, 0.20, 0.15, 0.10, 0.08, 0.05, 0.02],  # target 5: ranked 6th -> top-5 miss
                [0.40, 0.20, 0.15, 0.10, 0.08, 0.05, 0.02],  # target 1: ranked 2nd -> top-5 hit
                [0.02, 0.05, 0.08, 0.10, 0.15, 0.20, 0.40],  # target 6: top-1 hit
                [0.02, 0.05, 0.08, 0.10, 0.15, 0.20, 0.40],  # target 2: ranked 5th -> top-5 hit
            ]
        ),
        [5, 1, 6, 2],
        list("abcdefg"),
        0.25,
        0.75,
        # classes with videos: b (0/1), c (0/1), f (0/1), g (1/1)
        0.25,
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2 / 3],
    ),
    (
        # all scores tie: the lower class id wins, for top-1 and for top-k alike
        "ties_uniform",
        np.full((3, 3), 1 / 3),
        [0, 1, 2],
        ["run", "jump", "swim"],
        1 / 3,
        1.0,
        1 / 3,
        [1 / 3, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.5, 0.0, 0.0],
    ),
    (
        # 6 tied classes: top-5 is classes 0..4, so target 5 misses and target 4 hits
        "ties_top5_boundary",
        np.full((2, 6), 1 / 6),
        [5, 4],
        list("abcdef"),
        0.0,
        0.5,
        0.0,
        [0.0] * 6,
        [0.0] * 6,
        [0.0] * 6,
    ),
]


@pytest.mark.parametrize(
    "scores, targets, classes, top1, top5, mca, precision, recall, f1",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hand_computed_cases(scores, targets, classes, top1, top5, mca, precision, recall, f1):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero RuntimeWarning, no NaN
        result = evaluate_scores(scores, targets, classes)
    assert result.num_videos == len(targets)
    assert result.top1 == pytest.approx(top1)
    assert result.top5 == pytest.approx(top5)
    assert result.mean_class_accuracy == pytest.approx(mca)
    assert [m.precision for m in result.per_class] == pytest.approx(precision)
    assert [m.recall for m in result.per_class] == pytest.approx(recall)
    assert [m.f1 for m in result.per_class] == pytest.approx(f1)
    assert [m.label for m in result.per_class] == list(classes)
    assert [m.support for m in result.per_class] == [list(targets).count(i) for i in range(len(classes))]
    assert result.top5 >= result.top1
    assert all(np.isfinite([m.precision, m.recall, m.f1]).all() for m in result.per_class)


def test_top5_equals_one_with_fewer_than_five_classes():
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.ones(4), size=50)
    result = evaluate_scores(scores, rng.integers(0, 4, size=50), list("abcd"))
    assert result.top5 == 1.0
    assert result.top_k == 4


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_data():
    # 9 videos of "walk", all right; 1 video of "fall", wrong
    scores = one_hot_scores([0] * 10, 2, confidence=0.9)
    result = evaluate_scores(scores, [0] * 9 + [1], ["walk", "fall"])
    assert result.top1 == pytest.approx(0.9)
    assert result.mean_class_accuracy == pytest.approx(0.5)


def test_mean_class_accuracy_skips_classes_without_videos():
    scores = one_hot_scores([0, 1, 1], 3)
    result = evaluate_scores(scores, [0, 1, 0], ["a", "b", "unused"])
    # recall a = 1/2, b = 1/1; "unused" has no videos and is left out (not averaged in as 0)
    assert result.mean_class_accuracy == pytest.approx(0.75)
    assert result.per_class[2].support == 0
    assert result.per_class[2].recall == 0.0


def test_confusion_counts():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.dtype == np.int64
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]


def test_result_confusion_is_true_by_predicted_and_plain_ints():
    scores = one_hot_scores([0, 1, 1, 2, 0, 2], 3)
    result = evaluate_scores(scores, [0, 0, 1, 2, 2, 2], ["a", "b", "c"])
    assert result.confusion == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert all(type(c) is int for row in result.confusion for c in row)


# ---------------------------------------------------------------------------------------------- ECE


def test_ece_of_perfectly_calibrated_bins_is_zero():
    # 70 % of the 0.7-confidence predictions are right, 90 % of the 0.9 ones
    conf = [0.7] * 10 + [0.9] * 10
    correct = [1] * 7 + [0] * 3 + [1] * 9 + [0] * 1
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_calibrated_synthetic_data_is_near_zero():
    rng = np.random.default_rng(42)
    conf = rng.uniform(0.0, 1.0, size=200_000)
    correct = rng.uniform(size=conf.size) < conf  # right with probability = confidence
    assert expected_calibration_error(conf, correct) < 0.01


def test_ece_of_overconfident_data_hand_computed():
    # bin (0.867, 0.933]: 4 predictions at 0.9, 2 right -> gap 0.4, weight 0.4
    # bin (0.6, 0.667]:   6 predictions at 0.62, 3 right -> gap 0.12, weight 0.6
    conf = [0.9] * 4 + [0.62] * 6
    correct = [True, True, False, False] + [True] * 3 + [False] * 3
    ece = expected_calibration_error(conf, correct)
    assert ece == pytest.approx(0.4 * 0.4 + 0.6 * 0.12)
    assert ece > 0


def test_ece_depends_on_bins():
    conf, correct = [0.9, 0.2], [1, 0]
    assert expected_calibration_error(conf, correct) == pytest.approx((0.1 + 0.2) / 2)
    # one bin: |mean accuracy 0.5 - mean confidence 0.55|
    assert expected_calibration_error(conf, correct, num_bins=1) == pytest.approx(0.05)


def test_ece_includes_confidence_zero_and_one():
    assert expected_calibration_error([0.0], [True]) == pytest.approx(1.0)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0], [False]) == pytest.approx(1.0)


def test_evaluate_scores_ece_uses_top1_confidence():
    # top-1 confidences 0.9, 0.9, 0.9, 0.9 (2 right) and 0.62 x 6 (3 right): the hand-computed case above
    preds = [0, 0, 1, 1, 0, 0, 0, 1, 1, 1]
    conf = [0.9] * 4 + [0.62] * 6
    scores = np.array([[c, 1 - c] if p == 0 else [1 - c, c] for p, c in zip(preds, conf, strict=True)])
    targets = [0, 1, 1, 0, 0, 0, 1, 1, 0, 0]
    result = evaluate_scores(scores, targets, ["a", "b"])
    assert result.top1 == pytest.approx(0.5)
    assert result.ece == pytest.approx(0.232)


# ------------------------------------------------------------------------------------ serialisation


def test_to_dict_and_summary_are_json_friendly():
    result = evaluate_scores(one_hot_scores([0, 1, 1], 3).astype(np.float32), [0, 1, 2], ["a", "b", "c"])
    d = result.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(result.summary()) == {"num_videos", "top1", "top5", "mean_class_accuracy", "ece"}
    assert d["confusion"] == result.confusion
    assert d["per_class"][1] == {"label": "b", "support": 1, "precision": 0.5, "recall": 1.0, "f1": 2 / 3}
    assert all(type(v) in (int, float) for v in result.summary().values())  # numpy scalars would not serialise


def test_per_class_table_schema_and_values():
    import pyarrow as pa

    result = evaluate_scores(one_hot_scores([0, 0, 1, 1], 3), [0, 0, 1, 2], ["run", "jump", "swim"])
    table = per_class_table(result)
    assert table.schema == pa.schema(
        [
            ("class", pa.string()),
            ("support", pa.int64()),
            ("precision", pa.float64()),
            ("recall", pa.float64()),
            ("f1", pa.float64()),
        ]
    )
    assert table.column("class").to_pylist() == ["run", "jump", "swim"]
    assert table.column("support").to_pylist() == [2, 1, 1]
    assert table.column("precision").to_pylist() == pytest.approx([1.0, 0.5, 0.0])


# -------------------------------------------------------------------------------------------- picture


def _png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_writes_a_valid_png(tmp_path, normalize):
    result = evaluate_scores(one_hot_scores([0, 1, 1, 2, 0, 2], 3), [0, 0, 1, 2, 2, 2], ["a", "b", "c"])
    out = plot_confusion(result, tmp_path / "plots" / "cm.png", normalize=normalize, title="val split")
    assert out == tmp_path / "plots" / "cm.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    width, height = _png_size(out)
    assert width > 100 and height > 100
    assert os.listdir(out.parent) == ["cm.png"]  # no temp file left behind


def test_plot_confusion_size_grows_with_classes(tmp_path):
    small = evaluate_scores(one_hot_scores([0, 1], 3), [0, 1], list("abc"))
    k = 12
    big = evaluate_scores(one_hot_scores(list(range(k)), k), list(range(k)), [f"class_{i}" for i in range(k)])
    w_small, h_small = _png_size(plot_confusion(small, tmp_path / "small.png"))
    w_big, h_big = _png_size(plot_confusion(big, str(tmp_path / "big.png")))
    assert w_big > w_small and h_big > h_small


def test_plot_confusion_failure_leaves_existing_file_alone(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    result = evaluate_scores(one_hot_scores([0, 1], 2), [0, 1], ["a", "b"])
    out = tmp_path / "cm.png"
    out.write_bytes(b"old picture")

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(PNG_MAGIC + b"half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_confusion(result, out)
    assert out.read_bytes() == b"old picture"
    assert os.listdir(tmp_path) == ["cm.png"]


def test_confusion_picture_gets_the_normal_file_mode(tmp_path):
    """Bug: the picture came out 0600 (mkstemp's mode), unreadable to the team sharing the lake."""
    result = evaluate_scores(one_hot_scores([0, 1], 2), [0, 1], ["a", "b"])
    old = os.umask(0o022)
    try:
        out = plot_confusion(result, tmp_path / "cm.png")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_import_is_light_and_plotting_leaves_pyplot_alone(tmp_path):
    code = f"""
import sys
import actionrec.evaluation.metrics as m
import actionrec.evaluation.report as r
heavy = [name for name in ("torch", "prefect", "boto3", "matplotlib", "pyarrow") if name in sys.modules]
assert not heavy, heavy
result = m.evaluate_scores([[0.9, 0.1], [0.2, 0.8]], [0, 1], ["a", "b"])
r.plot_confusion(result, {str(tmp_path / "cm.png")!r})
assert "matplotlib.pyplot" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------------------------- report


def test_report_contains_the_numbers():
    # 6 videos: top-1 4/6 = 66.7 %, mean class accuracy (1/2 + 1 + 2/3) / 3 = 72.2 %
    scores = one_hot_scores([0, 1, 1, 2, 0, 2], 3, confidence=0.9)
    result = evaluate_scores(scores, [0, 0, 1, 2, 2, 2], ["walk", "run", "jump|skip"])
    text = render_report(
        result,
        model_name="x3d_m",
        model_version="2024-06",
        split="val",
        clips_per_video=10,
        extra={"dataset": "kinetics-mini", "learning rate": 0.001},
        confusion_png="plots/cm.png",
    )
    assert text.startswith("# ")
    assert "x3d_m" in text and "2024-06" in text and "val" in text
    assert "| Top-1 accuracy | 66.7% |" in text
    assert "100.0%" in text  # top-5 with 3 classes
    assert "| Mean class accuracy | 72.2% |" in text
    assert f"{result.ece:.3f}" in text
    assert "| Videos | 6 |" in text
    assert "| Clips per video | 10 |" in text
    assert "| walk | 2 | 0.500 | 0.500 | 0.500 |" in text
    assert "jump\\|skip" in text  # a pipe in a class name does not break the table
    assert "- walk -> run: 1" in text
    assert "- jump|skip -> walk: 1" in text
    assert "![Confusion matrix](plots/cm.png)" in text
    assert "| dataset | kinetics-mini |" in text
    assert "| learning rate | 0.001 |" in text


def test_report_most_confused_keeps_top_five_in_order():
    k = 4
    # off-diagonal counts: 1->0 x4, 2->0 x3, 3->0 x2, 0->1 x1, 2->1 x1, 3->1 x1
    pairs = [(1, 0)] * 4 + [(2, 0)] * 3 + [(3, 0)] * 2 + [(0, 1), (2, 1), (3, 1)]
    targets = [t for t, _ in pairs]
    scores = one_hot_scores([p for _, p in pairs], k)
    result = evaluate_scores(scores, targets, list("abcd"))
    text = render_report(result, model_name="m", model_version="1", split="test", clips_per_video=1)
    section = text.split("## Most confused pairs")[1].strip().splitlines()
    confused = [line for line in section if line.startswith("- ")]
    assert confused == ["- b -> a: 4", "- c -> a: 3", "- d -> a: 2", "- a -> b: 1", "- c -> b: 1"]
    assert "![" not in text  # no picture link without confusion_png
    assert "| Key | Value |" not in text  # no extra table without extra


def test_report_without_confusions():
    result = evaluate_scores(one_hot_scores([0, 1], 2), [0, 1], ["a", "b"])
    text = render_report(result, model_name="m", model_version="1", split="val", clips_per_video=3)
    assert "->" not in text
    assert "No confusions" in text


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "scores, targets, classes, argument",
    [
        (np.array([0.5, 0.5]), [0], ["a", "b"], "scores"),  # 1-D
        (np.zeros((0, 2)), [], ["a", "b"], "scores"),  # no videos
        (np.full((2, 3), 1 / 3), [0, 1], ["a", "b"], "scores"),  # 3 columns, 2 class names
        (np.array([[np.nan, 0.5]]), [0], ["a", "b"], "scores"),
        (np.array([[2.3, -1.0]]), [0], ["a", "b"], "scores"),  # logits, not probabilities
        (np.full((2, 2), 0.5), [0], ["a", "b"], "targets"),  # too few targets
        (np.full((2, 2), 0.5), [0, 2], ["a", "b"], "targets"),  # out of range
        (np.full((2, 2), 0.5), [0, -1], ["a", "b"], "targets"),
        (np.full((2, 2), 0.5), [0.0, 1.5], ["a", "b"], "targets"),  # not integers
        (np.full((2, 2), 0.5), [[0, 1]], ["a", "b"], "targets"),  # 2-D
        (np.full((2, 2), 0.5), [0, 1], ["a", "a"], "classes"),  # duplicated
        (np.full((2, 2), 0.5), [0, 1], ["a", 2], "classes"),  # not strings
        (np.full((2, 2), 0.5), [0, 1], "ab", "classes"),  # a string is not a list of names
    ],
)
def test_evaluate_scores_validation(scores, targets, classes, argument):
    with pytest.raises(ValueError, match=argument):
        evaluate_scores(scores, targets, classes)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"confidences": [0.5, 0.6], "correct": [True]}, "correct"),
        ({"confidences": [], "correct": []}, "confidences"),
        ({"confidences": [1.5], "correct": [True]}, "confidences"),
        ({"confidences": [[0.5]], "correct": [True]}, "confidences"),
        ({"confidences": [0.5], "correct": [2]}, "correct"),
        ({"confidences": [0.5], "correct": [True], "num_bins": 0}, "num_bins"),
    ],
)
def test_ece_validation(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        expected_calibration_error(**kwargs)


@pytest.mark.parametrize(
    "targets, predictions, num_classes, argument",
    [
        ([0, 1], [0], 2, "same length"),
        ([0, 3], [0, 1], 2, "targets"),
        ([0, 1], [0, 2], 2, "predictions"),
        ([0, 1], [0, 1], 0, "num_classes"),
    ],
)
def test_confusion_matrix_validation(targets, predictions, num_classes, argument):
    with pytest.raises(ValueError, match=argument):
        confusion_matrix(targets, predictions, num_classes)


def test_report_validates_clips_per_video():
    result = evaluate_scores(one_hot_scores([0, 1], 2), [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="clips_per_video"):
        render_report(result, model_name="m", model_version="1", split="val", clips_per_video=0)
