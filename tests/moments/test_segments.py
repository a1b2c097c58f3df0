"""Segments from a clip timeline, as tables of cases: smoothing, merging, snapping, thresholds."""

from __future__ import annotations

import pytest

from actionrec.errors import ConfigError
from actionrec.inference.results import ClipPrediction, Label
from actionrec.moments.segments import SegmentRules, segments_from_timeline


def timeline(spec: str, score: float = 0.9, every: float = 1.0, span: float = 2.0) -> list[ClipPrediction]:
    """Clips every ``every`` s, each ``span`` s long: one per character of ``spec``, its top-1 label
    scoring ``score`` and "z" the rest; ``x/b`` gives the clip "b" as its second label instead."""
    clips = []
    for i, top in enumerate(spec.split()):
        first, _, second = top.partition("/")
        clips.append(ClipPrediction(i, i * every, i * every + span,
                                    [Label(first, 0, score), Label(second or "z", 1, round(1 - score, 6))]))
    return clips


def spaced(labels: str) -> str:
    return " ".join(labels)


# (clips one second apart, or (clips, seconds apart); rules; shot changes; expected segments: label, start, end, clips)
CASES = [
    # clean change: the edge halfway between the last "a" clip's centre (4) and the first "b" one's (5)
    (spaced("aaaabbbb"), SegmentRules(), [], [("a", 0, 4.5, 4), ("b", 4.5, 9, 4)]),
    # one noisy clip does not split a segment (smoothed over 3 clips "a" still wins there) ...
    (spaced("aaaxaaaa"), SegmentRules(smoothing_s=2, min_seconds=0), [], [("a", 0, 9, 8)]),
    # ... nor two in a row, over the default 4 s (5 clips here)
    (spaced("aaaxxaaaa"), SegmentRules(min_seconds=0), [], [("a", 0, 10, 9)]),
    # the window is in seconds: 4 s over clips every 2 s is 3 clips, which do not outvote two noisy ones
    ((spaced("aaaxxaaaa"), 2.0), SegmentRules(min_seconds=0), [], [("a", 0, 6, 3), ("x", 6, 10, 2),
                                                                   ("a", 10, 18, 4)]),
    # without smoothing and without a minimum length, it does
    (spaced("aaaxaaaa"), SegmentRules(smoothing_s=0, min_seconds=0), [],
     [("a", 0, 3.5, 3), ("x", 3.5, 4.5, 1), ("a", 4.5, 9, 4)]),
    # a run shorter than the minimum joins a neighbour (here the only one with its label around)
    (spaced("aaaxaaaa"), SegmentRules(smoothing_s=0, min_seconds=2), [], [("a", 0, 9, 8)]),
    # ... the neighbour whose label scores higher over the short run, not the first one
    ("a a a a x/b x/b b b b b", SegmentRules(smoothing_s=0, min_seconds=2.5), [], [("a", 0, 4.5, 4), ("b", 4.5, 11, 6)]),
    # an edge moves onto a shot change within the snap distance ...
    (spaced("aaaabbbb"), SegmentRules(), [4.0], [("a", 0, 4.0, 4), ("b", 4.0, 9, 4)]),
    # ... and not onto one farther away
    (spaced("aaaabbbb"), SegmentRules(snap_s=1.0), [3.0, 6.0], [("a", 0, 4.5, 4), ("b", 4.5, 9, 4)]),
    # a segment whose label scores below the minimum is dropped; the others stay where they were
    ("a a a a q q q q", SegmentRules(smoothing_s=0, min_score=0.5), [], [("a", 0, 4.5, 4)]),
    # a video shorter than the minimum duration has no segment
    (spaced("a"), SegmentRules(min_seconds=2.5), [], []),
    ("", SegmentRules(), [], []),
]


@pytest.mark.parametrize("spec,rules,shots,expected", CASES)
def test_segments_table(spec, rules, shots, expected):
    spec, every = spec if isinstance(spec, tuple) else (spec, 1.0)
    clips = timeline(spec, every=every)
    if "q" in spec:  # the q clips score low
        clips = [c if c.top_k[0].label != "q" else ClipPrediction(c.clip_index, c.start_s, c.end_s,
                                                                    [Label("q", 0, 0.4), Label("z", 1, 0.3)])
                 for c in clips]
    duration = clips[-1].end_s if clips else 0.0
    got = segments_from_timeline(clips, duration, rules, shots)
    assert [(s.label, s.start_s, s.end_s, s.num_clips) for s in got] == [
        (label, pytest.approx(a), pytest.approx(b), n) for label, a, b, n in expected]


def test_segment_score_is_the_mean_of_its_label_over_its_clips():
    (seg,) = segments_from_timeline(timeline(spaced("aaaxaaaa")), 9.0, SegmentRules(min_seconds=0))
    assert seg.score == pytest.approx(7 * 0.9 / 8)


@pytest.mark.parametrize("kwargs,words", [({"smoothing_s": -1}, "smoothing"), ({"min_score": 1.5}, "minimum score"),
                                          ({"min_seconds": -1}, "minimum duration"),
                                          ({"snap_s": float("nan")}, "snap")])
def test_bad_rules_say_which(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        SegmentRules(**kwargs)
