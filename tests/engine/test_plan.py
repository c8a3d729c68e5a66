import pytest
from memory_world import TRANSIENT, thing

from reconciler.engine.plan import ProviderSet, SpecRef, Unmanaged, build_plan, stale_objects
from reconciler.engine.resource import Action
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RetryableError

SPEC = SpecRef("demo", "spec.yaml", "0" * 64)


def plan_for(memory, resources, **options):
    return build_plan(resources, ProviderSet([memory]), SPEC, **options)


def test_empty_world_plans_creates_in_dependency_order(memory):
    plan = plan_for(memory, [thing("b", depends_on=["a"]), thing("a")])
    assert [(c.address, c.action) for c in plan.changes] == [
        ("mem.thing.a", Action.CREATE), ("mem.thing.b", Action.CREATE)]
    assert plan.fingerprints == {"mem.thing.a": "absent", "mem.thing.b": "absent"}
    assert plan.has_changes


def test_matching_world_plans_no_change(memory):
    memory.world["a"] = {"fields": {"size": 1}, "owner": "demo", "version": 3}
    plan = plan_for(memory, [thing("a")])
    assert [c.action for c in plan.changes] == [Action.NOOP]
    assert not plan.has_changes
    assert plan.fingerprints == {"mem.thing.a": "version 3"}


def test_one_batched_observe_per_provider(memory):
    plan_for(memory, [thing("a"), thing("b"), thing("c")])
    assert [call for call in memory.calls if call[0] == "observe"] == [
        ("observe", "mem.thing.a,mem.thing.b,mem.thing.c")]


def test_object_without_our_mark_is_a_conflict_unless_adopted(memory):
    memory.world["a"] = {"fields": {"size": 1}, "owner": None, "version": 1}
    plan = plan_for(memory, [thing("a")])
    assert plan.changes == ()
    assert [c.message for c in plan.conflicts] == [
        "mem://a exists but saxctl did not create it (it carries no saxctl ownership mark); "
        "rerun with --adopt to take it over"]
    adopted = plan_for(memory, [thing("a")], adopt=True)
    assert [(c.action, c.reason) for c in adopted.changes] == [(Action.UPDATE, "adopt mem://a (was: no owner)")]


def test_object_of_another_spec_is_a_conflict(memory):
    memory.world["a"] = {"fields": {"size": 1}, "owner": "other", "version": 1}
    plan = plan_for(memory, [thing("a")])
    assert "belongs to another saxctl spec, 'other'" in plan.conflicts[0].message


def test_destroy_deletes_owned_objects_dependents_first_and_leaves_others_alone(memory):
    memory.world["a"] = {"fields": {"size": 1}, "owner": "demo", "version": 1}
    memory.world["b"] = {"fields": {"size": 1}, "owner": "demo", "version": 1}
    memory.world["c"] = {"fields": {"size": 1}, "owner": None, "version": 1}
    plan = plan_for(memory, [thing("a"), thing("b", depends_on=["a"]), thing("c"), thing("d")], mode="destroy")
    assert [(c.address, c.action) for c in plan.changes] == [
        ("mem.thing.c", Action.NOOP), ("mem.thing.b", Action.DELETE), ("mem.thing.a", Action.DELETE)]
    assert plan.changes[0].reason == "left alone: mem://c has no saxctl mark"


def test_target_limits_the_plan_to_the_target_and_its_dependencies(memory):
    plan = plan_for(memory, [thing("a"), thing("b", depends_on=["a"]), thing("c")], targets=["mem.thing.b"])
    assert [c.address for c in plan.changes] == ["mem.thing.a", "mem.thing.b"]


def test_replacement_when_a_forcing_field_changes(memory):
    memory.world["a"] = {"fields": {"zone": "us-a"}, "owner": "demo", "version": 1}
    plan = plan_for(memory, [thing("a", zone="eu-b")])
    assert plan.changes[0].action is Action.REPLACE
    assert plan.changes[0].field_changes[0].forces_replacement


def test_unmanaged_parts_are_carried_into_the_plan(memory):
    parts = [Unmanaged("gke.cluster.saxml", "cluster", "not managed yet")]
    assert plan_for(memory, [thing("a")], unmanaged=parts).unmanaged == tuple(parts)


def test_stale_objects_names_what_moved_since_the_plan(memory):
    memory.world["a"] = {"fields": {"size": 1}, "owner": "demo", "version": 1}
    plan = plan_for(memory, [thing("a"), thing("b")])
    assert stale_objects(plan, ProviderSet([memory])) == []
    memory.world["a"]["version"] = 2
    memory.world["b"] = {"fields": {"size": 1}, "owner": "demo", "version": 1}
    assert stale_objects(plan, ProviderSet([memory])) == [
        "mem.thing.a: version 1 → version 2", "mem.thing.b: did not exist → version 1"]



def test_transient_read_failures_are_retried(memory):
    memory.fail_reads = [TRANSIENT, TRANSIENT]
    providers = ProviderSet([memory], RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01))
    plan = build_plan([thing("a")], providers, SPEC)
    assert [c.action for c in plan.changes] == [Action.CREATE]
    assert [call[0] for call in memory.calls] == ["observe"] * 3


def test_reads_give_up_after_the_policy_attempts(memory):
    memory.fail_reads = [TRANSIENT] * 3
    providers = ProviderSet([memory], RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.01))
    with pytest.raises(RetryableError, match="503 backend unavailable"):
        build_plan([thing("a")], providers, SPEC)
