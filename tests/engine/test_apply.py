import _thread
import threading
from dataclasses import replace

from memory_world import KIND, PERMANENT, TRANSIENT, RecordingReporter, ref, thing

from reconciler.engine.apply import _prerequisites, apply_plan
from reconciler.engine.plan import SpecRef, build_plan
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import Action, Change, Observed
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RetryableError

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


class _Interrupting(RecordingReporter):
    """Presses Ctrl-C from inside a's apply; `times` Ctrl-Cs in all, the next one once the walk said it is stopping."""

    def __init__(self, times: int):
        super().__init__()
        self.times = times
        self.stopped = threading.Event()

    def stopping(self, running, leaving):
        super().stopping(running, leaving)
        if self.times > 1 and not leaving:
            _thread.interrupt_main()
        self.stopped.set()


def _interrupting_apply(memory, reporter, wait_for_leaving: bool):
    original = memory.apply

    def apply(change, progress):
        if change.address == "mem.thing.a":
            _thread.interrupt_main()
            reporter.stopped.wait(10)
            if wait_for_leaving:
                progress.sleep(60)  # a long remote operation: the second Ctrl-C must not wait for it
        return original(change, progress)

    memory.apply = apply


def test_the_first_ctrl_c_stops_scheduling_names_what_runs_and_waits_for_it(memory):
    reporter = _Interrupting(times=1)
    _interrupting_apply(memory, reporter, wait_for_leaving=False)
    resources = [thing("a"), thing("b", depends_on=["a"])]
    providers = ProviderSet([memory])
    result = apply_plan(build_plan(resources, providers, SPEC), providers, reporter, retry=FAST_RETRY)
    assert result.interrupted and not result.abandoned
    assert ("stopping", "mem.thing.a") in reporter.events
    assert {o.change.address: o.status for o in result.outcomes} == {"mem.thing.a": "done", "mem.thing.b": "skipped"}
    assert "a" in memory.world and "b" not in memory.world


def test_the_second_ctrl_c_leaves_at_once(memory):
    reporter = _Interrupting(times=2)
    _interrupting_apply(memory, reporter, wait_for_leaving=True)
    providers = ProviderSet([memory])
    result = apply_plan(build_plan([thing("a"), thing("b")], providers, SPEC), providers, reporter,
                        retry=FAST_RETRY, parallelism=1)
    assert result.interrupted and result.abandoned
    assert ("leaving", "mem.thing.a") in reporter.events
    assert {o.change.address: o.status for o in result.outcomes} == {"mem.thing.a": "abandoned",
                                                                     "mem.thing.b": "skipped"}


def test_a_value_known_after_apply_flows_from_the_parents_result(memory, reporter):
    resources = [thing("gsa"), thing("binding", member=ref("gsa")), thing("app", params={"endpoint": ref("gsa")})]
    result = plan_and_apply(memory, reporter, resources)
    assert result.ok
    received = {change.address: change.desired for change in memory.applied}
    assert received["mem.thing.binding"].fields == {"member": "gsa#1"}
    assert received["mem.thing.app"].params["endpoint"] == "gsa#1"
    assert memory.world["binding"]["fields"] == {"member": "gsa#1"}


def test_deletes_run_dependents_first(memory, reporter):
    for name in ("a", "b", "c"):
        memory.put(name)
    resources = [thing("a"), thing("b", depends_on=["a"]), thing("c", inside="b")]
    providers = ProviderSet([memory])
    plan = build_plan(resources, providers, SPEC, mode="destroy")
    assert apply_plan(plan, providers, reporter, retry=FAST_RETRY, parallelism=8).ok
    assert [address for event, address in reporter.events if event == "finished"] == [
        "mem.thing.c", "mem.thing.b", "mem.thing.a"]


def test_a_change_past_its_deadline_fails_naming_the_remote_operation(memory, reporter):
    original = memory.apply

    def slow(change, progress):
        progress.operation("operation-42 (CREATE_CLUSTER)")
        while True:
            progress.sleep(0.01)

    memory.apply = slow
    resource = replace(thing("a"), timeout_s=0.05)
    providers = ProviderSet([memory])
    result = apply_plan(build_plan([resource], providers, SPEC), providers, reporter, retry=FAST_RETRY)
    assert result.outcomes[0].status == "failed"
    assert result.outcomes[0].error == ("mem.thing.a: gave up after 0 s; operation-42 (CREATE_CLUSTER) is still "
                                        "running remotely and the next apply resumes it")
    memory.apply = original


def test_an_error_that_ends_when_something_else_finishes_is_retried_until_the_deadline(memory, reporter):
    busy = RetryableError("container.nodePools.create: 400 operation in progress", until_deadline=True)
    memory.fail["mem.thing.a"] = [busy] * 10  # more than FAST_RETRY's 3 attempts
    resource = replace(thing("a"), timeout_s=60)
    providers = ProviderSet([memory])
    result = apply_plan(build_plan([resource], providers, SPEC), providers, reporter, retry=FAST_RETRY)
    assert result.ok
    assert sum(1 for call in memory.calls if call == ("create", "mem.thing.a")) == 11


def test_a_create_waits_for_the_delete_of_what_left_the_spec_and_freed_its_name_space(memory, reporter):
    memory.put("old")
    providers = ProviderSet([memory])
    plan = build_plan([thing("new")], providers, SPEC)
    assert [(c.address, c.action.value) for c in plan.actionable] == [("mem.thing.old", "delete"),
                                                                      ("mem.thing.new", "create")]
    assert apply_plan(plan, providers, reporter, retry=FAST_RETRY, parallelism=8).ok
    began = [(event, address) for event, address in reporter.events if event in ("started", "finished")]
    assert began == [("started", "mem.thing.old"), ("finished", "mem.thing.old"), ("started", "mem.thing.new"),
                     ("finished", "mem.thing.new")]


def test_what_waits_for_a_delete_its_name_space_in_its_parent_and_what_its_provider_says_both_claim():
    def change(name: str, action: Action, inside: str, region: str) -> Change:
        resource = thing(name, inside=inside, region=region)
        live = Observed(resource.address, f"mem://{name}", {"region": region}, "v1", "demo")
        return Change(resource.address, KIND, action, "why", desired=resource,
                      observed=live if action is Action.DELETE else None, pruned=action is Action.DELETE)

    changes = [change("old-slice", Action.DELETE, "cluster-a", "r1"),
               change("old-app", Action.DELETE, "cluster-b", "r9"),
               change("new-slice", Action.CREATE, "cluster-a", "r2"),  # the old slice's name space
               change("slice-elsewhere", Action.UPDATE, "cluster-c", "r1"),  # the old slice's quota
               change("app", Action.REPLACE, "cluster-b", "r3"),  # the old app's name space
               change("unrelated", Action.CREATE, "cluster-c", "r4")]

    def quota(each: Change) -> frozenset[str]:
        live = each.observed if each.action is Action.DELETE else each.desired
        return frozenset({f"quota in {live.fields['region']}"})

    waits_on = _prerequisites(changes, quota)
    assert {address: sorted(waits) for address, waits in waits_on.items() if waits} == {
        "mem.thing.new-slice": ["mem.thing.old-slice"], "mem.thing.slice-elsewhere": ["mem.thing.old-slice"],
        "mem.thing.app": ["mem.thing.old-app"]}
