"""What a chaos run finds in the sandbox, read from every emulator and the apiserver (never from saxctl's output).

A snapshot is the world of one run's project and namespace, with the run's name replaced by `RUN`, so that the
snapshot of a faulted or crashed run compares equal to the baseline's when both ended in the same state. Names the
world chooses itself (operation ids, pod and ReplicaSet hashes, generations) are left out; counts stay in.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from bench.harness import call

ZONE = "us-central1-a"
FOREIGN_LABEL = {"owner": "someone-else"}
FOREIGN_MEMBER = "user:someone-else@example.com"
FOREIGN_ROLE = "roles/viewer"
FOREIGN_CONFIG_MAP = "someone-elses-config"
SAX_MODEL = "/sax/test/gptj4bf16bs32"  # the demo spec's model (specs/gptj-v5e-2x2.yaml)
SAX_FILES = ("sax-root/", "sax-fs-root/")  # under the admin bucket: the Sax servers' own (SAX_ROOT, fs_root)
_TIMEOUT_S = 10


class World:
    """The sandbox's APIs, read and seeded with another owner's objects by plain wire calls (and the apiserver's
    and IAM's own clients, which saxctl uses too)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.gcs = env["STORAGE_EMULATOR_HOST"]
        self.gke = env["SAXCTL_GKE_ENDPOINT"]
        self.compute = env["SAXCTL_COMPUTE_ENDPOINT"]
        self.resourcemanager = env["SAXCTL_RESOURCEMANAGER_ENDPOINT"]

    # Another owner's objects, made before saxctl runs, that it must leave exactly as they are.

    def plant_foreign(self, project: str, namespace: str) -> dict:
        call("POST", f"{self.gcs}/storage/v1/b?project={project}",
             {"name": f"{project}-foreign", "labels": FOREIGN_LABEL})
        policy = call("POST", f"{self.resourcemanager}/v3/projects/{project}:getIamPolicy", {})
        policy["bindings"] = [*policy.get("bindings", []), {"role": FOREIGN_ROLE, "members": [FOREIGN_MEMBER]}]
        call("POST", f"{self.resourcemanager}/v3/projects/{project}:setIamPolicy", {"policy": policy})
        from kubernetes import client

        self.make_namespace(namespace)
        with self._kube() as api:
            client.CoreV1Api(api).create_namespaced_config_map(namespace, {"metadata": {"name": FOREIGN_CONFIG_MAP},
                                                                           "data": {"owner": "someone-else"}})
        return self.foreign(project, namespace)

    def make_namespace(self, namespace: str) -> None:
        """The run's namespace, as the demo's `default` exists in a new cluster (saxctl creates no namespace)."""
        from kubernetes import client

        with self._kube() as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})

    def foreign(self, project: str, namespace: str) -> dict:
        """Another owner's objects as they are now (bucket labels and metageneration, the IAM member, the map)."""
        from kubernetes import client

        bucket = call("GET", f"{self.gcs}/storage/v1/b/{project}-foreign")
        policy = call("POST", f"{self.resourcemanager}/v3/projects/{project}:getIamPolicy", {})
        members = sorted(member for binding in policy.get("bindings", []) if binding["role"] == FOREIGN_ROLE
                         for member in binding["members"])
        with self._kube() as api:
            config_map = client.CoreV1Api(api).read_namespaced_config_map(FOREIGN_CONFIG_MAP, namespace)
        return {"bucket": {"labels": bucket.get("labels"), "metageneration": bucket.get("metageneration")},
                "iam_members": members,
                "config_map": {"data": config_map.data, "resourceVersion": config_map.metadata.resource_version}}

    # The run's own world.

    def snapshot(self, project: str, namespace: str) -> dict:
        raw = {"gcs": self._gcs(project), "gke": self._gke(project), "resourcemanager": self._policy(project),
               "iam": self._iam(project), "kubernetes": self._kubernetes(namespace), "sax": self._sax(namespace)}
        raw["compute"] = self._compute(raw["gke"].pop("_instance_groups"))
        return json.loads(json.dumps(raw).replace(project, "RUN").replace(namespace, "RUN"))

    def lock_objects(self, project: str) -> list[str]:
        """saxctl's lock objects left in the run's buckets (gs://B/saxctl/lock.json)."""
        return [f"gs://{bucket}/{name}" for bucket, objects in self._gcs(project)["objects"].items()
                for name in objects if name.endswith("lock.json")]

    def _gcs(self, project: str) -> dict:
        buckets = call("GET", f"{self.gcs}/storage/v1/b?project={project}").get("items", [])
        listing = {"buckets": {}, "objects": {}}
        for bucket in sorted(buckets, key=lambda bucket: bucket["name"]):
            if bucket["name"] == f"{project}-foreign":
                continue
            listing["buckets"][bucket["name"]] = {"labels": bucket.get("labels", {}),
                                                  "location": bucket.get("location")}
            listing["objects"][bucket["name"]] = self._objects(bucket["name"])
        return listing

    def _objects(self, bucket: str) -> dict[str, int | str]:
        """Each object's size; the Sax servers' own files only as present: they hold pod IPs, whose length varies."""
        names: dict[str, int | str] = {}
        token = ""
        while True:
            query = urllib.parse.urlencode({"pageToken": token} if token else {})
            page = call("GET", f"{self.gcs}/storage/v1/b/{bucket}/o?{query}")
            for item in page.get("items", []):
                names[item["name"]] = "present" if item["name"].startswith(SAX_FILES) else int(item.get("size", 0))
            token = page.get("nextPageToken", "")
            if not token:
                return dict(sorted(names.items()))

    def _gke(self, project: str) -> dict:
        clusters = call("GET", f"{self.gke}/v1/projects/{project}/locations/{ZONE}/clusters").get("clusters", [])
        listing: dict = {"clusters": {}, "_instance_groups": []}
        for cluster in clusters:
            pools = {pool["name"]: {"nodes": pool.get("initialNodeCount"), "status": pool.get("status"),
                                    "machineType": pool.get("config", {}).get("machineType")}
                     for pool in cluster.get("nodePools", [])}
            listing["clusters"].setdefault(cluster["name"], []).append({"status": cluster.get("status"),
                                                                        "pools": pools})
            listing["_instance_groups"] += [url for pool in cluster.get("nodePools", [])
                                            for url in pool.get("instanceGroupUrls", [])]
        return listing

    def _compute(self, instance_groups: list[str]) -> dict:
        """The managed instance groups of the clusters' pools, as Compute serves them."""
        groups = {}
        for url in instance_groups:
            path = url[url.index("/projects/"):]
            group = call("GET", f"{self.compute}/compute/v1{path}")
            groups[group["name"].rsplit("-", 2)[0]] = group.get("targetSize")
        return dict(sorted(groups.items()))

    def _policy(self, project: str) -> dict:
        policy = call("POST", f"{self.resourcemanager}/v3/projects/{project}:getIamPolicy", {})
        return {binding["role"]: sorted(binding["members"]) for binding in policy.get("bindings", [])
                if binding["role"] != FOREIGN_ROLE}

    def _iam(self, project: str) -> dict:
        import grpc
        from google.cloud.iam_admin_v1 import IAMClient
        from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

        with grpc.insecure_channel(self.env["SAXCTL_IAM_ENDPOINT"]) as channel:
            iam = IAMClient(transport=IAMGrpcTransport(channel=channel))
            accounts = list(iam.list_service_accounts(name=f"projects/{project}", timeout=_TIMEOUT_S))
            listing = {}
            for account in accounts:
                policy = iam.get_iam_policy(request={"resource": account.name}, timeout=_TIMEOUT_S)
                listing.setdefault(account.email, []).append(
                    {binding.role: sorted(binding.members) for binding in policy.bindings})
        return listing

    def _kubernetes(self, namespace: str) -> dict:
        from kubernetes import client

        with self._kube() as api:
            apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
            deployments = apps.list_namespaced_deployment(namespace).items
            replica_sets = apps.list_namespaced_replica_set(namespace).items
            owned = {deployment.metadata.name: 0 for deployment in deployments}
            for replica_set in replica_sets:
                for owner in replica_set.metadata.owner_references or []:
                    owned[owner.name] = owned.get(owner.name, 0) + 1
            return {
                "deployments": {item.metadata.name: {"replicas": item.spec.replicas, "replica_sets": owned[
                    item.metadata.name]} for item in deployments},
                "services": sorted(item.metadata.name for item in core.list_namespaced_service(namespace).items),
                "service_accounts": sorted(item.metadata.name
                                           for item in core.list_namespaced_service_account(namespace).items),
                "config_maps": sorted(item.metadata.name for item in core.list_namespaced_config_map(namespace).items
                                      if item.metadata.name != FOREIGN_CONFIG_MAP),
            }

    def _sax(self, namespace: str) -> dict:
        """The demo's model as the cell's Sax HTTP server lists it, asked at its pod's IP as a user in the VPC would
        (its /listcell takes one model): path, checkpoint, replicas asked for and serving; None when not published."""
        from kubernetes import client

        with self._kube() as api:
            pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=sax-http").items
        addresses = [pod.status.pod_ip for pod in pods if pod.status.pod_ip and pod.status.phase == "Running"]
        if not addresses:
            return {"http_server": None}
        request = urllib.request.Request(f"http://{addresses[0]}:8888/listcell", method="GET",
                                         data=json.dumps({"model": SAX_MODEL}).encode())
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return {SAX_MODEL: json.loads(response.read())}
        except urllib.error.HTTPError as error:  # 400 with the admin's text: not published
            return {SAX_MODEL: None, "http_status": error.code}

    def sax_admin_controls(self, namespace: str) -> list[str]:
        """The sandbox control URL (http://IP:port/_sandbox) of each running Sax admin stand-in of the namespace."""
        from kubernetes import client

        from reconciler.providers.kubernetes.manifests import ADMIN_PORT, ADMIN_SERVER
        from reconciler.sandbox.sax.standin import control_port

        with self._kube() as api:
            pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"app={ADMIN_SERVER}").items
        return [f"http://{pod.status.pod_ip}:{control_port(ADMIN_PORT)}/_sandbox" for pod in pods
                if pod.status.pod_ip and pod.status.phase == "Running"]

    def _kube(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=self.env["SAXCTL_SANDBOX_KUBECONFIG"])


def differences(expected: object, found: object, where: str = "") -> list[str]:
    """Where two snapshots differ, one line each: `gcs.objects.RUN-sax-data: expected ..., found ...`."""
    if isinstance(expected, dict) and isinstance(found, dict):
        lines = []
        for key in sorted(set(expected) | set(found)):
            here = f"{where}.{key}" if where else str(key)
            if key not in found:
                lines.append(f"{here}: missing (expected {json.dumps(expected[key])[:200]})")
            elif key not in expected:
                lines.append(f"{here}: unexpected {json.dumps(found[key])[:200]}")
            else:
                lines += differences(expected[key], found[key], here)
        return lines
    return [] if expected == found else [f"{where}: expected {json.dumps(expected)[:200]}, found "
                                         f"{json.dumps(found)[:200]}"]
