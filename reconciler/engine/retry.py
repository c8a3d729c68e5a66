"""Retry transient API failures with jittered exponential backoff (tenacity), reporting each wait.

What is transient is the provider's call (it raises RetryableError: a 429, a gRPC UNAVAILABLE, GKE's "operation in
progress", an IAM etag conflict). Most are retried a few times; those that only end when something else finishes
(RetryableError.until_deadline) are retried until the change's deadline instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import tenacity

from reconciler.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    initial_wait: float = 0.5  # seconds; doubles each attempt, with full jitter
    max_wait: float = 30.0

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """SAXCTL_RETRY_ATTEMPTS / SAXCTL_RETRY_MAX_WAIT tune it (tests and chaos runs use small values)."""
        defaults = cls()
        return cls(
            attempts=int(os.environ.get("SAXCTL_RETRY_ATTEMPTS", defaults.attempts)),
            max_wait=float(os.environ.get("SAXCTL_RETRY_MAX_WAIT", defaults.max_wait)),
        )

    def call(self, operation: Callable[[], T], on_retry: Callable[[int, RetryableError, float], None], *,
             time_left: Callable[[], float | None] = lambda: None) -> T:
        """Run operation; on RetryableError wait and try again, within the attempts and the deadline."""
        jitter = tenacity.wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            delay = min(self.max_wait, max(retry_after or 0.0, jitter(state)))
            left = time_left()
            return delay if left is None else max(0.0, min(delay, left))

        def stop(state: tenacity.RetryCallState) -> bool:
            left = time_left()
            if left is not None and left <= 0:
                return True
            error = state.outcome.exception() if state.outcome else None
            if getattr(error, "until_deadline", False) and left is not None:
                return False
            return state.attempt_number >= self.attempts

        def before_sleep(state: tenacity.RetryCallState) -> None:
            on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(operation)
