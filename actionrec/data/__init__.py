"""Data: which instants a model sees (``sampling``), uint8 clips from a URI (``clips``), tensors and
augmentations (``transforms``), label tables (``labels``), training datasets (``datasets``), the
synthetic temporal dataset (``synth``) and contact sheets (``sheet``)."""
