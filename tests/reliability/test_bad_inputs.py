"""Every kind of broken file meets one tag run: each ends as one row with a status and a reason a
person understands, and the run completes."""

from __future__ import annotations

import random
import shutil
from fractions import Fraction

import numpy as np
import pytest
from checkpoints import write_tiny_checkpoint
from videos import write_indexed

from actionrec.io.video import write_video
from actionrec.lake.query import query


@pytest.fixture(scope="module")
def archive(media, tmp_path_factory):
    d = tmp_path_factory.mktemp("archive")
    for k in ("empty", "text", "png", "audio_only", "truncated_no_moov", "truncated_faststart", "single", "vfr",
              "avi", "mp4"):
        shutil.copy(media[k], d / f"{k}{media[k].suffix if k != 'audio_only' else '.mp4'}")
    faststart = write_indexed(d / "src.mp4", 100, gop=10, bframes=2, container_options={"movflags": "+faststart"})
    data = bytearray(faststart.read_bytes())
    faststart.unlink()
    rng = random.Random(0)
    for _ in range(30):  # damage spread through the frames the sampler reads (unread frames go unnoticed)
        pos = rng.randrange(len(data) // 5, len(data))
        data[pos] ^= 1 << rng.randrange(8)
    (d / "bitflips.mp4").write_bytes(bytes(data))
    write_video(d / "tiny_34x18.mp4", np.random.default_rng(0).integers(0, 255, (12, 18, 34, 3), np.uint8), 12)
    big = np.zeros((3, 2160, 3840, 3), np.uint8)
    big[:, :, 1920:] = 200
    write_video(d / "uhd_3840x2160.mp4", big, Fraction(30), options={"preset": "ultrafast"})
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("m") / "model.pt", ["a", "b"])


EXPECTED = {
    # file: (status, words in the reason)
    "empty.mp4": ("failed", "empty"),
    "text.mp4": ("failed", "not a video"),
    "png.mp4": ("failed", "still image"),
    "audio_only.mp4": ("failed", "no video stream"),
    "truncated_no_moov.mp4": ("failed", "damaged"),
    "truncated_faststart.mp4": ("partial", "truncated"),
    "bitflips.mp4": ("partial", "damaged"),  # demuxing stops at the damage: what came before is used
    "single.mp4": ("ok", None),
    "vfr.mp4": ("ok", None),
    "avi.avi": ("ok", None),
    "mp4.mp4": ("ok", None),
    "tiny_34x18.mp4": ("ok", None),
    "uhd_3840x2160.mp4": ("ok", None),
}


def test_every_bad_input_is_a_row_with_a_reason(prefect_api, archive, model, tmp_path):
    from flows.tag import tag_flow

    lake = str(tmp_path / "lake")
    row = tag_flow(source=str(archive), lake=lake, model=str(model), shard_size=4, clips=2)
    assert row["videos_listed"] == len(EXPECTED)
    cols, rows = query(lake, "SELECT video_uri, status, error, num_clips, top1_label FROM latest_predictions")
    got = {u.rsplit("/", 1)[-1]: (s, e, n, t) for u, s, e, n, t in rows}
    assert set(got) == set(EXPECTED)
    for name, (status, words) in EXPECTED.items():
        s, e, n, t = got[name]
        assert s == status, (name, s, e)
        if words:
            assert words in e, (name, e)
        if status in ("ok", "partial"):
            assert n == 2 and t in ("a", "b"), name  # predictions from what decoded
        else:
            assert t is None
    assert (row["ok"], row["partial"], row["failed"]) == (6, 2, 5)
