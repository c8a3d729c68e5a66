import threading

from memory_world import PERMANENT, TRANSIENT, thing

from reconciler.engine.apply import apply_plan
from reconciler.engine.plan import ProviderSet, SpecRef, build_plan
from reconciler.engine.retry import RetryPolicy

SPEC = SpecRef("demo", "spec.yaml", "0" * 64)
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01)


def plan_and_apply(memory, reporter, resources, **options):
    providers = ProviderSet([memory])
    plan = build_plan(resources, providers, SPEC)
    return apply_plan(plan, providers, reporter, retry=FAST_RETRY, **options)


def test_apply_creates_everything_and_a_second_plan_is_empty(memory, reporter):
    resources = [thing("a"), thing("b", depends_on=["a"])]
    result = plan_and_apply(memory, reporter, resources)
    assert result.ok and result.count("done") == 2
    assert not build_plan(resources, ProviderSet([memory]), SPEC).has_changes


def test_a_change_waits_for_its_dependencies(memory, reporter):
    plan_and_apply(memory, reporter, [thing("c", depends_on=["b"]), thing("b", depends_on=["a"]), thing("a")])
    finished = [address for event, address in reporter.events if event == "finished"]
    assert finished == ["mem.thing.a", "mem.thing.b", "mem.thing.c"]


def test_independent_changes_run_in_parallel_up_to_the_bound(memory, reporter):
    memory.delay = 0.05
    plan_and_apply(memory, reporter, [thing(str(i)) for i in range(12)], parallelism=4)
    assert memory.max_running == 4


def test_transient_errors_are_retried(memory, reporter):
    memory.fail["mem.thing.a"] = [TRANSIENT, TRANSIENT]
    result = plan_and_apply(memory, reporter, [thing("a")])
    assert result.ok
    assert [e for e in reporter.events if e[0] == "retrying"] == [("retrying", "mem.thing.a")] * 2


def test_retries_give_up_after_the_policy_attempts(memory, reporter):
    memory.fail["mem.thing.a"] = [TRANSIENT] * 5
    result = plan_and_apply(memory, reporter, [thing("a")])
    assert not result.ok
    assert result.outcomes[0].error == TRANSIENT.message
    assert sum(1 for call in memory.calls if call == ("create", "mem.thing.a")) == 3


def test_a_failure_skips_its_dependents_and_lets_independent_work_finish(memory, reporter):
    memory.fail["mem.thing.a"] = [PERMANENT]
    result = plan_and_apply(memory, reporter, [thing("a"), thing("b", depends_on=["a"]), thing("c")])
    statuses = {o.change.address: o.status for o in result.outcomes}
    assert statuses == {"mem.thing.a": "failed", "mem.thing.b": "skipped", "mem.thing.c": "done"}
    assert ("retrying", "mem.thing.a") not in reporter.events


def test_an_interrupted_run_resumes_from_live_state(memory, reporter):
    resources = [thing("a"), thing("b", depends_on=["a"])]
    memory.fail["mem.thing.b"] = [PERMANENT]  # the first run dies halfway
    assert not plan_and_apply(memory, reporter, resources).ok
    second = build_plan(resources, ProviderSet([memory]), SPEC)
    assert [(c.address, c.action.value) for c in second.actionable] == [("mem.thing.b", "create")]
    assert plan_and_apply(memory, reporter, resources).ok


def test_ctrl_c_stops_scheduling_and_waits_for_work_under_way(memory, reporter):
    memory.delay = 0.3
    resources = [thing("a"), thing("b", depends_on=["a"])]
    providers = ProviderSet([memory])
    plan = build_plan(resources, providers, SPEC)
    main_thread = threading.main_thread().ident
    timer = threading.Timer(0.1, lambda: __import__("_thread").interrupt_main())
    timer.start()
    result = apply_plan(plan, providers, reporter, retry=FAST_RETRY)
    assert threading.current_thread().ident == main_thread
    assert result.interrupted
    assert {o.change.address: o.status for o in result.outcomes} == {"mem.thing.a": "done", "mem.thing.b": "skipped"}
    assert "a" in memory.world and "b" not in memory.world
