"""Rules beyond the schema: names each API accepts, TPU shapes, references between sections, chips the models need."""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Collection

from reconciler.errors import SpecProblem
from reconciler.spec import names, saxparams, tpu
from reconciler.spec.document import SpecDocument, child_path
from reconciler.spec.model import CPU_POOL, TpuPool

# The gcs bucket provider sets these labels itself to mark what saxctl owns; a user value would be overwritten.
RESERVED_BUCKET_LABELS = ("managed-by", "saxctl-spec")
MAX_BUCKET_LABELS = 64 - len(RESERVED_BUCKET_LABELS)  # GCS allows 64 labels per bucket
_CHECKPOINT_DIR = re.compile(r"checkpoint_[0-9]{8}")
_CHECKPOINT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

Report = Callable[..., None]  # report(field_path, message or None, at_key=False)


def semantic_problems(document: SpecDocument, refused: Collection[str] = frozenset()) -> list[SpecProblem]:
    """Every semantic problem, from the values the schema accepted: refused fields read as absent.

    The schema has reported a refused value already (`nodes: .inf`), and a rule reading it would only echo that, or
    fail on it; a rule still checks the types of what it reads, since the schema may have stopped above them.
    """
    problems: list[SpecProblem] = []

    def report(field_path: str, message: str | None, *, at_key: bool = False) -> None:
        if message:
            problems.append(document.problem(field_path, message, at_key=at_key))

    root = _accepted(document.root, "", frozenset(refused))
    _check_metadata(root, report)
    _check_project(root, report)
    _check_cluster(root, report)
    _check_buckets(root, report)
    _check_identity(root, report)
    _check_sax(root, report)
    _check_checkpoints(root, report)
    _check_models(root, report)
    return problems


def _accepted(value: Any, path: str, refused: frozenset[str]) -> Any:
    """value without the fields in refused (a list keeps its indexes: a refused item becomes None)."""
    if not refused:
        return value
    if isinstance(value, dict):
        return {key: _accepted(child, child_path(path, key), refused) for key, child in value.items()
                if child_path(path, key) not in refused}
    if isinstance(value, list):
        return [None if child_path(path, index) in refused else _accepted(child, child_path(path, index), refused)
                for index, child in enumerate(value)]
    return value


def _section(root: Any, *keys: str | int) -> Any:
    """The value at keys, or None when any step is missing or of the wrong type."""
    value = root
    for key in keys:
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and key < len(value) else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value


def _text(root: Any, *keys: str | int) -> str | None:
    value = _section(root, *keys)
    return value if isinstance(value, str) else None


def _integer(root: Any, *keys: str | int) -> int | None:
    value = _section(root, *keys)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_metadata(root: Any, report: Report) -> None:
    name = _text(root, "metadata", "name")
    if name is not None:
        # It becomes a Kubernetes and a GCS label value, hence the stricter of both rules.
        report("metadata.name", names.dns1123_label(name, "name"))


def _check_project(root: Any, report: Report) -> None:
    project_id = _text(root, "project", "id")
    if project_id is not None:
        report("project.id", names.project_id(project_id))
    region = _text(root, "project", "region")
    if region is not None:
        report("project.region", names.region(region))


def _check_cluster(root: Any, report: Report) -> None:
    name = _text(root, "cluster", "name")
    if name is not None:
        report("cluster.name", names.gke_name(name, "cluster name"))
    location = _text(root, "cluster", "location")
    if location is not None:
        location_problem = _location_problem(location, _text(root, "project", "region"))
        report("cluster.location", location_problem)
        if location_problem:
            location = None  # the pools' zones are checked against a location that stands
    cpu_machine = _text(root, "cluster", "cpuNodes", "machineType")
    if cpu_machine is not None:
        if cpu_machine in tpu.TPU_MACHINES:
            report("cluster.cpuNodes.machineType",
                   f"{cpu_machine} is a TPU machine type; the CPU nodes need one like e2-standard-4 "
                   "(TPUs go in cluster.tpuPools)")
        else:
            report("cluster.cpuNodes.machineType", names.machine_type(cpu_machine))
    pools = _section(root, "cluster", "tpuPools")
    if not isinstance(pools, list):
        return
    seen_names: dict[str, int] = {}
    for index, pool in enumerate(pools):
        field = f"cluster.tpuPools[{index}]"
        pool_name = _text(pool, "name")
        if pool_name == CPU_POOL:
            report(f"{field}.name", f"'{CPU_POOL}' is the name of the cluster's CPU pool (cluster.cpuNodes); give the "
                                    "TPU pool another name")
        elif pool_name is not None:
            report(f"{field}.name", names.gke_name(pool_name, "node pool name"))
            if pool_name in seen_names:
                report(f"{field}.name", f"node pool name '{pool_name}' is already used by "
                                        f"cluster.tpuPools[{seen_names[pool_name]}]")
            else:
                seen_names[pool_name] = index
        if location is not None:
            _check_pool_zone(location, pool, field, report)
        machine_type, topology, nodes = _text(pool, "machineType"), _text(pool, "topology"), _integer(pool, "nodes")
        if machine_type is not None and topology is not None and nodes is not None:
            for pool_field, message in tpu.pool_problems(machine_type, topology, nodes):
                report(f"{field}.{pool_field}", message)


def _check_pool_zone(location: str, pool: Any, field: str, report: Report) -> None:
    """A TPU slice lives in one zone: a zonal cluster's, or, in a regional cluster, the one of its region it names."""
    zone = _text(pool, "zone")
    if names.zone_region(location) is not None:
        if zone is not None and zone != location:
            report(f"{field}.zone", f"the pools of a zonal cluster are in its zone {location}; drop zone or make it "
                                    f"{location}")
    elif names.is_region(location):
        if isinstance(pool, dict) and "zone" not in pool:
            report(field, f"a TPU slice lives in one zone: in the regional cluster {location}, give this pool a zone "
                          f"of {location} that offers its machine type (zone: {location}-a, say)")
        elif zone is not None and names.zone_region(zone) != location:
            report(f"{field}.zone", f"'{zone}' is not a zone of the cluster's region {location} (e.g. {location}-a)")


def _location_problem(location: str, project_region: str | None) -> str | None:
    zone_region = names.zone_region(location)
    if zone_region is None and not names.is_region(location):
        return f"'{location}' is neither a zone like us-central1-a nor a region like us-central1"
    if project_region is None or not names.is_region(project_region):
        return None
    if zone_region is not None and zone_region != project_region:
        return (f"zone {location} is in {zone_region}, not in project.region {project_region}: "
                f"use a zone of {project_region} such as {project_region}-a, or change project.region")
    if zone_region is None and location != project_region:
        return f"region {location} is not project.region {project_region}: use {project_region} or one of its zones"
    return None


def _check_buckets(root: Any, report: Report) -> None:
    for role in ("admin", "data"):
        field = f"buckets.{role}"
        name = _text(root, "buckets", role, "name")
        if name is not None:
            report(f"{field}.name", names.bucket_name(name))
        location = _text(root, "buckets", role, "location")
        if location is not None:
            report(f"{field}.location", names.bucket_location(location))
        labels = _section(root, "buckets", role, "labels")
        if isinstance(labels, dict):
            _check_labels(labels, f"{field}.labels", report)
    admin, data = _text(root, "buckets", "admin", "name"), _text(root, "buckets", "data", "name")
    if admin is not None and admin == data:
        report("buckets.data.name", f"the data bucket must differ from the admin bucket '{admin}': "
                                    "the admin bucket holds Sax's state, the data bucket checkpoints")


def _check_labels(labels: dict[str, Any], field: str, report: Report) -> None:
    if len(labels) > MAX_BUCKET_LABELS:
        report(field, f"has {len(labels)} labels; at most {MAX_BUCKET_LABELS} fit beside the "
                      f"{len(RESERVED_BUCKET_LABELS)} saxctl adds")
    for key, value in labels.items():
        label_field = f"{field}.{key}"
        if key in RESERVED_BUCKET_LABELS:
            report(label_field, f"label key '{key}' is reserved: saxctl sets it to mark what it owns", at_key=True)
            continue
        report(label_field, names.gcs_label_key(key), at_key=True)
        if isinstance(value, str):
            report(label_field, names.gcs_label_value(value, key))


def _check_identity(root: Any, report: Report) -> None:
    namespace = _text(root, "identity", "kubernetesServiceAccount", "namespace")
    if namespace is not None:
        report("identity.kubernetesServiceAccount.namespace", names.dns1123_label(namespace, "namespace"))
    ksa_name = _text(root, "identity", "kubernetesServiceAccount", "name")
    if ksa_name is not None:
        report("identity.kubernetesServiceAccount.name",
               names.dns1123_subdomain(ksa_name, "service account name"))
    gsa_name = _text(root, "identity", "googleServiceAccount", "name")
    if gsa_name is not None:
        report("identity.googleServiceAccount.name", names.service_account_id(gsa_name))
    roles = _section(root, "identity", "googleServiceAccount", "projectRoles")
    if isinstance(roles, list):
        seen: set[str] = set()
        for index, role in enumerate(roles):
            if not isinstance(role, str):
                continue
            field = f"identity.googleServiceAccount.projectRoles[{index}]"
            report(field, names.role(role))
            if role in seen:
                report(field, f"role {role} is listed twice")
            seen.add(role)


def _check_sax(root: Any, report: Report) -> None:
    cell = _text(root, "sax", "cell")
    if cell is not None:
        report("sax.cell", names.sax_cell(cell))
    for server in ("adminServer", "modelServer", "httpServer"):
        image = _text(root, "sax", server, "image")
        if image is not None:
            report(f"sax.{server}.image", names.image_reference(image))
    pool_name = _text(root, "sax", "modelServer", "pool")
    pools = _section(root, "cluster", "tpuPools")
    if pool_name is None or not isinstance(pools, list):
        return  # no cluster or no pool list: the schema has said so
    pool_names = [name for name in (_text(pool, "name") for pool in pools) if name is not None]
    if pool_name not in pool_names:
        close = difflib.get_close_matches(pool_name, pool_names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; pools: {', '.join(pool_names) or 'none'}"
        report("sax.modelServer.pool", f"'{pool_name}' is not a cluster.tpuPools name{hint}")
        return
    replicas = _integer(root, "sax", "modelServer", "replicas")
    if replicas is not None and replicas > 1:
        # Each model server takes the whole slice, and a pool is exactly one slice.
        report("sax.modelServer.replicas", f"{replicas} model servers need {replicas} TPU slices, but pool "
                                           f"'{pool_name}' is one slice: use 1, or one pool per model server")


def _model_server_slice(root: Any) -> tuple[str, tpu.TpuSlice] | None:
    """(pool name, slice) the model servers run on, when the pool resolves and its shape is valid."""
    pool_name = _text(root, "sax", "modelServer", "pool")
    pools = _section(root, "cluster", "tpuPools")
    if pool_name is None or not isinstance(pools, list):
        return None
    for pool in pools:
        if _text(pool, "name") != pool_name:
            continue
        machine_type, topology, nodes = _text(pool, "machineType"), _text(pool, "topology"), _integer(pool, "nodes")
        if machine_type is None or topology is None or nodes is None:
            return None
        if not tpu.is_topology(topology) or tpu.pool_problems(machine_type, topology, nodes):
            return None
        return pool_name, tpu.tpu_slice(TpuPool(pool_name, machine_type, topology, nodes))
    return None


def _check_checkpoints(root: Any, report: Report) -> None:
    checkpoints = _section(root, "checkpoints")
    if not isinstance(checkpoints, dict):
        return
    for key in checkpoints:
        field = f"checkpoints.{key}"
        if not _CHECKPOINT_KEY.fullmatch(key):
            report(field, f"checkpoint name '{key}' is not valid: use up to 63 letters, digits, '.', '_' and '-'",
                   at_key=True)
        source = _text(checkpoints, key, "source", "path")
        if source is not None:
            if source == "":
                report(f"{field}.source.path", "must not be empty: give a local directory or a gs:// URL")
            elif names.gs_url(source) is not None:
                report(f"{field}.source.path", _gs_problem(source, needs_object=False))
        destination = _text(checkpoints, key, "destination")
        if destination is not None:
            report(f"{field}.destination", _checkpoint_url_problem(destination, "destination"))


def _gs_problem(url: str, *, needs_object: bool) -> str | None:
    parsed = names.gs_url(url)
    if parsed is None:
        return f"'{url}' is not a gs:// URL"
    bucket, object_path = parsed
    bucket_problem = names.bucket_name(bucket)
    if bucket_problem:
        return f"'{url}': {bucket_problem}"
    if needs_object and not object_path.strip("/"):
        return f"'{url}' names a whole bucket; give the checkpoint directory inside it"
    return None


def _checkpoint_url_problem(url: str, what: str) -> str | None:
    if names.gs_url(url) is None:
        return f"the {what} must be a gs:// URL like gs://my-sax-data/checkpoints/checkpoint_00000000, got '{url}'"
    problem = _gs_problem(url, needs_object=True)
    if problem:
        return problem
    last_part = url.rstrip("/").rsplit("/", 1)[-1]
    if not _CHECKPOINT_DIR.fullmatch(last_part):
        # Sax restores paxml checkpoints, which live in directories named after their step.
        return f"'{url}' must end in a checkpoint_NNNNNNNN directory (Sax loads paxml checkpoints by step), " \
               f"e.g. {url.rstrip('/')}/checkpoint_00000000"
    return None


def _check_models(root: Any, report: Report) -> None:
    models = _section(root, "models")
    if not isinstance(models, list):
        return
    checkpoints = _section(root, "checkpoints")
    checkpoint_keys = sorted(checkpoints) if isinstance(checkpoints, dict) else []
    model_server = _model_server_slice(root)
    server_replicas = _integer(root, "sax", "modelServer", "replicas") or 1
    seen_names: dict[str, int] = {}
    for index, model in enumerate(models):
        field = f"models[{index}]"
        name = _text(model, "name")
        if name is not None:
            report(f"{field}.name", names.sax_model_name(name))
            if name in seen_names:
                report(f"{field}.name", f"model name '{name}' is already used by models[{seen_names[name]}]")
            else:
                seen_names[name] = index
        model_path = _text(model, "modelPath")
        if model_path is not None:
            report(f"{field}.modelPath", names.python_dotted_path(model_path))
            if model_server is not None:
                report(f"{field}.modelPath", _chips_problem(model_path, *model_server))
        checkpoint = _text(model, "checkpoint")
        if checkpoint is not None:
            report(f"{field}.checkpoint", _model_checkpoint_problem(checkpoint, checkpoint_keys))
        replicas = _integer(model, "replicas")
        if replicas is not None and replicas > server_replicas:
            # Sax places each replica of a model on a different model server.
            report(f"{field}.replicas", f"{replicas} replicas need {replicas} model servers, but "
                                        f"sax.modelServer.replicas is {server_replicas}")
    report("models", _shared_servers_problem(models, server_replicas))


def _shared_servers_problem(models: list[Any], server_replicas: int) -> str | None:
    """The models' replicas together against the model servers: Sax loads one model per server, so the models
    share them (each one fitting alone is not enough; one alone that does not fit is reported at its replicas)."""
    wanted = list({_text(model, "name") or f"models[{index}]": _integer(model, "replicas") or 1
                   for index, model in enumerate(models) if isinstance(model, dict)}.items())  # a repeated name: once
    total = sum(replicas for _, replicas in wanted)
    if len(wanted) < 2 or total <= server_replicas or any(r > server_replicas for _, r in wanted):
        return None
    each = ", ".join(f"{name} {replicas}" for name, replicas in wanted)
    return (f"the models need {total} model servers in all ({each}), but sax.modelServer.replicas is "
            f"{server_replicas}: Sax loads one model per model server")


def _chips_problem(model_path: str, pool_name: str, pool_slice: tpu.TpuSlice) -> str | None:
    needed = saxparams.required_chips(model_path)
    if needed is None or needed[0] == pool_slice.total_chips:
        return None
    chips, mesh = needed
    shards = f"{model_path.rsplit('.', 1)[-1]} shards over {_chips(chips)} (ICI mesh {'x'.join(map(str, mesh))})"
    pool = f"pool '{pool_name}' ({pool_slice.machine_type}, {pool_slice.topology})"
    if pool_slice.multi_host:
        # The hosts of a multi-host slice run one model server program over all their chips (one JAX mesh): a class
        # sharded over fewer chips cannot span them, and Sax would accept its publish and never load it.
        return (f"{shards} and cannot span hosts: {pool} is {pool_slice.nodes} hosts of "
                f"{_chips(pool_slice.chips_per_node)} served as one model server over all "
                f"{_chips(pool_slice.total_chips)}; use a single-host pool, or a class sharded over "
                f"{_chips(pool_slice.total_chips)}")
    return f"{shards}, but {pool} has {_chips(pool_slice.total_chips)}"


def _chips(count: int) -> str:
    return f"{count} chip{'' if count == 1 else 's'}"


def _model_checkpoint_problem(checkpoint: str, checkpoint_keys: list[str]) -> str | None:
    if names.gs_url(checkpoint) is not None:
        return _checkpoint_url_problem(checkpoint, "checkpoint")
    if checkpoint in checkpoint_keys:
        return None
    close = difflib.get_close_matches(checkpoint, checkpoint_keys, n=1)
    if close:
        return f"'{checkpoint}' is neither a key of checkpoints (did you mean '{close[0]}'?) nor a gs:// URL"
    known = f" (checkpoints: {', '.join(checkpoint_keys)})" if checkpoint_keys else " (there is no checkpoints section)"
    return f"'{checkpoint}' is neither a key of checkpoints nor a gs:// URL{known}"
