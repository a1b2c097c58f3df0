"""Inference: torch-free result types (``results``), crash-isolated decode workers (``decode_pool``),
and the batched ``Predictor`` (``predictor``, torch)."""
