"""The small public API the design promises: probe, read_frames and load_model, for local paths,
file:// and s3:// URIs alike, with ``import actionrec`` light enough for any program."""

from __future__ import annotations

import subprocess
import sys

import boto3
import numpy as np
from checkpoints import write_tiny_checkpoint
from videos import frame_index

import actionrec


def test_import_actionrec_and_the_lake_needs_no_torch_prefect_or_boto3():
    code = ("import sys, actionrec, actionrec.lake.lake, actionrec.lake.query\n"
            "heavy = [m for m in ('torch', 'prefect', 'boto3') if m in sys.modules]\n"
            "assert not heavy, heavy\nassert callable(actionrec.load_model)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_probe_and_read_frames_take_paths_file_uris_and_s3_uris(media, s3_endpoint):
    boto3.client("s3").create_bucket(Bucket="api")
    boto3.client("s3").upload_file(str(media["mp4"]), "api", "clips/a.mp4")
    for uri in (str(media["mp4"]), media["mp4"].resolve().as_uri(), "s3://api/clips/a.mp4"):
        info = actionrec.probe(uri)
        assert (info.num_frames, info.width, info.codec) == (100, 96, "h264"), uri
        frames = actionrec.read_frames(uri, [0.0, 1.0, 2.0])
        assert frames.dtype == np.uint8 and [frame_index(f) for f in frames] == [0, 25, 50], uri


def test_load_model_predicts(media, tmp_path):
    ckpt = write_tiny_checkpoint(tmp_path / "m" / "model.pt", ["left", "right"], name="api")
    model = actionrec.load_model(ckpt.as_uri())
    assert model.classes == ["left", "right"] and model.name == "api" and model.spec.crop_size == 32
    (result,) = model.predict([str(media["mp4"])], top_k=1, clips=2)
    assert result.status == "ok" and result.num_clips == 2 and result.top_k[0].label in model.classes
    assert float(result.probs.sum()) == np.float32(1.0) or abs(float(result.probs.sum()) - 1) < 1e-5
