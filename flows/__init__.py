"""Prefect flows: the pipeline's story, composed from tasks."""
