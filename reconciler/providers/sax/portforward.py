"""A local port that reaches a pod's port through the Kubernetes API's port-forward, as `kubectl port-forward` does.

How a user reaches the Sax admin on GKE without a public address: the apiserver carries the bytes to the pod (over
a WebSocket, kubernetes.stream.portforward). gRPC wants a TCP address, so each connection to the local port opens
one forward and two threads copy bytes both ways until either side closes.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import tempfile
import threading

from reconciler.errors import RemoteError
from reconciler.providers.kubernetes.api import Endpoint

log = logging.getLogger(__name__)
_CHUNK = 65536


def core_api(endpoint: Endpoint):
    """kubernetes.client.CoreV1Api for the apiserver of endpoint (its CA, its token, refreshed per request)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = endpoint.server
    configuration.verify_ssl = endpoint.verify
    if endpoint.ca_pem:
        # The client wants a file, and reads it again at each forward's WebSocket: removed when saxctl exits.
        with tempfile.NamedTemporaryFile("wb", prefix="saxctl-ca-", suffix=".pem", delete=False) as ca_file:
            ca_file.write(endpoint.ca_pem)
        atexit.register(os.unlink, ca_file.name)
        configuration.ssl_ca_cert = ca_file.name
    if endpoint.client_cert:
        configuration.cert_file, configuration.key_file = endpoint.client_cert

    def refresh(config) -> None:
        token = endpoint.bearer()
        config.api_key = {"authorization": f"Bearer {token}"} if token else {}

    configuration.refresh_api_key_hook = refresh
    refresh(configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


class PortForward:
    """127.0.0.1:local_port → namespace/pod:port, until close()."""

    def __init__(self, core, namespace: str, pod: str, port: int, where: str):
        self._core, self._namespace, self._pod, self._port = core, namespace, pod, port
        self.what = f"port-forward to pod {namespace}/{pod}:{port} ({where})"
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name=f"portforward-{pod}", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(local,), name="portforward-conn", daemon=True).start()

    def open_remote(self):
        """One forward's socket to the pod's port; RemoteError naming the pod when the apiserver refuses it."""
        from kubernetes.stream import portforward

        try:
            forward = portforward(self._core.connect_get_namespaced_pod_portforward, self._pod, self._namespace,
                                  ports=str(self._port))
        except Exception as error:  # ApiException, OSError, and the websocket library's own types
            raise RemoteError(f"{self.what}: {type(error).__name__}: {error}") from None
        log.info("kubernetes portforward %s/%s:%d", self._namespace, self._pod, self._port)
        return forward, forward.socket(self._port)

    def _bridge(self, local: socket.socket) -> None:
        try:
            forward, remote = self.open_remote()
        except RemoteError as error:
            log.warning("%s", error.message)
            local.close()
            return
        remote.setblocking(True)
        threads = [threading.Thread(target=_copy, args=(local, remote), daemon=True),
                   threading.Thread(target=_copy, args=(remote, local), daemon=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        local.close()
        forward.close()


def _copy(source, target) -> None:
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    for end in (target, source):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
