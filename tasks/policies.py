"""How the tasks retry, written once: only what can heal (network, throttling, 5xx, a lost worker,
a shard past its time limit) is retried; a configuration error (no champion, a missing source or
label table, a bad checkpoint) fails at once, so the operator sees one clear line instead of
minutes of backoff.

Time limits live inside the work, not in Prefect's ``timeout_seconds``, which cannot interrupt a
task running in a worker thread: ``decode_timeout_s`` per video (its decoder process is killed),
``shard_timeout_s`` per shard (checked between batches), botocore's connect and read timeouts per
S3 request."""

from __future__ import annotations

from typing import Any

from actionrec.errors import is_transient

TAGS = ["actionrec"]


def exception_of(state: Any) -> BaseException | None:
    """The exception a failed state carries (Prefect keeps it as the state's data)."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    try:
        found = state.result(raise_on_failure=False)
    except Exception as e:  # noqa: BLE001 - a result that cannot be read is an exception too
        return e
    return found if isinstance(found, BaseException) else None


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry only when the failure may heal."""
    exc = exception_of(state)
    return exc is None or is_transient(exc)


IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [2, 10, 30], "retry_condition_fn": retry_if_transient}
