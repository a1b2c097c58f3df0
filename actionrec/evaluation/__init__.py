"""Evaluation: metrics as numbers (``metrics``), the report and the confusion picture (``report``),
and running a model over labeled videos (``evaluate``)."""
