"""The sandbox's fidelity table: for every API method saxctl calls, who answers it, what checks its bodies, and which
error cases a test exercises. Computed from the emulators' route tables, the client libraries' own metadata, a scan
of saxctl's calls and a scan of the tests (bench/fidelity_scan.py), so it cannot go stale silently.

    python -m bench.fidelity      (make fidelity)   → prints the table, writes bench/results/fidelity.{json,md}
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

from bench import fidelity_scan
from bench.harness import write_results
from reconciler.sandbox.base.routes import RouteTable

ROOT = Path(__file__).resolve().parent.parent
ERROR_CASES = ("404", "409", "412", "429", "ABORTED", "FAILED_PRECONDITION", "quota")
# The HTTP emulators: sandbox name → the module holding its ROUTES and server, and the discovery document it speaks.
HTTP_EMULATORS = {
    "gcs": ("reconciler.sandbox.gcs.front", "GcsFrontServer", "storage", "v1"),
    "gke": ("reconciler.sandbox.gke.server", "GkeServer", "container", "v1"),
    "resourcemanager": ("reconciler.sandbox.resourcemanager.server", "ResourceManagerServer",
                        "cloudresourcemanager", "v3"),
    "compute": ("reconciler.sandbox.compute.server", "ComputeServer", "compute", "v1"),
}
# The generated (GAPIC) clients saxctl uses over REST: package → services; each one's rest_base holds every RPC's
# verb and URI.
REST_CLIENTS = {
    "google.cloud.container_v1": ("ClusterManager",),
    "google.cloud.resourcemanager_v3": ("Projects",),
    "google.cloud.compute_v1": ("MachineTypes", "Regions", "Zones", "InstanceGroupManagers"),
}
IAM_CLIENT = "google.cloud.iam_admin_v1"
# google-cloud-storage is hand-written (no metadata to read): the storage v1 method each of its calls saxctl makes
# sends, from the library's source. A call saxctl makes that is not here is not counted: add it when saxctl uses it.
STORAGE_LIBRARY_CALLS = {
    "create_bucket": ("storage.buckets.insert",), "get_bucket": ("storage.buckets.get",),
    "lookup_bucket": ("storage.buckets.get",), "list_buckets": ("storage.buckets.list",),
    "reload": ("storage.buckets.get",), "patch": ("storage.buckets.patch",),
    "delete": ("storage.buckets.delete", "storage.objects.delete"), "list_blobs": ("storage.objects.list",),
    "get_blob": ("storage.objects.get",), "delete_blob": ("storage.objects.delete",),
    "copy_blob": ("storage.objects.copy",), "upload_from_string": ("storage.objects.insert",),
    "upload_from_file": ("storage.objects.insert",), "upload_from_filename": ("storage.objects.insert",),
    "download_as_bytes": ("storage.objects.get",), "download_to_filename": ("storage.objects.get",),
    "download_to_file": ("storage.objects.get",), "download_as_text": ("storage.objects.get",),
}


@dataclass
class Row:
    api: str
    method: str
    served_by: str
    called: bool = False
    validated: list[str] = field(default_factory=list)
    errors: set[str] = field(default_factory=set)
    reply_schema: str = ""  # gRPC rows: the reply message, whose JSON mapping a test may check against discovery


def build(tests: Path = ROOT / "tests") -> list[Row]:
    """The table's rows, the tests scanned being those under `tests`."""
    sys.path.insert(0, str(ROOT / "tests"))  # the contract checker lives with the tests
    from contract import Discovery

    routes_checked = fidelity_scan.routes_checked(tests)
    rows: dict[str, Row] = {}
    routes_of: dict[str, RouteTable] = {}
    for emulator, (module_name, server_name, api, version) in HTTP_EMULATORS.items():
        module = importlib.import_module(module_name)
        routes_of[emulator] = module.ROUTES
        for route in module.ROUTES:
            if not route.method_id:
                continue
            relayed = "self.unrouted(" in inspect.getsource(getattr(_handler_class(module), route.handler))
            served = ("GCS front, then fake-gcs-server" if relayed else "GCS front") if emulator == "gcs" \
                else f"{emulator} emulator"
            checks = [f"route: verb and path of {api} {version}"] if module_name in routes_checked else []
            rows[route.method_id] = Row(f"{api} {version}", route.method_id, served, validated=checks)
    rest_methods = _rest_methods(routes_of)  # before the scan of saxctl's calls: it learns the clients' names here
    called_names = fidelity_scan.called_names(ROOT / "reconciler", exclude=ROOT / "reconciler" / "sandbox")
    storage = Discovery.load("storage", "v1")
    for name, method_ids in STORAGE_LIBRARY_CALLS.items():
        for method_id in method_ids:
            if name in called_names:
                storage.method(method_id)  # a typo here is a KeyError, not a silent row
                rows.setdefault(method_id, Row("storage v1", method_id, "fake-gcs-server (relayed by the GCS front)"))
                rows[method_id].called = True
    for method_id, python_keys in rest_methods.items():
        if method_id in rows and (python_keys & called_names or f"id:{method_id}" in called_names):
            rows[method_id].called = True
    for path, python_name, reply_schema in _iam_methods():
        row = rows.setdefault(path, Row("iam admin v1 (gRPC)", path, "iam emulator",
                                        validated=["gRPC types: the client's own codecs"]))
        row.called = python_name in called_names
        row.reply_schema = reply_schema
    fidelity_scan.mark_coverage(rows, tests, routes_of, _python_name_index(rest_methods), STORAGE_LIBRARY_CALLS,
                                storage)
    rows["kubernetes"] = Row("Kubernetes API", "every verb on every kind saxctl applies", "the real kube-apiserver "
                             "(+ etcd, kwok nodes)", called=True, validated=["the apiserver itself (OpenAPI, "
                                                                             "server-side apply)"])
    rows["sax"] = Row("Sax admin (saxml protos)", "publish, unpublish, list, update", "Sax stand-ins (pending: "
                      "another branch)", called=False, validated=["saxml's protos (when the stand-ins land)"])
    return sorted(rows.values(), key=lambda row: (not row.called, row.api, row.method))


def _handler_class(module) -> type:
    return next(value for value in vars(module).values()
                if isinstance(value, type) and getattr(value, "routes", None) is module.ROUTES)


def _rest_methods(routes_of: dict[str, RouteTable]) -> dict[str, set[str]]:
    """Each routed method id → the keys of the client methods that send it (via each RPC's verb and URI)."""
    found: dict[str, set[str]] = {}
    for key, verb, path in _client_requests():
        for routes in routes_of.values():
            if matched := routes.match(verb, path):
                found.setdefault(matched[0].method_id, set()).add(key)
    return found


@functools.cache
def _client_requests() -> tuple[tuple[str, str, str], ...]:
    """(client method key, verb, sample path) of every RPC of the REST clients, from their rest_base modules."""
    found = []
    for package, services in REST_CLIENTS.items():
        metadata = _metadata(package)
        for service in services:
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", service).lower()
            rest_base = importlib.import_module(f"{package}.services.{snake}.transports.rest_base")
            transport = next(value for name, value in vars(rest_base).items() if name.endswith("RestTransport"))
            for rpc, names in metadata["services"][service]["clients"]["rest"]["rpcs"].items():
                options = getattr(transport, f"_Base{rpc}", None)
                for option in options._get_http_options() if options else ():
                    found.extend((fidelity_scan.python_key(service, name), option["method"].upper(),
                                  _sample_path(option["uri"])) for name in names["methods"])
    return tuple(found)


def _sample_path(uri: str) -> str:
    """A concrete path for a URI template: '/v1/{name=projects/*/locations/*}' → '/v1/projects/x1/locations/x1'."""
    uri = re.sub(r"\{[^}=]+=([^}]+)\}", lambda m: m.group(1), uri)
    return re.sub(r"\{[^}]+\}|\*\*|\*", "x1", uri)


def _iam_methods() -> list[tuple[str, str, str]]:
    """(gRPC path, the client's Python name, the reply message's name) for every RPC the IAM emulator serves."""
    from reconciler.sandbox.iam import service
    from reconciler.sandbox.iam.store import AccountStore

    emulator = service.build_emulator(AccountStore(Path("/nonexistent/fidelity.json")))
    metadata = _metadata(IAM_CLIENT)["services"]["IAM"]["clients"]["grpc"]["rpcs"]
    result = []
    for path, method in emulator.methods.items():
        rpc = path.rsplit("/", 1)[1]
        reply = typing.get_type_hints(method.answer).get("return")
        result.append((path, metadata[rpc]["methods"][0], getattr(reply, "__name__", "")))
    return result


def _python_name_index(rest_methods: dict[str, set[str]]) -> dict[str, set[str]]:
    """A client method's key (fidelity_scan.python_key) → the method ids it sends (REST clients and IAM)."""
    index: dict[str, set[str]] = {}
    for method_id, names in rest_methods.items():
        for name in names:
            index.setdefault(name, set()).add(method_id)
    for path, python_name, _ in _iam_methods():
        index.setdefault(python_name, set()).add(path)
    return index


def _metadata(package: str) -> dict:
    return json.loads((Path(importlib.import_module(package).__file__).parent / "gapic_metadata.json").read_text())


def markdown(rows: list[Row]) -> str:
    lines = ["# Sandbox fidelity", "",
             "Computed by `make fidelity` (bench/fidelity.py) from the emulators' route tables, the client libraries' "
             "metadata, a scan of saxctl's calls and a scan of the tests. ✓ = a test exercises that error on that "
             "method (a test naming both in one statement, or a fault injected on its path). Behaviour no discovery "
             "document expresses, and the gaps, are in reconciler/sandbox/README.md, \"Fidelity\".", "",
             f"| method | saxctl calls it | served by | checked against | {' | '.join(ERROR_CASES)} |",
             f"|---|---|---|---|{'---|' * len(ERROR_CASES)}"]
    for row in rows:
        marks = " | ".join("✓" if case in row.errors else "" for case in ERROR_CASES)
        lines.append(f"| `{row.method}` | {'yes' if row.called else 'no'} | {row.served_by} | "
                     f"{'; '.join(row.validated) or '—'} | {marks} |")
    called = [row for row in rows if row.called]
    lines += ["", f"{len(called)} methods saxctl calls; {sum(1 for row in called if row.errors)} with at least one "
                  "error case under test."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict:
    rows = build()
    result = {"benchmark": "fidelity", "error_cases": list(ERROR_CASES),
              "methods": [{"api": row.api, "method": row.method, "served_by": row.served_by, "called": row.called,
                           "validated": row.validated, "errors": sorted(row.errors)} for row in rows]}
    write_results("fidelity", result, markdown(rows))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
