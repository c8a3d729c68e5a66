"""A local port that reaches a pod's port through the Kubernetes API's port-forward, as `kubectl port-forward` does.

How a user reaches the Sax admin on GKE without a public address: the apiserver carries the bytes to the pod over a
WebSocket (GET .../pods/POD/portforward?ports=PORT, the request kubernetes.stream.portforward makes). gRPC wants a
TCP address, so each connection to the local port opens one forward and two threads copy bytes both ways until
either side closes.

The WebSocket is websocket-client's, spoken here rather than through the `kubernetes` package: importing that
package costs half a second of every plan that reads a Sax cell, for one request. Its channel framing (the
v4.channel.k8s.io subprotocol) is small: each binary message starts with its channel byte, 0 for the port's data
and 1 for its errors, and each channel's first message holds the port number (2 bytes, little-endian).
"""

from __future__ import annotations

import logging
import socket
import threading
from urllib.parse import quote, urlsplit, urlunsplit

from reconciler.errors import RemoteError
from reconciler.providers.kubernetes.api import Endpoint, tls_context

log = logging.getLogger(__name__)
_CHUNK = 65536
_PROTOCOL = "v4.channel.k8s.io"
_DATA, _ERROR = 0, 1
CONNECT_TIMEOUT_S = 30.0


class PortForward:
    """127.0.0.1:local_port → namespace/pod:port, until close()."""

    def __init__(self, endpoint: Endpoint, namespace: str, pod: str, port: int):
        self._endpoint, self._namespace, self._pod, self._port = endpoint, namespace, pod, port
        self.what = f"port-forward to pod {namespace}/{pod}:{port} ({endpoint.where})"
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
            # Each reply's bytes go out as they come: with Nagle's algorithm a small write waits for the ACK of the
            # one before, which the gRPC client delays (40 ms), and every call after a channel's first stalled on it.
            local.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._bridge, args=(local,), name="portforward-conn", daemon=True).start()

    def open_remote(self):
        """One forward's WebSocket to the pod's port; RemoteError naming the pod when the apiserver refuses it."""
        import websocket

        parts = urlsplit(self._endpoint.server)
        path = (f"{parts.path.rstrip('/')}/api/v1/namespaces/{quote(self._namespace)}/pods/{quote(self._pod)}"
                "/portforward")
        url = urlunsplit(("wss", parts.netloc, path, f"ports={self._port}", ""))
        token = self._endpoint.bearer()
        header = [f"sec-websocket-protocol: {_PROTOCOL}"] + ([f"authorization: Bearer {token}"] if token else [])
        try:
            remote = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S, header=header,
                                                 sslopt={"context": tls_context(self._endpoint)})
        except Exception as error:  # the handshake's status, OSError, ssl.SSLError and the library's own types
            raise RemoteError(f"{self.what}: {type(error).__name__}: {error}") from None
        remote.settimeout(None)
        log.info("kubernetes portforward %s/%s:%d", self._namespace, self._pod, self._port)
        return remote

    def _bridge(self, local: socket.socket) -> None:
        try:
            remote = self.open_remote()
        except RemoteError as error:
            log.warning("%s", error.message)
            local.close()
            return
        threads = [threading.Thread(target=self._to_pod, args=(local, remote), daemon=True),
                   threading.Thread(target=self._from_pod, args=(remote, local), daemon=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        local.close()
        remote.shutdown()

    def _to_pod(self, local: socket.socket, remote) -> None:
        try:
            while data := local.recv(_CHUNK):
                remote.send_binary(bytes((_DATA,)) + data)
        except Exception:  # OSError, or the WebSocket closed by the other side
            pass
        remote.abort()  # wakes _from_pod

    def _from_pod(self, remote, local: socket.socket) -> None:
        import websocket

        started = set()  # channels whose first message (the port number) has come
        try:
            while True:
                opcode, data = remote.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode != websocket.ABNF.OPCODE_BINARY or not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel not in started:
                    started.add(channel)
                elif channel == _DATA:
                    local.sendall(payload)
                elif channel == _ERROR:
                    log.warning("%s: %s", self.what, payload.decode(errors="replace"))
                    break
        except Exception:  # OSError, or the WebSocket closed (or aborted by _to_pod)
            pass
        try:
            local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
