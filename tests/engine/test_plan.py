import pytest
from memory_world import TRANSIENT, at, ref, thing

from reconciler.engine.graph import GraphError
from reconciler.engine.plan import Approvals, Unmanaged, build_plan, stale_objects
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import UNKNOWN, Action
from reconciler.engine.retry import RetryPolicy
from reconciler.engine.plan import SpecRef
from reconciler.errors import RetryableError

SPEC = SpecRef("demo", "spec.yaml", "0" * 64)


def plan_for(memory, resources, **options):
    return build_plan(resources, ProviderSet([memory]), SPEC, **options)


def actions(plan):
    return [(c.address, c.action) for c in plan.changes]


def test_empty_world_plans_creates_in_dependency_order(memory):
    plan = plan_for(memory, [thing("b", depends_on=["a"]), thing("a")])
    assert actions(plan) == [(at("a"), Action.CREATE), (at("b"), Action.CREATE)]
    assert plan.fingerprints == {"mem.thing.a": "absent", "mem.thing.b": "absent"}
    assert plan.has_changes


def test_matching_world_plans_no_change(memory):
    memory.put("a")
    plan = plan_for(memory, [thing("a")])
    assert [c.action for c in plan.changes] == [Action.NOOP]
    assert not plan.has_changes
    assert plan.fingerprints == {"mem.thing.a": "version 1"}


def test_one_batched_observe_per_provider_and_dependency_level(memory):
    plan_for(memory, [thing("a"), thing("b"), thing("c", depends_on=["a"]), thing("d", depends_on=["c"])])
    assert [call for call in memory.calls if call[0] == "observe"] == [
        ("observe", "mem.thing.a,mem.thing.b"), ("observe", "mem.thing.c"), ("observe", "mem.thing.d")]


def test_what_lives_inside_an_absent_object_is_planned_without_reading_it(memory):
    plan = plan_for(memory, [thing("cluster"), thing("pool", inside="cluster"), thing("app", inside="pool")])
    assert [call for call in memory.calls if call[0] == "observe"] == [("observe", "mem.thing.cluster")]
    assert actions(plan) == [(at("cluster"), Action.CREATE), (at("pool"), Action.CREATE), (at("app"), Action.CREATE)]
    assert plan.change_at("mem.thing.pool").reason == "mem.thing.cluster does not exist yet: created after it"
    assert plan.fingerprints["mem.thing.app"] == "not read"


def test_what_lives_inside_a_replaced_object_is_created_again_without_reading_it(memory):
    memory.put("cluster", zone="us-a")
    memory.put("pool")
    plan = plan_for(memory, [thing("cluster", zone="eu-b"), thing("pool", inside="cluster")])
    assert actions(plan) == [(at("cluster"), Action.REPLACE), (at("pool"), Action.CREATE)]
    assert "mem.thing.cluster will be replaced" in plan.change_at("mem.thing.pool").reason
    assert ("observe", "mem.thing.pool") not in memory.calls


def test_a_value_from_an_existing_parent_is_known_at_plan_time(memory):
    memory.put("gsa")
    memory.put("binding", member="gsa#1")
    plan = plan_for(memory, [thing("gsa"), thing("binding", member=ref("gsa"))])
    assert actions(plan) == [(at("gsa"), Action.NOOP), (at("binding"), Action.NOOP)]


def test_a_value_from_a_parent_not_created_yet_is_known_after_apply(memory):
    plan = plan_for(memory, [thing("gsa"), thing("binding", member=ref("gsa"))])
    binding = plan.change_at("mem.thing.binding")
    assert binding.action is Action.CREATE
    assert binding.after == {"member": UNKNOWN}


def test_a_client_that_needs_a_parents_output_is_not_used_before_the_parent_exists(memory):
    plan = plan_for(memory, [thing("cluster"), thing("app", params={"endpoint": ref("cluster")})])
    assert [call for call in memory.calls if call[0] == "observe"] == [("observe", "mem.thing.cluster")]
    assert plan.change_at("mem.thing.app").reason == "needs what mem.thing.cluster will only know after apply"


def test_object_without_our_mark_is_a_conflict_unless_adopted(memory):
    memory.put("a", owner=None)
    plan = plan_for(memory, [thing("a")])
    assert plan.changes == ()
    assert [c.message for c in plan.conflicts] == [
        "mem://a exists but saxctl did not create it (it carries no saxctl ownership mark); "
        "rerun with --adopt to take it over"]
    adopted = plan_for(memory, [thing("a")], adopt=True)
    assert [(c.action, c.reason) for c in adopted.changes] == [(Action.UPDATE, "adopt mem://a (was: no owner)")]


def test_object_of_another_spec_is_a_conflict(memory):
    memory.put("a", owner="other")
    plan = plan_for(memory, [thing("a")])
    assert "belongs to another saxctl spec, 'other'" in plan.conflicts[0].message


def test_destroy_deletes_owned_objects_dependents_first_and_leaves_others_alone(memory):
    memory.put("a")
    memory.put("b")
    memory.put("c", owner=None)
    plan = plan_for(memory, [thing("a"), thing("b", depends_on=["a"]), thing("c"), thing("d")], mode="destroy")
    assert actions(plan) == [(at("b"), Action.DELETE), (at("c"), Action.NOOP), (at("a"), Action.DELETE)]
    assert plan.change_at("mem.thing.c").reason == "left alone: mem://c has no saxctl mark"


def test_destroy_deletes_what_the_spec_owns_that_already_left_it_with_the_guards_of_a_destroy(memory):
    memory.put("kept")
    memory.put("left")
    memory.put("left-with-data", data="user files")
    memory.put("foreign", owner="someone-else")
    plan = plan_for(memory, [thing("kept")], mode="destroy")
    assert sorted(actions(plan)) == [(at("kept"), Action.DELETE), (at("left"), Action.DELETE),
                                     (at("left-with-data"), Action.DELETE)]
    assert plan.change_at("mem.thing.left").reason == "destroy mem://left (no longer in the spec)"
    assert [b.hint for b in plan.blocked] == [
        "rerun with --force-delete-things (or --allow-delete mem.thing.left-with-data) to delete it with its contents"]
    assert plan.fingerprints["mem.thing.left"] == "version 1", "a saved destroy plan checks it too"
    flag = Approvals(destroy_flags=frozenset({"--force-delete-things"}))
    assert plan_for(memory, [thing("kept")], mode="destroy", approvals=flag).applicable


def test_a_destroy_target_takes_only_the_owned_object_it_names(memory):
    memory.put("kept")
    memory.put("left")
    plan = plan_for(memory, [thing("kept")], mode="destroy", targets=["mem.thing.kept"])
    assert actions(plan) == [(at("kept"), Action.DELETE)]


def test_target_limits_the_plan_to_the_target_and_its_dependencies(memory):
    plan = plan_for(memory, [thing("a"), thing("b", depends_on=["a"]), thing("c")], targets=["mem.thing.b"])
    assert [c.address for c in plan.changes] == ["mem.thing.a", "mem.thing.b"]


def test_a_destroy_target_takes_what_depends_on_it_and_never_what_it_depends_on(memory):
    for name in ("admin", "data", "checkpoint"):
        memory.put(name)
    resources = [thing("admin"), thing("data", depends_on=["admin"]), thing("checkpoint", inside="data")]
    plan = plan_for(memory, resources, mode="destroy", targets=["mem.thing.data"])
    assert actions(plan) == [(at("checkpoint"), Action.DELETE), (at("data"), Action.DELETE)]


def test_a_target_that_is_not_managed_yet_says_so(memory):
    parts = [Unmanaged(at("later"), "cluster", "not managed yet: the GKE provider is not built yet")]
    with pytest.raises(GraphError, match="--target mem.thing.later is not managed yet: the GKE provider"):
        plan_for(memory, [thing("a")], targets=["mem.thing.later"], unmanaged=parts)
    with pytest.raises(GraphError, match=r"is not an address of this spec \(addresses: mem.thing.a\)"):
        plan_for(memory, [thing("a")], targets=["mem.thing.nope"], unmanaged=parts)


def test_replacement_when_a_forcing_field_changes(memory):
    memory.put("a", zone="us-a")
    plan = plan_for(memory, [thing("a", zone="eu-b")])
    assert plan.changes[0].action is Action.REPLACE
    assert plan.changes[0].field_changes[0].forces_replacement


def test_an_object_saxctl_made_that_left_the_spec_is_pruned(memory):
    memory.put("kept")
    memory.put("gone")
    memory.put("foreign", owner="someone-else")
    plan = plan_for(memory, [thing("kept")])
    pruned = plan.change_at("mem.thing.gone")
    assert (pruned.action, pruned.pruned, pruned.reason) == (
        Action.DELETE, True, "no longer in the spec: mem://gone will be deleted")
    assert plan.change_at("mem.thing.foreign") is None
    assert plan.fingerprints["mem.thing.gone"] == "version 1"


def test_a_replacement_that_loses_data_is_blocked_until_allowed_by_address(memory):
    memory.put("bucket", zone="us-a", data="12 objects")
    resources = [thing("bucket", zone="eu-b")]
    blocked = plan_for(memory, resources)
    assert not blocked.applicable
    assert [(b.address, b.message, b.hint) for b in blocked.blocked] == [
        ("mem.thing.bucket", "mem://bucket holds 12 objects",
         "rerun with --allow-replace mem.thing.bucket to replace it anyway")]
    allowed = plan_for(memory, resources, approvals=Approvals(replace=frozenset({"mem.thing.bucket"})))
    assert allowed.applicable
    assert allowed.changes[0].hazard.approved_by == "--allow-replace mem.thing.bucket"


def test_pruning_what_holds_data_needs_its_address_allowed(memory):
    memory.put("old-bucket", data="a checkpoint")
    assert [b.hint for b in plan_for(memory, []).blocked] == [
        "rerun with --allow-delete mem.thing.old-bucket to delete it anyway"]
    assert plan_for(memory, [], approvals=Approvals(delete=frozenset({"mem.thing.old-bucket"}))).applicable


def test_destroying_what_holds_data_needs_the_flag(memory):
    memory.put("bucket", data="user files")
    assert plan_for(memory, [thing("bucket")], mode="destroy").blocked[0].hint == (
        "rerun with --force-delete-things (or --allow-delete mem.thing.bucket) to delete it with its contents")
    flag = Approvals(destroy_flags=frozenset({"--force-delete-things"}))
    assert plan_for(memory, [thing("bucket")], mode="destroy", approvals=flag).applicable


def test_a_plan_without_deletes_asks_no_provider_what_it_would_lose(memory):
    memory.put("a", data="x")
    plan_for(memory, [thing("a", data="x")])
    assert [call for call in memory.calls if call[0] == "hazard"] == []


def test_unmanaged_parts_are_carried_into_the_plan(memory):
    parts = [Unmanaged(at("saxml"), "cluster", "not managed yet")]
    assert plan_for(memory, [thing("a")], unmanaged=parts).unmanaged == tuple(parts)


def test_stale_objects_names_what_moved_since_the_plan(memory):
    memory.put("a")
    resources = [thing("a"), thing("b")]
    plan = plan_for(memory, resources)
    assert stale_objects(plan, plan_for(memory, resources)) == []
    memory.put("a")
    memory.put("b")
    assert stale_objects(plan, plan_for(memory, resources)) == [
        "mem.thing.a: version 1 → version 2", "mem.thing.b: did not exist → version 1"]


def test_transient_read_failures_are_retried(memory):
    memory.fail_reads = [TRANSIENT, TRANSIENT]
    providers = ProviderSet([memory], RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01))
    plan = build_plan([thing("a")], providers, SPEC)
    assert [c.action for c in plan.changes] == [Action.CREATE]
    assert [call[0] for call in memory.calls if call[0] == "observe"] == ["observe"] * 3


def test_reads_give_up_after_the_policy_attempts(memory):
    memory.fail_reads = [TRANSIENT] * 3
    providers = ProviderSet([memory], RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.01))
    with pytest.raises(RetryableError, match="503 backend unavailable"):
        build_plan([thing("a")], providers, SPEC)


def test_a_preflight_finds_before_any_write_what_would_fail(memory):
    memory.put("small", chips=1)
    plan = plan_for(memory, [thing("small", chips=1), thing("big", chips=8), thing("fine", chips=4)])
    assert [(p.address, p.field, p.message) for p in plan.problems] == [
        ("mem.thing.big", "things.chips", "8 chips asked, quota 4")]
    assert not plan.applicable
    assert ("preflight", "mem.thing.big,mem.thing.fine") in memory.calls, "only what would change is checked"


def test_a_preflight_is_given_the_plans_deletes_to_count_what_they_free(memory):
    memory.put("old-slice", chips=4)
    plan = plan_for(memory, [thing("new-slice", chips=4)])
    assert ("preflight", "mem.thing.old-slice,mem.thing.new-slice") in memory.calls


def test_a_plan_with_nothing_to_change_runs_no_preflight(memory):
    memory.put("a")
    plan_for(memory, [thing("a")])
    assert [call for call in memory.calls if call[0] == "preflight"] == []
