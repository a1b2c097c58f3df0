"""Segment recall, precision and label accuracy, as a table of cases."""

from __future__ import annotations

import pytest

from actionrec.moments.metrics import score_segments, temporal_iou

TRUTH = [("a", 0.0, 4.0), ("b", 4.0, 8.0), ("a", 8.0, 12.0)]

# (found, recall, precision, label accuracy)
CASES = [
    (TRUTH, 1.0, 1.0, 1.0),
    # edges off by 1 s: IoU 3/5 = 0.6 still counts
    ([("a", 0.0, 5.0), ("b", 5.0, 8.0), ("a", 8.0, 12.0)], 1.0, 1.0, 11 / 12),
    # the right place with the wrong label is not a match
    ([("a", 0.0, 4.0), ("c", 4.0, 8.0), ("a", 8.0, 12.0)], 2 / 3, 2 / 3, 8 / 12),
    # one found segment across two true ones matches neither (IoU 0.5 with one of them counts)
    ([("a", 0.0, 12.0)], 0.0, 0.0, 8 / 12),
    ([("a", 0.0, 8.0), ("a", 8.0, 12.0)], 2 / 3, 1.0, 8 / 12),
    # a true segment split in two: one half matches (IoU 0.5), the other is a false find
    ([("a", 0.0, 2.0), ("a", 2.0, 4.0), ("b", 4.0, 8.0), ("a", 8.0, 12.0)], 1.0, 3 / 4, 1.0),
    # split in three, no part reaches IoU 0.5
    ([("a", 0.0, 1.5), ("a", 1.5, 3.0), ("a", 3.0, 4.0), ("b", 4.0, 8.0), ("a", 8.0, 12.0)], 2 / 3, 2 / 5, 1.0),
    ([], 0.0, 1.0, 0.0),
]


@pytest.mark.parametrize("found,recall,precision,accuracy", CASES)
def test_score_segments_table(found, recall, precision, accuracy):
    s = score_segments(TRUTH, found)
    assert (s.recall, s.precision, s.label_accuracy) == (pytest.approx(recall), pytest.approx(precision),
                                                        pytest.approx(accuracy))


def test_temporal_iou():
    assert temporal_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert temporal_iou((0, 1), (2, 3)) == 0.0
