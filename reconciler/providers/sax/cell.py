"""One Sax cell, reached as a user reaches it on GKE without a public address.

The admin writes its address ("IP:port") into `sax/<cell>/location.proto` under the Sax root in the admin bucket;
clients read it (uncached) to find the admin (RECIPES §11). saxctl reads it, finds the pod with that IP among the
admin Deployment's pods, and reaches its port through the Kubernetes API's port-forward. The HTTP server is reached
the same way (any ready pod of its Deployment).

Every admin call is logged at INFO (`saxctl -v`), method and milliseconds: how calls are counted (tests, bench).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from reconciler.errors import RemoteError
from reconciler.providers.google_errors import remote_call
from reconciler.providers.kubernetes import access
from reconciler.providers.kubernetes.api import KubeApi
from reconciler.providers.kubernetes.kinds import KINDS
from reconciler.providers.kubernetes.manifests import MODEL_SERVER
from reconciler.providers.kubernetes.options import KubeOptions
from reconciler.providers.sax.admin_errors import admin_error
from reconciler.providers.sax.decide import AssignedServer, Published, Servers
from reconciler.providers.sax.portforward import PortForward

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 15.0
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the annotation `kubectl rollout restart` sets
RESTART_MANAGER = "saxctl-rollout-restart"


def location_object(params: Mapping[str, Any]) -> str:
    """The admin's location file, under the Sax root: sax-root/sax/<cell>/location.proto."""
    return f"{params['sax_root']}/{params['cell'].strip('/')}/location.proto"


class Kube:
    """The cluster's apiserver, as the Kubernetes provider reaches it: the GKE endpoint and CA, or --kubeconfig."""

    def __init__(self, params: Mapping[str, Any], options: KubeOptions):
        if options.kubeconfig:
            self.endpoint = access.from_kubeconfig(options.kubeconfig, options.context)
        else:
            self.endpoint = access.from_cluster(params["cluster"], params["endpoint"], params["ca_certificate"])
        self.api = KubeApi(self.endpoint)

    def pods(self, namespace: str, app: str) -> list[dict]:
        return self.api.list(KINDS["Pod"].collection(namespace), f"pods of {namespace}/{app}", f"app={app}")

    def restart_deployment(self, namespace: str, name: str) -> None:
        """`kubectl rollout restart`: a new pod template annotation, so the Deployment rolls out new pods. A merge
        patch of its own field manager: the annotation is no field saxctl applies, so it never shows as drift."""
        from datetime import datetime, timezone

        moment = datetime.now(timezone.utc).isoformat(timespec="seconds")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: moment}}}}}
        self.api.request("PATCH", KINDS["Deployment"].path(namespace, name), query={"fieldManager": RESTART_MANAGER},
                         body=patch, content_type="application/merge-patch+json",
                         what=f"Deployment {namespace}/{name}")

    def forward(self, namespace: str, pod: str, port: int) -> PortForward:
        return PortForward(self.endpoint, namespace, pod, port)


class Cell:
    """The admin of one cell: located once, then each call through one port-forward and one gRPC channel."""

    def __init__(self, params: Mapping[str, Any], storage_client, kube: Kube):
        self.params, self._storage, self.kube = params, storage_client, kube
        self.location_url = f"gs://{params['admin_bucket']}/{location_object(params)}"
        self._forward: PortForward | None = None
        self._channel = None
        self._admin_pod: str | None = None

    # --- finding the admin ---------------------------------------------------------------------------------------

    def admin_location(self) -> str | None:
        """"IP:port" the admin wrote, or None when no admin has started in this cell yet."""
        from google.api_core.exceptions import NotFound

        from reconciler.saxproto import admin_pb2

        blob = self._storage.bucket(self.params["admin_bucket"]).blob(location_object(self.params))
        with remote_call("storage.objects.get", self.location_url):
            try:
                data = blob.download_as_bytes(timeout=CALL_TIMEOUT_S, retry=None)
            except NotFound:
                return None
        return admin_pb2.Location.FromString(data).location or None

    def admin_pod(self, location: str) -> str:
        """The admin Deployment's pod whose IP the location names."""
        ip = location.rsplit(":", 1)[0]
        namespace, app = self.params["namespace"], self.params["admin"]
        pods = self.kube.pods(namespace, app)
        for pod in pods:
            if (pod.get("status") or {}).get("podIP") == ip and not pod["metadata"].get("deletionTimestamp"):
                return pod["metadata"]["name"]
        ips = ", ".join(f"{p['metadata']['name']} {(p.get('status') or {}).get('podIP') or 'no IP'}" for p in pods)
        raise RemoteError(f"{self.location_url} says the Sax admin is at {location}, but no pod of "
                          f"{namespace}/{app} has IP {ip} ({ips or 'it has no pods'})",
                          hint="The admin may have just restarted and not yet written its new address: plan again "
                               "in a few seconds.")

    def connect(self) -> bool:
        """Open the channel to the admin; False when no admin has written its location yet."""
        if self._channel is not None:
            return True
        location = self.admin_location()
        if location is None:
            return False
        self._admin_pod = self.admin_pod(location)
        port = int(location.rsplit(":", 1)[1])
        self._forward = self.kube.forward(self.params["namespace"], self._admin_pod, port)
        import grpc

        channel = grpc.insecure_channel(self._forward.address)
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            channel.close()
            raise RemoteError(f"cannot reach the Sax admin at pod {self.params['namespace']}/{self._admin_pod}:"
                              f"{port} through the {self._forward.what} within {CONNECT_TIMEOUT_S:.0f} s") from None
        self._channel = channel
        return True

    def close(self) -> None:
        """Closed in the background: grpc's close waits (up to 0.2 s, most of a no-op plan's Sax read) for the
        connectivity poller that channel_ready_future started, and nothing needs to wait for it."""
        channel, forward = self._channel, self._forward
        self._channel = self._forward = None

        def close_both() -> None:
            if channel is not None:
                channel.close()
            if forward is not None:
                forward.close()

        threading.Thread(target=close_both, name="sax-admin-close", daemon=True).start()

    # --- sax.Admin -----------------------------------------------------------------------------------------------

    def call(self, method: str, request, model: str = "", timeout: float = CALL_TIMEOUT_S):
        """sax.Admin/METHOD(request); the admin's errors as saxctl's (admin_errors)."""
        import grpc

        from reconciler.saxproto import admin_pb2_grpc

        stub = admin_pb2_grpc.AdminStub(self._channel)
        started = time.monotonic()
        try:
            reply = getattr(stub, method)(request, timeout=timeout)
        except grpc.RpcError as error:
            log.info("sax Admin/%s → %s (%.0f ms)", method, error.code().name, (time.monotonic() - started) * 1000)
            raise admin_error(method, model, error.code().name, error.details() or "") from None
        log.info("sax Admin/%s → OK (%.0f ms)", method, (time.monotonic() - started) * 1000)
        return reply

    def list(self) -> list[Published]:
        from reconciler.saxproto import admin_pb2

        reply = self.call("List", admin_pb2.ListRequest())
        return [_published(item) for item in reply.published_models]

    def list_one(self, model_id: str) -> Published | None:
        from reconciler.saxproto import admin_pb2
        from reconciler.providers.sax.admin_errors import NotFound

        try:
            reply = self.call("List", admin_pb2.ListRequest(model_id=model_id), model_id)
        except NotFound:
            return None
        return next((_published(item) for item in reply.published_models if item.model.model_id == model_id), None)

    def stats(self) -> Servers:
        from reconciler.saxproto import admin_pb2

        reply = self.call("Stats", admin_pb2.StatsRequest())
        return Servers(dict(reply.num_servers_by_servable_model_path),
                       sum(stat.num_replicas for stat in reply.model_server_type_stats))

    def publish(self, model_id: str, fields: Mapping[str, Any]) -> None:
        from reconciler.saxproto import admin_pb2

        self.call("Publish", admin_pb2.PublishRequest(model=_model(model_id, fields)), model_id)

    def update(self, model_id: str, fields: Mapping[str, Any]) -> None:
        from reconciler.saxproto import admin_pb2

        self.call("Update", admin_pb2.UpdateRequest(model=_model(model_id, fields)), model_id)

    def unpublish(self, model_id: str) -> None:
        from reconciler.saxproto import admin_pb2

        self.call("Unpublish", admin_pb2.UnpublishRequest(model_id=model_id), model_id)

    def assigned_servers(self, addresses: Sequence[str]) -> dict[str, AssignedServer]:
        """What each of these model servers says it holds: sax.Modelet/GetStatus through a port-forward to the model
        server's pod with the address's IP (what `status` shows as loaded; the admin's count can be stale)."""
        import grpc

        from reconciler.saxproto import modelet_pb2, modelet_pb2_grpc

        if not addresses:
            return {}
        namespace = self.params["namespace"]
        pods = {(pod.get("status") or {}).get("podIP"): pod for pod in self.kube.pods(namespace, MODEL_SERVER)
                if not pod["metadata"].get("deletionTimestamp")}
        found = {}
        for address in dict.fromkeys(addresses):
            ip, port = address.rsplit(":", 1)
            pod = pods.get(ip)
            if pod is None:
                found[address] = AssignedServer(address, None)
                continue
            name = pod["metadata"]["name"]
            restarts = sum(container.get("restartCount", 0)
                           for container in (pod.get("status") or {}).get("containerStatuses") or [])
            forward = self.kube.forward(namespace, name, int(port))
            channel = grpc.insecure_channel(forward.address)
            started = time.monotonic()
            try:
                reply = modelet_pb2_grpc.ModeletStub(channel).GetStatus(
                    modelet_pb2.GetStatusRequest(include_failure_reasons=True), timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                log.info("sax Modelet/GetStatus %s → %s", address, error.code().name)
                found[address] = AssignedServer(address, name, restarts,
                                                unreachable=f"{error.code().name}: {error.details() or ''}")
                continue
            finally:
                channel.close()
                forward.close()
            log.info("sax Modelet/GetStatus %s → OK (%.0f ms)", address, (time.monotonic() - started) * 1000)
            found[address] = AssignedServer(address, name, restarts, {
                model.model_key: (model.model_status, model.failure_reason) for model in reply.models})
        return found

    def wait_for_ready(self, model_id: str, replicas: int, timeout: float) -> bool:
        """True once `replicas` replicas are loaded, False when timeout passes first."""
        from reconciler.providers.sax.admin_errors import RetryableError
        from reconciler.saxproto import admin_pb2

        request = admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=replicas)
        try:
            self.call("WaitForReady", request, model_id, timeout=timeout)
        except RetryableError as error:
            if "DEADLINE_EXCEEDED" in error.message:
                return False
            raise
        return True


def _model(model_id: str, fields: Mapping[str, Any]):
    from reconciler.saxproto import admin_pb2

    return admin_pb2.Model(model_id=model_id, model_path=fields["model_path"], checkpoint_path=fields["checkpoint"],
                           requested_num_replicas=int(fields["replicas"]), overrides=dict(fields["overrides"]))


def _published(item) -> Published:
    model = item.model
    return Published(model.model_id, model.model_path, model.checkpoint_path, model.requested_num_replicas,
                     dict(model.overrides), tuple(item.modelet_addresses))


def with_cell(params: Mapping[str, Any], storage_client, kube: Kube, work: Callable[[Cell], Any]) -> Any:
    """work(cell) with a connected cell (None when no admin has started), closed afterwards."""
    cell = Cell(params, storage_client, kube)
    try:
        return work(cell if cell.connect() else None)
    finally:
        cell.close()
