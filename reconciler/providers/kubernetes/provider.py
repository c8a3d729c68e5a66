"""The Kubernetes provider: observe, diff and apply the Sax objects by server-side apply (field manager saxctl).

It reaches a cluster the first time a resource of that cluster is read or applied (its endpoint and CA are outputs
of gke.cluster, known only once it exists), and remembers, for the plan under way, how it reached each object and
the ApplySet record it read: what it may prune (owned) and the creates it checks with a dry-run (preflight) are in
the clusters it read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import show_value
from reconciler.engine.provider import Detail, Owned, Problem, Progress, Provider
from reconciler.engine.resource import Action, Change, FieldChange, Hazard, Observed, Resource
from reconciler.errors import ConflictError, RemoteError
from reconciler.providers.kubernetes import access, compare, ownership, rollout
from reconciler.providers.kubernetes.options import KubeOptions
from reconciler.providers.kubernetes.addresses import KINDS as ADDRESS_KINDS_SERVED
from reconciler.providers.kubernetes.api import FIELD_MANAGER, ApiError, KubeApi
from reconciler.providers.kubernetes.fields import field_set, flatten, managed_by
from reconciler.providers.kubernetes.kinds import BY_GROUP_KIND, describe, path_of
from reconciler.providers.kubernetes.manifests import LOAD_BALANCER_TYPE, SAX_CHIPS
from reconciler.providers.kubernetes.resources import ADDRESS_KINDS, address_of, remote_id
from reconciler.providers.parallel import observe_each, run_each

GONE_WAIT_S = 120.0  # how long a replacement waits for the old object to go
PUBLIC_WARNING = ("the Sax HTTP API has no authentication: with exposure public, anyone who can reach the load "
                  "balancer's address can publish, unpublish and query models")
LISTED = f"metadata.annotations.{ownership.CONTAINS_GROUP_KINDS}"  # an ApplySet parent's flattened annotation


class KubernetesProvider(Provider):
    kinds = ADDRESS_KINDS_SERVED

    def __init__(self, options: KubeOptions = KubeOptions()):
        self._options = options
        self._lock = threading.Lock()
        self._apis: dict[tuple, KubeApi] = {}
        self._read: dict[Address, Resource] = {}  # this plan's reads: each resource as resolved (how to reach it)
        self._parents: dict[Address, tuple[Resource, dict | None]] = {}  # ApplySet parents as read

    # --- reading -------------------------------------------------------------------------------------------------

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One GET per object, in parallel; a dry-run apply only for an object that is not up to date."""
        return observe_each(desired, self._observe, "kube-observe")

    def _observe(self, resource: Resource) -> Observed | None:
        api = self._api(resource.params)
        manifest = resource.params["manifest"]
        live = api.get(path_of(manifest), describe(manifest))
        with self._lock:
            self._read[resource.address] = resource
            if manifest["kind"] == "ConfigMap":
                self._parents[resource.address] = (resource, live)
        if live is None:
            return None
        listed = ((live.get("metadata") or {}).get("annotations") or {}).get(ownership.CONTAINS_GROUP_KINDS)
        return self._compared(resource, api, compare.effective_manifest(manifest, listed), live)

    def _compared(self, resource: Resource, api: KubeApi, manifest: dict, live: dict) -> Observed:
        """The live object along saxctl's fields; when it is not up to date, the server's dry-run answer with it."""
        if compare.up_to_date(manifest, live):
            return _observed(resource, live, flatten(live, field_set(manifest)), {})
        facts: dict[str, Any] = {}
        replaced = compare.replaced_paths(manifest, live, resource.replace_on)
        after = None
        if replaced:
            facts["replace"] = replaced
        else:
            after = self._dry_run(api, manifest, live, facts)
        fields = compare.compared_fields(manifest, live, after)
        if after is not None:
            facts["after"] = flatten(after, fields)
            facts["owner_changes"] = managed_by(live, FIELD_MANAGER) != managed_by(after, FIELD_MANAGER)
        return _observed(resource, live, flatten(live, fields), facts)

    def _dry_run(self, api: KubeApi, manifest: dict, live: dict, facts: dict) -> dict | None:
        """The server's answer to applying manifest, or None with why in facts (conflicts, or its refusal)."""
        path, what = path_of(manifest), describe(manifest)
        try:
            return api.apply(path, manifest, what, dry_run=True)
        except ApiError as error:
            if error.status.code != 409:
                facts["refused"] = f"{error.status.reason}: {error.status.message}"
                return None
            found = compare.conflicts(error.status, live)
        if not (compare.is_drift(found) or self._options.force_conflicts):
            facts["conflicts"] = found
            return None
        # Set out of band by an update (saxctl sets it back), or applied by another manager and --force-conflicts.
        facts["force"], facts["taken"] = True, found
        return api.apply(path, manifest, what, dry_run=True, force=True)

    def owned(self, spec_name: str, kinds: frozenset[str]) -> Sequence[Owned]:
        """The members of the ApplySets read in this plan: one LIST per group-kind a parent lists, by its id."""
        with self._lock:
            parents = [(resource, live) for resource, live in self._parents.values() if live is not None]
        listings = []
        for resource, live in parents:
            meta = live["metadata"]
            set_id = (meta.get("labels") or {}).get(ownership.APPLYSET_ID)
            listed = (meta.get("annotations") or {}).get(ownership.CONTAINS_GROUP_KINDS)
            for group_kind in ownership.group_kinds(listed):
                kind = BY_GROUP_KIND.get(group_kind)
                if set_id and kind is not None and ADDRESS_KINDS.get(kind.kind) in kinds:
                    listings.append((resource, kind, meta["namespace"], set_id))

        def listing(item) -> list[Owned]:
            parent, kind, namespace, set_id = item
            api = self._api(parent.params)
            found = api.list(kind.collection(namespace), f"{kind.plural} of ApplySet {parent.name}",
                             f"{ownership.PART_OF}={set_id}")
            return [_owned(parent, kind, live) for live in found
                    if ownership.owner((live.get("metadata") or {}).get("labels")) == spec_name]

        return [owned for found in run_each(listings, listing, "kube-owned") for owned in found]

    def preflight(self, changes: Sequence[Change]) -> Sequence[Problem]:
        """Conflicts and refusals the plan's dry-runs met; a dry-run of each create in a cluster this plan read; a
        TPU chip Sax has no name for."""
        mine = [change for change in changes if change.kind in self.kinds and change.desired is not None]
        problems = [problem for change in mine for problem in _known_problems(change)]
        with self._lock:
            creates = [(change, self._read[change.address]) for change in mine
                       if change.action is Action.CREATE and change.address in self._read]
        problems += [problem for problem in run_each(creates, self._create_problem, "kube-preflight") if problem]
        return problems

    def _create_problem(self, item: tuple[Change, Resource]) -> Problem | None:
        change, resource = item
        manifest = resource.params["manifest"]
        try:
            self._api(resource.params).apply(path_of(manifest), manifest, describe(manifest), dry_run=True)
        except ApiError as error:
            status = error.status
            if status.code == 404 and status.details_kind == "namespaces":
                namespace = manifest["metadata"]["namespace"]
                message = (f"namespace {namespace} does not exist in cluster {resource.params['cluster']}: create "
                           f"it first (kubectl create namespace {namespace}), or run the servers in one that exists")
            else:
                message = f"the apiserver would refuse it: {status.reason}: {status.message}"
            return Problem(change.address, resource.spec_field, message)
        return None

    def describe(self, changes: Sequence[Change]) -> Sequence[Detail]:
        """Ready replicas of each existing workload against its desired count, as read by the plan."""
        return [Detail(change.address, f"{change.observed.outputs['ready_replicas']}/"
                                       f"{change.observed.fields.get('spec.replicas', 1)} ready")
                for change in changes if change.observed is not None and "ready_replicas" in change.observed.outputs]

    # --- deciding ------------------------------------------------------------------------------------------------

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        change = _diff(desired, observed)
        if change.action is not Action.NOOP and _is_public(desired.params["manifest"]):
            # A note on the change, shown with it (⚠) and kept in a saved plan; it asks for no approval.
            change = replace(change, hazard=Hazard(PUBLIC_WARNING, needs_approval=False))
        return change

    # --- changing ------------------------------------------------------------------------------------------------

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        api = self._api(resource.params)
        manifest = resource.params["manifest"]
        path, what = path_of(manifest), describe(manifest)
        facts = change.observed.facts if change.observed is not None else {}
        if change.action in (Action.DELETE, Action.REPLACE):
            progress.update(f"deleting {what}")
            api.delete(path, what, uid=facts.get("uid"))
            if change.action is Action.DELETE:
                return None
            self._wait_gone(api, manifest, facts.get("uid"), progress)
        listed = change.observed.fields.get(LISTED) if change.observed is not None else None
        effective = compare.effective_manifest(manifest, listed)
        progress.update(f"applying {what}" + (" (taking fields other managers hold)" if facts.get("force") else ""))
        try:
            live = api.apply(path, effective, what, force=bool(facts.get("force")))
        except ApiError as error:
            if error.status.code == 409:
                hint = "Another field manager changed it since the plan: run `saxctl plan` again."
                raise ConflictError(f"{what}: {error.status.message}", hint=hint) from None
            raise
        if resource.params.get("workload"):
            live = rollout.wait(api, manifest, resource.params.get("pool"), progress, self._options.rollout_timeout_s)
        return _observed(resource, live, flatten(live, field_set(effective)), {})

    def _wait_gone(self, api: KubeApi, manifest: dict, uid: str | None, progress: Progress) -> None:
        waited = 0.0
        while True:
            live = api.get(path_of(manifest), describe(manifest))
            if live is None or live["metadata"].get("uid") != uid:
                return
            if waited >= GONE_WAIT_S:
                raise RemoteError(f"{describe(manifest)} is still being deleted after {GONE_WAIT_S:.0f} s "
                                  f"(finalizers: {', '.join(live['metadata'].get('finalizers') or ['none'])})")
            progress.update(f"waiting for the old {describe(manifest)} to go")
            progress.sleep(1.0)
            waited += 1.0

    def _api(self, params: Mapping[str, Any]) -> KubeApi:
        """The client of the cluster these params name (or of --kubeconfig), built the first time it is asked for."""
        key = ("kubeconfig",) if self._options.kubeconfig else (params["endpoint"], params["ca_certificate"])
        with self._lock:
            api = self._apis.get(key)
            if api is None:
                if self._options.kubeconfig:
                    endpoint = access.from_kubeconfig(self._options.kubeconfig, self._options.context)
                else:
                    endpoint = access.from_cluster(params["cluster"], params["endpoint"], params["ca_certificate"])
                api = self._apis[key] = KubeApi(endpoint)
            return api


def _observed(resource: Resource, live: Mapping[str, Any], fields: dict[str, Any], facts: dict[str, Any]) -> Observed:
    meta = live.get("metadata") or {}
    facts = {"uid": meta.get("uid"), **facts}
    digest = hashlib.sha256(json.dumps([fields, facts], sort_keys=True, default=str).encode()).hexdigest()[:12]
    generation = f"generation {meta['generation']}, " if "generation" in meta else ""
    return Observed(
        address=resource.address,
        remote_id=resource.remote_id,
        fields=fields,
        fingerprint=f"{generation}fields {digest}",
        owner=ownership.owner(meta.get("labels")),
        facts=facts,
        outputs=_outputs(live),
    )


def _outputs(live: Mapping[str, Any]) -> dict[str, Any]:
    meta, spec = live.get("metadata") or {}, live.get("spec") or {}
    outputs: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if live.get("kind", "Service") == "Service" and "ports" in spec:
        outputs["cluster_ip"] = spec.get("clusterIP")
        outputs["port"] = spec["ports"][0].get("port")
        ingress = ((live.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress:
            outputs["address"] = ingress[0].get("ip") or ingress[0].get("hostname")
    if live.get("kind") in ("Deployment", "StatefulSet"):  # what a Requirement of a dependent may ask for
        status = live.get("status") or {}
        outputs["ready_replicas"] = status.get("readyReplicas", 0)
        outputs["available_replicas"] = status.get("availableReplicas", 0)
    return {key: value for key, value in outputs.items() if value is not None}


def _owned(parent: Resource, kind, live: Mapping[str, Any]) -> Owned:
    """A member of an ApplySet as a resource the engine can delete: enough of a manifest to name it."""
    meta = live["metadata"]
    manifest = {"apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
    address = address_of(manifest)
    resource = Resource(address, address.kind, address.name, {}, inside=parent.inside,
                        params={**parent.params, "manifest": manifest, "workload": False, "pool": None},
                        remote_id=remote_id(kind.kind, meta["namespace"], meta["name"], parent.params["cluster"]))
    return Owned(resource, _observed(resource, live, flatten(live, managed_by(live, FIELD_MANAGER)), {}))


def _diff(desired: Resource, observed: Observed | None) -> Change:
    address, kind = desired.address, desired.kind
    if observed is None:
        return Change(address, kind, Action.CREATE, f"{desired.remote_id} does not exist", desired=desired)
    facts = observed.facts
    if facts.get("replace"):
        changes = _field_changes(observed.fields, desired.fields, desired.replace_on)
        return Change(address, kind, Action.REPLACE, f"{', '.join(facts['replace'])} cannot change in place: "
                      f"{describe(desired.params['manifest'])} will be deleted and created again", changes,
                      desired, observed)
    if facts.get("conflicts"):
        found = facts["conflicts"]
        return Change(address, kind, Action.UPDATE,
                      f"conflict: {compare.conflict_fields(found)} applied by field manager "
                      f"{compare.holders(found)}; saxctl takes {'it' if len(found) == 1 else 'them'} only with "
                      "--force-conflicts",
                      _field_changes(observed.fields, desired.fields, frozenset(), only_desired=True), desired,
                      observed)
    if facts.get("refused"):
        return Change(address, kind, Action.UPDATE, f"the apiserver refuses the change: {facts['refused']}",
                      _field_changes(observed.fields, desired.fields, frozenset(), only_desired=True), desired,
                      observed)
    after = facts.get("after")
    if after is None:
        return Change(address, kind, Action.NOOP, "up to date", desired=desired, observed=observed)
    changes = _field_changes(observed.fields, after, frozenset())
    if not changes and not facts.get("owner_changes"):
        return Change(address, kind, Action.NOOP, "up to date (the server normalises what saxctl writes)",
                      desired=desired, observed=observed)
    return Change(address, kind, Action.UPDATE, _update_reason(changes, facts), changes, desired, observed)


def _update_reason(changes: tuple[FieldChange, ...], facts: Mapping[str, Any]) -> str:
    if not changes:
        return "no value changes: saxctl becomes the manager of the fields it sets"
    shown = "; ".join(f"{c.path}: {show_value(c.before)} → {show_value(c.after)}" for c in changes[:3])
    more = f" (and {len(changes) - 3} more)" if len(changes) > 3 else ""
    taken = facts.get("taken")
    if taken:
        fields, who = compare.conflict_fields(taken), compare.holders(taken)
        how = (f"changed out of band by {who}: saxctl sets it back" if compare.is_drift(taken)
               else f"applied by field manager {who}: taken over (--force-conflicts)")
        return f"{fields} {how}; {shown}{more}"
    return shown + more


def _field_changes(before: Mapping[str, Any], after: Mapping[str, Any], replace_on: frozenset[str], *,
                   only_desired: bool = False) -> tuple[FieldChange, ...]:
    paths = list(after) if only_desired else list(dict.fromkeys([*before, *after]))
    return tuple(FieldChange(path, before.get(path), after.get(path), compare.forces_replacement(path, replace_on))
                 for path in paths if before.get(path) != after.get(path))


def _is_public(manifest: Mapping[str, Any]) -> bool:
    """A LoadBalancer Service without GKE's internal annotation: an address outside the VPC."""
    annotations = manifest["metadata"].get("annotations") or {}
    return (manifest["kind"] == "Service" and manifest.get("spec", {}).get("type") == "LoadBalancer"
            and annotations.get(LOAD_BALANCER_TYPE) != "Internal")


def _known_problems(change: Change) -> list[Problem]:
    facts = change.observed.facts if change.observed is not None else {}
    field = change.desired.spec_field
    problems = []
    if facts.get("conflicts"):
        found = facts["conflicts"]
        problems.append(Problem(change.address, field, f"{compare.conflict_fields(found)} applied by field manager "
                                f"{compare.holders(found)} (server-side apply): rerun with --force-conflicts to take "
                                f"{'it' if len(found) == 1 else 'them'} over"))
    if facts.get("refused"):
        problems.append(Problem(change.address, field, f"the apiserver refuses the change: {facts['refused']}"))
    chip = _platform_chip(change.desired.params["manifest"])
    if chip is not None and chip not in SAX_CHIPS.values():
        problems.append(Problem(change.address, "sax.modelServer.pool",
                                f"Sax's model server has no chip name for this pool's TPUs ({chip}): it knows "
                                f"{', '.join(sorted(SAX_CHIPS.values()))}, and would serve no model"))
    return problems


def _platform_chip(manifest: Mapping[str, Any]) -> str | None:
    containers = ((manifest.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or ()
    for container in containers:
        for arg in container.get("args") or ():
            if arg.startswith("--platform_chip="):
                return arg.split("=", 1)[1]
    return None
