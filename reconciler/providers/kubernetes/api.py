"""A small client of the Kubernetes REST API: GET, LIST, server-side apply (PATCH application/apply-patch+yaml), DELETE.

Why not the `kubernetes` package here: importing kubernetes.client takes about half a second (its ~700 model
modules), five times what `kubectl diff --server-side` of the five Sax objects takes in all (bench/results/
kubectl_baseline.md). saxctl sends JSON it already holds and reads JSON back, over kept-alive TLS connections
reused across requests and threads; the package still reads kubeconfigs for --kubeconfig (access.py), where its
exec plugins matter.

Every request is logged at INFO (`saxctl -v`): method, path, status and milliseconds, never a header or a body, so
the bearer token never reaches a log. That log is also how requests are counted (the tests, the benchmarks).
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit

from reconciler.errors import RemoteError, RetryableError

log = logging.getLogger(__name__)

FIELD_MANAGER = "saxctl"
APPLY = "application/apply-patch+yaml"  # JSON is YAML: the apiserver takes the manifest as it is
TIMEOUT_S = 30.0
TRANSIENT = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Status:
    """A Kubernetes Status the apiserver answered a failed call with."""

    code: int
    reason: str  # NotFound, Conflict, Invalid, Forbidden, AlreadyExists...
    message: str
    causes: tuple[Mapping[str, Any], ...] = ()  # details.causes: {reason, message, field}
    details_kind: str = ""  # details.kind: "namespaces" when it is the namespace that is missing


class ApiError(RemoteError):
    """A call the apiserver refused; `status` says how."""

    def __init__(self, message: str, status: Status):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach one apiserver: its URL, the CA that signed its certificate, and who saxctl is to it."""

    server: str  # https://HOST[:PORT]
    ca_pem: bytes | None  # None: the system's trust store
    bearer: Callable[[], str | None]  # the Authorization header's token, asked for per request (tokens expire)
    client_cert: tuple[str, str] | None = None  # (cert file, key file) from a kubeconfig
    verify: bool = True  # False only when a kubeconfig says insecure-skip-tls-verify
    where: str = ""  # for messages: "cluster saxml" or "kubeconfig ~/.kube/config (context dev)"


class KubeApi:
    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        parts = urlsplit(endpoint.server)
        if parts.scheme != "https" or not parts.hostname:
            raise RemoteError(f"{endpoint.where}: the apiserver address {endpoint.server!r} is not an https:// URL")
        self._host, self._port = parts.hostname, parts.port or 443
        self._base = parts.path.rstrip("/")
        self._context = tls_context(endpoint)
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPSConnection] = []

    # --- verbs ---------------------------------------------------------------------------------------------------

    def get(self, path: str, what: str) -> dict | None:
        """The object at path, or None when it does not exist."""
        try:
            return self.request("GET", path, what=what)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise

    def list(self, path: str, what: str, label_selector: str | None = None, *,
             field_selector: str | None = None) -> list[dict]:
        """Every item of a collection, page by page."""
        items: list[dict] = []
        query: dict[str, Any] = {"limit": 500}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        while True:
            page = self.request("GET", path, query=query, what=what)
            items.extend(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = {**query, "continue": token}

    def apply(self, path: str, manifest: Mapping[str, Any], what: str, *, dry_run: bool = False,
              force: bool = False) -> dict:
        """Server-side apply of manifest as field manager saxctl (dry_run: what the server would make of it)."""
        query: dict[str, Any] = {"fieldManager": FIELD_MANAGER}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", path, query=query, body=manifest, content_type=APPLY, what=what)

    def create(self, path: str, body: Mapping[str, Any], what: str) -> dict:
        """POST a new object to the collection at path (an Event: saxctl applies what it owns)."""
        return self.request("POST", path, body=body, what=what)

    def delete(self, path: str, what: str, uid: str | None = None) -> bool:
        """Delete, its dependents first (foreground: a Deployment goes once its pods have, so what they held is free
        when it is gone); only the object with this uid if given. False: already gone."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path, body=body, what=what)
        except ApiError as error:
            if error.status.code == 404:
                return False
            raise
        return True

    # --- transport -----------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, what: str, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json") -> Any:
        target = quote(self._base + path) + (f"?{urlencode(query)}" if query else "")
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": "saxctl"}
        if payload is not None:
            headers["Content-Type"] = content_type
        token = self.endpoint.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        status, data = self._send(method, target, payload, headers, what)
        log.info("kubernetes %s %s → %d (%.0f ms)", method, target, status, (time.monotonic() - started) * 1000)
        if 200 <= status < 300:
            return json.loads(data) if data else None
        raise self._error(method, what, status, data)

    def _send(self, method: str, target: str, payload: bytes | None, headers: dict[str, str],
              what: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection, reused = self._take()
            try:
                connection.request(method, target, body=payload, headers=headers)
                response = connection.getresponse()
                status, data = response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                connection.close()
                if reused and attempt == 1:
                    continue  # the server closed a kept-alive connection: once more on a new one
                raise RetryableError(f"kubernetes {method} {what}: connection lost ({type(error).__name__}) to "
                                     f"{self.endpoint.where}") from None
            except ssl.SSLCertVerificationError as error:
                connection.close()
                raise RemoteError(f"kubernetes {method} {what}: the apiserver of {self.endpoint.where} presented a "
                                  f"certificate its CA does not vouch for: {error.verify_message}") from None
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise RetryableError(f"kubernetes {method} {what}: cannot reach the apiserver of "
                                     f"{self.endpoint.where} ({self.endpoint.server}): {error}") from None
            self._give_back(connection)
            return status, data
        raise AssertionError("unreachable")

    def _take(self) -> tuple[http.client.HTTPSConnection, bool]:
        """A kept-alive connection if one is idle (reads of one plan come in waves, each on new threads), else a new
        one: a TLS handshake saved per request."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPSConnection(self._host, self._port, context=self._context, timeout=TIMEOUT_S), False

    def _give_back(self, connection: http.client.HTTPSConnection) -> None:
        with self._lock:
            self._idle.append(connection)

    def _error(self, method: str, what: str, code: int, data: bytes) -> RemoteError:
        status = _status_of(code, data)
        text = f"kubernetes {method} {what}: {code} {status.reason}: {status.message}"
        if code in TRANSIENT:
            return RetryableError(text)
        if code == 401:
            return ApiError(f"{text} (the apiserver of {self.endpoint.where} did not accept saxctl's credentials)",
                            status)
        return ApiError(text, status)


def _status_of(code: int, data: bytes) -> Status:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Status(code, http.client.responses.get(code, "Error"), data.decode(errors="replace")[:300].strip())
    details = body.get("details") or {}
    return Status(code, body.get("reason") or http.client.responses.get(code, "Error"), body.get("message") or "",
                  tuple(details.get("causes") or ()), details.get("kind") or "")


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=endpoint.ca_pem.decode() if endpoint.ca_pem else None)
    if not endpoint.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.client_cert:
        context.load_cert_chain(*endpoint.client_cert)
    return context
