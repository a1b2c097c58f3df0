"""S3 access through boto3 (imported here only, on first use): standard AWS configuration, any
S3-compatible endpoint.

The endpoint comes from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) when set, so the same code
talks to AWS, MinIO, Ceph, R2 or a local test server. Credentials are never logged or echoed.
Errors are sorted once, here: throttling, 5xx and network failures are ``StorageUnavailableError``
(worth a retry), the rest ``StorageError`` (or a ``VideoError`` for one missing or forbidden video).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from actionrec.errors import StorageError, StorageUnavailableError, VideoError
from actionrec.io.uris import split_s3

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "Forbidden"}
_TRANSIENT = {"500", "502", "503", "504", "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
              "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable", "RequestLimitExceeded"}
_MULTIPART_BYTES = 64 * 2**20  # managed uploads switch to multipart above this size


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def presigned_get(uri: str, expiry_s: int) -> str:
    """A URL that lets anyone holding it read one object until it expires (SigV4: at most 7 days)."""
    import boto3
    from botocore.config import Config

    from actionrec.io.uris import split_s3

    bucket, key = split_s3(uri)
    signer = boto3.client("s3", endpoint_url=endpoint_url(), config=Config(signature_version="s3v4"))
    return signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expiry_s)


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def client() -> Any:
    return _client(endpoint_url())


def reset_clients() -> None:
    """Forget cached clients, so the next call follows the current environment (endpoint, keys)."""
    _client.cache_clear()


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def storage_error(e: Exception, what: str) -> StorageError:
    """The typed error for a failed S3 call: transient (retry) or permanent (fix something)."""
    from botocore.exceptions import BotoCoreError

    code = _code(e)
    if isinstance(e, BotoCoreError):
        return StorageUnavailableError(f"{what}: cannot reach the object store ({type(e).__name__})")
    if code in _TRANSIENT:
        return StorageUnavailableError(f"{what}: the object store is unavailable for now ({code})")
    return StorageError(f"{what}: {code or type(e).__name__}")


def download_to(uri: str, target: Path) -> None:
    """Download one object; a missing or forbidden object is a ``VideoError`` (that video's problem)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        client().download_file(bucket, key, str(target))
    except ClientError as e:
        code = _code(e)
        if code in _NOT_FOUND:
            raise VideoError("object not found (deleted after listing?)", uri=uri) from e
        if code in _DENIED:
            raise VideoError("access denied by the object store", uri=uri) from e
        raise storage_error(e, uri) from e
    except BotoCoreError as e:
        raise storage_error(e, uri) from e


def put_bytes(bucket: str, key: str, data: bytes, *, if_match: str | None = None, if_absent: bool = False) -> bool:
    """One PUT: S3 makes the object visible whole or not at all. With ``if_match`` (an ETag) or
    ``if_absent``, the write happens only if the object is still that version (or still absent);
    returns False when that condition failed (another writer came first)."""
    from botocore.exceptions import BotoCoreError, ClientError

    conditions: dict[str, str] = {}
    if if_match is not None:
        conditions["IfMatch"] = if_match
    if if_absent:
        conditions["IfNoneMatch"] = "*"
    try:
        client().put_object(Bucket=bucket, Key=key, Body=data, **conditions)
    except ClientError as e:
        if conditions and _code(e) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
            return False
        raise storage_error(e, f"cannot write s3://{bucket}/{key}") from e
    except BotoCoreError as e:
        raise storage_error(e, f"cannot write s3://{bucket}/{key}") from e
    return True


def upload_file(path: Path, bucket: str, key: str) -> None:
    """boto3's managed upload: streamed from disk, multipart for large files. The object appears
    when the upload completes, whole, or not at all."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    config = TransferConfig(multipart_threshold=_MULTIPART_BYTES, multipart_chunksize=_MULTIPART_BYTES)
    try:
        client().upload_file(str(path), bucket, key, Config=config)
    except (ClientError, BotoCoreError) as e:
        raise storage_error(e, f"cannot write s3://{bucket}/{key}") from e
    except Exception as e:  # S3UploadFailedError wraps the ClientError
        cause = e.__cause__ or e.__context__
        if isinstance(cause, ClientError | BotoCoreError):
            raise storage_error(cause, f"cannot write s3://{bucket}/{key}") from e
        raise


def get_bytes(bucket: str, key: str) -> bytes | None:
    found = get_versioned(bucket, key)
    return None if found is None else found[0]


def _or_none(what: str, call: Callable[[], Any]) -> Any:
    """``call()``'s result, None when the object does not exist, a typed error for anything else."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as e:
        if _code(e) in _NOT_FOUND:
            return None
        raise storage_error(e, what) from e
    except BotoCoreError as e:
        raise storage_error(e, what) from e


def get_versioned(bucket: str, key: str) -> tuple[bytes, str] | None:
    """The object's bytes and ETag, or None when it does not exist."""

    def read() -> tuple[bytes, str]:
        obj = client().get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), str(obj.get("ETag", ""))

    return _or_none(f"cannot read s3://{bucket}/{key}", read)


def head(bucket: str, key: str) -> dict[str, Any] | None:
    return _or_none(f"cannot stat s3://{bucket}/{key}", lambda: client().head_object(Bucket=bucket, Key=key))


def delete(bucket: str, key: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client().delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as e:
        raise storage_error(e, f"cannot delete s3://{bucket}/{key}") from e


def list_objects(bucket: str, prefix: str, *, limit: int | None = None) -> Iterator[tuple[str, str, int]]:
    """Paginated listing: ``(uri, etag, size)`` of every object under ``prefix`` (at most ``limit``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen = 0
    try:
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield f"s3://{bucket}/{obj['Key']}", str(obj.get("ETag", "")).strip('"'), int(obj["Size"])
                seen += 1
                if limit is not None and seen >= limit:
                    return
    except (ClientError, BotoCoreError) as e:
        raise storage_error(e, f"cannot list s3://{bucket}/{prefix}") from e


def arrow_filesystem() -> Any:
    """pyarrow's S3 filesystem with the same endpoint and credentials chain as boto3."""
    from pyarrow import fs

    endpoint = endpoint_url()
    kwargs: dict[str, Any] = {}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    # Same patience as boto3's client above: transient 5xx and resets are retried with backoff.
    return fs.S3FileSystem(retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=8), **kwargs)
