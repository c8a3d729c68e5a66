"""The provider of `sax.model`: models published in a Sax cell through the admin's gRPC API.

Observe makes one List (every model of the cell) and one Stats per plan, whatever the number of models, and reads the
ownership record once: a model the record does not list was not published by saxctl and is never touched. The
decision is decide.py's; preflight says when the joined model servers cannot serve a model (Sax itself would accept
the publish and leave it unloaded without a word). Apply publishes, updates or unpublishes, then waits for the
replicas to load, saying how many have.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.offline import NotReadOffline
from reconciler.engine.provider import Detail, Owned, Problem, Progress, Provider
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import RemoteError
from reconciler.providers.gcs.records import AdminRecords
from reconciler.providers.google_errors import remote_call
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.kubernetes.manifests import ADMIN_SERVER
from reconciler.providers.kubernetes.options import KubeOptions
from reconciler.providers.sax import addresses as sax_at
from reconciler.providers.sax import decide
from reconciler.providers.sax import resources as sax_resources
from reconciler.providers.sax.admin_errors import REPUBLISH_WAIT_S, AlreadyExists, BeingUnpublished, NotFound
from reconciler.providers.sax.cell import CALL_TIMEOUT_S, Cell, Kube
from reconciler.providers.sax.record import ModelRecord
from reconciler.spec.model import Spec

ADMIN_WAIT_S = 120.0  # a started admin writes its location.proto within seconds
SERVERS_WAIT_S = 120.0  # a new model server joins the admin 2 s after start, and is seen at the admin's next poll
READY_POLL_S = 5.0  # each WaitForReady call's deadline: progress is said between them
ADMIN_COUNT_WAIT_S = 0.5  # a WaitForReady that only asks the admin's count: answered at once when it is reached
REPUBLISH_TRIES = 4


class SaxModelProvider(Provider):
    kinds = frozenset({sax_at.MODEL})

    def __init__(self, storage_client, records: AdminRecords, spec: Spec, kube_options: KubeOptions = KubeOptions()):
        self._storage = storage_client
        self._kube_options = kube_options
        # To find the spec's cell when no model of the spec was read (to prune).
        self._spec = spec
        self._lock = threading.Lock()
        self._kubes: dict[tuple, Kube] = {}
        self._record = ModelRecord(records, spec.name)  # the spec's admin bucket: every cell's params name it
        # What this plan read of each cell: (params, models by id, servers), for owned() and preflight().
        self._read: dict[tuple, tuple[Mapping[str, Any], dict[str, decide.Published], decide.Servers]] = {}
        self._assigned: dict[tuple, dict[str, decide.AssignedServer]] = {}  # what each cell's assigned servers hold
        self._modelled: set[tuple] = set()  # the cells an offline plan modelled instead of reading them

    # --- reading -------------------------------------------------------------------------------------------------

    def observe(self, desired: Sequence[Resource]) -> Mapping[Address, Observed | None]:
        observed: dict[Address, Observed | None] = {}
        by_cell: dict[tuple, list[Resource]] = {}
        for resource in desired:
            by_cell.setdefault(_cell_key(resource.params), []).append(resource)
        for key, resources in by_cell.items():
            params = resources[0].params
            published, servers, assigned, holding_nothing = self._read_cell(params, tell_empty_apart=True)
            self._read[key] = (params, published, servers)
            self._assigned[key] = assigned
            owned = self._record.models() if published else frozenset()
            for resource in resources:
                model = published.get(resource.params["model_id"])
                owner = params["owner"] if model is not None and model.model_id in owned else None
                if model is None:
                    observed[resource.address] = None
                    continue
                its_servers = [assigned[address] for address in model.assigned]
                empty = holding_nothing.get(model.model_id)
                observed[resource.address] = decide.observed(
                    resource.address, model, owner, empty.emptied if empty else (),
                    decide.still_loading(model, its_servers, servers.by_model_path.get(model.model_path, 0),
                                         empty.starting if empty else 0))
        return observed

    def _read_cell(self, params: Mapping[str, Any], *, tell_empty_apart: bool) -> tuple[
            dict[str, decide.Published], decide.Servers, dict[str, decide.AssignedServer],
            dict[str, decide.HoldingNothing]]:
        """One List, one Stats, what each assigned model server says it holds (the admin's count can be stale), and
        when tell_empty_apart, by model the assigned servers holding nothing of it, told apart (_holding_nothing)."""
        cell = Cell(params, self._storage, self._kube(params))
        try:
            if not cell.connect():  # the admin has not started yet: nothing is published
                return {}, decide.Servers({}, 0), {}, {}
            published = {model.model_id: model for model in cell.list()}
            servers = cell.stats()
            assigned = cell.assigned_servers([address for model in published.values() for address in model.assigned])
            return published, servers, assigned, _holding_nothing(cell, published, assigned) if tell_empty_apart else {}
        finally:
            cell.close()

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """The published models the record lists for this spec, in the cells this plan read (or the spec's cell,
        when the spec has no model left to read it by): what may be pruned."""
        if not self._read:
            self._read_spec_cell(known)
        found = []
        for params, published, _ in list(self._read.values()):
            if params["owner"] != spec_name or not published:
                continue
            found += [_published_model(params, published[model_id], spec_name)
                      for model_id in sorted(self._record.models()) if model_id in published]
        return found

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """The model as publishing `applied` leaves it in its cell, recorded as the spec's."""
        self._modelled.add(_cell_key(desired.params))
        if applied is None or applied.params["model_id"] != desired.params["model_id"]:
            return None
        return decide.observed(desired.address, _as_published(applied), applied.params["owner"])

    def left_behind(self, applied: Resource) -> Owned | None:
        return _published_model(applied.params, _as_published(applied), applied.params["owner"])

    def _read_spec_cell(self, known: Mapping[Address, Observed]) -> None:
        """The spec's cell, reached through its cluster as this plan found it; nothing when the cluster is gone."""
        spec = self._spec
        if spec.sax is None or spec.cluster is None:
            return
        cluster = known.get(gke_at.cluster(spec.cluster.name))
        if cluster is None or "endpoint" not in cluster.outputs:
            return
        if not self._record.models():
            return  # saxctl published nothing in this cell: nothing to prune, no need to reach the admin
        params = {**sax_resources.connection_params(spec), "endpoint": cluster.outputs["endpoint"],
                  "ca_certificate": cluster.outputs.get("ca_certificate", ""), "admin": ADMIN_SERVER}
        published, servers, assigned, _ = self._read_cell(params, tell_empty_apart=False)  # only pruned: no load asked
        self._read[_cell_key(params)] = (params, published, servers)
        self._assigned[_cell_key(params)] = assigned

    def preflight(self, changes: Sequence[Change]) -> Sequence[Problem]:
        """A publish, update or replace that the joined model servers cannot serve, when the admin could be read; a
        publish of a gs:// checkpoint (one saxctl does not convert) without its commit markers."""
        problems = []
        modelled = False
        for change in changes:
            if change.kind not in self.kinds or change.desired is None:
                continue
            if change.action in (Action.CREATE, Action.REPLACE):
                problems += self._marker_problems(change.desired)
            key = _cell_key(change.desired.params)
            modelled = modelled or key in self._modelled
            read = self._read.get(key)
            if read is None or not read[1] and not read[2].total:  # the admin was not read, or has no server yet
                continue
            problem = _serving_problem(change.desired, read[2])
            if problem:
                problems.append(Problem(change.address, f"{change.desired.spec_field}.replicas", problem))
        if modelled:  # an offline plan: what the servers can serve is only the admin's to say
            raise NotReadOffline("the Sax admin (which model servers can serve each model)", partial=problems)
        return problems

    def _marker_problems(self, resource: Resource) -> list[Problem]:
        """Sax loads whatever the checkpoint path holds, finished or not: its markers say the upload is complete.
        A checkpoint of the spec's `checkpoints` is a Requirement (its provider reads the markers); a gs:// one is
        read here."""
        if any(requirement.output == "markers" for requirement in resource.requires):
            return []
        from reconciler.checkpoint.gcs_checkpoint import parse_gs_url
        from reconciler.checkpoint.manifest import MARKERS

        url = resource.fields["checkpoint"]
        bucket_name, prefix = parse_gs_url(url)
        bucket = self._storage.bucket(bucket_name)
        missing = []
        for marker in MARKERS:
            with remote_call("storage.objects.get", f"{url}/{marker}"):
                if not bucket.blob(f"{prefix}/{marker}").exists(timeout=CALL_TIMEOUT_S, retry=None):
                    missing.append(marker)
        if not missing:
            return []
        return [Problem(resource.address, f"{resource.spec_field}.checkpoint",
                        f"{url} has no commit markers ({', '.join(missing)} missing): Sax would load a checkpoint "
                        "whose upload has not finished", kind="precondition")]

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        return decide.decide(desired, observed)

    def describe(self, changes: Sequence[Change]) -> Sequence[Detail]:
        """Each published model's replicas: requested, assigned, loaded, and why not loaded; then the foreign ones."""
        by_cell: dict[tuple, list[Change]] = {}
        for change in changes:
            if change.kind in self.kinds and change.desired is not None:
                by_cell.setdefault(_cell_key(change.desired.params), []).append(change)
        details: list[Detail] = []
        for key, mine in by_cell.items():
            params, published, servers = self._read.get(key, (None, {}, None))
            if not published:
                continue
            owned = self._record.models()
            cell = Cell(params, self._storage, self._kube(params))
            try:
                if not cell.connect():
                    continue
                assigned = self._assigned.get(key, {})
                for change in mine:
                    model = published.get(change.desired.params["model_id"])
                    if model is not None:
                        text, short = _replicas_text(model, assigned, params["namespace"], servers, change.desired)
                        details.append(Detail(change.address, text, falls_short=short))
                for model in (m for model_id, m in sorted(published.items()) if model_id not in owned):
                    if model.model_id in {c.desired.params["model_id"] for c in mine}:
                        continue  # in the spec: the plan reports it as a conflict
                    text, _ = _replicas_text(model, assigned, params["namespace"])
                    details.append(Detail(model.model_id, f"published by someone else, left alone: {text}",
                                          foreign=True))
            finally:
                cell.close()
        return details

    # --- changing ------------------------------------------------------------------------------------------------

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        params = resource.params
        cell = Cell(params, self._storage, self._kube(params))
        try:
            self._connect(cell, progress)
            return self._apply(change, cell, progress)
        finally:
            cell.close()

    def _connect(self, cell: Cell, progress: Progress) -> None:
        """The admin, once it has started and written its address (a new admin does so within seconds)."""
        started = time.monotonic()
        while True:
            progress.update(f"finding the Sax admin ({cell.location_url})")
            try:
                if cell.connect():
                    return
                why = f"{cell.location_url} does not exist: no Sax admin has started in cell {cell.params['cell']}"
            except RemoteError as error:  # the address of an admin that has just been replaced
                why = error.message
            waited = time.monotonic() - started
            if waited >= ADMIN_WAIT_S:
                raise RemoteError(f"{why} (waited {waited:.0f} s)",
                                  hint=f"`kubectl -n {cell.params['namespace']} logs deploy/{cell.params['admin']}` "
                                       "says why the admin does not start.")
            progress.update(f"waiting for the Sax admin: {why}")
            progress.sleep(1.0)

    def _apply(self, change: Change, cell: Cell, progress: Progress) -> Observed | None:
        resource = change.desired
        model_id, fields = resource.params["model_id"], resource.fields
        record = self._record
        if change.action in (Action.DELETE, Action.REPLACE):
            progress.update(f"unpublishing {model_id}")
            try:
                cell.unpublish(model_id)
            except NotFound:
                pass  # gone already: what an unpublish wants
            if change.action is Action.DELETE:
                record.remove(model_id)
                return None
        if change.action is Action.UPDATE and not change.field_changes:
            if change.observed.facts.get("emptied"):  # servers that came back empty: only a new admin loads it again
                self._restart_admin(cell, progress)
            # else a load under way (a killed apply's publish): waiting for it is all there is to do
        elif change.action is Action.UPDATE:
            progress.update(f"updating {model_id}: {change.reason}")
            cell.update(model_id, fields)
        else:
            self._wait_for_servers(resource, cell, progress)
            record.add(model_id)  # before the publish: a run killed in between leaves nothing unrecorded
            self._publish(cell, model_id, fields, progress)
        self._wait_loaded(resource, cell, progress)
        published = cell.list_one(model_id)
        if published is None:
            raise RemoteError(f"sax.Admin/List {model_id}: the admin lost the model it just published")
        return decide.observed(resource.address, published, resource.params["owner"])

    def _restart_admin(self, cell: Cell, progress: Progress) -> None:
        """What `kubectl rollout restart` does to the admin's Deployment, then reach the new admin once it has written
        its address: it restores the models from state.proto, each server joins it again, it loads what they lack."""
        old_location = cell.admin_location()
        namespace, admin = cell.params["namespace"], cell.params["admin"]
        progress.update(f"restarting the Sax admin (deployment {namespace}/{admin}) so that it loads the model again")
        cell.kube.restart_deployment(namespace, admin)
        cell.close()
        started = time.monotonic()
        while cell.admin_location() in (old_location, None):
            waited = time.monotonic() - started
            if waited >= ADMIN_WAIT_S:
                raise RemoteError(f"the restarted Sax admin did not write its address to {cell.location_url} within "
                                  f"{waited:.0f} s", hint=f"`kubectl -n {namespace} rollout status deploy/{admin}` "
                                                          "says how its rollout goes.")
            progress.update("waiting for the new Sax admin to write its address")
            progress.sleep(1.0)
        self._connect(cell, progress)

    def _wait_for_servers(self, resource: Resource, cell: Cell, progress: Progress) -> None:
        """Right before a publish: enough joined servers can serve the model path (the plan may have been made before
        the model servers existed); waits for new ones to join, then says why not."""
        started = time.monotonic()
        while True:
            servers = cell.stats()
            problem = _serving_problem(resource, servers)
            if problem is None:
                return
            waited = time.monotonic() - started
            if waited >= SERVERS_WAIT_S:
                raise RemoteError(f"{resource.params['model_id']} is not published: {problem} (waited "
                                  f"{waited:.0f} s for model servers to join the admin)")
            progress.update(f"waiting for model servers to join: {problem}")
            progress.sleep(2.0)

    def _publish(self, cell: Cell, model_id: str, fields: Mapping[str, Any], progress: Progress) -> None:
        for attempt in range(1, REPUBLISH_TRIES + 1):
            progress.update(f"publishing {model_id}")
            try:
                cell.publish(model_id, fields)
                return
            except AlreadyExists:
                # Published as the spec says already (a retried call whose reply was lost; an admin replaced in the
                # same plan, which restores its models from state.proto): nothing to do. Otherwise someone else's.
                published = cell.list_one(model_id)
                if published is None or published.fields != decide.normal_fields(fields):
                    raise
                return
            except BeingUnpublished as error:
                if attempt == REPUBLISH_TRIES:
                    raise
                progress.update(f"{error.message}: retrying in {REPUBLISH_WAIT_S:.0f} s")
                progress.sleep(REPUBLISH_WAIT_S)

    def _wait_loaded(self, resource: Resource, cell: Cell, progress: Progress) -> None:
        """WaitForReady one replica more at a time, each call bounded, so progress says how many have loaded."""
        model_id, wanted = resource.params["model_id"], int(resource.fields["replicas"])
        loaded = 0
        progress.operation(f"loading of {model_id}")
        while loaded < wanted:
            progress.update(f"{loaded}/{wanted} replicas loaded")
            left = progress.time_left()
            if left is not None and left <= 0:
                raise RemoteError(f"{model_id}: {loaded}/{wanted} replicas loaded after "
                                  f"{resource.timeout_s:.0f} s: {self._why_not_loaded(resource, cell)}",
                                  hint="It stays published and Sax keeps it assigned; fix the cause, then apply again "
                                       "(or unpublish it by removing it from the spec).")
            if cell.wait_for_ready(model_id, loaded + 1, min(READY_POLL_S, left) if left else READY_POLL_S):
                loaded += 1
        progress.update(f"{loaded}/{wanted} replicas loaded")
        progress.operation(None)

    def _why_not_loaded(self, resource: Resource, cell: Cell) -> str:
        """One sentence from what can be seen: no server can serve it, or assigned servers that did not load it."""
        problem = _serving_problem(resource, cell.stats())
        if problem:
            return problem
        published = cell.list_one(resource.params["model_id"])
        assigned = len(published.assigned) if published is not None else 0
        if not assigned:
            return "the admin has not assigned it to any model server yet (each server holds one model: are they " \
                   "all taken by other models?)"
        model_id = resource.params["model_id"]
        servers = cell.assigned_servers(published.assigned)
        waiting = [server for server in servers.values() if server.status(model_id)[0] != decide.LOADED]
        if not waiting:
            return "its replicas loaded just now"
        return decide.not_loaded_because(model_id, waiting[0], resource.params["namespace"], ADMIN_SERVER)

    # --- clients -------------------------------------------------------------------------------------------------

    def _kube(self, params: Mapping[str, Any]) -> Kube:
        key = ("kubeconfig",) if self._kube_options.kubeconfig else (params["endpoint"], params["ca_certificate"])
        with self._lock:
            if key not in self._kubes:
                self._kubes[key] = Kube(params, self._kube_options)
            return self._kubes[key]


def _holding_nothing(cell: Cell, published: Mapping[str, decide.Published],
                     assigned: Mapping[str, decide.AssignedServer]) -> dict[str, decide.HoldingNothing]:
    """By model, its assigned servers that hold nothing of it: came back empty, or their Load not arrived yet (the
    admin has just assigned the model). Asked of the admin only when a server holds nothing (one WaitForReady,
    answered at once when it counts them: see decide.HoldingNothing)."""
    found = {}
    for model in published.values():
        its_servers = [assigned[address] for address in model.assigned]
        empty = decide.emptied_servers(model.model_id, its_servers)
        if empty:
            counted = cell.wait_for_ready(model.model_id, decide.loaded_on(model.model_id, its_servers) + len(empty),
                                          ADMIN_COUNT_WAIT_S)
            found[model.model_id] = decide.HoldingNothing(empty, came_back=counted)
    return found


def _replicas_text(model: decide.Published, assigned: Mapping[str, decide.AssignedServer], namespace: str,
                   servers: decide.Servers | None = None, desired: Resource | None = None) -> tuple[str, bool]:
    """"N requested, N assigned, N loaded" (loaded: as the assigned servers themselves say), and why not loaded;
    True when fewer are loaded than requested."""
    its_servers = [assigned[address] for address in model.assigned if address in assigned]
    loaded = decide.loaded_on(model.model_id, its_servers)
    text = f"{model.replicas} requested, {len(model.assigned)} assigned, {loaded} loaded"
    if loaded >= model.replicas:
        return text, False
    problem = _serving_problem(desired, servers) if desired is not None and servers is not None else None
    if problem is None and len(model.assigned) < model.replicas:
        problem = (f"the admin has found {len(model.assigned)} free model server(s) that can serve it (each holds "
                   "one model)")
    if problem is None:
        problem = next((decide.not_loaded_because(model.model_id, server, namespace, ADMIN_SERVER)
                        for server in its_servers if server.status(model.model_id)[0] != decide.LOADED),
                       "its assigned servers have not loaded it")
    return f"{text}; not loaded: {problem}", True


def _published_model(params: Mapping[str, Any], model: decide.Published, spec_name: str) -> Owned:
    """A model saxctl published for spec_name, as a resource the engine may prune."""
    name = model.model_id.rsplit("/", 1)[1]
    address = sax_at.model(name)
    resource = Resource(address, address.kind, name, model.fields, params={**params, "model_id": model.model_id},
                        remote_id=model.model_id, replace_on=decide.REPLACE_ON)
    return Owned(resource, decide.observed(address, model, spec_name))


def _as_published(applied: Resource) -> decide.Published:
    fields = applied.fields
    return decide.Published(applied.params["model_id"], fields["model_path"], fields["checkpoint"],
                            fields["replicas"], dict(fields["overrides"]))


def _cell_key(params: Mapping[str, Any]) -> tuple:
    return params["cluster"], params["admin_bucket"], params["cell"]


def _serving_problem(resource: Resource, servers: decide.Servers) -> str | None:
    return decide.serving_problem(resource.fields["model_path"], int(resource.fields["replicas"]), servers,
                                  resource.params.get("pool"), resource.params.get("needed_chips"))
