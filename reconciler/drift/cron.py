"""`saxctl cron render SPEC`: what runs the drift corrector in the spec's own cluster, as YAML documents.

A CronJob running `saxctl drift --correct` from the saxctl image on the spec held in a ConfigMap; a Kubernetes
service account bound by Workload Identity to a Google service account of the corrector's own (its roles are listed
in the README, each with why); and RBAC limited to what saxctl manages: the Sax objects' kinds in their namespace,
Events there, and listing what it looks up across namespaces (CLUSTER_RULES). On GKE saxctl reaches the apiserver
with the Google account's token, so the RBAC subject is that account (GKE names a Google identity by its email). The
Kubernetes service account is a subject too: it is what the apiserver knows the corrector as where its Google token
is the service account's own (the sandbox's stand-in for Workload Identity, reconciler/sandbox/kube/pod_volumes.py),
and it grants no pod anything new — on GKE only pods of that service account get the Google account's token.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.providers.iam.resources import email_of
from reconciler.providers.kubernetes.manifests import WORKLOAD_IDENTITY, namespace_of
from reconciler.spec.model import Spec

SPEC_DIR = "/etc/saxctl"
SPEC_FILE = "spec.yaml"
METRICS_DIR = "/var/run/saxctl"
# The kinds saxctl applies (kinds.py), the pods a rollout reads and Sax is reached through, and the Events a
# drift run posts.
MANAGED_RULES = (
    {"apiGroups": [""], "resources": ["serviceaccounts", "services", "configmaps"],
     "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"],
     "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    # saxctl reaches the Sax admin and HTTP server through the apiserver's port-forward (a websocket GET; SPDY: create)
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
)
# Read across namespaces (found by running the CronJob in the sandbox, as its service account): the spec's ApplySet
# records are looked up in every namespace (a record left where the spec no longer puts its objects), and a waiting
# rollout names what runs on the node it waits for. RBAC cannot narrow a list to a label selector.
CLUSTER_RULES = (
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["list"]},
)


@dataclass(frozen=True, slots=True)
class CronOptions:
    image: str
    schedule: str = "*/10 * * * *"
    time_zone: str = "Etc/UTC"
    google_service_account: str | None = None  # email; default saxctl-drift@PROJECT
    pushgateway: str | None = None
    lock_timeout_s: int = 120
    active_deadline_s: int = 1800  # a run gives up before the next ones pile up (concurrencyPolicy Forbid skips them)


def cron_objects(spec: Spec, spec_text: str, options: CronOptions) -> list[dict[str, Any]]:
    namespace, name = namespace_of(spec), f"saxctl-drift-{spec.name}"
    # Not saxctl's ownership mark: saxctl does not apply these, a person or a GitOps tool does.
    labels = {"app.kubernetes.io/name": "saxctl-drift", "app.kubernetes.io/instance": spec.name}
    gsa = options.google_service_account or email_of(spec.project.id, "saxctl-drift")

    def meta(object_name: str = name, namespaced: bool = True, **extra) -> dict[str, Any]:
        where = {"namespace": namespace} if namespaced else {}
        return {"name": object_name, **where, "labels": dict(labels), **extra}

    subjects = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": gsa},
                {"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": meta(annotations={WORKLOAD_IDENTITY: gsa})},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(),
         "rules": [dict(rule) for rule in MANAGED_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": subjects},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(namespaced=False),
         "rules": [dict(rule) for rule in CLUSTER_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": meta(namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": subjects},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(f"{name}-spec"), "data": {SPEC_FILE: spec_text}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(), "spec": _cron_spec(name, labels, options)},
    ]


def _cron_spec(name: str, labels: dict[str, str], options: CronOptions) -> dict[str, Any]:
    args = ["drift", f"{SPEC_DIR}/{SPEC_FILE}", "--correct", "--lock-timeout", str(options.lock_timeout_s),
            "--metrics-file", f"{METRICS_DIR}/saxctl_drift.prom"]
    if options.pushgateway:
        args += ["--pushgateway", options.pushgateway]
    container = {
        "name": "saxctl", "image": options.image, "args": args,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
                         {"name": "metrics", "mountPath": METRICS_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = {"metadata": {"labels": dict(labels)},
           "spec": {"serviceAccountName": name, "restartPolicy": "Never", "containers": [container],
                    "volumes": [{"name": "spec", "configMap": {"name": f"{name}-spec"}},
                                {"name": "metrics", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}}
    return {
        "schedule": options.schedule,
        "timeZone": options.time_zone,
        "concurrencyPolicy": "Forbid",  # never two correctors at once (the lock would refuse the second anyway)
        "startingDeadlineSeconds": 300,  # a run missed by more than this is skipped, not caught up
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": dict(labels)},
                        "spec": {"backoffLimit": 1, "activeDeadlineSeconds": options.active_deadline_s,
                                 "template": pod}},
    }


def cron_yaml(spec: Spec, spec_path: str, options: CronOptions) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096
    out = io.StringIO()
    out.write(f"# The drift corrector of spec {spec.name} ({spec_path}): `saxctl drift --correct` every "
              f"{options.schedule!r} ({options.time_zone}).\n# Apply with kubectl apply --server-side -f -; the "
              "Google service account's roles are in the README (Drift).\n")
    for index, manifest in enumerate(cron_objects(spec, Path(spec_path).read_text(), options)):
        out.write("---\n" if index else "")
        yaml.dump(manifest, out)
    return out.getvalue()
