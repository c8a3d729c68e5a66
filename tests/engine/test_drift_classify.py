"""What the drift corrector does with each drifted field of a plan: pure decisions over memory-world plans."""

from dataclasses import replace

from memory_world import at, thing

from reconciler.drift.classify import CORRECTED, IGNORED, LEFT, SETTLING, classify, ignored_by, uncorrected
from reconciler.drift.record import DriftRecord
from reconciler.drift.report import report_lines, summary
from reconciler.engine.apply import ApplyResult, Outcome
from reconciler.engine.plan import Approvals, SpecRef, build_plan
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import SETTLING as SETTLING_FACT
from reconciler.engine.resource import Action, Change
from reconciler.spec.model import DriftIgnore

SPEC = SpecRef("demo", "demo.yaml", "0" * 64)


def plan_of(memory, *resources, approvals=Approvals()):
    return build_plan(list(resources), ProviderSet([memory]), SPEC, approvals=approvals)


def outcomes(decision):
    return {(d.address, d.field): d.outcome for d in decision.drifts}


def test_in_place_update_and_missing_object_are_corrected(memory):
    memory.put("a", size=1, zone="z1")
    decision = classify(plan_of(memory, thing("a", size=2, zone="z1"), thing("b", size=1)), [])
    assert outcomes(decision) == {(at("a"), "size"): CORRECTED, (at("b"), ""): CORRECTED}
    assert set(decision.to_apply) == {at("a"), at("b")}
    size = next(d for d in decision.drifts if d.field == "size")
    assert (size.desired, size.live) == (2, 1)


def test_replace_is_left_without_allow_replace_and_corrected_with_it(memory):
    memory.put("a", size=1, zone="z1")
    desired = thing("a", size=1, zone="z2")
    left = classify(plan_of(memory, desired), [])
    assert outcomes(left) == {(at("a"), "zone"): LEFT}
    assert left.to_apply == ()
    assert "needs --allow-replace mem.thing.a" in left.drifts[0].why
    agreed = Approvals(replace=frozenset({at("a")}))
    assert classify(plan_of(memory, desired, approvals=agreed), [], agreed).to_apply == (at("a"),)


def test_prune_is_left_without_allow_delete(memory):
    memory.put("gone", size=1)
    decision = classify(plan_of(memory, thing("kept", size=1)), [])
    assert outcomes(decision)[(at("gone"), "")] == LEFT
    assert at("gone") not in decision.to_apply
    assert "needs --allow-delete mem.thing.gone" in next(d.why for d in decision.drifts if d.address == at("gone"))


def test_ignore_rule_covers_a_field_and_what_is_below_it(memory):
    memory.put("a", size=1, labels={"team": "x"})
    plan = plan_of(memory, thing("a", size=1, labels={"team": "ml"}))
    decision = classify(plan, [DriftIgnore(at("a"), ("labels",))])
    assert outcomes(decision) == {(at("a"), "labels.team"): IGNORED}
    assert decision.to_apply == ()
    assert ignored_by([DriftIgnore(at("a"), ("labels",))], at("a"), "labelsX") is None
    assert ignored_by([DriftIgnore(at("a"))], at("a"), "anything") is not None
    assert ignored_by([DriftIgnore(at("b"))], at("a"), "size") is None


def test_update_mixing_ignored_and_other_fields_is_left_saying_why(memory):
    memory.put("a", size=1, count=3)
    decision = classify(plan_of(memory, thing("a", size=2, count=1)), [DriftIgnore(at("a"), ("count",))])
    assert outcomes(decision) == {(at("a"), "size"): LEFT, (at("a"), "count"): IGNORED}
    assert decision.to_apply == ()
    assert "would undo the ignored ones" in next(d.why for d in decision.drifts if d.field == "size")


def test_a_field_the_record_says_is_fought_over_is_left(memory):
    memory.put("a", size=1)
    plan = plan_of(memory, thing("a", size=2))
    fought = DriftRecord("demo", fields={f"{at('a')} size": {"streak": 3, "by": "autoscaler"}})
    decision = classify(plan, [], stopped=fought.stopped(3))
    assert outcomes(decision) == {(at("a"), "size"): LEFT}
    assert "autoscaler keeps changing it" in decision.drifts[0].why
    assert classify(plan, [], stopped=fought.stopped(4)).to_apply == (at("a"),)
    assert classify(plan, [], stopped=fought.stopped(0)).to_apply == (at("a"),), "0 never stops"


def test_kubernetes_conflict_is_left_naming_the_field_manager(memory):
    memory.put("a", size=1)
    plan = plan_of(memory, thing("a", size=2))
    change = plan.changes[0]
    held = replace(change, observed=replace(change.observed, facts={"conflicts": [
        {"field": ".spec.replicas", "manager": "hpa-controller", "subresource": "", "operation": "Apply"}]}))
    decision = classify(replace(plan, changes=(held,)), [])
    assert outcomes(decision) == {(at("a"), "size"): LEFT}
    assert decision.drifts[0].why.startswith("held by field manager hpa-controller (server-side apply)")


def test_an_object_on_its_own_way_to_the_spec_is_settling_not_drift_and_never_applied(memory):
    """A model Sax is still loading plans as an update that only waits: nobody changed it, the corrector makes no
    call and counts no drift (so a long load over several runs never reads as a fight)."""
    memory.put("a", size=1)
    plan = plan_of(memory, thing("a", size=2))
    observed = plan.changes[0].observed
    waiting = Change(at("a"), observed.address.kind, Action.UPDATE,
                     "0/1 replicas loaded (1 loading): apply waits for the load",
                     observed=replace(observed, facts={SETTLING_FACT: "0/1 replicas loaded (1 loading)"}))
    decision = classify(replace(plan, changes=(waiting,)), [])
    assert outcomes(decision) == {(at("a"), ""): SETTLING}
    assert decision.to_apply == ()
    assert decision.drifts[0].why == "0/1 replicas loaded (1 loading): on its way to the spec, nothing to correct"
    assert summary(decision.drifts)["drifted"] == 0
    assert report_lines(decision.drifts)[-1].endswith("rules; 1 on its way to the spec by itself.")
    unsettled = replace(waiting, observed=replace(observed, facts={SETTLING_FACT: ""}))
    assert outcomes(classify(replace(plan, changes=(unsettled,)), [])) == {(at("a"), ""): CORRECTED}


def test_a_preflight_problem_leaves_the_change(memory):
    memory.put("a", chips=1)
    decision = classify(plan_of(memory, thing("a", chips=8)), [])
    assert outcomes(decision) == {(at("a"), "chips"): LEFT}
    assert "8 chips asked, quota 4" in decision.drifts[0].why


def test_streaks_grow_on_correction_and_end_when_the_field_stays(memory):
    memory.put("a", size=1)
    decision = classify(plan_of(memory, thing("a", size=2)), [])
    record = DriftRecord("demo")
    for run in range(3):
        record = record.after_run(f"t{run}", decision.drifts, True, {})
    assert record.fields[f"{at('a')} size"]["streak"] == 3
    assert record.fields[f"{at('a')} size"]["corrected_runs"] == ["t0", "t1", "t2"]
    assert set(record.stopped(3)) == {f"{at('a')} size"}
    assert record.last_success == "t2"
    quiet = record.after_run("t3", (), True, {})
    assert quiet.fields == {} and quiet.stopped(3) == {}
    failed = record.after_run("t4", (), False, {})
    assert failed.last_success == "t2" and failed.last_run["ok"] is False


def test_a_failed_correction_is_left_with_its_error(memory):
    memory.put("a", size=1)
    plan = plan_of(memory, thing("a", size=2))
    decision = classify(plan, [])
    result = ApplyResult((Outcome(plan.changes[0], "failed", error="409 Conflict"),))
    assert uncorrected(decision, result).drifts[0].outcome == LEFT
    assert "409 Conflict" in uncorrected(decision, result).drifts[0].why
