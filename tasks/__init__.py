"""Prefect tasks: thin wrappers over ``actionrec`` functions. They take and return small values,
and retry only what can heal (``tasks.policies``)."""
