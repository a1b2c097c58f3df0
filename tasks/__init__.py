"""Prefect tasks: thin wrappers over ``actionrec`` functions. They take and return small values."""
