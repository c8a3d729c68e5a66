"""Fault rules on their own: matching, budgets, validation (no server)."""

import pytest

from reconciler.sandbox.base.api_errors import ErrorFormat, default_error
from reconciler.sandbox.base.faults import FaultRule, FaultSet


def test_first_matching_rule_applies_and_a_counted_rule_runs_out():
    faults = FaultSet()
    faults.add([{"method": "PUT", "path": "^/upload/", "status": 503, "count": 2},
                {"path": "^/upload/", "delay_s": 0.1}])
    assert faults.match("PUT", "/upload/storage/v1/b/x/o").status == 503
    assert faults.match("PUT", "/upload/storage/v1/b/x/o").status == 503
    after_budget = faults.match("PUT", "/upload/storage/v1/b/x/o")
    assert after_budget.status is None and after_budget.delay_s == 0.1
    assert faults.match("GET", "/storage/v1/b/x") is None


def test_method_is_case_insensitive_and_star_matches_every_method():
    faults = FaultSet()
    faults.add({"method": "get", "path": "/b/x$", "status": 404})
    assert faults.match("GET", "/storage/v1/b/x").status == 404
    assert faults.match("DELETE", "/storage/v1/b/x") is None
    faults.clear()
    faults.add({"path": "/b/x$", "drop": True})
    assert faults.match("DELETE", "/storage/v1/b/x").drop


def test_429_carries_retry_after_and_each_api_family_its_own_rate_limit_body():
    rule = FaultRule.from_dict({"status": 429})
    assert rule.headers() == {"Retry-After": "1"}
    legacy = default_error(429, ErrorFormat.LEGACY, "storage.googleapis.com").body(ErrorFormat.LEGACY)["error"]
    assert legacy["code"] == 429 and legacy["errors"][0]["reason"] == "rateLimitExceeded"
    assert legacy["errors"][0]["domain"] == "usageLimits" and "status" not in legacy
    rpc_error = default_error(429, ErrorFormat.RPC, "container.googleapis.com")
    rpc = rpc_error.body(ErrorFormat.RPC)["error"]
    assert rpc["status"] == "RESOURCE_EXHAUSTED" and rpc_error.headers == {"Retry-After": "1"}
    assert rpc["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert rpc["details"][0]["metadata"]["service"] == "container.googleapis.com"
    assert FaultRule.from_dict({"status": 503, "retry_after": 2.5}).headers() == {"Retry-After": "2.5"}
    assert FaultRule.from_dict({"status": 500}).headers() == {}


def test_probability_below_one_lets_some_requests_through():
    faults = FaultSet()
    faults.add({"status": 500, "probability": 0.5})
    outcomes = {faults.match("GET", "/x") is not None for _ in range(200)}
    assert outcomes == {True, False}


@pytest.mark.parametrize("raw, message", [
    ({"status": 999}, "status must be an HTTP status code"),
    ({"path": "("}, "not a valid regular expression"),
    ({"count": 0}, "count must be a positive integer"),
    ({"probability": 0}, "probability must be in (0, 1]"),
    ({"delay_s": -1}, "delay_s must be between 0 and 300"),
    ({"statuss": 500}, "unknown fault rule field(s) ['statuss']"),
    ([1], "must be a JSON object"),
], ids=lambda value: str(value)[:30])
def test_bad_rules_are_refused_with_the_field_named_and_nothing_is_added(raw, message):
    faults = FaultSet()
    with pytest.raises(ValueError, match=re_escape(message)):
        faults.add([{"status": 500}, *(raw if isinstance(raw, list) else [raw])])
    assert faults.rules() == []


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("raw, code", [
    ({"status": 429}, "RESOURCE_EXHAUSTED"), ({"status": 503}, "UNAVAILABLE"), ({"status": 409}, "ABORTED"),
    ({"status": 404}, "NOT_FOUND"), ({"status": 400}, "INVALID_ARGUMENT"), ({"status": 504}, "DEADLINE_EXCEEDED"),
    ({"status": 418}, "UNKNOWN"), ({"status": 429, "grpc_code": "ALREADY_EXISTS"}, "ALREADY_EXISTS"),
    ({"grpc_code": "ALREADY_EXISTS"}, "ALREADY_EXISTS"),
], ids=lambda value: str(value))
def test_a_rule_answers_grpc_with_its_statuss_canonical_code_unless_it_names_one(raw, code):
    assert FaultRule.from_dict(raw).grpc_status_name() == code


def test_a_grpc_code_alone_makes_a_failing_rule_and_quota_codes_get_a_retry_hint():
    rule = FaultRule.from_dict({"grpc_code": "RESOURCE_EXHAUSTED"})
    assert rule.fails and rule.retry_after_s() == 1
    assert not FaultRule.from_dict({"delay_s": 1}).fails
    assert FaultRule.from_dict({"status": 503}).retry_after_s() is None


def test_seeded_rules_give_the_same_verdicts_whatever_other_rules_see():
    def verdicts(faults: FaultSet, noisy: bool) -> list[bool]:
        seen = []
        for _ in range(40):
            if noisy:
                faults.match("GET", "/other")  # another rule's draws must not shift this one's
            seen.append(faults.match("GET", "/x") is not None)
        return seen

    quiet, noisy = FaultSet(), FaultSet()
    quiet.add({"path": "^/x$", "status": 500, "probability": 0.5, "seed": 3})
    noisy.add([{"path": "^/other$", "status": 500, "probability": 0.5},
               {"path": "^/x$", "status": 500, "probability": 0.5, "seed": 3}])
    assert verdicts(quiet, noisy=False) == verdicts(noisy, noisy=True)


def test_an_unseeded_chaos_rule_shows_the_seed_it_drew_and_a_certain_rule_needs_none():
    faults = FaultSet()
    (chaos, certain) = faults.add([{"status": 503, "probability": 0.2}, {"status": 503}])
    assert isinstance(chaos.seed, int) and faults.rules()[0]["seed"] == chaos.seed
    assert certain.seed is None


@pytest.mark.parametrize("raw, message", [
    ({"grpc_code": "NOPE"}, "grpc_code must be one of"),
    ({"grpc_code": "OK"}, "grpc_code must be one of"),
    ({"after_commit": True}, "after_commit fault rule needs a status, a grpc_code or drop"),
    ({"status": 503, "seed": "x"}, "seed must be an integer"),
], ids=lambda value: str(value)[:30])
def test_bad_grpc_rule_fields_are_refused_with_the_field_named(raw, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        FaultSet().add(raw)
