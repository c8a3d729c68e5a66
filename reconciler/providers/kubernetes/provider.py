"""The Kubernetes provider: observe, diff and apply the Sax objects by server-side apply (field manager saxctl).

It reaches a cluster the first time a resource of that cluster is read or applied (its endpoint and CA are outputs
of gke.cluster, known only once it exists), and remembers, for the plan under way, how it reached each object and
the ApplySet record it read: what it may prune (owned) and the creates it checks with a dry-run (preflight) are in
the clusters it read.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import socket
import threading
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import show_value
from reconciler.engine.provider import Detail, Owned, Problem, Progress, Provider
from reconciler.engine.resource import Action, Change, FieldChange, Hazard, Observed, Resource
from reconciler.errors import ConflictError, RemoteError
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.kubernetes import access, compare, ownership, rollout
from reconciler.providers.kubernetes.options import KubeOptions
from reconciler.providers.kubernetes.addresses import KINDS as ADDRESS_KINDS_SERVED
from reconciler.providers.kubernetes.api import FIELD_MANAGER, ApiError, KubeApi
from reconciler.providers.kubernetes.fields import field_set, flatten, managed_by
from reconciler.providers.kubernetes.kinds import BY_GROUP_KIND, KINDS, describe, path_of
from reconciler.providers.kubernetes.manifests import LOAD_BALANCER_TYPE, SAX_CHIPS
from reconciler.providers.kubernetes.resources import ADDRESS_KINDS, address_of, remote_id
from reconciler.providers.parallel import observe_each, run_each

GONE_WAIT_S = 120.0  # how long a delete (or a replacement) waits for the object to go, its pods first
PUBLIC_WARNING = ("the Sax HTTP API has no authentication: with exposure public, anyone who can reach the load "
                  "balancer's address can publish, unpublish and query models")
LISTED = f"metadata.annotations.{ownership.CONTAINS_GROUP_KINDS}"  # an ApplySet parent's flattened annotation
FIELD_CONFLICT = "FieldManagerConflict"  # a 409's cause when another field manager holds a field
REPLAN = "Run `saxctl plan` again and review what changed."
DECIDED = ("after", "owner_changes", "forced_by")  # facts that follow from the command line, not from the object


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
        return _compared(resource, live, lambda manifest, facts: self._dry_run(api, manifest, live, facts))

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """The object applying `applied` left (saxctl its only manager), compared as observe compares a live one;
        the server's dry-run answer is what applying the desired manifest over it leaves."""
        if applied is None or applied.params["cluster"] != desired.params["cluster"]:
            return None
        return _compared(desired, _as_applied(applied.params["manifest"]),
                         lambda manifest, facts: _as_applied(manifest))

    def left_behind(self, applied: Resource) -> Owned | None:
        """As owned() finds it: an ApplySet's record by the spec's label, a member by its ApplySet's id."""
        manifest = applied.params["manifest"]
        members_of = applied.depends_on[:1] if manifest["kind"] != "ConfigMap" else ()
        return _owned(applied, KINDS[manifest["kind"]], _as_applied(manifest), depends_on=members_of)

    def _dry_run(self, api: KubeApi, manifest: dict, live: dict, facts: dict) -> dict | None:
        """The server's answer to applying manifest, or None with why in facts (conflicts, or its refusal).

        Conflicts are recorded whatever is decided about them, so the object's fingerprint is the same with or
        without --force-conflicts (a saved plan made with it is checked by a plan made without); the agreement is
        recorded beside them (`forced_by`), and apply uses it.
        """
        path, what = path_of(manifest), describe(manifest)
        try:
            return api.apply(path, manifest, what, dry_run=True)
        except ApiError as error:
            if error.status.code != 409:
                facts["refused"] = f"{error.status.reason}: {error.status.message}"
                return None
            found = compare.conflicts(error.status, live)
        facts["conflicts"] = found
        if self._options.force_conflicts:
            facts["forced_by"] = "--force-conflicts"
        if compare.blocks(found, facts.get("forced_by")):
            return None
        # Set out of band by an update (apply sets it back), or taken with --force-conflicts: what applying makes.
        return api.apply(path, manifest, what, dry_run=True, force=True)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """What this spec's ApplySets hold, in every namespace of each cluster: the records (one LIST of ConfigMaps by
        the spec's label) and their members (one LIST per group-kind a record lists, by its id). The clusters are
        those this plan read objects in, and the spec's others the plan found (its `identity:` section removed).

        A record in a namespace the spec left is pruned with its members, after them (its members depend on it).
        """
        with self._lock:
            clusters = {self._key(resource.params): resource for resource, _ in self._parents.values()}
        for cluster in _clusters(known):
            clusters.setdefault(self._key(cluster.params), cluster)
        records = [record for found in run_each(list(clusters.values()), lambda r: self._records(r, spec_name),
                                                "kube-records") for record in found]
        listings = []
        for parent, live in records:
            meta = live["metadata"]
            set_id = (meta.get("labels") or {}).get(ownership.APPLYSET_ID)
            listed = (meta.get("annotations") or {}).get(ownership.CONTAINS_GROUP_KINDS)
            for group_kind in ownership.group_kinds(listed):
                kind = BY_GROUP_KIND.get(group_kind)
                if set_id and kind is not None and ADDRESS_KINDS.get(kind.kind) in kinds:
                    listings.append((parent, kind, meta["namespace"], set_id))

        def listing(item) -> list[Owned]:
            parent, kind, namespace, set_id = item
            api = self._api(parent.params)
            found = api.list(kind.collection(namespace), f"{kind.plural} of ApplySet {parent.name}",
                             f"{ownership.PART_OF}={set_id}")
            return [_owned(parent, kind, live, depends_on=(parent.address,)) for live in found
                    if ownership.owner((live.get("metadata") or {}).get("labels")) == spec_name]

        left = [_owned(parent, KINDS["ConfigMap"], live) for parent, live in records
                if parent.address not in self._parents and ADDRESS_KINDS["ConfigMap"] in kinds]
        return left + [owned for found in run_each(listings, listing, "kube-owned") for owned in found]

    def _records(self, desired_record: Resource, spec_name: str) -> list[tuple[Resource, dict]]:
        """This spec's ApplySet records in the cluster of desired_record, each with the resource that names it: the
        desired one, or one rebuilt from a record in a namespace the spec no longer uses."""
        api = self._api(desired_record.params)
        found = api.list(KINDS["ConfigMap"].all_namespaces, f"ApplySet records of spec {spec_name}",
                         f"{ownership.SPEC_LABEL}={spec_name},{ownership.APPLYSET_ID}")
        records = []
        for live in found:
            meta = live["metadata"]
            if meta["name"] != ownership.parent_name(spec_name) or ownership.owner(meta.get("labels")) != spec_name:
                continue
            record = _owned(desired_record, KINDS["ConfigMap"], live).resource
            records.append((desired_record if record.address == desired_record.address else record, live))
        return records

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
        details = []
        for change in changes:
            if change.observed is None or "ready_replicas" not in change.observed.outputs:
                continue
            ready, desired = change.observed.outputs["ready_replicas"], change.observed.fields.get("spec.replicas", 1)
            details.append(Detail(change.address, f"{ready}/{desired} ready", falls_short=ready < desired))
        return details

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
            # Gone with its pods before this change is done: what waits for it (a create that needs the TPU chips
            # they held, the new object of a replace) finds the room free.
            self._wait_gone(api, manifest, facts.get("uid"), progress)
            if change.action is Action.DELETE:
                return None
        listed = change.observed.fields.get(LISTED) if change.observed is not None else None
        effective = compare.effective_manifest(manifest, listed)
        forced_by = facts.get("forced_by")
        progress.update(f"applying {what}" + (" (taking fields other managers hold)" if forced_by else ""))
        try:
            live = api.apply(path, effective, what, force=bool(forced_by))
        except ApiError as error:
            if error.status.code != 409 or forced_by:
                raise
            live = self._set_back(api, effective, facts.get("conflicts") or (), progress)
        if resource.params.get("workload"):
            live = rollout.wait(api, manifest, resource.params.get("pool"), progress, self._options.rollout_timeout_s,
                                resource.params.get("pool_size"))
        return _observed(resource, live, flatten(live, field_set(effective)), {})

    def record_event(self, address: Address, reason: str, message: str, event_type: str = "Normal") -> str | None:
        """A core/v1 Event about the object at address, reached as this plan reached it: what `kubectl describe` and
        `kubectl get events` show the person on call. None when the plan did not reach it (no cluster yet) or it
        does not exist; else where the Event is."""
        with self._lock:
            resource = self._read.get(address)
        if resource is None:
            return None
        api, manifest = self._api(resource.params), resource.params["manifest"]
        live = api.get(path_of(manifest), describe(manifest))
        if live is None:
            return None
        meta = live["metadata"]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                 "involvedObject": {"apiVersion": live["apiVersion"], "kind": live["kind"], "name": meta["name"],
                                    "namespace": meta["namespace"], "uid": meta["uid"]},
                 "reason": reason, "message": message, "type": event_type, "count": 1,
                 "firstTimestamp": now, "lastTimestamp": now, "source": {"component": FIELD_MANAGER},
                 "reportingComponent": FIELD_MANAGER, "reportingInstance": socket.gethostname()}
        collection = f"/api/v1/namespaces/{meta['namespace']}/events"
        made = api.create(collection, event, f"an Event on {describe(manifest)}")
        return f"{collection}/{made['metadata']['name']}"

    def _set_back(self, api: KubeApi, manifest: dict, planned: Sequence[Mapping[str, str]],
                  progress: Progress) -> dict:
        """Apply over fields an update changed (kubectl scale, kubectl edit) that the plan showed as drift.

        Server-side apply counts an update's fields as conflicts too, and force is all or nothing: so the object is
        read, the apply is sent again pinned to that version (metadata.resourceVersion: the server refuses it if
        the object moved), and only when every conflict it answers is drift the plan showed is it forced, at that
        same version. A field another tool applied, or one changed since the plan, stops the apply: nothing forced.
        """
        path, what = path_of(manifest), describe(manifest)
        current = api.get(path, what)
        if current is None:
            raise ConflictError(f"{what} was deleted since the plan", hint=REPLAN)
        pinned = {**manifest, "metadata": {**manifest["metadata"],
                                           "resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            return api.apply(path, pinned, what)
        except ApiError as error:
            if error.status.code != 409:
                raise
            refusal = error.status
        found = compare.conflicts(refusal, current)
        if not any(cause.get("reason") == FIELD_CONFLICT for cause in refusal.causes):
            raise ConflictError(f"{what} changed while saxctl applied it: {refusal.message}", hint=REPLAN)
        unplanned = compare.unplanned(found, planned)
        if unplanned:
            raise ConflictError(f"{what}: {compare.described(unplanned)} changed since the plan; saxctl forced "
                                "nothing", hint=f"{REPLAN} A field another tool applied is taken only with "
                                                "--force-conflicts.")
        progress.update(f"applying {what} (setting back {compare.conflict_fields(found)})")
        return api.apply(path, pinned, what, force=True)

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

    def _key(self, params: Mapping[str, Any]) -> tuple:
        return ("kubeconfig",) if self._options.kubeconfig else (params["endpoint"], params["ca_certificate"])

    def _api(self, params: Mapping[str, Any]) -> KubeApi:
        """The client of the cluster these params name (or of --kubeconfig), built the first time it is asked for."""
        key = self._key(params)
        with self._lock:
            api = self._apis.get(key)
            if api is None:
                if self._options.kubeconfig:
                    endpoint = access.from_kubeconfig(self._options.kubeconfig, self._options.context)
                else:
                    endpoint = access.from_cluster(params["cluster"], params["endpoint"], params["ca_certificate"])
                api = self._apis[key] = KubeApi(endpoint)
            return api


def _compared(resource: Resource, live: dict, dry_run: Callable[[dict, dict], dict | None]) -> Observed:
    """The live object along saxctl's fields; when it is not up to date, with what applying the resource's manifest
    would make of it: dry_run(manifest, facts), the server's answer (or None, with why in facts)."""
    listed = ((live.get("metadata") or {}).get("annotations") or {}).get(ownership.CONTAINS_GROUP_KINDS)
    manifest = compare.effective_manifest(resource.params["manifest"], listed)
    if compare.up_to_date(manifest, live):
        return _observed(resource, live, flatten(live, field_set(manifest)), {})
    facts: dict[str, Any] = {"managers": _other_managers(live)}
    replaced = compare.replaced_paths(manifest, live, resource.replace_on)
    after = None
    if replaced:
        facts["replace"] = replaced
    else:
        after = dry_run(manifest, facts)
    fields = compare.compared_fields(manifest, live, after)
    if after is not None:
        facts["after"] = flatten(after, fields)
        facts["owner_changes"] = managed_by(live, FIELD_MANAGER) != managed_by(after, FIELD_MANAGER)
    return _observed(resource, live, flatten(live, fields), facts)


def _as_applied(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The object server-side applying `manifest` leaves when saxctl is its only manager, its workload rolled out."""
    live = copy.deepcopy(dict(manifest))
    live["metadata"]["managedFields"] = [{"manager": FIELD_MANAGER, "operation": "Apply",
                                          "fieldsV1": field_set(manifest)}]
    if manifest["kind"] in ("Deployment", "StatefulSet"):
        replicas = (manifest.get("spec") or {}).get("replicas", 1)
        live["status"] = {"readyReplicas": replicas, "availableReplicas": replicas}
    return live


def _observed(resource: Resource, live: Mapping[str, Any], fields: dict[str, Any], facts: dict[str, Any]) -> Observed:
    meta = live.get("metadata") or {}
    facts = {"uid": meta.get("uid"), **facts}
    read = {key: value for key, value in facts.items() if key not in DECIDED}
    digest = hashlib.sha256(json.dumps([fields, read], sort_keys=True, default=str).encode()).hexdigest()[:12]
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


def _other_managers(live: Mapping[str, Any]) -> list[dict[str, str]]:
    """Who else wrote the object and when (its managedFields), oldest first: who changed it, as the API says."""
    entries = [{"manager": entry.get("manager", ""), "operation": entry.get("operation", ""),
                "time": entry.get("time"), **({"subresource": entry["subresource"]} if entry.get("subresource")
                                                   else {})}
               for entry in (live.get("metadata") or {}).get("managedFields") or ()
               if entry.get("manager") != FIELD_MANAGER]
    return sorted(entries, key=lambda entry: entry["time"] or "")  # a scale subresource write may carry no time


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


def _clusters(known: Mapping[Address, Observed]) -> list[Resource]:
    """The spec's clusters the plan found, each as a record's parent would be (inside the cluster, with what a client
    needs to reach it: its endpoint once created)."""
    return [Resource(address, address.kind, address.name, {}, inside=address,
                     params={"cluster": address.name, "endpoint": live.outputs["endpoint"],
                             "ca_certificate": live.outputs.get("ca_certificate", "")})
            for address, live in known.items() if address.kind == gke_at.CLUSTER and "endpoint" in live.outputs]


def _owned(parent: Resource, kind, live: Mapping[str, Any], depends_on: tuple[Address, ...] = ()) -> Owned:
    """A member of an ApplySet as a resource the engine can delete: enough of a manifest to name it."""
    meta = live["metadata"]
    manifest = {"apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
    address = address_of(manifest)
    resource = Resource(address, address.kind, address.name, {}, depends_on=depends_on, inside=parent.inside,
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
    if compare.blocks(facts.get("conflicts"), facts.get("forced_by")):
        found = compare.applied(facts["conflicts"])
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
    taken = facts.get("conflicts")
    if taken:
        fields, who = compare.conflict_fields(taken), compare.holders(taken)
        how = (f"changed out of band by {who}: saxctl sets it back" if compare.is_drift(taken)
               else f"applied by field manager {who}: taken over ({facts['forced_by']})")
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
    if compare.blocks(facts.get("conflicts"), facts.get("forced_by")):
        found = compare.applied(facts["conflicts"])
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
