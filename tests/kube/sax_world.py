"""What the Kubernetes provider's end-to-end tests share: a spec of their own (project, cluster, pool, namespace,
buckets), saxctl and kubectl run as a user would, and the requests each side saw.

One apiserver serves every cluster of the sandbox's GKE emulator, so each test has its own namespace and pool name
(the model server selects its pool by name, and nodes of other tests' pools never match it).
"""

from __future__ import annotations

import collections
import json
import re
import secrets
import ssl
import subprocess
import textwrap
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import Run, saxctl

from reconciler.sandbox.kube.nodes import cluster_namespace_annotations
from reconciler.sandbox.paths import bin_dir

IMAGES = "us-docker.pkg.dev/cloud-tpu-images/inference"
ADMIN_IMAGE = f"{IMAGES}/sax-admin-server:v1.1.0"
MODEL_IMAGE = f"{IMAGES}/sax-model-server:v1.1.0"
HTTP_IMAGE = f"{IMAGES}/sax-http:v1.0.0"
_REQUEST = re.compile(r"kubernetes (?P<verb>[A-Z]+) (?P<path>\S+) → (?P<status>\d+)")
LOCATION = "us-central1-a"
OUR_RESOURCES = ("configmaps", "serviceaccounts", "services", "deployments", "statefulsets")


@dataclass
class SaxWorld:
    sandbox: object
    directory: Path
    spec_name: str
    project: str
    namespace: str
    suffix: str  # makes the cluster, pool, buckets and account this test's own

    @property
    def path(self) -> Path:
        return self.directory / "spec.yaml"

    @property
    def cluster(self) -> str:
        return f"c-{self.suffix}"

    @property
    def cluster_name(self) -> str:
        """The cluster's resource name in the GKE API."""
        return f"projects/{self.project}/locations/{LOCATION}/clusters/{self.cluster}"

    @property
    def pool(self) -> str:
        return f"tpu-{self.suffix}"

    @property
    def admin_bucket(self) -> str:
        return f"adm-{self.spec_name}"

    def write(self, *, http_image: str = HTTP_IMAGE, model_image: str = MODEL_IMAGE, exposure: str = "internal",
              sax: bool = True, topology: str = "2x2", nodes: int = 1, machine: str = "ct5lp-hightpu-4t") -> Path:
        text = textwrap.dedent(f"""\
            apiVersion: saxctl/v1
            kind: SaxDeployment
            metadata: {{name: {self.spec_name}}}
            project: {{id: {self.project}, region: us-central1}}
            cluster:
              name: {self.cluster}
              location: {LOCATION}
              releaseChannel: RAPID
              cpuNodes: {{count: 1, machineType: e2-standard-4}}
              tpuPools:
                - {{name: {self.pool}, machineType: {machine}, topology: {topology}, nodes: {nodes}}}
            buckets:
              admin: {{name: {self.admin_bucket}, location: US}}
              data: {{name: dat-{self.spec_name}, location: US}}
            identity:
              kubernetesServiceAccount: {{namespace: {self.namespace}, name: sax-sa}}
              googleServiceAccount: {{name: sa-{self.suffix}, projectRoles: [roles/storage.admin]}}
            """)
        if sax:
            text += textwrap.dedent(f"""\
            sax:
              cell: /sax/test
              adminServer: {{image: "{ADMIN_IMAGE}"}}
              modelServer: {{image: "{model_image}", pool: {self.pool}}}
              httpServer: {{image: "{http_image}", port: 8888, exposure: {exposure}}}
            """)
        self.path.write_text(text)
        return self.path

    def saxctl(self, *args: str, timeout: float = 180, env_overrides: dict[str, str] | None = None) -> Run:
        """saxctl -v COMMAND ... SPEC: -v logs every Kubernetes request saxctl makes (counted by kube_requests)."""
        command, *rest = args
        return saxctl("-v", command, *rest, str(self.path), env={**self.sandbox.env, **(env_overrides or {})},
                      timeout=timeout)

    def apply(self, *flags: str) -> Run:
        # A rollout that cannot finish fails with its reason, well before the process timeout would kill it.
        applied = self.saxctl("apply", "--auto-approve", "--rollout-timeout", "120", *flags)
        assert applied.code == 0, applied.text + self.cluster_side()
        return applied

    def cluster_side(self) -> str:
        """What the cluster itself says of this test's pods and their nodes: the evidence a failed rollout needs."""
        pods = self.kubectl("get", "pods", "-o", "wide", check=False)
        events = self.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)
        nodes = self.kubectl("get", "nodes", "-o", "wide", check=False, namespaced=False)
        return (f"\n--- pods\n{pods.stdout}{pods.stderr}--- events\n{events.stdout[-4000:]}{events.stderr}"
                f"--- nodes\n{nodes.stdout[-4000:]}{nodes.stderr}")

    def kubectl(self, *args: str, check: bool = True, namespaced: bool = True) -> subprocess.CompletedProcess:
        scope = ["-n", self.namespace] if namespaced else []
        kubeconfig = self.sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]
        completed = subprocess.run([str(bin_dir() / "kubectl"), "--kubeconfig", kubeconfig,
                                    *scope, *args], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0 or not check, completed.stderr
        return completed


@pytest.fixture
def world(sandbox, tmp_path, unique_project, core):
    """A test's own spec and namespace (the namespace made here, as a user would before the first apply)."""
    suffix = secrets.token_hex(4)
    created = SaxWorld(sandbox, tmp_path, f"k-{suffix}", unique_project(), f"ns-{suffix}", suffix)
    # The namespace is the cluster's, as in a cluster of its own: its pods never run on other tests' nodes, which
    # come and go with those tests.
    core.create_namespace({"metadata": {"name": created.namespace,
                                        "annotations": cluster_namespace_annotations(created.cluster_name)}})
    created.write()
    yield created
    core.delete_namespace(created.namespace)


def kube_requests(run: Run) -> list[tuple[str, str]]:
    """(verb, path) of every request saxctl made to an apiserver, from its -v log (its own client's count)."""
    return [(match["verb"], match["path"]) for match in _REQUEST.finditer(run.err)]


def changed_lines(run: Run) -> list[str]:
    """The plan's change lines (`~ kubernetes.deployment.NS/NAME update`), without their reasons."""
    return sorted(line.split("#")[0].strip() for line in run.out.splitlines()
                  if line.startswith(("  + ", "  ~ ", "  - ", "  -/+ ")))


def apiserver_writes(sandbox) -> collections.Counter:
    """(verb, resource, dry_run) → writes and dry-runs the apiserver has served on saxctl's kinds, from its /metrics.

    The apiserver's count, not saxctl's: APPLY (server-side apply, dry-run or not), PATCH and DELETE of named objects.
    Reads are left out: the garbage collector GETs owners (Deployments) while a deleted namespace empties, and the
    controllers write status (another subresource) and watch.
    """
    config = json.loads(Path(sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]).read_text())
    server = config["clusters"][0]["cluster"]["server"]
    context = ssl.create_default_context(cafile=config["clusters"][0]["cluster"]["certificate-authority"])
    request = urllib.request.Request(f"{server}/metrics",
                                     headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        text = response.read().decode()
    counts: collections.Counter = collections.Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        # scope "resource": one named object (a namespace being emptied is a DELETE of the whole collection)
        if (labels.get("resource") in OUR_RESOURCES and not labels.get("subresource")
                and labels.get("scope") == "resource" and labels.get("verb") in ("APPLY", "PATCH", "DELETE")):
            counts[(labels["verb"], labels["resource"], labels.get("dry_run", ""))] += int(float(line.split()[-1]))
    return counts
