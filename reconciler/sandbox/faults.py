"""Fault and latency rules shared by every emulator: match a request, then delay, fail, or drop the connection."""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field

from reconciler.sandbox.google_errors import error_body

_RULE_FIELDS = {"method", "path", "status", "body", "count", "probability", "delay_s", "retry_after", "drop"}


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
    id: int = 0
    hits: int = 0
    _pattern: re.Pattern = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

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
        rule.method = rule.method.upper()
        return rule

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self._pattern.search(path) is not None

    def error_body(self) -> dict:
        return self.body if self.body is not None else error_body(self.status or 500)

    def headers(self) -> dict[str, str]:
        retry_after = self.retry_after if self.retry_after is not None else (1 if self.status == 429 else None)
        return {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}


class FaultSet:
    """The live rules of one emulator; the first matching rule with budget left applies."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random()

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
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return rule
        return None
