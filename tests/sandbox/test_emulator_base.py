"""The shared emulator base on its own: routing, resource store, operations, seeded faults (no server)."""

import threading

import pytest

from reconciler.sandbox.base.faults import FaultSet
from reconciler.sandbox.base.operations import Operations
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.base.store import AlreadyStored, NotStored, ResourceStore, StaleEtag


def test_routes_match_verb_and_template_and_decode_parameters():
    table = RouteTable((route("GET", "/v1/projects/{project}/clusters/{cluster}", "_get", "x.get"),
                        route("POST", "/v1/projects/{project}/clusters/{cluster}:setSize", "_size", "x.setSize"),
                        route("POST", "/v3/projects/{project}:getIamPolicy", "_policy", "x.getIamPolicy", read=True)))
    found, parameters = table.match("GET", "/v1/projects/p%2Dq/clusters/c")
    assert found.handler == "_get" and parameters == {"project": "p-q", "cluster": "c"} and found.read
    assert table.match("POST", "/v1/projects/p/clusters/c:setSize")[0].handler == "_size"
    assert table.match("GET", "/v1/projects/p/clusters/c:setSize") is None, "a parameter stops at ':'"
    assert table.match("DELETE", "/v1/projects/p/clusters/c") is None
    assert table.match("POST", "/v3/projects/p:getIamPolicy")[0].read, "a POST that reads counts as a read"


def test_the_store_moves_the_etag_on_every_change_and_refuses_stale_ones(tmp_path):
    store = ResourceStore(tmp_path / "store.json")
    first = store.create("a", {"n": 1})
    with pytest.raises(AlreadyStored):
        store.create("a", {"n": 2})
    second = store.put("a", {"n": 2}, if_etag=first.etag)
    assert second.etag != first.etag
    with pytest.raises(StaleEtag) as stale:
        store.put("a", {"n": 3}, if_etag=first.etag)
    assert stale.value.current_etag == second.etag and store.get("a").resource == {"n": 2}
    store.delete("a")
    recreated = store.create("a", {"n": 2})
    assert recreated.etag not in (first.etag, second.etag), "a re-created resource never reuses an etag"
    with pytest.raises(NotStored):
        store.delete("b")
    reloaded = ResourceStore(tmp_path / "store.json")
    assert reloaded.get("a") == recreated, "state and etags survive a restart"
    assert reloaded.put("a", {"n": 3}).etag != recreated.etag


def test_the_store_hands_out_copies():
    store = ResourceStore()
    store.create("a", {"list": [1]})
    store.get("a").resource["list"].append(2)
    assert store.get("a").resource == {"list": [1]}


def test_concurrent_conditional_writes_let_exactly_one_win():
    store = ResourceStore()
    etag = store.create("a", {"n": 0}).etag
    outcomes = []

    def write(value: int) -> None:
        try:
            store.put("a", {"n": value}, if_etag=etag)
            outcomes.append("ok")
        except StaleEtag:
            outcomes.append("stale")

    threads = [threading.Thread(target=write, args=(value,)) for value in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["stale"] * 7


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_an_operation_goes_pending_running_done_and_finishes_its_effect_once():
    store, clock, finished = ResourceStore(), Clock(), []
    operations = Operations(store, "op/", finished.append, clock=clock)
    try:
        started = operations.start("projects/p/operations/1", {"type": "CREATE"}, latency_s=10)
        assert started.status == "PENDING" and operations.get("projects/p/operations/1").status == "PENDING"
        clock.now += 2
        assert operations.get("projects/p/operations/1").status == "RUNNING"
        assert operations.active(lambda op: op.record["type"] == "CREATE").key == "projects/p/operations/1"
        clock.now += 9
        done = operations.get("projects/p/operations/1")
        assert done.done and done.end_time and done.error is None
        assert operations.get("projects/p/operations/1").done and len(finished) == 1
        assert [op.key for op in operations.list("projects/p/")] == ["projects/p/operations/1"]
        assert operations.active(lambda op: True) is None
    finally:
        operations.close()


def test_an_operation_started_to_fail_ends_done_with_its_error_and_a_broken_effect_says_so():
    store, clock = ResourceStore(), Clock()

    def finish(operation) -> None:
        if operation.record["type"] == "BROKEN":
            raise RuntimeError("bug")

    operations = Operations(store, "op/", finish, clock=clock)
    try:
        operations.start("1", {"type": "CREATE"}, latency_s=0, failure={"code": 8, "message": "stockout"})
        operations.start("2", {"type": "BROKEN"}, latency_s=0)
        assert operations.get("1").error == {"code": 8, "message": "stockout"}
        assert operations.get("2").error["code"] == 13 and "bug" in operations.get("2").error["message"]
    finally:
        operations.close()


class ListedStore(ResourceStore):
    """A store that says when the operations' thread lists it (to work out when the next one is due)."""

    def __init__(self):
        super().__init__()
        self.listed_by_the_thread = threading.Event()

    def list(self, prefix: str = ""):
        if threading.current_thread().name.startswith("operations"):
            self.listed_by_the_thread.set()
        return super().list(prefix)


def test_an_operation_started_while_the_thread_waits_for_the_store_wakes_it_without_a_deadlock():
    """A request handler starts an operation with the store's lock held (GKE's one-per-cluster check), then wakes the
    thread; the thread meanwhile waits for the store's lock to work out what is due next. It used to wait so holding
    its wake-up lock, and each waited for the other for good (a CI run's GKE emulator froze in a DELETE_NODE_POOL)."""
    store, made = ListedStore(), []

    def handler() -> None:
        with store.lock:
            made.append(Operations(store, "op/", lambda op: None, clock=Clock()))
            store.listed_by_the_thread.wait()  # the thread now waits for the store's lock
            made[0].start("1", {"type": "CREATE"}, latency_s=0)

    request = threading.Thread(target=handler, daemon=True)
    request.start()
    request.join(timeout=30)  # a bound for a deadlock only: done in milliseconds otherwise
    assert not request.is_alive(), "start() and the operations' thread each wait for a lock the other holds"
    try:
        assert made[0].get("1").done
    finally:
        made[0].close()


def test_operations_survive_a_restart_of_their_emulator(tmp_path):
    clock = Clock()
    first = Operations(ResourceStore(tmp_path / "s.json"), "op/", lambda op: None, clock=clock)
    first.start("1", {"type": "CREATE"}, latency_s=5)
    first.close()
    clock.now += 6
    second = Operations(ResourceStore(tmp_path / "s.json"), "op/", lambda op: None, clock=clock)
    try:
        assert second.get("1").done
    finally:
        second.close()


def faulted_calls(seed: int) -> list[tuple[str, int]]:
    faults = FaultSet()
    faults.add({"status": 503, "probability": 0.3, "seed": seed})
    return [(path, attempt) for attempt in range(20) for path in ("/a", "/b", "/c")
            if faults.match("GET", path) is not None]


def test_a_seed_replays_the_same_faults_and_another_seed_others():
    assert faulted_calls(7) == faulted_calls(7)
    assert faulted_calls(7) != faulted_calls(8)
    assert 5 < len(faulted_calls(7)) < 35


def test_seeded_decisions_do_not_depend_on_how_paths_interleave():
    one, other = FaultSet(), FaultSet()
    for faults in (one, other):
        faults.add({"status": 503, "probability": 0.5, "seed": 3})
    in_order = [(path, one.match("GET", path) is not None) for path in ["/a"] * 10 + ["/b"] * 10]
    interleaved = [(path, other.match("GET", path) is not None) for path in ["/a", "/b"] * 10]
    assert sorted(in_order, key=lambda pair: pair[0]) == sorted(interleaved, key=lambda pair: pair[0])


def test_a_probabilistic_rule_without_a_seed_gets_one_it_shows():
    faults = FaultSet()
    installed = faults.add({"status": 500, "probability": 0.5})[0]
    assert isinstance(installed.seed, int) and faults.rules()[0]["seed"] == installed.seed


def test_an_after_commit_rule_must_say_what_replaces_the_reply():
    with pytest.raises(ValueError, match="after_commit fault rule needs a status, a grpc_code or drop"):
        FaultSet().add({"after_commit": True})
