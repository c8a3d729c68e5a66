"""What the GKE end-to-end tests share: the GCP half of a spec of specs/ in a project of its own, the real container
client on the sandbox, and the emulators' request logs read per project."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent.parent
SPECS = REPO / "specs"
CLUSTER_SPECS = sorted(path for path in SPECS.glob("*.yaml") if "\ncluster:" in path.read_text())
GCP_HALF = ("apiVersion", "kind", "metadata", "project", "cluster", "buckets", "identity")
DEMO_PROJECT = "saxctl-demo"


def gcp_half(source: Path, directory: Path, project: str, edit=lambda text: text) -> Path:
    """source with its project (and the bucket names built on it) made `project`, cut before its Kubernetes and Sax
    sections: the file keeps its lines, so positions in errors are the original's."""
    text = source.read_text().replace("${PROJECT_ID:-saxctl-demo}", project).replace(DEMO_PROJECT, project)
    lines = text.splitlines(keepends=True)
    first_dropped = next(index for index, line in enumerate(lines) if line.startswith("sax:"))
    half = "".join(lines[:first_dropped])
    kept = list(YAML(typ="safe").load(half))
    assert all(key in GCP_HALF for key in kept), kept
    dropped = [key for key in YAML(typ="safe").load(text) if key not in kept]
    assert set(dropped) <= {"sax", "checkpoints", "models", "drift"}, dropped
    path = directory / source.name
    path.write_text(edit(half))
    return path


@dataclass
class GkeWorld:
    """One test's project on the sandbox, seen through the real container client and the request logs."""

    sandbox: object
    client: object
    project: str
    location: str = "us-central1-a"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def cluster(self, name: str):
        return self.client.get_cluster(name=f"{self.parent}/clusters/{name}", timeout=10)

    def wait(self, operation, timeout: float = 60):
        from google.cloud import container_v1

        deadline = time.monotonic() + timeout
        while operation.status != container_v1.Operation.Status.DONE:
            assert time.monotonic() < deadline, operation
            time.sleep(0.05)
            operation = self.client.get_operation(name=f"{self.parent}/operations/{operation.name}", timeout=10)
        assert not operation.error.message, operation.error.message
        return operation

    def operations(self, kind: str | None = None) -> list:
        listed = self.client.list_operations(parent=self.parent, timeout=10).operations
        return [op for op in listed if kind is None or op.operation_type.name == kind]

    def calls(self, emulator: str = "gke") -> list[dict]:
        """This project's API calls in the emulator's log since it was last reset."""
        return [entry for entry in self.sandbox.requests(emulator) if f"/projects/{self.project}/" in entry["path"]]

    def handled(self, method_suffix: str) -> list[dict]:
        """Calls of this method the emulator carried out (not refused by an injected fault before it ran)."""
        return [entry for entry in self.calls() if entry["method_id"].endswith(method_suffix)
                and entry["fault"] is None and entry["status"] == 200]

    def writes(self, emulator: str) -> list[str]:
        """Writes of this project the emulator carried out (GCS: on buckets named after the project). A refused one
        (the lock tried in a bucket that does not exist, 404) changed nothing and is not counted."""
        if emulator == "gcs":
            mine = [entry for entry in self.sandbox.requests("gcs") if self.project in entry["path"]]
        else:
            mine = self.calls(emulator)
        return [f"{entry['method']} {entry['path']} {entry['status']}" for entry in mine
                if entry["method"] not in ("GET", "HEAD") and entry["status"] < 400]

    def reset_logs(self) -> None:
        for emulator in ("gke", "compute", "gcs"):
            self.sandbox.reset_requests(emulator)


def release(sandbox, world: GkeWorld, operation) -> None:
    """End an operation held with a long latency now."""
    sandbox.control("POST", "gke", "operation-finish", {"name": f"{world.parent}/operations/{operation.name}"})
