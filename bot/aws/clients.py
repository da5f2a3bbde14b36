"""boto3 clients, IAM errors, pagination and the retry IAM's eventual consistency needs.

boto3 picks up ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION`` and
``AWS_ENDPOINT_URL`` from the environment. Retries use botocore's ``standard`` mode, which
retries IAM's ``Throttling`` and 5xx answers with capped backoff. IAM is eventually consistent
(a user just created may be ``NoSuchEntity`` to the next call for a few seconds), so calls on a
just-created user also retry ``NoSuchEntity`` for a bounded time (:func:`retry_no_such_entity`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
# Bounded read-after-create retry for NoSuchEntity (IAM eventual consistency): ~30 s in all.
CONSISTENCY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15)


class IamError(Exception):
    """An IAM call failed for good. ``code`` is IAM's error code; the message holds no secret."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.operation = operation


def error_code(error: ClientError) -> str:
    """IAM's error code of a ``ClientError`` (``NoSuchEntity``, ``EntityAlreadyExists``…)."""
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def as_iam_error(error: ClientError) -> IamError:
    """Wrap a botocore error; request ids and parameters are left out on purpose."""
    info = error.response.get("Error", {})
    return IamError(error_code(error), str(info.get("Message", "")), error.operation_name)


def make_clients(session: boto3.session.Session | None = None) -> tuple[Any, Any]:
    """``(iam, sts)`` clients with standard retries; endpoint from ``AWS_ENDPOINT_URL`` if set."""
    session = session or boto3.session.Session()
    region = session.region_name or "us-east-1"
    return (
        session.client("iam", config=RETRY_CONFIG, region_name=region),
        session.client("sts", config=RETRY_CONFIG, region_name=region),
    )


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list call (``list_users`` → ``Users``…), all pages read."""
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page[key])
    return items


def gone(call: Callable[[], object]) -> None:
    """Run a delete; ``NoSuchEntity`` means it is already gone, which is what the caller wants."""
    try:
        call()
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise


def retry_on(
    code: str,
    call: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
    delays: Sequence[float] = CONSISTENCY_DELAYS,
) -> T:
    """``call()``, retried after each of ``delays`` (seconds) while IAM answers error ``code``.

    The last such error (or any other error at once) is raised as the ``ClientError`` it is.
    """

    def wait(state: RetryCallState) -> float:  # tenacity asks before it checks ``stop``
        index = state.attempt_number - 1
        return float(delays[index]) if index < len(delays) else 0.0

    retrying = Retrying(
        retry=retry_if_exception(lambda error: isinstance(error, ClientError) and error_code(error) == code),
        stop=stop_after_attempt(len(delays) + 1),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)


def retry_no_such_entity(
    call: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
    delays: Sequence[float] = CONSISTENCY_DELAYS,
) -> T:
    """``call()`` retried while IAM answers ``NoSuchEntity`` (eventual consistency right after a
    create), after each of ``delays`` seconds (:func:`retry_on`)."""
    return retry_on("NoSuchEntity", call, sleep, delays)
