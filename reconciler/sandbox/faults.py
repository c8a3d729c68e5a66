"""Fault and latency rules shared by every emulator: match a request, then delay, fail, or drop the connection."""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field

from reconciler.sandbox.google_errors import error_body

_RULE_FIELDS = {"method", "path", "status", "body", "count", "probability", "delay_s", "retry_after", "drop",
                "grpc_code", "after_commit", "seed"}

# google.rpc.Code by HTTP status, as googleapis' code.proto pairs them; where two codes share a status (409, 400, 500)
# the one a fault rule most often means. Unlisted statuses become UNKNOWN.
GRPC_CODE_FOR_HTTP = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                      409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                      500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                      504: "DEADLINE_EXCEEDED"}
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
    grpc_code: str | None = None  # gRPC emulators: the status code name; default: the status's canonical code
    after_commit: bool = False  # gRPC emulators: the write is done, then the error is answered (the reply is lost)
    seed: int | None = None  # seeds this rule's probability draws; drawn (and shown) when not given, for replays
    id: int = 0
    hits: int = 0
    _pattern: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _random: random.Random = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

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
        if rule.grpc_code is not None and rule.grpc_code not in GRPC_ERROR_CODES:
            raise ValueError(f"fault rule grpc_code must be one of {sorted(GRPC_ERROR_CODES)}, got {rule.grpc_code!r}")
        if rule.after_commit and not rule.fails:
            raise ValueError("fault rule after_commit needs a status, a grpc_code or drop: the error that replaces "
                             "the reply")
        if rule.seed is not None and not isinstance(rule.seed, int):
            raise ValueError(f"fault rule seed must be an integer, got {rule.seed!r}")
        if rule.probability < 1 and rule.seed is None:
            rule.seed = random.SystemRandom().randrange(2**31)
        rule._random = random.Random(rule.seed)
        rule.method = rule.method.upper()
        return rule

    @property
    def fails(self) -> bool:
        """Whether the rule answers an error (or drops the connection) rather than only adding latency."""
        return self.status is not None or self.grpc_code is not None or self.drop

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self._pattern.search(path) is not None

    def error_body(self) -> dict:
        return self.body if self.body is not None else error_body(self.status or 500)

    def headers(self) -> dict[str, str]:
        retry_after = self.retry_after_s()
        return {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}

    def retry_after_s(self) -> float | None:
        """The retry hint in seconds: Retry-After over HTTP, google.rpc.RetryInfo over gRPC (429 gets 1 s)."""
        quota = self.status == 429 or self.grpc_code == "RESOURCE_EXHAUSTED"
        return self.retry_after if self.retry_after is not None else (1 if quota else None)

    def grpc_status_name(self) -> str:
        return self.grpc_code or GRPC_CODE_FOR_HTTP.get(self.status or 500, "UNKNOWN")

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}


class FaultSet:
    """The live rules of one emulator; the first matching rule with budget left applies.

    Each rule draws its probability from its own seeded stream, so a rule's n-th matching request gets the same
    verdict whatever other rules see: re-posting the rules that GET /_sandbox/faults shows replays a chaos run.
    """

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
                if rule.probability < 1 and rule._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return rule
        return None
