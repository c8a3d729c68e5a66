"""Why an assigned model server does not serve a model, from what the server itself says (pure)."""

from __future__ import annotations

import pytest
from cli_runner import REPO

from reconciler.engine.resource import Action
from reconciler.providers.sax.decide import (FAILED, LOADED, LOADING, AssignedServer, HoldingNothing, emptied_servers,
                                             loaded_on, Published, decide, not_loaded_because, observed, still_loading)
from reconciler.providers.sax.resources import desired_resources
from reconciler.spec.loader import load_spec

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
    assert said.endswith("`saxctl apply` restarts the admin (as `kubectl -n ns rollout restart "
                         "deployment/sax-admin-server` does), which asks each server what it holds and loads the model "
                         "again")


def test_servers_that_answer_holding_nothing_are_emptied_and_only_those():
    servers = [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADED, "")}),
               AssignedServer("b:1", "pod-b", statuses={}),
               AssignedServer("c:1", "pod-c", statuses={MODEL: (FAILED, "oom")}),
               AssignedServer("d:1", "pod-d", unreachable="UNAVAILABLE"), AssignedServer("e:1", None)]
    assert emptied_servers(MODEL, servers) == ("b:1",)


def published_with(replicas: int, *assigned: str) -> Published:
    return Published(MODEL, "saxml.GPTJ", "gs://d/c", replicas, assigned=assigned)


@pytest.mark.parametrize("published, servers, can_serve, said", [
    (published_with(1), [], 1, "0/1 replicas loaded (1 not assigned to a model server yet)"),
    (published_with(2, "a:1"), [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADING, "")})], 2,
     "0/2 replicas loaded (1 not assigned to a model server yet, 1 loading)"),
    (published_with(2, "a:1", "b:1"), [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADED, "")}),
                                       AssignedServer("b:1", "pod-b", statuses={MODEL: (LOADING, "")})], 2,
     "1/2 replicas loaded (1 loading)"),
], ids=["published, not assigned yet", "one assigned and loading", "one loaded, one loading"])
def test_a_load_under_way_says_how_far_it_has_got(published, servers, can_serve, said):
    assert still_loading(published, servers, can_serve) == said


@pytest.mark.parametrize("published, servers, can_serve", [
    (published_with(1, "a:1"), [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADED, "")})], 1),
    (published_with(1), [], 0),  # no server can serve it: the admin will never assign it (preflight says why)
    (published_with(2, "a:1"), [AssignedServer("a:1", "pod-a", statuses={MODEL: (LOADED, "")})], 1),
    (published_with(1, "a:1"), [AssignedServer("a:1", "pod-a", statuses={MODEL: (FAILED, "oom")})], 1),
    (published_with(1, "a:1"), [AssignedServer("a:1", "pod-a", unreachable="UNAVAILABLE")], 1),
    (published_with(1, "a:1"), [AssignedServer("a:1", None)], 1),
    (published_with(1, "a:1"), [AssignedServer("a:1", "pod-a", statuses={})], 1),  # emptied: an admin restart
], ids=["loaded", "no server can serve it", "one loaded, no second server", "failed", "no answer", "pod gone",
        "came back empty"])
def test_no_load_is_under_way_when_nothing_is_loading_or_about_to(published, servers, can_serve):
    assert still_loading(published, servers, can_serve) == ""


def test_a_server_assigned_whose_load_has_not_reached_it_is_a_load_about_to_start_not_a_server_come_back_empty():
    """Both hold nothing; the admin counts only the one that came back as loaded (the provider asks it)."""
    holds_nothing = [AssignedServer("a:1", "pod-a", statuses={})]
    not_reached = HoldingNothing(emptied_servers(MODEL, holds_nothing), came_back=False)
    came_back = HoldingNothing(emptied_servers(MODEL, holds_nothing), came_back=True)
    assert (not_reached.emptied, came_back.emptied) == ((), ("a:1",))
    assert still_loading(published_with(1, "a:1"), holds_nothing, 1, starting=not_reached.starting) == \
        "0/1 replicas loaded (1 assigned, its load about to start)"
    assert still_loading(published_with(1, "a:1"), holds_nothing, 1, starting=came_back.starting) == ""


def test_a_model_published_as_the_spec_says_while_its_load_is_under_way_is_an_update_that_waits():
    """What a killed apply leaves: the Publish went through, the replicas had not loaded."""
    spec = load_spec(str(REPO / "specs" / "gptj-v5e-2x2.yaml"), environ={"GPTJ_CHECKPOINT": "/nonexistent"})
    [desired] = desired_resources(spec)
    published = Published(desired.params["model_id"], **{key: desired.fields[key] for key in (
        "model_path", "checkpoint", "replicas", "overrides")})
    change = decide(desired, observed(desired.address, published, spec.name,
                                      loading="0/1 replicas loaded (1 not assigned to a model server yet)"))
    assert change.action is Action.UPDATE and change.field_changes == ()
    assert change.reason == "0/1 replicas loaded (1 not assigned to a model server yet): apply waits for the load"
    assert not change.observed.facts["emptied"], "apply restarts the admin only for servers that came back empty"


def test_a_model_published_as_the_spec_says_but_emptied_on_a_server_is_an_update_that_restarts_the_admin():
    spec = load_spec(str(REPO / "specs" / "gptj-v5e-2x2.yaml"), environ={"GPTJ_CHECKPOINT": "/nonexistent"})
    [desired] = desired_resources(spec)
    published = Published(desired.params["model_id"], **{key: desired.fields[key] for key in (
        "model_path", "checkpoint", "replicas", "overrides")}, assigned=(ADDRESS,))
    assert decide(desired, observed(desired.address, published, spec.name)).action is Action.NOOP

    change = decide(desired, observed(desired.address, published, spec.name, emptied=(ADDRESS,)))
    assert change.action is Action.UPDATE and change.field_changes == ()
    assert change.reason == (f"not loaded on {ADDRESS}, back at the same address holding nothing (Sax will not load "
                             "it there again): the Sax admin will be restarted to load it")
