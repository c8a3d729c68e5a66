"""The provider-agnostic core: resources, graph, plan, apply, lock. It imports no cloud client."""
