"""Fault and latency rules shared by every emulator: match a request, then delay, fail, or drop the connection.

A rule fires before the emulator handles the request, or with `after_commit` once it has: the write is done and
only its reply is lost (the case that makes a naive create run twice). A rule with a probability below 1 decides
from its seed, the request's verb and path, and how many such requests it saw before: the same seed replays the same
faults on the same sequence of calls to each path, however calls to different paths interleave.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import random
import re
import threading
from dataclasses import dataclass, field, fields

from reconciler.sandbox.base.api_errors import STATUS_OF_CODE

_RULE_FIELDS = {"method", "path", "status", "body", "count", "probability", "delay_s", "retry_after", "drop",
                "grpc_code", "after_commit", "seed"}
GRPC_ERROR_CODES = frozenset({"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                              "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                              "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                              "UNAUTHENTICATED"})


@dataclass
class FaultRule:
    """One rule. With no status and no drop it only adds latency; `count` None means every matching request."""

    method: str = "*"
    path: str = ".*"  # a regular expression searched in the request path (query string excluded)
    status: int | None = None
    body: dict | None = None  # the error body; default: Google's body for the status
    count: int | None = None
    probability: float = 1.0
    delay_s: float = 0.0
    retry_after: float | None = None  # seconds, sent as Retry-After (429 gets 1 s unless set)
    drop: bool = False  # close the connection without answering
    grpc_code: str | None = None  # gRPC emulators: the status code name; default: the HTTP status's canonical code
    after_commit: bool = False  # let the emulator handle the request, then replace its reply (or drop it)
    seed: int | None = None  # for probability < 1; drawn at random when not given, and shown, so a run can be replayed
    id: int = 0
    hits: int = 0
    _pattern: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _seen: collections.Counter = field(default_factory=collections.Counter, repr=False, compare=False)

    @classmethod
    def from_dict(cls, raw: dict) -> "FaultRule":
        """Validate one rule from JSON; ValueError names the bad field."""
        if not isinstance(raw, dict):
            raise ValueError(f"a fault rule must be a JSON object, got {type(raw).__name__}")
        unknown = set(raw) - _RULE_FIELDS
        if unknown:
            raise ValueError(f"unknown fault rule field(s) {sorted(unknown)}; known: {sorted(_RULE_FIELDS)}")
        rule = cls(**raw)
        try:
            rule._pattern = re.compile(rule.path)
        except re.error as error:
            raise ValueError(f"fault rule path {rule.path!r} is not a valid regular expression: {error}") from None
        if rule.status is not None and not (isinstance(rule.status, int) and 100 <= rule.status <= 599):
            raise ValueError(f"fault rule status must be an HTTP status code, got {rule.status!r}")
        if rule.count is not None and (not isinstance(rule.count, int) or rule.count < 1):
            raise ValueError(f"fault rule count must be a positive integer, got {rule.count!r}")
        if not (isinstance(rule.probability, (int, float)) and 0 < rule.probability <= 1):
            raise ValueError(f"fault rule probability must be in (0, 1], got {rule.probability!r}")
        if not (isinstance(rule.delay_s, (int, float)) and 0 <= rule.delay_s <= 300):
            raise ValueError(f"fault rule delay_s must be between 0 and 300, got {rule.delay_s!r}")
        if rule.body is not None and not isinstance(rule.body, dict):
            raise ValueError("fault rule body must be a JSON object")
        if rule.seed is not None and (not isinstance(rule.seed, int) or isinstance(rule.seed, bool)):
            raise ValueError(f"fault rule seed must be an integer, got {rule.seed!r}")
        if rule.grpc_code is not None and rule.grpc_code not in GRPC_ERROR_CODES:
            raise ValueError(f"fault rule grpc_code must be one of {sorted(GRPC_ERROR_CODES)}, got {rule.grpc_code!r}")
        if rule.after_commit and not rule.fails:
            raise ValueError("an after_commit fault rule needs a status, a grpc_code or drop: it replaces the reply")
        rule.method = rule.method.upper()
        return rule

    @property
    def fails(self) -> bool:
        """Whether the rule answers an error (or drops the connection) rather than only adding latency."""
        return self.status is not None or self.grpc_code is not None or self.drop

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self._pattern.search(path) is not None

    def fires(self, method: str, path: str) -> bool:
        """Whether this matching request is faulted: always at probability 1, else the seeded draw for it."""
        if self.probability >= 1:
            return True
        occurrence = self._seen[(method, path)]
        self._seen[(method, path)] += 1
        return seeded_draw(self.seed, method, path, occurrence) < self.probability

    def headers(self) -> dict[str, str]:
        retry_after = self.retry_after_s()
        return {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}

    def retry_after_s(self) -> float | None:
        """The retry hint in seconds: Retry-After over HTTP, google.rpc.RetryInfo over gRPC (429 gets 1 s)."""
        quota = self.status == 429 or self.grpc_code == "RESOURCE_EXHAUSTED"
        return self.retry_after if self.retry_after is not None else (1 if quota else None)

    def grpc_status_name(self) -> str:
        return self.grpc_code or STATUS_OF_CODE.get(self.status or 500, "UNKNOWN")

    def to_json(self) -> dict:
        return {spec.name: getattr(self, spec.name) for spec in fields(self) if not spec.name.startswith("_")}


def seeded_draw(seed: int | None, *key: object) -> float:
    """A number in [0, 1) that only the seed and the key decide: the same seed draws the same on the same key."""
    digest = hashlib.sha256("|".join(map(str, (seed, *key))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fault_seed() -> int:
    """A fresh seed for a probabilistic rule given none (shown in the installed rule, to replay the run)."""
    return random.SystemRandom().randrange(2**31)


class FaultSet:
    """The live rules of one emulator; the first matching rule with budget left applies."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, raw_rules: list | dict) -> list[FaultRule]:
        """Validate every rule before adding any, so a bad list changes nothing."""
        raw_list = raw_rules if isinstance(raw_rules, list) else [raw_rules]
        rules = [FaultRule.from_dict(raw) for raw in raw_list]
        with self._lock:
            for rule in rules:
                rule.id = next(self._ids)
                if rule.probability < 1 and rule.seed is None:
                    rule.seed = fault_seed()
            self._rules.extend(rules)
        return rules

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def match(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if not rule.fires(method, path):
                    continue
                spend(self._rules, rule)
                return rule
        return None


def spend(rules: list, rule) -> None:
    """Count a rule's hit and take one from its budget (count); a rule whose budget is spent leaves `rules`."""
    rule.hits += 1
    if rule.count is not None:
        rule.count -= 1
        if rule.count == 0:
            rules.remove(rule)
