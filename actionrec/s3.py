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


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def put_bytes(bucket: str, key: str, data: bytes) -> None:
    """One PUT: S3 makes the object visible whole or not at all."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client().put_object(Bucket=bucket, Key=key, Body=data)
    except (ClientError, BotoCoreError) as e:
        raise StorageError(f"cannot write s3://{bucket}/{key}: {_code(e) or type(e).__name__}") from e


def get_bytes(bucket: str, key: str) -> bytes | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if _code(e) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise StorageError(f"cannot read s3://{bucket}/{key}: {_code(e)}") from e
    except BotoCoreError as e:
        raise StorageError(f"cannot read s3://{bucket}/{key}: {type(e).__name__}") from e


def head(bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return client().head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if _code(e) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise StorageError(f"cannot stat s3://{bucket}/{key}: {_code(e)}") from e


def list_objects(bucket: str, prefix: str) -> Any:
    """Paginated listing; yields ``VideoObject``s (ETag is the identity of an S3 object)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from actionrec.storage import VideoObject

    try:
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield VideoObject(f"s3://{bucket}/{obj['Key']}", str(obj.get("ETag", "")).strip('"'), int(obj["Size"]))
    except ClientError as e:
        raise StorageError(f"cannot list s3://{bucket}/{prefix}: {_code(e)}") from e
    except BotoCoreError as e:
        raise StorageError(f"cannot reach the object store to list s3://{bucket}/{prefix}: {type(e).__name__}") from e


def arrow_filesystem() -> Any:
    """pyarrow's S3 filesystem with the same endpoint and credentials chain as boto3."""
    from pyarrow import fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    # Same patience as boto3's client above: transient 5xx and resets are retried with backoff.
    return fs.S3FileSystem(retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=8), **kwargs)
