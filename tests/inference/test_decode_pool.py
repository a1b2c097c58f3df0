"""Decode workers: threads and processes agree; a crashing decoder costs one failed video, not the run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from crashing import decode_or_crash, decode_or_hang

from actionrec.data.clips import decode_clips
from actionrec.data.spec import InputSpec
from actionrec.errors import ConfigError
from actionrec.inference.decode_pool import CRASHED, DecodePool

SPEC = InputSpec(frames_per_clip=4, frame_stride=2, short_side=32, crop_size=32)


def run(fn, uris, backend, workers=2):
    with DecodePool(fn, (SPEC, 2), workers=workers, backend=backend) as pool:
        return {d.uri: d for d in pool.map_unordered(uris, prefetch=3)}, pool.crashes


def test_thread_and_process_backends_agree(media):
    uris = [str(media[k]) for k in ("mp4", "avi", "mkv", "empty", "text")]
    threads, _ = run(decode_clips, uris, "thread")
    procs, _ = run(decode_clips, uris, "process")
    assert set(threads) == set(procs) == set(uris)
    for u in uris:
        a, b = threads[u], procs[u]
        assert a.error == b.error
        if a.clips_nthwc is not None:
            assert a.clips_nthwc.shape == (2, 4, 32, 32, 3) and np.array_equal(a.clips_nthwc, b.clips_nthwc)


def test_segfault_in_a_worker_becomes_one_failed_video(media, tmp_path):
    crash = tmp_path / "crash.mp4"
    shutil.copy(media["mp4"], crash)
    uris = [str(media["mp4"]), str(crash), str(media["avi"]), str(media["mkv"]), str(media["vfr"])]
    results, crashes = run(decode_or_crash, uris, "process")
    assert set(results) == set(uris)
    assert results[str(crash)].error == CRASHED and results[str(crash)].clips_nthwc is None
    assert all(results[u].clips_nthwc is not None for u in uris if u != str(crash))
    assert crashes == 1


def test_unknown_backend():
    with pytest.raises(ConfigError, match="decode_backend"):
        DecodePool(decode_clips, (SPEC, 1), workers=1, backend="gpu")


def test_a_video_past_the_time_limit_fails_and_the_rest_go_on(media, tmp_path):
    slow = tmp_path / "slow.mp4"
    shutil.copy(media["mp4"], slow)
    uris = [str(media["mp4"]), str(slow), str(media["avi"]), str(media["mkv"]), str(media["vfr"])]
    with DecodePool(decode_or_hang, (SPEC, 1), workers=2, backend="process", timeout_s=3) as pool:
        results = {d.uri: d for d in pool.map_unordered(uris, prefetch=4)}
        assert pool.timeouts == 1
    assert set(results) == set(uris)
    assert "longer than the 3 s limit" in results[str(slow)].error
    assert all(results[u].clips_nthwc is not None for u in uris if u != str(slow))
