"""kubectl's server-side diff and apply of the tutorial's five objects: the baseline saxctl's plan/apply must meet.

The objects are the ones Google's manifests make (RECIPES §8): the KSA, the Sax admin, model and HTTP server
Deployments and the HTTP Service. kubectl is the one the sandbox builds (the same Kubernetes version as its
apiserver), with a warm discovery cache as a kubectl user has. Each command is timed as a whole process (start-up
included, as saxctl's will be), its peak RSS taken from wait4, and its API requests counted in one extra run at -v=6.

Runs in its own sandbox (a temporary state dir), so it never touches a sandbox you have running.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Measured, in_own_sandbox, machine, run_measured, stats, write_results

FIELD_MANAGER = "kubectl-bench"
IMAGES = "us-docker.pkg.dev/cloud-tpu-images/inference"
ADMIN_BUCKET = "bench-sax-admin"


def manifest(model_server_tag: str = "v1.1.0") -> list[dict]:
    """The five objects, as RECIPES §8 describes the published manifests (chip and topology from a v5e 2x2 pool)."""
    sax_root = {"name": "SAX_ROOT", "value": f"gs://{ADMIN_BUCKET}/sax-root"}
    privileged = {"privileged": True}

    def deployment(name: str, container: dict, pod_extra: dict | None = None) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"serviceAccountName": "sax-sa", "containers": [container],
                                               **(pod_extra or {})}}}}

    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "sax-sa", "namespace": "default",
            "annotations": {"iam.gke.io/gcp-service-account": "sax-iam-sa@saxctl-bench.iam.gserviceaccount.com"}}},
        deployment("sax-admin-server", {
            "name": "sax-admin-server", "image": f"{IMAGES}/sax-admin-server:v1.1.0",
            "ports": [{"containerPort": 10000}], "env": [{"name": "GSBUCKET", "value": ADMIN_BUCKET}],
            "securityContext": privileged}),
        deployment("sax-model-server", {
            "name": "sax-model-server", "image": f"{IMAGES}/sax-model-server:{model_server_tag}",
            "args": ["--port=10001", "--sax_cell=/sax/test", "--platform_chip=tpuv5e", "--platform_topology=2x2",
                     "--jax_platforms=tpu"],
            "ports": [{"containerPort": 10001}], "env": [sax_root], "securityContext": privileged,
            "resources": {"requests": {"google.com/tpu": "4"}, "limits": {"google.com/tpu": "4"}}},
            {"nodeSelector": {"cloud.google.com/gke-tpu-topology": "2x2",
                              "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice"}}),
        deployment("sax-http", {"name": "sax-http", "image": f"{IMAGES}/sax-http:v1.0.0",
                                "ports": [{"containerPort": 8888}], "env": [sax_root]}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "sax-http-lb", "namespace": "default",
            "annotations": {"networking.gke.io/load-balancer-type": "Internal"}},  # saxctl's default exposure
         "spec": {"type": "LoadBalancer", "selector": {"app": "sax-http"},
                  "ports": [{"port": 8888, "targetPort": 8888, "protocol": "TCP"}]}},
    ]


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.kubectl_baseline", description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="runs of each command to time (default 9)")
    args = parser.parse_args(argv)

    from reconciler.sandbox import gobuild

    kubectl = gobuild.ensure_binary("kubectl", lambda message: print(f"[sandbox] {message}", file=sys.stderr))
    result = in_own_sandbox(lambda state, scratch: _measure(
        Kubectl(kubectl, state["env"]["SAXCTL_SANDBOX_KUBECONFIG"], scratch), args.runs))
    write_results("kubectl_baseline", result, _markdown(result))
    return result


class Kubectl:
    """Runs the sandbox's kubectl on a manifest file, measuring each process."""

    def __init__(self, binary: Path, kubeconfig: str, scratch: Path, field_manager: str = FIELD_MANAGER):
        self.binary, self.kubeconfig, self.scratch = binary, kubeconfig, scratch
        self.field_manager = field_manager
        self.manifest = scratch / "sax.json"
        self.cache_dir = self.new_cache_dir()

    def new_cache_dir(self) -> Path:
        """A cold discovery cache (kubectl keeps the API's discovery documents there, ~/.kube/cache by default)."""
        return Path(tempfile.mkdtemp(prefix="kube-cache-", dir=self.scratch))

    @property
    def base(self) -> list[str]:
        return [str(self.binary), "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.cache_dir)]

    def write_manifest(self, objects: list[dict]) -> None:
        self.manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def run(self, verb: str, *extra: str, expect: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
        """(seconds, peak RSS in bytes, stderr) of `kubectl VERB --server-side -f MANIFEST`."""
        measured = self.measure(verb, *extra, expect=expect)
        return measured.seconds, measured.peak_rss_bytes, measured.err

    def measure(self, verb: str, *extra: str, expect: tuple[int, ...] = (0,)) -> Measured:
        """`kubectl VERB --server-side -f MANIFEST` measured as a whole process (CPU time too)."""
        return run_measured([*self.base, verb, "--server-side", f"--field-manager={self.field_manager}", "-f",
                             str(self.manifest), *extra], expect=expect)

    def version(self) -> str:
        completed = subprocess.run([*self.base, "version", "--client", "-o", "json"], capture_output=True, text=True,
                                   check=True)
        return json.loads(completed.stdout)["clientVersion"]["gitVersion"]


def _measure(kubectl: Kubectl, runs: int) -> dict:
    kubectl.write_manifest(manifest())
    create_seconds, _, _ = kubectl.run("apply")
    kubectl.cache_dir = kubectl.new_cache_dir()
    cold_diff_seconds, _, _ = kubectl.run("diff")  # the discovery cache is warm from here on
    timings: dict[str, list[float]] = {}
    rss: dict[str, list[int]] = {}
    for _ in range(runs):
        for name, objects, verb, expect in CASES:
            kubectl.write_manifest(objects)
            seconds, peak, _ = kubectl.run(verb, expect=expect)
            timings.setdefault(name, []).append(seconds)
            rss.setdefault(name, []).append(peak)
    requests = {}
    for name, objects, verb, expect in CASES:
        kubectl.write_manifest(objects)
        _, _, log = kubectl.run(verb, "-v=6", expect=expect)
        requests[name] = kubectl_requests(log)
    return {
        "benchmark": "kubectl_baseline",
        "machine": machine(),
        "kubectl": kubectl.version(),
        "objects": len(manifest()),
        "runs": runs,
        "first_apply_create_cold_discovery_seconds": round(create_seconds, 4),
        "first_diff_cold_discovery_seconds": round(cold_diff_seconds, 4),
        "commands": {name: {"seconds": stats(timings[name]), "peak_rss_mib": round(max(rss[name]) / 2**20, 1),
                            "requests": requests[name]} for name in timings},
    }


# One round: a no-op diff and apply of what is live, a diff and an apply of one changed image, and an apply back
# (untimed in the results) so that every round starts from the same live objects.
CASES: tuple[tuple[str, list[dict], str, tuple[int, ...]], ...] = (
    ("diff_no_change", manifest(), "diff", (0,)),
    ("apply_no_change", manifest(), "apply", (0,)),
    ("diff_one_image_changed", manifest("v1.1.1"), "diff", (1,)),  # kubectl diff exits 1 when it found changes
    ("apply_one_image_changed", manifest("v1.1.1"), "apply", (0,)),
    ("apply_back", manifest(), "apply", (0,)),
)


_REQUEST = re.compile(r'"Response" verb="(?P<verb>[A-Z]+)" url="https://[^/"]+(?P<path>[^"?]*)')


def kubectl_requests(log: str) -> dict:
    calls = [f"{match['verb']} {match['path']}" for match in _REQUEST.finditer(log)]
    return {"count": len(calls), "by_verb": {verb: sum(1 for call in calls if call.startswith(verb + " "))
                                             for verb in sorted({call.split()[0] for call in calls})}}


def _markdown(result: dict) -> str:
    rows = "\n".join(
        f"| `kubectl {name.split('_', 1)[0]} --server-side` ({name.split('_', 1)[1].replace('_', ' ')}) | "
        f"{c['seconds']['median'] * 1000:.1f} | {c['seconds']['p90'] * 1000:.1f} | {c['peak_rss_mib']} | "
        f"{c['requests']['count']} ({', '.join(f'{v} {n}' for v, n in c['requests']['by_verb'].items())}) |"
        for name, c in result["commands"].items() if name != "apply_back")
    return (f"# kubectl server-side diff/apply of the tutorial's {result['objects']} objects "
            f"(kubectl {result['kubectl']}, sandbox apiserver, {result['runs']} runs, {result['machine']['cpus']} "
            f"cores, load average {result['machine']['load_average_1min_at_end']})\n\n"
            f"Whole process, warm discovery cache. With a cold one: the first apply (create) "
            f"{result['first_apply_create_cold_discovery_seconds'] * 1000:.0f} ms, a no-op diff "
            f"{result['first_diff_cold_discovery_seconds'] * 1000:.0f} ms.\n\n"
            f"| command | median ms | p90 ms | peak RSS MiB | API requests |\n|---|---|---|---|---|\n{rows}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
