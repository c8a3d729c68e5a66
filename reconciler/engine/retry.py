"""Retry transient API failures with capped, jittered exponential backoff (tenacity), budgeted by time.

What is transient is the provider's call (it raises RetryableError: a 429, a 5xx, a gRPC UNAVAILABLE, GKE's "operation
in progress", an IAM etag conflict). As Google's client libraries do for idempotent calls, retries are budgeted by time,
not counted: a call that keeps failing is tried again for up to `deadline` seconds after its first failure (waits of
full jitter up to `max_wait`, never shorter than a Retry-After the server sent). Those that only end when something
else finishes (RetryableError.until_deadline) are retried until the change's own deadline instead.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import tenacity

from reconciler.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    deadline: float = 120.0  # seconds of retrying after the first failure (google-api-core: 120 s for idempotent calls)
    initial_wait: float = 0.5  # seconds; doubles each attempt, with full jitter
    max_wait: float = 30.0
    attempts: int | None = None  # an optional cap on attempts as well (tests of the engine)

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """SAXCTL_RETRY_DEADLINE / SAXCTL_RETRY_MAX_WAIT (seconds) and SAXCTL_RETRY_ATTEMPTS tune it: tests and
        chaos runs use short waits, and a short deadline to see a call give up."""
        defaults = cls()
        attempts = os.environ.get("SAXCTL_RETRY_ATTEMPTS")
        return cls(
            deadline=float(os.environ.get("SAXCTL_RETRY_DEADLINE", defaults.deadline)),
            max_wait=float(os.environ.get("SAXCTL_RETRY_MAX_WAIT", defaults.max_wait)),
            attempts=int(attempts) if attempts else None,
        )

    def call(self, operation: Callable[[], T], on_retry: Callable[[int, RetryableError, float], None], *,
             time_left: Callable[[], float | None] = lambda: None) -> T:
        """Run operation; on RetryableError wait and try again, within the budget and the change's deadline."""
        jitter = tenacity.wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)
        first_failure: list[float] = []

        def budget_left() -> float:
            if not first_failure:
                first_failure.append(time.monotonic())
            return self.deadline - (time.monotonic() - first_failure[0])

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            delay = min(self.max_wait, max(retry_after or 0.0, jitter(state)))
            limits = [time_left()]
            if not getattr(error, "until_deadline", False):
                limits.append(budget_left())
            return max(0.0, min([delay] + [limit for limit in limits if limit is not None]))

        def stop(state: tenacity.RetryCallState) -> bool:
            left = time_left()
            if left is not None and left <= 0:
                return True
            error = state.outcome.exception() if state.outcome else None
            if getattr(error, "until_deadline", False) and left is not None:
                return False
            if self.attempts is not None and state.attempt_number >= self.attempts:
                return True
            return budget_left() <= 0

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
