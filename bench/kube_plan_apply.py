"""saxctl plan/apply against kubectl diff/apply --server-side and Ansible's kubernetes.core.k8s (check mode and
apply): the same manifests, the same apiserver, one run.

The manifests are the ones `saxctl render` prints for the tutorial's spec (the ApplySet record, the KSA, the three
Sax Deployments, the HTTP Service), applied by kubectl and Ansible with field manager saxctl too, so that any tool's
apply is a true no-op after another's. kubectl is the sandbox's (the apiserver's version), with a warm discovery
cache; Ansible is the `bench` extra's (bench/ansible_baseline.py).

Every command is timed as a whole process (interpreter start and imports included), interleaved round by round so
that the shared machine's load weighs on both alike. Requests are counted from each client's own log, in one extra
run each: saxctl's -v (one line per Kubernetes request), kubectl's -v=6. A saxctl plan of the spec also reads what
is not Kubernetes (buckets, the cluster and its pool, IAM, with their clients' imports): to tell that apart, the
results also give `saxctl validate` (start, spec load, no API call), the import of saxctl's Kubernetes provider
against kubernetes.client's, and the provider's own work in process.

Runs in its own sandbox (a temporary state dir), so it never touches a sandbox you have running.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from bench.ansible_baseline import Ansible, changed
from bench.harness import in_own_sandbox, machine, run_measured, stats, write_results
from bench.kubectl_baseline import Kubectl, kubectl_requests

HTTP_IMAGE = "us-docker.pkg.dev/cloud-tpu-images/inference/sax-http"
SPEC = """\
apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {{name: bench-kube}}
project: {{id: saxctl-bench, region: us-central1}}
cluster:
  name: bench
  location: us-central1-a
  releaseChannel: RAPID
  cpuNodes: {{count: 2, machineType: e2-standard-4}}
  tpuPools:
    - {{name: tpu, machineType: ct5lp-hightpu-4t, topology: 2x2, nodes: 1}}
buckets:
  admin: {{name: bench-kube-admin, location: US}}
  data: {{name: bench-kube-data, location: US}}
identity:
  kubernetesServiceAccount: {{namespace: default, name: sax-sa}}
  googleServiceAccount: {{name: sax-iam-sa, projectRoles: [roles/storage.admin]}}
sax:
  cell: /sax/test
  adminServer: {{image: us-docker.pkg.dev/cloud-tpu-images/inference/sax-admin-server:v1.1.0}}
  modelServer: {{image: us-docker.pkg.dev/cloud-tpu-images/inference/sax-model-server:v1.1.0, pool: tpu}}
  httpServer: {{image: "{http_image}", port: 8888, exposure: internal}}
"""
_KUBE_REQUEST = re.compile(r"kubernetes (?P<verb>[A-Z]+) (?P<path>\S+) →")


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.kube_plan_apply", description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="rounds to time (default 9)")
    args = parser.parse_args(argv)

    from reconciler.sandbox import gobuild

    kubectl = gobuild.ensure_binary("kubectl", lambda message: print(f"[sandbox] {message}", file=sys.stderr))
    result = in_own_sandbox(lambda state, scratch: _measure(state, scratch, kubectl, args.runs))
    write_results("kube_plan_apply", result, _markdown(result))
    return result


class Bench:
    """The spec in two versions (one image apart), saxctl and kubectl on it."""

    def __init__(self, state: dict, scratch: Path, kubectl_binary: Path):
        self.env = {**os.environ, **state["env"], "NO_COLOR": "1"}
        self.saxctl = [str(Path(sys.executable).with_name("saxctl"))]
        self.spec = scratch / "bench-kube.yaml"
        self.kubectl = Kubectl(kubectl_binary, state["env"]["SAXCTL_SANDBOX_KUBECONFIG"], scratch,
                               field_manager="saxctl")
        self.ansible = Ansible(state["env"]["SAXCTL_SANDBOX_KUBECONFIG"], scratch, field_manager="saxctl")

    def use(self, http_tag: str) -> None:
        """Both tools on the spec with this sax-http tag: saxctl's spec file, kubectl's manifest of the same objects."""
        from reconciler.providers.kubernetes.manifests import kube_objects
        from reconciler.spec.loader import load_spec

        self.spec.write_text(SPEC.format(http_image=f"{HTTP_IMAGE}:{http_tag}"))
        objects = [member.manifest for member in kube_objects(load_spec(str(self.spec)))]
        self.kubectl.write_manifest(objects)
        self.ansible.write_manifest(objects)

    def run_saxctl(self, *args: str, expect: tuple[int, ...] = (0,)):
        return run_measured([*self.saxctl, *args, str(self.spec)], env=self.env, expect=expect)


# One round: no-op plan/diff and apply; plan/diff of one changed image; apply of it, and back (untimed).
SAXCTL_CASES = {"plan_no_change": ("v1.0.0", ("plan", "--detailed-exitcode"), (0,)),
                "apply_no_change": ("v1.0.0", ("apply", "--auto-approve"), (0,)),
                "plan_one_image_changed": ("v1.0.1", ("plan", "--detailed-exitcode"), (2,)),
                "apply_one_image_changed": ("v1.0.1", ("apply", "--auto-approve"), (0,))}
KUBECTL_CASES = {"diff_no_change": ("v1.0.0", "diff", (0,)), "apply_no_change": ("v1.0.0", "apply", (0,)),
                 "diff_one_image_changed": ("v1.0.1", "diff", (1,)),  # kubectl diff exits 1 when it found changes
                 "apply_one_image_changed": ("v1.0.1", "apply", (0,))}
# Ansible exits 0 either way: what it found is its recap's changed count (one object differs: the sax-http Deployment).
ANSIBLE_CASES = {"check_no_change": ("v1.0.0", "check", 0), "apply_no_change": ("v1.0.0", "apply", 0),
                 "check_one_image_changed": ("v1.0.1", "check", 1), "apply_one_image_changed": ("v1.0.1", "apply", 1)}


def _measure(state: dict, scratch: Path, kubectl_binary: Path, runs: int) -> dict:
    bench = Bench(state, scratch, kubectl_binary)
    bench.use("v1.0.0")
    first_apply = bench.run_saxctl("apply", "--auto-approve").seconds
    bench.kubectl.run("diff")  # fills kubectl's discovery cache, as a kubectl user's is
    timings: dict[str, list[float]] = {}
    rss: dict[str, list[int]] = {}
    for _ in range(runs):
        for name, (tag, args, expect) in SAXCTL_CASES.items():
            bench.use(tag)
            measured = bench.run_saxctl(*args, expect=expect)
            timings.setdefault(f"saxctl_{name}", []).append(measured.seconds)
            rss.setdefault(f"saxctl_{name}", []).append(measured.peak_rss_bytes)
        bench.use("v1.0.0")
        bench.run_saxctl("apply", "--auto-approve")
        for name, (tag, verb, expect) in KUBECTL_CASES.items():
            bench.use(tag)
            seconds, peak, _ = bench.kubectl.run(verb, expect=expect)
            timings.setdefault(f"kubectl_{name}", []).append(seconds)
            rss.setdefault(f"kubectl_{name}", []).append(peak)
        bench.use("v1.0.0")
        bench.kubectl.run("apply")
        for name, (tag, mode, expect_changed) in ANSIBLE_CASES.items():
            bench.use(tag)
            measured = bench.ansible.run(mode)
            assert changed(measured) == expect_changed, (name, measured.out)
            timings.setdefault(f"ansible_{name}", []).append(measured.seconds)
            rss.setdefault(f"ansible_{name}", []).append(measured.peak_rss_bytes)
        bench.use("v1.0.0")
        bench.ansible.run("apply")
    requests = {}
    for name, (tag, args, expect) in SAXCTL_CASES.items():
        bench.use(tag)
        requests[f"saxctl_{name}"] = saxctl_requests(bench.run_saxctl("-v", *args, expect=expect).err)
    bench.use("v1.0.0")
    bench.run_saxctl("apply", "--auto-approve")
    for name, (tag, verb, expect) in KUBECTL_CASES.items():
        bench.use(tag)
        requests[f"kubectl_{name}"] = kubectl_requests(bench.kubectl.run(verb, "-v=6", expect=expect)[2])
    bench.use("v1.0.0")
    bench.run_saxctl("apply", "--auto-approve")
    return {
        "benchmark": "kube_plan_apply",
        "machine": machine(),
        "kubectl": bench.kubectl.version(),
        "ansible": bench.ansible.version(),
        "objects": 6,
        "runs": runs,
        "first_saxctl_apply_seconds": round(first_apply, 3),
        "commands": {name: {"seconds": stats(timings[name]), "peak_rss_mib": round(max(rss[name]) / 2**20, 1),
                            "requests": requests.get(name)} for name in timings},
        **_floors(bench, runs),
    }


def saxctl_requests(log: str) -> dict:
    """Kubernetes requests from saxctl's -v log; what else the plan asked (buckets, GKE, IAM) is not in that log."""
    verbs = Counter(match["verb"] for match in _KUBE_REQUEST.finditer(log))
    return {"count": sum(verbs.values()), "by_verb": dict(sorted(verbs.items()))}


def _floors(bench: Bench, runs: int) -> dict:
    """What a saxctl plan of this spec pays before and beside the Kubernetes requests."""
    validate = [bench.run_saxctl("validate").seconds for _ in range(runs)]
    # What a plan imports anyway (the provider table: every family's desired resources), alone and with each client.
    base = "reconciler.providers.table"
    imports = {module: stats([run_measured([sys.executable, "-c", f"import {module}"]).seconds for _ in range(runs)])
               for module in (base, f"{base}, reconciler.providers.kubernetes.provider", f"{base}, kubernetes.client")}
    return {"saxctl_validate_seconds": stats(validate), "import_seconds": imports,
            "kube_provider_in_process": _in_process(bench, runs)}


def _in_process(bench: Bench, runs: int) -> dict:
    """The Kubernetes provider's own part of a no-op plan: observe the six objects, list the ApplySet, diff."""
    import logging

    from reconciler.engine.resource import resolved
    from reconciler.providers.kubernetes.options import KubeOptions
    from reconciler.providers.kubernetes.provider import KubernetesProvider
    from reconciler.providers.kubernetes.resources import desired_resources
    from reconciler.spec.loader import load_spec

    spec = load_spec(str(bench.spec))
    cluster = {"endpoint": "via-kubeconfig", "ca_certificate": ""}  # --kubeconfig: the cluster's outputs are unused
    resources = [resolved(r, {r.inside: cluster}) for r in desired_resources(spec)]
    provider = KubernetesProvider(KubeOptions(kubeconfig=bench.kubectl.kubeconfig))
    counted: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: counted.append(record.getMessage())
    log = logging.getLogger("reconciler.providers.kubernetes.api")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    seconds = []
    provider.observe(resources[:1])  # connects (TLS) and reads the kubeconfig once, as the first read of a plan does
    for _ in range(runs):
        counted.clear()
        started = time.perf_counter()
        observed = provider.observe(resources)
        provider.owned(spec.name, frozenset(r.kind for r in resources), {})
        actions = {provider.diff(r, observed[r.address]).action.value for r in resources}
        seconds.append(time.perf_counter() - started)
        assert actions == {"no-op"}, actions
    log.removeHandler(handler)
    return {"seconds": stats(seconds), "requests": len(counted)}


def _markdown(result: dict) -> str:
    commands = result["commands"]

    def row(name: str, label: str) -> str:
        c = commands[name]
        counted = c["requests"]
        requests = "not counted"
        if counted:
            verbs = ", ".join(f"{verb} {n}" for verb, n in counted["by_verb"].items())
            requests = f"{counted['count']} ({verbs})"
        return (f"| {label} | {c['seconds']['median'] * 1000:.0f} | {c['seconds']['p90'] * 1000:.0f} | "
                f"{c['peak_rss_mib']} | {requests} |")

    rows = "\n".join([
        row("kubectl_diff_no_change", "`kubectl diff --server-side` (no change)"),
        row("ansible_check_no_change", "`ansible-playbook --check` kubernetes.core.k8s (no change)"),
        row("saxctl_plan_no_change", "`saxctl plan` (no change)"),
        row("kubectl_apply_no_change", "`kubectl apply --server-side` (no change)"),
        row("ansible_apply_no_change", "`ansible-playbook` kubernetes.core.k8s (no change)"),
        row("saxctl_apply_no_change", "`saxctl apply` (no change: lock, plan)"),
        row("kubectl_diff_one_image_changed", "`kubectl diff --server-side` (one image changed)"),
        row("ansible_check_one_image_changed", "`ansible-playbook --check` (one image changed)"),
        row("saxctl_plan_one_image_changed", "`saxctl plan` (one image changed)"),
        row("kubectl_apply_one_image_changed", "`kubectl apply --server-side` (one image changed)"),
        row("ansible_apply_one_image_changed", "`ansible-playbook` (one image changed)"),
        row("saxctl_apply_one_image_changed", "`saxctl apply` (one image changed, waits for the rollout)"),
    ])
    imports = result["import_seconds"]
    kube = result["kube_provider_in_process"]
    return (f"# saxctl vs kubectl and Ansible on the tutorial's Kubernetes objects (kubectl {result['kubectl']}, "
            f"{result['ansible']}, sandbox "
            f"apiserver, {result['runs']} runs, {result['machine']['cpus']} cores, load average "
            f"{result['machine']['load_average_1min_at_end']})\n\n"
            "Whole processes, interleaved. Requests: to the apiserver only, each client's own count (saxctl's plan "
            "also reads the buckets, the GKE cluster and pool, and IAM, from their emulators); Ansible logs none.\n\n"
            "| command | median ms | p90 ms | peak RSS MiB | Kubernetes requests |\n|---|---|---|---|---|\n"
            f"{rows}\n\nWhat a saxctl plan pays besides: `saxctl validate` of the spec (CLI start, spec load and "
            f"checks, no API call) {result['saxctl_validate_seconds']['median'] * 1000:.0f} ms; importing saxctl's "
            "Kubernetes provider on top of the provider table every plan imports "
            f"{_more(imports, 'reconciler.providers.kubernetes.provider')} ms, where `kubernetes.client` would add "
            f"{_more(imports, 'kubernetes.client')} ms; the provider's own "
            f"no-op work in process (observe the six objects, list the ApplySet, diff) "
            f"{kube['seconds']['median'] * 1000:.1f} ms in {kube['requests']} requests.\n")


def _more(imports: dict, module: str) -> str:
    base = "reconciler.providers.table"
    return f"{(imports[f'{base}, {module}']['median'] - imports[base]['median']) * 1000:.0f}"


if __name__ == "__main__":
    main(sys.argv[1:])
