"""The sandbox's pod runner: the part of a kubelet kwok does not play. It runs a local process for each container of a
pod on a kwok node whose image it knows (images.py), so that Sax's pods really serve, because the Kubernetes objects
say so.

It watches pods and nodes (list, then watch from the list's resourceVersion; list again when the watch expires) and
after each change makes the running processes match (pod_containers.py says which, with what command line and env):
a new pod's volumes are made (pod_volumes.py) and its containers start, a pod being deleted or whose node went has
them stopped (SIGTERM, then SIGKILL after the pod's grace period), a process that exits is restarted with backoff
(containers.py) and the pod's status says so as a kubelet's would (not ready and CrashLoopBackOff while it waits, then
restartCount and lastState). A process its restartPolicy does not restart (a Job's pod) ends its container as
terminated with its exit code, and the pod as Succeeded or Failed once every container has (kwok leaves such pods to
the runner: kwok_stages.py), so the Job controller counts it as it counts a kubelet's. For each pod it
runs it writes kwok's PortForward (each declared port → the pod's IP, where the process listens) and Logs (each
container's current and previous log file), so `kubectl port-forward` and `kubectl logs` through the apiserver reach
the process.

Control endpoints (beside health): GET /_sandbox/containers — each process: pod, container, pid, restarts, log dir;
POST /_sandbox/standin-faults {"namespace": NS, "container": NAME, "rules": [...]} — the fault rules (faults.py's)
a stand-in of that container in that namespace gets at its start (SAXCTL_SANDBOX_FAULTS), so that its first call is
already faulted (chaos runs: the Sax admin a run's apply creates); GET lists them, DELETE forgets them all (the
processes keep theirs until told otherwise at their own control port).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.sandbox import paths
from reconciler.sandbox.base import launch
from reconciler.sandbox.base.api_errors import ApiError
from reconciler.sandbox.base.faults import FaultRule
from reconciler.sandbox.base.httpbase import EmulatorHandler, EmulatorServer
from reconciler.sandbox.base.routes import RouteTable, route
from reconciler.sandbox.kube import images as image_table
from reconciler.sandbox.kube import kwok_resources
from reconciler.sandbox.kube.containers import ContainerProcess, ContainerSpec, Exit, Run
from reconciler.sandbox.kube.control_plane import KWOK_NODE_ANNOTATION
from reconciler.sandbox.kube.pod_containers import container_specs, pod_ports, runnable_pod, runs_any
from reconciler.sandbox.kube.pod_volumes import PodVolumes, VolumeUnavailable
from reconciler.sandbox.sax.standin import FAULTS_ENV

log = logging.getLogger(__name__)

_FIELD_MANAGER = "saxctl-sandbox-pod-runner"
_WATCH_S = 240  # each watch request's server-side timeout; the watch resumes from the last resourceVersion
_REQUEST_TIMEOUT_S = (5, 30)
_RETRY_S = 1.0  # after a failed list or watch (the apiserver restarting)
_SHUTDOWN_GRACE_S = 3.0  # on SIGTERM: `sandbox down` kills the runner itself 5 s after its SIGTERM
_VOLUME_RETRY_S = 1.0  # a pod whose volume cannot be made yet (its ConfigMap coming) is tried again after this


class PodRunner:
    """The pods and kwok nodes last seen, the processes running for them, and the loop that keeps them matched."""

    def __init__(self, api_client, images: dict[str, image_table.Image], endpoints: dict[str, str], logs_dir: Path,
                 kubelet_port: int, pods_dir: Path):
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._images = images
        self._endpoints = {**endpoints, **kubernetes_service_env(api_client.configuration.host)}
        self._volumes = PodVolumes(self._core, pods_dir)
        self._logs_dir = logs_dir
        self._kubelet_port = kubelet_port
        self._events: queue.Queue = queue.Queue()
        self._pods: dict[str, object] = {}  # uid → V1Pod
        self._kwok_nodes: set[str] = set()
        self._listed: set[str] = set()  # "pods", "nodes" once listed: then the runner is healthy
        self._running: dict[tuple, ContainerProcess] = {}
        self._refused: set[tuple[str, str]] = set()  # (pod uid, container or why its volumes wait) already reported
        self._forwarded: set[tuple[str, str]] = set()  # (pod uid, pod IP) whose PortForward is written
        # pod uid → container → (current log, previous run's log): what the pod's kwok Logs says
        self._log_files: dict[str, dict[str, tuple[Path, Path | None]]] = {}
        self._standin_faults: dict[tuple[str, str], list[dict]] = {}  # (namespace, container) → rules at its start
        self._lock = threading.Lock()  # _running, _log_files, _standin_faults: shared with the control endpoint

    # --- what the control endpoint reads ---------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self._listed >= {"pods", "nodes"}

    def containers(self) -> list[dict]:
        with self._lock:
            running = list(self._running.values())
        return [{"namespace": process.spec.namespace, "pod": process.spec.pod, "pod_uid": process.spec.pod_uid,
                 "container": process.spec.name, "pid": process.pid, "restarts": process.restarts,
                 "argv": list(process.spec.argv), "log_dir": str(self._log_dir(process.spec))}
                for process in running]

    def set_standin_faults(self, namespace: str, container: str, rules: list[dict]) -> None:
        with self._lock:
            self._standin_faults[(namespace, container)] = rules

    def standin_faults(self) -> list[dict]:
        with self._lock:
            return [{"namespace": namespace, "container": container, "rules": rules}
                    for (namespace, container), rules in self._standin_faults.items()]

    def forget_standin_faults(self) -> None:
        with self._lock:
            self._standin_faults.clear()

    def _with_faults(self, spec: ContainerSpec) -> ContainerSpec:
        with self._lock:
            rules = self._standin_faults.get((spec.namespace, spec.name))
        return dataclasses.replace(spec, start_env=((FAULTS_ENV, json.dumps(rules)),)) if rules else spec

    # --- the loop --------------------------------------------------------------------------------------------------

    def start_watches(self) -> None:
        for kind, list_call, selectors in (
                ("nodes", self._core.list_node, {}),
                # Bound pods only: an unscheduled pod has no node to run on.
                ("pods", self._core.list_pod_for_all_namespaces, {"field_selector": "spec.nodeName!="})):
            threading.Thread(target=self._watch, args=(kind, list_call, selectors), name=f"watch {kind}",
                             daemon=True).start()

    def run(self) -> None:
        """Apply events as they come, reconciling after each batch; returns only by an exception (SIGTERM's)."""
        while True:
            self._apply(self._events.get())
            while not self._events.empty():
                self._apply(self._events.get_nowait())
            self._reconcile()

    def stop_all(self, grace_s: float) -> None:
        with self._lock:
            running = list(self._running.values())
        for process in running:
            process.signal_stop()
        for process in running:
            process.wait_stopped(grace_s)

    def _apply(self, event: tuple) -> None:
        kind, change, payload = event
        if kind == "retry":
            return  # only the reconcile after it
        if kind == "pods":
            if change == "LIST":
                self._pods = {pod.metadata.uid: pod for pod in payload}
            elif change == "DELETED":
                self._pods.pop(payload.metadata.uid, None)
            else:
                self._pods[payload.metadata.uid] = payload
        elif change == "LIST":
            self._kwok_nodes = {node.metadata.name for node in payload if _is_kwok_node(node)}
            for node in payload:
                self._point_at_kwok(node)
        elif change == "DELETED" or not _is_kwok_node(payload):
            self._kwok_nodes.discard(payload.metadata.name)
        else:
            self._kwok_nodes.add(payload.metadata.name)
            self._point_at_kwok(payload)
        if change == "LIST":
            self._listed.add(kind)

    def _reconcile(self) -> None:
        desired: dict[tuple, tuple[ContainerSpec, object]] = {}
        for pod in self._pods.values():
            if not runnable_pod(pod, self._kwok_nodes) or not runs_any(pod, self._images):
                continue
            try:
                files = self._volumes.prepare(pod)
            except VolumeUnavailable as error:
                self._wait_for_volumes(pod, str(error))
                continue
            specs, refused = container_specs(pod, self._images, os.environ, self._endpoints, files)
            for container, reason in refused:
                if (pod.metadata.uid, container) not in self._refused:
                    self._refused.add((pod.metadata.uid, container))
                    log.error("%s/%s container %s cannot run: %s", pod.metadata.namespace, pod.metadata.name,
                              container, reason)
            desired.update({spec.key: (self._with_faults(spec), pod) for spec in specs})
        with self._lock:
            going = [process for key, process in self._running.items()
                     if key not in desired or desired[key][0] != process.spec]
        for process in going:  # all signalled at once, then waited for: the longest grace period bounds the wait
            process.signal_stop()
        for process in going:
            process.wait_stopped(process.spec.grace_s)
            with self._lock:
                del self._running[process.spec.key]
                self._log_files.get(process.spec.pod_uid, {}).pop(process.spec.name, None)
        live_uids = {spec.pod_uid for spec, _ in desired.values()}
        self._forwarded = {entry for entry in self._forwarded if entry[0] in live_uids}
        self._refused = {entry for entry in self._refused if entry[0] in self._pods}
        if "pods" in self._listed:
            self._volumes.forget(self._pods)
        for key, (spec, pod) in desired.items():
            # Before the process: a client that sees it listening can port-forward to it.
            self._ensure_port_forward(spec, pod)
            if key not in self._running:
                self._start(spec)

    def _wait_for_volumes(self, pod, why: str) -> None:
        if (pod.metadata.uid, why) not in self._refused:
            self._refused.add((pod.metadata.uid, why))
            log.warning("%s/%s waits for its volumes: %s", pod.metadata.namespace, pod.metadata.name, why)
        timer = threading.Timer(_VOLUME_RETRY_S, self._events.put, args=(("retry", None, None),))
        timer.daemon = True
        timer.start()

    def _point_at_kwok(self, node) -> None:
        """A kwok node's kubelet port is kwok's server. kwok writes it when it makes a node Ready and then at each
        heartbeat (every 20-45 s): a node still Ready from before this sandbox's restart (new ports) would send logs
        and port-forward to a dead port until then."""
        if not _is_kwok_node(node):
            return
        endpoints = node.status.daemon_endpoints if node.status is not None else None
        if endpoints is not None and endpoints.kubelet_endpoint is not None and \
                endpoints.kubelet_endpoint.port == self._kubelet_port:
            return
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            kubelet = {"kubeletEndpoint": {"Port": self._kubelet_port}}
            self._core.patch_node_status(node.metadata.name, {"status": {"daemonEndpoints": kubelet}},
                                         field_manager=_FIELD_MANAGER, _request_timeout=_REQUEST_TIMEOUT_S)
        except (ApiException, HTTPError) as error:
            log.warning("could not point node %s at kwok's port: %s", node.metadata.name,
                        getattr(error, "reason", error))

    def _ensure_port_forward(self, spec: ContainerSpec, pod) -> None:
        """kwok's PortForward for the pod, written once (again at the next change if the apiserver refused it)."""
        if (pod.metadata.uid, pod.status.pod_ip) not in self._forwarded and \
                self._write(_ref(spec), kwok_resources.port_forward(_ref(spec), pod.status.pod_ip, pod_ports(pod))):
            self._forwarded.add((pod.metadata.uid, pod.status.pod_ip))

    def _start(self, spec: ContainerSpec) -> None:
        process = ContainerProcess(spec, self._log_dir(spec), self)
        with self._lock:
            self._running[spec.key] = process
        process.start()

    # --- what a container's thread reports (containers.Reporter) --------------------------------------------------

    def running(self, spec: ContainerSpec, run: Run) -> None:
        """Before each run: kwok's Logs for the pod point at this run's file; after a restart, the pod's status counts
        it and says the container runs and is ready again (kwok wrote the status when the pod started, and no more)."""
        with self._lock:
            files = self._log_files.setdefault(spec.pod_uid, {})
            files[spec.name] = (run.log, run.previous_log)
            manifest = kwok_resources.logs(_ref(spec), dict(files))
        self._write(_ref(spec), manifest)
        if run.previous_exit is not None:
            self._set_container_status(spec, ready=True, restarts=run.restarts,
                                       state={"running": {"startedAt": _time(datetime.now(timezone.utc))}},
                                       last_exit=run.previous_exit)

    def backing_off(self, spec: ContainerSpec, restarts: int, exit: Exit, delay_s: float) -> None:
        """Between an exit and the restart: not ready, waiting in CrashLoopBackOff, as a kubelet says (the Kubernetes
        provider's rollout reasons read it)."""
        message = (f"back-off {delay_s:.0f}s restarting failed container={spec.name} "
                   f"pod={spec.pod}_{spec.namespace}({spec.pod_uid})")
        self._set_container_status(spec, ready=False, restarts=restarts,
                                   state={"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                                   last_exit=exit)

    def exited(self, spec: ContainerSpec, restarts: int, exit: Exit) -> None:
        """Not restarted (restartPolicy): the container is terminated, and the pod done once all of its are."""
        self._set_container_status(spec, ready=False, restarts=restarts, state={"terminated": _terminated(exit)},
                                   last_exit=None)

    def _set_container_status(self, spec: ContainerSpec, *, ready: bool, restarts: int, state: dict,
                              last_exit: Exit | None) -> None:
        from kubernetes.client.exceptions import ApiException

        for _ in range(3):  # the lists are replaced whole: on a conflict, read them again
            pod = self._core.read_namespaced_pod(spec.pod, spec.namespace, _request_timeout=_REQUEST_TIMEOUT_S)
            if pod.metadata.uid != spec.pod_uid or pod.metadata.deletion_timestamp is not None:
                return
            status = self._core.api_client.sanitize_for_serialization(pod.status)
            for container in status.get("containerStatuses", []):
                if container["name"] == spec.name:
                    container.update(ready=ready, started=ready, restartCount=restarts, state=state)
                    if last_exit is not None:
                        container["lastState"] = {"terminated": _terminated(last_exit)}
            phase = _phase(status.get("containerStatuses", []))
            all_ready = all(container.get("ready") for container in status.get("containerStatuses", []))
            for condition in status.get("conditions", []):
                if condition["type"] in ("Ready", "ContainersReady") and \
                        (condition["status"] == "True") != all_ready:
                    condition.update(status="True" if all_ready else "False",
                                     lastTransitionTime=_time(datetime.now(timezone.utc)))
            try:
                self._core.patch_namespaced_pod_status(
                    spec.pod, spec.namespace,
                    {"metadata": {"resourceVersion": pod.metadata.resource_version},
                     "status": {"containerStatuses": status.get("containerStatuses", []),
                                "conditions": status.get("conditions", []), **({"phase": phase} if phase else {})}},
                    _content_type="application/merge-patch+json", _request_timeout=_REQUEST_TIMEOUT_S)
                return
            except ApiException as error:
                if error.status != 409:
                    raise

    def _write(self, pod: kwok_resources.PodRef, manifest: dict) -> bool:
        """Server-side apply of one of kwok's objects for the pod; False (logged) when the apiserver refused it."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kind = manifest["kind"]
        try:
            self._custom.patch_namespaced_custom_object(
                kwok_resources.GROUP, kwok_resources.VERSION, pod.namespace, kwok_resources.plural(kind), pod.name,
                manifest, field_manager=_FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml",
                _request_timeout=_REQUEST_TIMEOUT_S)
            return True
        except (ApiException, HTTPError) as error:  # the pod or its namespace going meanwhile, most often
            log.warning("could not write kwok's %s for %s/%s: %s", kind, pod.namespace, pod.name,
                        getattr(error, "reason", error))
            return False

    def _log_dir(self, spec: ContainerSpec) -> Path:
        """As a kubelet keeps them: pods/<namespace>_<pod>_<uid>/<container>/<restart count>.log."""
        return self._logs_dir / "pods" / f"{spec.namespace}_{spec.pod}_{spec.pod_uid}" / spec.name

    def _watch(self, kind: str, list_call, selectors: dict) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        while True:
            try:
                listed = list_call(**selectors, _request_timeout=_REQUEST_TIMEOUT_S)
                self._events.put((kind, "LIST", listed.items))
                version = listed.metadata.resource_version
                while True:
                    stream = watch.Watch()
                    for event in stream.stream(list_call, resource_version=version, timeout_seconds=_WATCH_S,
                                               allow_watch_bookmarks=True, **selectors,
                                               _request_timeout=(_REQUEST_TIMEOUT_S[0], _WATCH_S + 30)):
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._events.put((kind, event["type"], event["object"]))
                    version = stream.resource_version or version
            except ApiException as error:
                if error.status == 410:
                    log.info("the %s watch expired: listing again", kind)
                    continue
                log.warning("watching %s failed: %s %s; listing again in %.0f s", kind, error.status, error.reason,
                            _RETRY_S)
            except (HTTPError, OSError) as error:
                log.warning("watching %s failed: %s; listing again in %.0f s", kind, error, _RETRY_S)
            time.sleep(_RETRY_S)


def _terminated(exit: Exit) -> dict:
    return {"exitCode": exit.code, "reason": "Completed" if exit.code == 0 else "Error",
            "startedAt": _time(exit.started), "finishedAt": _time(exit.finished)}


def _phase(container_statuses: list[dict]) -> str | None:
    """Succeeded or Failed once every container is terminated (any non-zero exit: Failed); None while one runs."""
    if not container_statuses or not all("terminated" in (c.get("state") or {}) for c in container_statuses):
        return None
    return "Failed" if any(c["state"]["terminated"].get("exitCode") for c in container_statuses) else "Succeeded"


def kubernetes_service_env(server: str) -> dict[str, str]:
    """KUBERNETES_SERVICE_HOST/PORT as a kubelet sets them, but the apiserver's own address: the `kubernetes`
    Service's cluster IP is recorded, never routed, in the sandbox (no kube-proxy)."""
    parts = urlsplit(server)
    return {"KUBERNETES_SERVICE_HOST": parts.hostname or "", "KUBERNETES_SERVICE_PORT": str(parts.port or 443)}


def _ref(spec: ContainerSpec) -> kwok_resources.PodRef:
    return kwok_resources.PodRef(spec.namespace, spec.pod, spec.pod_uid)


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_kwok_node(node) -> bool:
    key, value = KWOK_NODE_ANNOTATION
    return (node.metadata.annotations or {}).get(key) == value


CONTROLS = RouteTable((route("GET", "containers", "_control_containers"),
                       route("GET", "standin-faults", "_control_standin_faults"),
                       route("POST", "standin-faults", "_control_set_standin_faults"),
                       route("DELETE", "standin-faults", "_control_forget_standin_faults")))


class RunnerServer(EmulatorServer):
    def __init__(self, address: tuple[str, int], runner: PodRunner):
        super().__init__(address, RunnerHandler, "pod-runner")
        self.runner = runner


class RunnerHandler(EmulatorHandler):
    server: RunnerServer
    controls = CONTROLS

    def health(self) -> dict:
        if not self.server.runner.healthy():
            raise ApiError(503, "the pod runner has not listed pods and nodes yet")
        return {}

    def _control_containers(self, query: dict) -> None:
        self.send_json(200, {"containers": self.server.runner.containers()})

    def _control_standin_faults(self, query: dict) -> None:
        self.send_json(200, {"standin_faults": self.server.runner.standin_faults()})

    def _control_set_standin_faults(self, query: dict) -> None:
        body = self.read_json()
        namespace, container, rules = body.get("namespace"), body.get("container"), body.get("rules")
        if not (isinstance(namespace, str) and namespace and isinstance(container, str) and container):
            raise ApiError(400, 'standin-faults needs "namespace" and "container" (strings)')
        if not isinstance(rules, list):
            raise ApiError(400, 'standin-faults needs "rules": a list of fault rules')
        try:
            for rule in rules:
                FaultRule.from_dict(rule)
        except (ValueError, TypeError) as error:
            raise ApiError(400, f"bad fault rule: {error}") from None
        self.server.runner.set_standin_faults(namespace, container, rules)
        self.send_json(200, {"standin_faults": self.server.runner.standin_faults()})

    def _control_forget_standin_faults(self, query: dict) -> None:
        self.server.runner.forget_standin_faults()
        self.send_json(200, {"standin_faults": []})


class _Terminated(Exception):
    """SIGTERM arrived: stop every process, then exit."""


def _terminate(signum, frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> None:
    parser = launch.argument_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the control plane components' kubeconfig")
    parser.add_argument("--logs-dir", type=Path, required=True, help="where containers' logs go (under pods/)")
    parser.add_argument("--kubelet-port", type=int, required=True, help="kwok's server: every kwok node's kubelet")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an endpoint export every process gets (the sandbox's Google endpoints); repeatable")
    args = parser.parse_args(argv)
    launch.start_logging()
    from kubernetes import config

    endpoints = dict(item.split("=", 1) for item in args.env)
    try:
        images = image_table.table()
    except (ValueError, KeyError, TypeError) as error:
        parser.error(f"${image_table.EXTRA_IMAGES_ENV}: {error!r}")
    runner = PodRunner(config.new_client_from_config(config_file=str(args.kubeconfig)), images, endpoints,
                       args.logs_dir, args.kubelet_port, paths.data_dir("pod-runner") / "pods")
    signal.signal(signal.SIGTERM, _terminate)
    server = RunnerServer((args.host, args.port), runner)
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    log.info("pod runner on http://%s:%d; images: %s", args.host, args.port, ", ".join(sorted(images)))
    runner.start_watches()
    try:
        runner.run()
    except (_Terminated, KeyboardInterrupt):
        log.info("stopping every process")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runner.stop_all(_SHUTDOWN_GRACE_S)


if __name__ == "__main__":
    main()
