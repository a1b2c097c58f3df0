"""The tag and retrain pipelines as plain functions (the Prefect flows compose them), and the one
source of their settings and defaults (``settings``)."""
