"""Video I/O and storage: PyAV decoding (``video``), URIs, local folders and S3 (``storage``, ``s3``),
and the one atomic write (``atomic``). Nothing here imports torch; boto3 is imported on first S3 use."""
