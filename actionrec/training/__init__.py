"""Training: one config (``config``, the defaults), losses (``losses``), the loop (``loop``)."""
