"""Deciding from what was read (no API call): up to date, drift or conflict, what a change shows and what blocks it."""

from __future__ import annotations

import copy

import pytest
from sax_world import SaxWorld

from reconciler.engine.resource import Action, Observed
from reconciler.providers.kubernetes import compare, ownership
from reconciler.providers.kubernetes.api import Status
from reconciler.providers.kubernetes.fields import field_set, flatten
from reconciler.providers.kubernetes.provider import PUBLIC_WARNING, KubernetesProvider
from reconciler.providers.kubernetes.resources import desired_resources
from reconciler.spec.loader import load_spec

HTTP = "kubernetes.deployment.sax/sax-http"


@pytest.fixture
def resources(tmp_path):
    def make(**shape):
        world = SaxWorld(None, tmp_path, "k-test", "my-project", "sax", "abcd1234")
        return {r.address: r for r in desired_resources(load_spec(str(world.write(**shape))))}
    return make


def applied(manifest: dict, *others: dict) -> dict:
    """The live object after saxctl applied manifest: its values, server defaults, and saxctl's managedFields entry."""
    live = copy.deepcopy(manifest)
    live["metadata"]["uid"] = "uid-1"
    live.setdefault("spec", {})["revisionHistoryLimit"] = 10  # a default saxctl never set
    live["metadata"]["managedFields"] = [
        {"manager": "saxctl", "operation": "Apply", "fieldsV1": _server_form(field_set(manifest))}, *others]
    return live


def _server_form(tree: dict) -> dict:
    """As the apiserver writes a field set: each list item also owns itself (`.`)."""
    return {key: ({".": {}, **_server_form(child)} if key.startswith("k:") else _server_form(child))
            for key, child in tree.items()}


def test_an_object_as_saxctl_applied_it_is_up_to_date_whatever_the_server_added(resources):
    manifest = resources()[HTTP].params["manifest"]
    assert compare.up_to_date(manifest, applied(manifest))


def test_a_value_changed_or_a_field_saxctl_no_longer_owns_is_not_up_to_date(resources):
    manifest = resources()[HTTP].params["manifest"]
    changed = applied(manifest)
    changed["spec"]["replicas"] = 3
    assert not compare.up_to_date(manifest, changed)
    taken = applied(manifest)
    del taken["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"]
    assert not compare.up_to_date(manifest, taken), "kubectl scale took spec.replicas, even if back to 1"


def conflict_of(field: str, message: str) -> Status:
    return Status(409, "Conflict", "Apply failed with 1 conflict", ({"reason": "FieldManagerConflict",
                                                                     "message": message, "field": field},))


def test_a_field_changed_by_an_update_is_drift_and_one_applied_by_another_tool_a_conflict(resources):
    manifest = resources()[HTTP].params["manifest"]
    scaled = applied(manifest, {"manager": "kubectl", "operation": "Update", "subresource": "scale",
                                "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    found = compare.conflicts(conflict_of(".spec.replicas", 'conflict with "kubectl" with subresource "scale" using '
                                          "apps/v1"), scaled)
    assert found == [{"field": "spec.replicas", "manager": "kubectl", "subresource": "scale", "operation": "Update"}]
    assert compare.is_drift(found)

    gitops = applied(manifest, {"manager": "argocd", "operation": "Apply", "fieldsV1": {}})
    found = compare.conflicts(conflict_of('.spec.template.spec.containers[name="sax-http"].image',
                                          'conflict with "argocd" using apps/v1'), gitops)
    assert found[0]["field"] == "spec.template.spec.containers[name=sax-http].image"
    assert not compare.is_drift(found)


def observed(resource, live: dict, facts: dict) -> Observed:
    fields = compare.compared_fields(resource.params["manifest"], live, None)
    return Observed(resource.address, resource.remote_id, flatten(live, fields), "fp", "k-test",
                    {"uid": "uid-1", **facts})


def test_a_conflict_is_an_update_the_preflight_blocks_until_force_conflicts(resources):
    resource = resources()[HTTP]
    live = applied(resource.params["manifest"])
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "argocd/http:2"
    found = [{"field": "spec.template.spec.containers[name=sax-http].image", "manager": "argocd", "subresource": "",
              "operation": "Apply"}]
    provider = KubernetesProvider()
    change = provider.diff(resource, observed(resource, live, {"conflicts": found}))
    assert change.action is Action.UPDATE and "--force-conflicts" in change.reason
    assert [(c.before, c.after) for c in change.field_changes] == [
        ("argocd/http:2", resource.params["manifest"]["spec"]["template"]["spec"]["containers"][0]["image"])]
    [problem] = provider.preflight([change])
    assert problem.field == "sax.httpServer" and "applied by field manager argocd" in problem.message


def test_a_dry_run_that_changes_nothing_is_no_change_unless_ownership_moves(resources):
    resource = resources()[HTTP]
    live = applied(resource.params["manifest"])
    same = flatten(live, compare.compared_fields(resource.params["manifest"], live, None))
    provider = KubernetesProvider()
    assert provider.diff(resource, observed(resource, live, {"after": same})).action is Action.NOOP
    claimed = provider.diff(resource, observed(resource, live, {"after": same, "owner_changes": True}))
    assert claimed.action is Action.UPDATE and claimed.field_changes == ()


def test_an_immutable_field_that_differs_replaces_the_object(resources):
    resource = resources()[HTTP]
    live = applied(resource.params["manifest"])
    live["spec"]["selector"] = {"matchLabels": {"app": "old"}}
    assert compare.replaced_paths(resource.params["manifest"], live, resource.replace_on) == ["spec.selector"]
    change = KubernetesProvider().diff(resource, observed(resource, live, {"replace": ["spec.selector"]}))
    assert change.action is Action.REPLACE
    assert [c.path for c in change.field_changes if c.forces_replacement] == ["spec.selector"]


def test_the_public_service_warns_on_create_and_update_the_internal_one_does_not(resources):
    provider = KubernetesProvider()
    public = resources(exposure="public")["kubernetes.service.sax/sax-http-lb"]
    change = provider.diff(public, None)
    assert change.hazard is not None and change.hazard.what == PUBLIC_WARNING and not change.hazard.needs_approval
    assert provider.diff(resources()["kubernetes.service.sax/sax-http-lb"], None).hazard is None


def test_a_pool_whose_tpus_sax_has_no_chip_name_for_is_refused_before_any_write(resources):
    provider = KubernetesProvider()
    model = resources(machine="ct6e-standard-4t")["kubernetes.deployment.sax/sax-model-server"]
    [problem] = provider.preflight([provider.diff(model, None)])
    assert problem.field == "sax.modelServer.pool" and "tpuv6e" in problem.message


def test_an_applyset_record_keeps_listing_kinds_it_listed(resources):
    manifest = resources()["kubernetes.applyset.sax/saxctl-k-test"].params["manifest"]
    kept = compare.effective_manifest(manifest, "Deployment.apps,StatefulSet.apps")
    assert kept["metadata"]["annotations"][ownership.CONTAINS_GROUP_KINDS] == \
        "Deployment.apps,Service,ServiceAccount,StatefulSet.apps"
    assert compare.effective_manifest(manifest, "Service") == manifest


SCALED = {"field": "spec.replicas", "manager": "kubectl", "subresource": "scale", "operation": "Update"}
GITOPS_IMAGE = {"field": "spec.template.spec.containers[name=sax-http].image", "manager": "gitops", "subresource": "",
                "operation": "Apply"}


def test_drift_and_an_applied_field_together_are_a_conflict_the_plan_blocks(resources):
    """One field another tool applied among fields an update set: not drift, and nothing is taken without the flag."""
    assert compare.is_drift([SCALED])
    assert not compare.is_drift([SCALED, GITOPS_IMAGE]) and not compare.is_drift([GITOPS_IMAGE, SCALED])
    resource = resources()[HTTP]
    live = applied(resource.params["manifest"])
    live["spec"]["replicas"] = 3
    provider = KubernetesProvider()
    change = provider.diff(resource, observed(resource, live, {"conflicts": [SCALED, GITOPS_IMAGE]}))
    assert "only with --force-conflicts" in change.reason
    [problem] = provider.preflight([change])
    assert problem.message.startswith("spec.template.spec.containers[name=sax-http].image applied by field manager "
                                      "gitops (server-side apply)"), "the drift blocks nothing; the applied field does"
    forced = provider.diff(resource, observed(resource, live, {"conflicts": [SCALED, GITOPS_IMAGE],
                                                               "forced_by": "--force-conflicts", "after": {}}))
    assert provider.preflight([forced]) == [] and "taken over (--force-conflicts)" in forced.reason


def test_an_apply_takes_only_the_update_drift_its_plan_showed():
    assert compare.unplanned([SCALED], [SCALED]) == []
    assert compare.unplanned([SCALED, GITOPS_IMAGE], [SCALED]) == [GITOPS_IMAGE], "applied since the plan"
    assert compare.unplanned([SCALED], []) == [SCALED], "scaled since the plan"
    assert compare.unplanned([GITOPS_IMAGE], [GITOPS_IMAGE]) == [GITOPS_IMAGE], "an applied field is never drift"


def test_the_fingerprint_of_a_conflict_is_the_same_with_or_without_force_conflicts(resources):
    """A saved plan made with --force-conflicts is checked by a plan made without it: only what was read counts."""
    from reconciler.providers.kubernetes.provider import _observed

    resource = resources()[HTTP]
    live = applied(resource.params["manifest"])
    live["metadata"]["generation"] = 2
    fields = {"spec.replicas": 1}
    refused = _observed(resource, live, fields, {"conflicts": [GITOPS_IMAGE]})
    taken = _observed(resource, live, fields, {"conflicts": [GITOPS_IMAGE], "forced_by": "--force-conflicts",
                                               "after": {"spec.replicas": 1}, "owner_changes": True})
    assert refused.fingerprint == taken.fingerprint
    moved = _observed(resource, live, fields, {"conflicts": [SCALED]})
    assert moved.fingerprint != refused.fingerprint, "another conflict is another world"
