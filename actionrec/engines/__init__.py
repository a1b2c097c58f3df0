"""Inference engines: what runs a model's forward pass (torch, or OpenVINO on CPU).

``choice`` holds the one rule that picks an engine and a precision; ``runners`` opens a runner for
a model (from the conversion cache when it can, so an OpenVINO worker never imports torch);
``export`` turns a checkpoint into an OpenVINO or ONNX model. Every runner takes uint8 clips
``[N, T, H, W, 3]`` and returns class probabilities ``[N, K]``: normalisation and softmax live
inside the engine, so a worker does no float work in Python.
"""

from actionrec.engines.telemetry import no_telemetry

no_telemetry()  # before any engine module imports OpenVINO
