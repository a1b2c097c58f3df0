"""Dense prediction (a clip every N seconds): the same scores as scoring each clip alone, clips
streamed from one forward pass, memory bounded by the queue and not by the video."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest
import torch

from actionrec.data.clips import DecodedVideo, DenseClip, view_crops_thwc
from actionrec.data.sampling import dense_clips
from actionrec.errors import ConfigError
from actionrec.inference.predictor import Predictor
from actionrec.inference.streams import ClipStreams
from actionrec.io.video import VideoReader
from actionrec.models import build_model

CLASSES = ["c0", "c1", "c2"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("tiny3d", CLASSES, width=4)
    m.spec = m.spec.replace(frames_per_clip=4, sampling="fps", sample_fps=10.0, short_side=32, crop_size=32)
    m.module.eval()
    return m


@pytest.fixture(scope="module")
def runner(model):
    """The model opened once (engines convert it), shared by the predictors below."""
    return Predictor(model).runner


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_dense_timeline_is_each_clip_scored_alone(media, model, runner, backend):
    """A clip every 0.25 s (clips of 0.4 s overlap): one result per clip, in order, with the scores
    the model gives that clip read on its own; the video's scores are the clips' mean."""
    uri = str(media["mp4"])
    predictor = Predictor(runner, batch_size=3, decode_workers=2, decode_backend=backend)
    (r,) = predictor.predict_all([uri], top_k=3, every=0.25)
    with VideoReader(uri) as reader:
        clips = list(dense_clips(reader.duration, reader.fps, 0.25, model.spec.clip_sampling))
        frames = [reader.read(c, short_side=model.spec.short_side).frames_thwc for c in clips]
    alone = predictor.run_batch(np.stack([view_crops_thwc(f, model.spec.crop_hw, 1)[0] for f in frames]))
    assert r.status == "ok" and r.num_clips == len(clips) == 15
    assert [c.clip_index for c in r.clips] == list(range(15))
    assert [c.start_s for c in r.clips] == pytest.approx([float(int(c[0] * 25) / Fraction(25)) for c in clips])
    for c, p in zip(r.clips, alone, strict=True):
        assert [x.class_id for x in c.top_k] == list(np.argsort(-p, kind="stable"))
        assert [x.score for x in c.top_k] == pytest.approx(p[np.argsort(-p, kind="stable")].tolist(), abs=1e-5)
    assert r.probs == pytest.approx(alone.mean(axis=0), abs=1e-5)



def test_a_dense_run_carries_embeddings(media, model, runner):
    """Asked for embeddings, a dense video gets the normalised mean of its clips' head-input features,
    as a fixed-count run does, and the scores do not change."""
    uri = str(media["mp4"])
    predictor = Predictor(runner, batch_size=4, decode_backend="thread")
    (plain,) = predictor.predict_all([uri], top_k=3, every=0.5)
    (r,) = predictor.predict_all([uri], top_k=3, every=0.5, embeddings=True)
    assert plain.embedding is None and r.probs == pytest.approx(plain.probs, abs=1e-6)
    with VideoReader(uri) as reader:
        clips = list(dense_clips(reader.duration, reader.fps, 0.5, model.spec.clip_sampling))
        frames = [reader.read(c, short_side=model.spec.short_side).frames_thwc for c in clips]
    _, features = predictor.run_batch_features(
        np.stack([view_crops_thwc(f, model.spec.crop_hw, 1)[0] for f in frames]))
    mean = features.astype(np.float64).mean(axis=0)
    assert r.embedding.dtype == np.float32 and r.num_clips == len(clips)
    assert r.embedding == pytest.approx(mean / np.linalg.norm(mean), abs=1e-5)

def test_dense_runs_mix_good_and_bad_videos(media, runner):
    uris = [str(media[k]) for k in ("text", "mp4", "truncated_faststart", "short", "mp4")]
    results = Predictor(runner, batch_size=4, decode_workers=2, decode_backend="thread").predict_all(
        uris, top_k=2, every=1.0)
    assert [r.uri for r in results] == uris
    assert results[0].status == "failed" and "not a video" in results[0].error
    assert results[1].status == results[4].status == "ok" and results[1].num_clips == 4  # 4 s: starts 0, 1, 2, 3
    assert results[2].status == "partial" and "truncated" in results[2].error and results[2].num_clips >= 1
    assert results[3].num_clips == 1  # 5 frames: shorter than a clip


def test_every_must_be_positive_seconds(runner):
    with pytest.raises(ConfigError, match="every"):
        next(Predictor(runner).predict(["x.mp4"], every=0))


def _slow_consumer_stream(uri: str, made: list[int]):
    """A real producer that counts what it made: 40 clips, then its end."""
    for i in range(40):
        made.append(i)
        yield DenseClip(i, (i, i + 1.0), np.zeros((1, 1, 1, 1, 3), np.uint8))
    yield DecodedVideo(uri, None)


def test_streams_stop_decoding_while_the_model_is_busy():
    """A full queue holds the decoders: what was made and not yet taken stays within the buffer."""
    made: list[int] = []
    ahead = 0
    with ClipStreams(_slow_consumer_stream, (made,), workers=1, backend="thread", buffer=4) as streams:
        taken = 0
        for _, _, item in streams.items(["long.mp4"]):
            if isinstance(item, DenseClip):
                taken += 1
                time.sleep(0.002)
                ahead = max(ahead, len(made) - taken)
    assert taken == 40
    assert ahead <= 4 + 1  # the queue, plus the clip in the producer's hand


def test_a_stopped_run_leaves_no_decoder_running(media, runner):
    threads_before = threading.active_count()
    predictor = Predictor(runner, batch_size=2, decode_workers=2, decode_backend="thread")
    results = predictor.predict([str(media["mp4"])] * 4, every=0.1)
    next(results)
    results.close()  # the consumer leaves early (a stop, a time limit)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before


def test_a_crashing_or_stuck_decoder_costs_its_video_only(media, model, tmp_path):
    from crashing import stream_or_fail

    good, crash, slow = (tmp_path / n for n in ("good.mp4", "crash.mp4", "slow.mp4"))
    for p in (good, crash, slow):
        p.write_bytes(media["mp4"].read_bytes())
    ends: dict[str, DecodedVideo] = {}
    clips: dict[str, int] = {}
    with ClipStreams(stream_or_fail, (model.spec, 1.0, 1), workers=3, backend="process", timeout_s=1.0) as streams:
        for _, uri, item in streams.items([str(crash), str(good), str(slow)]):
            if isinstance(item, DecodedVideo):
                ends[uri] = item
            else:
                clips[uri] = clips.get(uri, 0) + 1
    assert ends[str(good)].error is None and clips[str(good)] == 4
    assert "crashed" in ends[str(crash)].error
    assert "no progress for 1 s" in ends[str(slow)].error
