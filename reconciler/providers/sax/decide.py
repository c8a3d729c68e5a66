"""The pure part of the Sax provider: a published model as observed, the change to make, and whether servers can
serve it. No I/O: the provider reads the admin's List and Stats and the ownership record, and these decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from reconciler.engine.diffing import show_value
from reconciler.engine.resource import SETTLING, Action, Change, FieldChange, Observed, Resource

# Sax's Update may change only the replicas (admin/validator.go refuses a model path change, and v1.1.0 a checkpoint
# change too); overrides are read at load. Any other change is an unpublish and a publish.
REPLACE_ON = frozenset({"model_path", "checkpoint", "overrides"})


@dataclass(frozen=True, slots=True)
class Published:
    """One model of the admin's List, in saxctl's words (from sax.PublishedModel)."""

    model_id: str  # /sax/CELL/NAME
    model_path: str
    checkpoint: str
    replicas: int  # requested_num_replicas
    overrides: Mapping[str, str] = field(default_factory=dict)
    assigned: tuple[str, ...] = ()  # modelet_addresses: the servers it is assigned to, loading or failed ones too

    @property
    def fields(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "checkpoint": self.checkpoint, "replicas": self.replicas,
                "overrides": dict(sorted(self.overrides.items()))}


@dataclass(frozen=True, slots=True)
class Servers:
    """What the admin's Stats says of the joined model servers."""

    by_model_path: Mapping[str, int]  # num_servers_by_servable_model_path
    total: int  # every joined server (model_server_type_stats summed)


# sax.ModelStatus (common.proto)
NONE, LOADING, LOADED, FAILED, UNLOADING = range(5)


@dataclass(frozen=True, slots=True)
class AssignedServer:
    """What one model server the admin assigned a model to says it holds (its own sax.Modelet/GetStatus).

    The admin's WaitForReady counts a load until the server is pruned, even when the server's process restarted
    since and holds nothing: Sax keeps a server that rejoins at the same address as it was (admin/mgr.go Join).
    """

    address: str  # IP:port, as the admin lists it
    pod: str | None  # the model server's pod with that IP; None when no pod has it (gone, replaced)
    restarts: int = 0  # of the pod's containers, as the kubelet counts them
    statuses: Mapping[str, tuple[int, str]] | None = None  # model id → (ModelStatus, failure reason); None: no answer
    unreachable: str = ""  # why the server did not answer

    def status(self, model_id: str) -> tuple[int, str]:
        return (self.statuses or {}).get(model_id, (NONE, ""))


def loaded_on(model_id: str, servers: Sequence[AssignedServer]) -> int:
    return sum(1 for server in servers if server.statuses is not None and server.status(model_id)[0] == LOADED)


def not_loaded_because(model_id: str, server: AssignedServer, namespace: str, admin: str) -> str:
    """Why an assigned server does not serve the model, in one sentence, with what fixes it."""
    if server.pod is None:
        return (f"its model server {server.address} has no pod any more: the admin drops it after 25 s of silence "
                "and assigns the model to a free server")
    where = f"model server {server.address} (pod {namespace}/{server.pod})"
    if server.statuses is None:
        return f"{where} does not answer: {server.unreachable}"
    status, reason = server.status(model_id)
    if status == LOADING:
        return f"{where} is still loading it"
    if status == FAILED:
        return f"the load failed on {where}: {reason or 'no reason given'}; Sax does not load it again"
    restarted = f", restarted {server.restarts} time{'s' if server.restarts != 1 else ''}" if server.restarts else ""
    return (f"{where[:-1]}{restarted}) holds nothing: a model server that comes back at the same address (its process "
            "restarted, or a new pod took its IP) has lost its models, and Sax keeps the model assigned there "
            f"without loading it again; `saxctl apply` restarts the admin (as `kubectl -n {namespace} rollout restart "
            f"deployment/{admin}` does), which asks each server what it holds and loads the model again")


def model_id(cell: str, name: str) -> str:
    return f"{cell.rstrip('/')}/{name}"


def observed(address: str, published: Published, owner: str | None,
             emptied: tuple[str, ...] = (), loading: str = "") -> Observed:
    """A published model as the engine compares it; owner: the spec whose record lists it, None when none does;
    emptied: the assigned servers that say they hold nothing of it (came back at their address: see AssignedServer);
    loading: how far a load under way has got (see still_loading), "" when none is."""
    fingerprint = "|".join(f"{key}={show_value(value)}" for key, value in sorted(published.fields.items()))
    return Observed(address=address, remote_id=published.model_id, fields=published.fields,
                    fingerprint=fingerprint, owner=owner,
                    facts={"assigned": len(published.assigned), "emptied": emptied, SETTLING: loading},
                    outputs={"model_id": published.model_id})


@dataclass(frozen=True, slots=True)
class HoldingNothing:
    """A model's assigned servers that answered holding nothing of it, and which of two things that is. The admin
    tells them apart (one WaitForReady): it counts a server that came back at its address as loaded (Sax will not load
    the model there again: only a new admin does), never one whose Load has not reached it yet (the admin has just
    assigned the model)."""

    addresses: tuple[str, ...]
    came_back: bool  # True: came back empty; False: their load is about to start

    @property
    def emptied(self) -> tuple[str, ...]:
        return self.addresses if self.came_back else ()

    @property
    def starting(self) -> int:
        return 0 if self.came_back else len(self.addresses)


def emptied_servers(model_id: str, servers: Sequence[AssignedServer]) -> tuple[str, ...]:
    """Addresses of the servers that answered and hold nothing of the model: Sax will not load it there again."""
    return tuple(server.address for server in servers if server.statuses is not None
                 and server.status(model_id)[0] == NONE)


def still_loading(published: Published, servers: Sequence[AssignedServer], can_serve: int, starting: int = 0) -> str:
    """How far the load of a published model has got, when fewer replicas are loaded than requested and Sax is still
    at it: the admin has yet to assign some (it does so at its next refresh, up to 10 s after the Publish, when enough
    joined servers can serve the model: can_serve), or an assigned server says it is loading, or `starting` assigned
    servers have yet to receive their Load (they hold nothing, and the admin does not count them). "" otherwise: all
    loaded, or what stops them is not a load under way (a failed load, a server gone or not answering), which status
    reports without a plan that would wait for nothing.

    A Publish whose apply was killed before the replicas loaded leaves such a model: published as the spec says, not
    serving yet. The apply after it must wait for the load, as the killed one would have."""
    model = published.model_id
    loaded = loaded_on(model, servers)
    if loaded >= published.replicas:
        return ""
    unassigned = published.replicas - len(published.assigned) if can_serve >= published.replicas else 0
    loading = sum(1 for server in servers if server.statuses is not None and server.status(model)[0] == LOADING)
    if not unassigned and not loading and not starting:
        return ""
    said = [f"{count} {what}" for count, what in ((unassigned, "not assigned to a model server yet"),
                                                  (starting, "assigned, its load about to start"),
                                                  (loading, "loading")) if count]
    return f"{loaded}/{published.replicas} replicas loaded ({', '.join(said)})"


def decide(desired: Resource, live: Observed | None) -> Change:
    """Publish when absent; Update for a replicas change; unpublish + publish for the fields Update cannot change."""
    address, kind, model = desired.address, desired.kind, desired.params["model_id"]
    wanted = desired.fields
    if live is None:
        return Change(address, kind, Action.CREATE,
                      f"publish {model}: {_short(wanted['model_path'])}, {wanted['replicas']} "
                      f"replica{'s' if wanted['replicas'] != 1 else ''}", desired=desired)
    changes = tuple(FieldChange(path, live.fields.get(path), wanted[path], path in REPLACE_ON)
                    for path in ("model_path", "checkpoint", "overrides", "replicas")
                    if _normal(live.fields.get(path)) != _normal(wanted[path]))
    forced = [change for change in changes if change.forces_replacement]
    if forced:
        named = ", ".join(f"{c.path} {show_value(c.before)} → {show_value(c.after)}" for c in forced)
        return Change(address, kind, Action.REPLACE,
                      f"{named}: Sax's Update cannot change {'it' if len(forced) == 1 else 'them'}; {model} will be "
                      "unpublished and published again", changes, desired, live)
    if changes:
        change = changes[0]
        return Change(address, kind, Action.UPDATE, f"replicas {change.before} → {change.after} (Update)", changes,
                      desired, live)
    emptied = live.facts.get("emptied", ())
    if emptied:
        # No field differs: the admin's own count says loaded. Restarting the admin is what makes Sax ask each server
        # what it holds and load the model again (a new admin initialises each server's state from GetStatus).
        return Change(address, kind, Action.UPDATE,
                      f"not loaded on {', '.join(emptied)}, back at the same address holding nothing (Sax will not "
                      "load it there again): the Sax admin will be restarted to load it", desired=desired,
                      observed=live)
    loading = live.facts.get(SETTLING)
    if loading:
        return Change(address, kind, Action.UPDATE, f"{loading}: apply waits for the load", desired=desired,
                      observed=live)
    return Change(address, kind, Action.NOOP, "published as the spec says", desired=desired, observed=live)


def serving_problem(model_path: str, replicas: int, servers: Servers, pool: Mapping[str, Any] | None,
                    needed_chips: int | None) -> str | None:
    """Why the joined servers cannot hold `replicas` of model_path, with the numbers and the cause; None if they can.

    Sax itself accepts such a publish and leaves the model unloaded without a word (RECIPES §11): saxctl says so first.
    """
    able = servers.by_model_path.get(model_path, 0)
    if able >= replicas:
        return None
    text = f"{able} model server{'' if able == 1 else 's'} can serve {_short(model_path)}"
    text += f" ({replicas} needed)" if able else ""
    causes = []
    if needed_chips is not None:
        causes.append(f"it needs {needed_chips} TPU chip{'' if needed_chips == 1 else 's'} per host")
    if pool is not None:
        chips = pool["chips_per_node"]
        causes.append(f"pool {pool['name']} is {pool['machine_type']} ({chips} chip{'' if chips == 1 else 's'})")
    if not servers.total:
        causes.append("no model server has joined the admin")
    elif not causes or able:
        causes.append(f"{servers.total} model server{'' if servers.total == 1 else 's'} joined")
    return text + (": " + "; ".join(causes) if causes else "")


def normal_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A model's fields as Published.fields gives them (plain dicts, overrides sorted)."""
    return {**fields, "overrides": dict(sorted(dict(fields["overrides"]).items()))}


def _short(model_path: str) -> str:
    return model_path.rsplit(".", 1)[-1]


def _normal(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value
