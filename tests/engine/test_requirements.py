"""A resource's Requirements on what it depends on: a plan problem when they can be read and are not met, checked
again right before the call, and waited for when they settle by themselves."""

from memory_world import RecordingReporter, at, thing

from reconciler.engine.apply import apply_plan
from reconciler.engine.plan import SpecRef, build_plan
from reconciler.engine.planfile import plan_from_json, plan_to_json
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import Action, Requirement
from reconciler.engine.retry import RetryPolicy

SPEC = SpecRef("demo", "spec.yaml", "0" * 64)
FAST_RETRY = RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.01)


def needs_ready(settles=False, wait_s=0.0):
    return Requirement(at("db"), "ready", 1, "ready replicas", "things.db", settles=settles, wait_s=wait_s)


def app(**options):
    return thing("app", depends_on=["db"], requires=[needs_ready(**options)])


def plan_for(memory, resources):
    return build_plan(resources, ProviderSet([memory]), SPEC)


def test_an_unmet_requirement_on_what_stays_is_a_plan_problem_with_the_numbers(memory):
    memory.put("db", ready=0)
    plan = plan_for(memory, [thing("db", ready=0), app()])
    assert [(p.address, p.field, p.message, p.kind) for p in plan.problems] == [
        (at("app"), "things.db", "mem.thing.db has 0 ready replicas, 1 needed", "precondition")]
    assert not plan.applicable


def test_a_met_requirement_is_no_problem(memory):
    memory.put("db", ready=2)
    assert plan_for(memory, [thing("db", ready=2), app()]).problems == ()


def test_a_requirement_on_what_the_plan_changes_is_left_for_the_apply(memory):
    plan = plan_for(memory, [thing("db", ready=0), app()])
    assert plan.change_at("mem.thing.db").action is Action.CREATE
    assert plan.problems == ()


def test_a_requirement_is_checked_again_right_before_the_call(memory):
    providers = ProviderSet([memory])
    plan = build_plan([thing("db", ready=0), app()], providers, SPEC)
    result = apply_plan(plan, providers, RecordingReporter(), retry=FAST_RETRY)
    outcome = {o.change.address: o for o in result.outcomes}[at("app")]
    assert outcome.status == "failed"
    assert outcome.error == "mem.thing.app cannot be changed: mem.thing.db has 0 ready replicas, 1 needed"
    assert ("create", "mem.thing.app") not in memory.calls


def test_a_requirement_that_settles_is_waited_for_then_the_change_is_made(memory):
    memory.put("db", ready=0)
    reads = []

    def rollout_progresses():
        reads.append(1)
        if len(reads) == 3:  # the plan's read, the first check before the call, then the rollout is done
            memory.put("db", ready=1)

    memory.on_observe = rollout_progresses
    providers = ProviderSet([memory])
    plan = build_plan([thing("db", ready=1), app(settles=True, wait_s=60)], providers, SPEC)
    assert plan.problems == (), "a fact that settles by itself is no plan problem"
    reporter = RecordingReporter()
    result = apply_plan(plan, providers, reporter, retry=FAST_RETRY, only=[at("app")])
    assert result.ok
    assert ("message", "mem.thing.app") in reporter.events, "the wait said what it waits for"
    assert ("create", "mem.thing.app") in memory.calls


def test_a_requirement_that_does_not_settle_in_time_fails_with_the_reason(memory):
    memory.put("db", ready=0)
    providers = ProviderSet([memory])
    plan = build_plan([thing("db", ready=0), app(settles=True, wait_s=0.2)], providers, SPEC)
    result = apply_plan(plan, providers, RecordingReporter(), retry=FAST_RETRY)
    outcome = result.outcomes[0]
    assert outcome.status == "failed"
    assert outcome.error.startswith("mem.thing.app cannot be changed: mem.thing.db has 0 ready replicas, 1 needed "
                                    "after waiting ")


def test_a_saved_plan_keeps_requirements_and_the_kind_of_problem(memory):
    memory.put("db", ready=0)
    plan = plan_for(memory, [thing("db", ready=0), app(settles=True, wait_s=5)])
    again = plan_from_json(plan_to_json(plan), ["mem.thing"])
    assert again.change_at("mem.thing.app").desired.requires == (needs_ready(settles=True, wait_s=5),)
    memory.put("db", ready=0)
    blocked = plan_for(memory, [thing("db", ready=0), app()])
    assert plan_from_json(plan_to_json(blocked), ["mem.thing"]).problems == blocked.problems
