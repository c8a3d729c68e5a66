import pytest
from memory_world import thing

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


def test_unknown_target_lists_the_known_addresses():
    graph = Graph([thing("a")])
    with pytest.raises(GraphError, match=r"--target mem.thing.x is not an address of this spec \(addresses: mem.thing.a\)"):
        graph.closure(["mem.thing.x"])
