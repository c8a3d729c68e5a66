import pytest
from memory_world import at, thing

from reconciler.engine.graph import Graph, GraphError


def test_dependencies_come_first_and_ties_are_ordered_by_address():
    graph = Graph([thing("c", depends_on=["a"]), thing("b"), thing("a")])
    assert graph.order == ("mem.thing.a", "mem.thing.b", "mem.thing.c")


def test_a_cycle_is_reported_by_name():
    with pytest.raises(GraphError, match=r"dependency cycle: mem.thing.a → mem.thing.b → mem.thing.a"):
        Graph([thing("a", depends_on=["b"]), thing("b", depends_on=["a"])])


def test_an_unknown_dependency_is_named():
    with pytest.raises(GraphError, match="mem.thing.a depends on mem.thing.zz, which is not in the spec"):
        Graph([thing("a", depends_on=["zz"])])


def test_duplicate_addresses_are_refused():
    with pytest.raises(GraphError, match="two resources share the address mem.thing.a"):
        Graph([thing("a"), thing("a")])


def test_target_closure_includes_what_the_target_depends_on_only():
    graph = Graph([thing("a"), thing("b", depends_on=["a"]), thing("c", depends_on=["b"]), thing("d")])
    assert graph.closure(["mem.thing.b"]) == {"mem.thing.a", "mem.thing.b"}




def test_a_destroy_closure_takes_dependents_and_never_dependencies():
    graph = Graph([thing("a"), thing("b", depends_on=["a"]), thing("c", inside="b"), thing("d")])
    assert graph.closure([at("b")], destroy=True) == {"mem.thing.b", "mem.thing.c"}


def test_a_value_that_flows_from_another_resource_is_a_dependency():
    from memory_world import ref

    graph = Graph([thing("app", endpoint=ref("cluster")), thing("cluster")])
    assert graph.order == ("mem.thing.cluster", "mem.thing.app")
    assert graph.parents[at("app")] == (at("cluster"),)
