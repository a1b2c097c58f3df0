"""S3 access through boto3 (imported here only): standard AWS configuration, any S3-compatible endpoint.

The endpoint comes from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) when set, so the same code
talks to AWS, MinIO, Ceph, R2 or a local test server. Credentials are never logged or echoed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from actionrec.errors import StorageError, VideoError
from actionrec.sources import split_s3


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def client() -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    return _client(endpoint)


def download_to(uri: str, target: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        client().download_file(bucket, key, str(target))
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchKey", "NotFound"}:
            raise VideoError("object not found (deleted after listing?)", uri=uri) from e
        if code in {"403", "AccessDenied"}:
            raise VideoError("access denied by the object store", uri=uri) from e
        raise StorageError(f"{uri}: S3 error {code}") from e
    except BotoCoreError as e:
        raise StorageError(f"{uri}: cannot reach the object store ({type(e).__name__})") from e
