"""Retry transient API failures with jittered exponential backoff (tenacity), reporting each wait."""

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

    def call(self, operation: Callable[[], T], on_retry: Callable[[int, RetryableError, float], None]) -> T:
        """Run operation; on RetryableError wait and try again, up to `attempts` times in all."""
        jitter = tenacity.wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            return min(self.max_wait, max(retry_after or 0.0, jitter(state)))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(operation)
