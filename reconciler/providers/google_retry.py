"""Retry one idempotent Google API call on its own, at the call, budgeted by time as Google's client libraries do.

A read (a get, a list, an operation's poll) that meets a 429, a 5xx or a dropped connection is sent again alone,
with capped, jittered backoff honouring Retry-After, for up to the policy's deadline (two minutes by default,
SAXCTL_RETRY_DEADLINE): what called it (a preflight of many reads, an observe, an operation's wait) never starts over
because one of its calls failed. When the deadline passes, the last failure is raised as final, so no outer layer
retries it again. Writes are not retried here: the apply retries a whole change, which reads the world first.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RemoteError, RetryableError
from reconciler.providers.google_errors import remote_call

T = TypeVar("T")
log = logging.getLogger(__name__)


def idempotent(method: str, target: str, call: Callable[[], T], policy: RetryPolicy | None = None) -> T:
    """call() inside remote_call(method, target), retried alone on transient failures until the policy's deadline."""
    policy = policy or RetryPolicy.from_environment()

    def attempt() -> T:
        with remote_call(method, target):
            return call()

    def note(attempt_number: int, error: RetryableError, delay: float) -> None:
        log.info("%s; retrying in %.1fs (attempt %d failed)", error.message, delay, attempt_number)

    try:
        return policy.call(attempt, note)
    except RetryableError as error:  # the budget is spent: final, not to be retried again by a caller
        raise RemoteError(f"{error.message} (still failing after {policy.deadline:g} s of retries)",
                          hint=error.hint) from None
