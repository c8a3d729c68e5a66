"""Why an assigned model server does not serve a model, from what the server itself says (pure)."""

from __future__ import annotations

import pytest

from reconciler.providers.sax.decide import FAILED, LOADED, LOADING, AssignedServer, loaded_on, not_loaded_because

MODEL = "/sax/test/gptj"
ADDRESS = "10.0.0.7:10001"


def test_only_servers_that_say_loaded_count_whatever_the_admin_counts():
    servers = [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADED, "")}),
               AssignedServer("b:1", "pod-b", restarts=1, statuses={}),  # came back holding nothing
               AssignedServer("c:1", "pod-c", statuses={MODEL: (LOADING, "")}),
               AssignedServer("d:1", "pod-d", unreachable="UNAVAILABLE: connection refused")]
    assert loaded_on(MODEL, servers) == 1


@pytest.mark.parametrize("server, said", [
    (AssignedServer(ADDRESS, None), "its model server 10.0.0.7:10001 has no pod any more"),
    (AssignedServer(ADDRESS, "ms-1", unreachable="UNAVAILABLE: refused"),
     "model server 10.0.0.7:10001 (pod ns/ms-1) does not answer: UNAVAILABLE: refused"),
    (AssignedServer(ADDRESS, "ms-1", statuses={MODEL: (LOADING, "")}), "(pod ns/ms-1) is still loading it"),
    (AssignedServer(ADDRESS, "ms-1", statuses={MODEL: (FAILED, "out of memory")}),
     "the load failed on model server 10.0.0.7:10001 (pod ns/ms-1): out of memory; Sax does not load it again"),
    (AssignedServer(ADDRESS, "ms-1", restarts=2, statuses={}),
     "(pod ns/ms-1, restarted 2 times) holds nothing: a model server that comes back at the same address"),
], ids=["no pod", "no answer", "loading", "failed", "came back empty"])
def test_each_reason_names_the_server_and_its_pod(server, said):
    assert said in not_loaded_because(MODEL, server, "ns", "sax-admin-server")


def test_a_server_that_came_back_empty_says_how_to_recover():
    said = not_loaded_because(MODEL, AssignedServer(ADDRESS, "ms-1", statuses={}), "ns", "sax-admin-server")
    assert said.endswith("`kubectl -n ns rollout restart deployment/sax-admin-server` starts a new admin, which asks "
                         "each server what it holds and loads the model again")
